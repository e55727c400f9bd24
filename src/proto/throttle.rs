//! Provider throttling answers, for every protocol. Microsoft says
//! `Request is throttled. Suggested Backoff Time: 20000 milliseconds` in an
//! IMAP NO, a POP3 `-ERR` or an SMTP 4xx alike; the suggested time reaches
//! the per-mailbox gate, bounded here by one cap.

use std::time::Duration;

/// Longest backoff mailgate honours from a throttling reply; a larger value is
/// clamped so a hostile or garbled upstream cannot park a mailbox forever.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// Digits read from a suggested time; more would only overflow into the cap.
const MAX_DIGITS: usize = 12;

/// Recognises a throttling answer by its wording (POP3, SMTP).
/// `None`: not a throttle. `Some(None)`: throttled without a usable backoff.
pub fn throttled(text: &str) -> Option<Option<Duration>> {
    if !text.to_ascii_lowercase().contains("throttl") {
        return None;
    }
    Some(suggested_backoff(text))
}

/// The `Suggested Backoff Time: N milliseconds` in `text`, capped at
/// [`MAX_BACKOFF`]; `None` when absent or not a number.
pub fn suggested_backoff(text: &str) -> Option<Duration> {
    const LABEL: &str = "suggested backoff time:";
    let lower = text.to_ascii_lowercase();
    let after = &lower[lower.find(LABEL)? + LABEL.len()..];
    let digits: String = after
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .take(MAX_DIGITS)
        .collect();
    let millis = digits.parse::<u64>().ok()?;
    Some(Duration::from_millis(millis).min(MAX_BACKOFF))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_text_and_backoff() {
        let t = "Request is throttled. Suggested Backoff Time: 20000 milliseconds";
        assert_eq!(throttled(t), Some(Some(Duration::from_millis(20000))));
        assert_eq!(throttled("Throttled, try later"), Some(None));
        let huge = "throttled. Suggested Backoff Time: 999999999999 milliseconds";
        assert_eq!(throttled(huge), Some(Some(MAX_BACKOFF)));
        assert_eq!(throttled("Authentication failed"), None);
    }

    #[test]
    fn suggested_backoff_alone() {
        let t = "Suggested Backoff Time: 99999999999999999999 milliseconds";
        assert_eq!(suggested_backoff(t), Some(MAX_BACKOFF));
        assert_eq!(suggested_backoff("Suggested Backoff Time: soon"), None);
        assert_eq!(suggested_backoff("no label"), None);
    }
}
