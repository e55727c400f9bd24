//! What a Graph answer means to the SMTP client. The rule (issue 12,
//! `docs/design.md` "Sending through Graph"): the client must understand
//! the provider as the provider meant it. A temporary fault is a `4xx`, so
//! the client keeps the message and retries; a refusal of this message is a
//! `5xx` with Graph's reason, so a human can act on it.

use std::time::Duration;

use super::super::accept::Reply;

/// Longest part of Graph's error message passed on to the client.
pub const MAX_REASON_LEN: usize = 200;

/// One answer from Graph, reduced to what decides the SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 202 (or any 2xx): accepted.
    Accepted,
    /// An HTTP status with Graph's `error.message` and `Retry-After`.
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// No answer in time.
    Timeout,
    /// No answer at all (connection refused or reset).
    Network,
}

/// The reply for every outcome but success and 401 (which the sink handles
/// by refreshing the token once; see [`unauthorised`]).
pub fn reply_for(outcome: &Outcome) -> Option<Reply> {
    let reply = |code: u16, text: String| Some(Reply { code, text });
    match outcome {
        Outcome::Accepted => None,
        Outcome::Timeout => reply(
            451,
            "4.4.2 Microsoft Graph did not answer in time; try again later".into(),
        ),
        Outcome::Network => reply(
            451,
            "4.4.1 Microsoft Graph cannot be reached; try again later".into(),
        ),
        Outcome::Status {
            status,
            message,
            retry_after,
        } => {
            let reason = clean(message);
            match (*status, retry_after) {
                (429 | 503, Some(wait)) => reply(
                    451,
                    format!(
                        "4.7.0 Microsoft Graph is throttling this mailbox; retry in {} s",
                        wait.as_secs().max(1)
                    ),
                ),
                (429, None) => reply(
                    451,
                    "4.7.0 Microsoft Graph is throttling this mailbox; retry later".into(),
                ),
                (401, _) => Some(unauthorised(false)),
                (403, _) => reply(550, format!("5.7.1 Microsoft Graph refused: {reason}")),
                (413, _) => reply(
                    552,
                    format!("5.3.4 Microsoft Graph refused the message size: {reason}"),
                ),
                (400, _) => reply(554, format!("5.6.0 Microsoft Graph refused: {reason}")),
                (404, _) => reply(550, format!("5.1.0 Microsoft Graph: {reason}")),
                (s, _) if s >= 500 => reply(
                    451,
                    format!("4.4.0 Microsoft Graph failed (HTTP {s}); try again later"),
                ),
                (s, _) => reply(
                    554,
                    format!("5.0.0 Microsoft Graph answered HTTP {s}: {reason}"),
                ),
            }
        }
    }
}

/// Graph refused the access token even after a refresh. `temporary`: the
/// refresh itself failed for a reason that may pass. The codes are those
/// of the SMTP token table (`535 5.7.8` / `454 4.7.0`).
pub fn unauthorised(temporary: bool) -> Reply {
    if temporary {
        Reply {
            code: 454,
            text: "4.7.0 Cannot get a Microsoft Graph token now; try again later".into(),
        }
    } else {
        Reply {
            code: 535,
            text: "5.7.8 Microsoft Graph refused the access token; \
                   the app registration needs the Mail.Send permission"
                .into(),
        }
    }
}

/// `error.message` from Graph's error JSON (`{"error":{"code","message"}}`),
/// or the empty string.
pub fn graph_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let e = &v["error"];
            let message = e["message"].as_str().unwrap_or_default();
            let code = e["code"].as_str().unwrap_or_default();
            match (code.is_empty(), message.is_empty()) {
                (true, true) => None,
                (false, false) => Some(format!("{code}: {message}")),
                _ => Some(format!("{code}{message}")),
            }
        })
        .unwrap_or_default()
}

/// One printable line, bounded: Graph's text goes into an SMTP reply.
fn clean(message: &str) -> String {
    let mut out: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON_LEN)
        .collect();
    if out.trim().is_empty() {
        out = "no reason given".into();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, retry: Option<u64>) -> Outcome {
        Outcome::Status {
            status,
            message: "ErrorX: because\r\n250 fake".into(),
            retry_after: retry.map(Duration::from_secs),
        }
    }

    fn code(outcome: Outcome) -> (u16, String) {
        let r = reply_for(&outcome).unwrap();
        (r.code, r.text)
    }

    #[test]
    fn each_answer_maps_to_what_the_provider_meant() {
        assert_eq!(reply_for(&Outcome::Accepted), None);
        let table = [
            (status(429, Some(30)), 451, "4.7.0", "retry in 30 s"),
            (status(503, Some(7)), 451, "4.7.0", "retry in 7 s"),
            (status(429, None), 451, "4.7.0", "retry later"),
            (status(503, None), 451, "4.4.0", "HTTP 503"),
            (status(500, None), 451, "4.4.0", "HTTP 500"),
            (status(403, None), 550, "5.7.1", "ErrorX: because"),
            (status(400, None), 554, "5.6.0", "ErrorX: because"),
            (status(413, None), 552, "5.3.4", "size"),
            (status(401, None), 535, "5.7.8", "Mail.Send"),
            (status(418, None), 554, "5.0.0", "HTTP 418"),
            (Outcome::Timeout, 451, "4.4.2", "in time"),
            (Outcome::Network, 451, "4.4.1", "reached"),
        ];
        for (outcome, want_code, enhanced, words) in table {
            let (got, text) = code(outcome.clone());
            assert_eq!(got, want_code, "{outcome:?}");
            assert!(text.starts_with(enhanced), "{outcome:?}: {text}");
            assert!(text.contains(words), "{outcome:?}: {text}");
            assert!(!text.contains('\r') && !text.contains('\n'), "{text}");
        }
    }

    #[test]
    fn reason_is_bounded() {
        let long = Outcome::Status {
            status: 400,
            message: "x".repeat(5000),
            retry_after: None,
        };
        assert!(code(long).1.len() < MAX_REASON_LEN + 50);
    }

    #[test]
    fn graph_error_json_is_read() {
        let body = br#"{"error":{"code":"ErrorSendAsDenied","message":"not allowed"}}"#;
        assert_eq!(graph_message(body), "ErrorSendAsDenied: not allowed");
        assert_eq!(graph_message(b"<html>"), "");
    }
}
