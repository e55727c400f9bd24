//! Failed logins on one connection, the same rule for every protocol: each
//! failure is answered, and the one that reaches `max_auth_failures` closes
//! the connection. Temporary failures count too, so a client cannot retry an
//! unavailable upstream without end.

use super::{ClientLimits, ClientStep};

/// Why the connection closes once the limit is reached.
pub const TOO_MANY_FAILURES: &str = "too many failed logins";

/// The failed-login count of one client connection.
#[derive(Debug, Default)]
pub struct Failures {
    count: usize,
}

impl Failures {
    /// Counts one failure and answers it with `reply`; once the limit is
    /// reached the answer is `reply` then `farewell`, and a close.
    pub fn answer(&mut self, limits: &ClientLimits, reply: Vec<u8>, farewell: &[u8]) -> ClientStep {
        self.count = self.count.saturating_add(1);
        if self.count < limits.max_auth_failures {
            return ClientStep::Reply(reply);
        }
        let mut reply = reply;
        reply.extend_from_slice(farewell);
        ClientStep::Close {
            reply,
            reason: TOO_MANY_FAILURES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_on_the_failure_that_reaches_the_limit() {
        let limits = ClientLimits {
            max_auth_failures: 2,
            ..ClientLimits::default()
        };
        let mut failures = Failures::default();
        assert_eq!(
            failures.answer(&limits, b"no\r\n".to_vec(), b"bye\r\n"),
            ClientStep::Reply(b"no\r\n".to_vec())
        );
        assert_eq!(
            failures.answer(&limits, b"no\r\n".to_vec(), b"bye\r\n"),
            ClientStep::Close {
                reply: b"no\r\nbye\r\n".to_vec(),
                reason: TOO_MANY_FAILURES
            }
        );
    }
}
