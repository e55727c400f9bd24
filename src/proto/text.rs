//! Reply text for the POP3 and SMTP machines.
//!
//! Anything mailgate writes into a reply line may have come from the upstream
//! (its reasons, its success line) or from the configuration. A stray CR or LF
//! in such text would let it forge extra reply lines, so every piece of text is
//! made single-line and printable first, and bounded: RFC 2449 §4 and RFC 5321
//! §4.5.3.1.5 both cap a reply line at 512 octets including CRLF.

use super::{BAD_CREDENTIALS_TEXT, LoginFailure};

/// Longest free text mailgate puts into one reply line; leaves room for the
/// status prefix (`-ERR [SYS/TEMP] `, `535 5.7.8 Upstream refused the login: `)
/// inside the 512-octet line limit.
pub(crate) const MAX_REPLY_TEXT: usize = 400;

/// Bound on a rejection text before [`Credential`](super::credential) has
/// scrubbed it: the upstream framing's own bound, so a token in the text is
/// still whole when it is looked for. The scrubbed text is then [`cut`] to
/// [`MAX_REPLY_TEXT`]; cutting first could leave a prefix of the token that
/// the scrubber no longer recognises.
pub(crate) const MAX_UNSCRUBBED_TEXT: usize = super::MAX_UPSTREAM_LINE;

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.truncate(text.trim_end().len());
    }
    text
}

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

/// The upstream's success line passed on to the client when it starts with
/// `prefix` (`+OK`, `235`), else `fallback`; CRLF-terminated either way.
pub(crate) fn success_line(line: &[u8], prefix: &str, fallback: &str) -> Vec<u8> {
    let line = sanitize_bytes(line, MAX_REPLY_TEXT);
    let line = if line.starts_with(prefix) {
        line.as_str()
    } else {
        fallback
    };
    format!("{line}\r\n").into_bytes()
}

/// docs/design.md's error table for the line protocols: `refused` starts
/// the answers that mean "these credentials will not do" (POP3 `-ERR [AUTH]`,
/// SMTP `535 5.7.8`), `temporary` the ones that mean "try again later"
/// (`-ERR [SYS/TEMP]`, `454 4.7.0`). Archivers disable accounts after a few of
/// the former, so a temporary fault never gets one.
pub(crate) fn failure_reply(failure: &LoginFailure, refused: &str, temporary: &str) -> Vec<u8> {
    let text = |t: &str| sanitize(t, MAX_REPLY_TEXT);
    let line = match failure {
        LoginFailure::BadCredentials => format!("{refused} {BAD_CREDENTIALS_TEXT}"),
        LoginFailure::NeedsAuthorisation(how) => format!("{refused} {}", text(how)),
        LoginFailure::Temporary(why) => format!("{temporary} {}", text(why)),
        LoginFailure::UpstreamRejected(why) => {
            format!("{refused} Upstream refused the login: {}", text(why))
        }
    };
    format!("{line}\r\n").into_bytes()
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
}
