//! Text helpers shared by the POP3 and SMTP machines.
//!
//! Anything mailgate writes into a reply line may have come from the upstream
//! (its reasons, its success line) or from the configuration. A stray CR or LF
//! in such text would let it forge extra reply lines, so every piece of text is
//! made single-line and printable first, and bounded: RFC 2449 §4 and RFC 5321
//! §4.5.3.1.5 both cap a reply line at 512 octets including CRLF.

use std::time::Duration;

/// Longest free text mailgate puts into one reply line; leaves room for the
/// status prefix (`-ERR [SYS/TEMP] `, `535 5.7.8 Upstream refused the login: `)
/// inside the 512-octet line limit.
pub(crate) const MAX_REPLY_TEXT: usize = 400;

/// Longest backoff mailgate honours from a throttling reply; a larger value is
/// clamped so a hostile or garbled upstream cannot park a mailbox forever.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// Makes `text` safe for one reply line: control characters (CR, LF, NUL,
/// DEL, ...) become spaces, runs of spaces collapse, and the result is cut to
/// at most `max` bytes on a character boundary.
pub(crate) fn sanitize(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out.truncate(out.trim_end().len());
    out
}

/// [`sanitize`] for raw bytes from the network (invalid UTF-8 is replaced).
pub(crate) fn sanitize_bytes(text: &[u8], max: usize) -> String {
    sanitize(&String::from_utf8_lossy(text), max)
}

/// Recognises a provider's throttling answer, e.g. Microsoft's
/// `Request is throttled. Suggested Backoff Time: 20000 milliseconds`.
/// `None`: not a throttle. `Some(None)`: throttled without a usable backoff.
pub(crate) fn throttle_backoff(text: &str) -> Option<Option<Duration>> {
    let lower = text.to_ascii_lowercase();
    if !lower.contains("throttl") {
        return None;
    }
    const MARKER: &str = "suggested backoff time:";
    let Some(at) = lower.find(MARKER) else {
        return Some(None);
    };
    let digits: String = lower[at + MARKER.len()..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .take(12)
        .collect();
    let millis = digits.parse::<u64>().ok();
    Some(millis.map(|ms| Duration::from_millis(ms).min(MAX_BACKOFF)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_removes_line_breaks_and_bounds_length() {
        assert_eq!(
            sanitize("bad\r\n+OK forged\x00 \x7f x", 100),
            "bad +OK forged x"
        );
        assert_eq!(sanitize("  lead  and trail  ", 100), "lead and trail");
        assert_eq!(sanitize("ééé", 5), "éé");
        assert_eq!(sanitize("abcdef", 3), "abc");
        assert_eq!(sanitize_bytes(b"a\xffb", 10), "a\u{fffd}b");
    }

    #[test]
    fn throttle_text_and_backoff() {
        let t = "Request is throttled. Suggested Backoff Time: 20000 milliseconds";
        assert_eq!(
            throttle_backoff(t),
            Some(Some(Duration::from_millis(20000)))
        );
        assert_eq!(throttle_backoff("Throttled, try later"), Some(None));
        let huge = "throttled. Suggested Backoff Time: 999999999999 milliseconds";
        assert_eq!(throttle_backoff(huge), Some(Some(MAX_BACKOFF)));
        assert_eq!(throttle_backoff("Authentication failed"), None);
    }
}
