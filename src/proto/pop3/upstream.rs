//! POP3 towards the provider: greeting, optional STLS (RFC 2595 §4), then
//! `AUTH XOAUTH2` in the two-step form (RFC 5034 §4). Microsoft's POP3 does not
//! take the token as an initial response, so the machine waits for the `+`
//! continuation before sending it.
//!
//! A `-ERR` is sorted by its RFC 3206 code: `[SYS/TEMP]` and `[IN-USE]` are
//! temporary, Microsoft's "Request is throttled" asks for a backoff, anything
//! else is an authentication failure (the token may be stale).

use bytes::BytesMut;

use crate::proto::credential::Credential;
use crate::proto::line::{Line, take_line};
use crate::proto::text::{MAX_UNSCRUBBED_TEXT, sanitize_bytes};
use crate::proto::throttle::throttled;
use crate::proto::{
    MAX_UPSTREAM_LINE, UpstreamLogin, UpstreamRejection, UpstreamStep, UpstreamSuccess, sasl,
};
use crate::proto::{Machine, UpstreamMachine};
use crate::secret::Secret;

/// What the upstream machine waits for.
#[derive(Debug)]
enum State {
    ExpectGreeting,
    /// `+OK` to our STLS.
    ExpectStlsOk,
    /// TLS is up: send `AUTH XOAUTH2` without reading (no new greeting, RFC 2595 §4).
    SendAuth,
    /// The `+` continuation of `AUTH XOAUTH2`.
    ExpectContinuation,
    /// The verdict on the token; `reason` holds a decoded error challenge.
    ExpectVerdict {
        reason: Option<String>,
    },
    Finished,
}

/// The POP3 upstream-side machine.
#[derive(Debug)]
pub struct Pop3Upstream {
    credential: Credential,
    starttls: bool,
    state: State,
}

/// A POP3 status line, sorted.
enum Status<'a> {
    Ok,
    Err(&'a [u8]),
    Continue(&'a [u8]),
    Other,
}

fn status(line: &[u8]) -> Status<'_> {
    let after = |prefix: &[u8]| -> Option<&[u8]> {
        let rest = line.strip_prefix(prefix)?;
        match rest.split_first() {
            None => Some(rest),
            Some((b' ', text)) => Some(text),
            Some(_) => None,
        }
    };
    if after(b"+OK").is_some() {
        Status::Ok
    } else if let Some(text) = after(b"-ERR") {
        Status::Err(text)
    } else if let Some(text) = after(b"+") {
        Status::Continue(text)
    } else {
        Status::Other
    }
}

impl Pop3Upstream {
    pub fn new(login: UpstreamLogin, starttls: bool) -> Self {
        Self {
            credential: Credential::new(login),
            starttls,
            state: State::ExpectGreeting,
        }
    }

    fn greeting(&mut self, line: &[u8]) -> UpstreamStep {
        match status(line) {
            Status::Ok if self.starttls => {
                self.state = State::ExpectStlsOk;
                send(b"STLS\r\n".to_vec())
            }
            Status::Ok => {
                self.state = State::ExpectContinuation;
                send(b"AUTH XOAUTH2\r\n".to_vec())
            }
            Status::Err(text) => self.reject(UpstreamRejection::Unavailable(text_of(text))),
            _ => self.reject(protocol_with("unexpected POP3 greeting", line)),
        }
    }

    fn stls(&mut self, line: &[u8]) -> UpstreamStep {
        match status(line) {
            Status::Ok => {
                self.state = State::SendAuth;
                UpstreamStep::StartTls
            }
            _ => self.reject(protocol_with("upstream refused STLS", line)),
        }
    }

    fn continuation(&mut self, line: &[u8]) -> UpstreamStep {
        match status(line) {
            Status::Continue(_) => match self.credential.xoauth2_line(b"") {
                Some(line) => {
                    self.state = State::ExpectVerdict { reason: None };
                    UpstreamStep::Send(line)
                }
                None => self.reject(protocol("token already sent")),
            },
            Status::Err(text) => self.reject(classify_err(text, None)),
            _ => self.reject(protocol_with("unexpected answer to AUTH XOAUTH2", line)),
        }
    }

    /// A `+ <base64 JSON>` after the token is an error challenge (Google
    /// style): answer with an empty line and report the final `-ERR` with it.
    fn verdict(&mut self, line: &[u8], reason: Option<String>) -> UpstreamStep {
        match status(line) {
            Status::Ok => {
                self.state = State::Finished;
                UpstreamStep::Authenticated(UpstreamSuccess {
                    line: line.to_vec(),
                    capabilities: None,
                })
            }
            Status::Err(text) => self.reject(classify_err(text, reason)),
            Status::Continue(challenge) if reason.is_none() => {
                let json = sasl::decode_xoauth2_challenge(challenge);
                let json = sanitize_bytes(json.as_bytes(), MAX_UNSCRUBBED_TEXT);
                self.state = State::ExpectVerdict { reason: Some(json) };
                send(b"\r\n".to_vec())
            }
            _ => self.reject(protocol_with(
                "unexpected answer to the XOAUTH2 token",
                line,
            )),
        }
    }

    fn reject(&mut self, rejection: UpstreamRejection) -> UpstreamStep {
        self.state = State::Finished;
        self.credential.reject(rejection)
    }
}

impl Machine for Pop3Upstream {
    type Step = UpstreamStep;

    fn step(&mut self, input: &mut BytesMut) -> UpstreamStep {
        match self.state {
            State::Finished => return UpstreamStep::NeedMore,
            State::SendAuth => {
                self.state = State::ExpectContinuation;
                return send(b"AUTH XOAUTH2\r\n".to_vec());
            }
            _ => {}
        }
        let line = match take_line(input, MAX_UPSTREAM_LINE) {
            Line::Incomplete => return UpstreamStep::NeedMore,
            Line::TooLong => return self.reject(protocol("upstream line too long")),
            Line::Complete(line) => line,
        };
        match std::mem::replace(&mut self.state, State::Finished) {
            State::ExpectGreeting => self.greeting(&line),
            State::ExpectStlsOk => self.stls(&line),
            State::ExpectContinuation => self.continuation(&line),
            State::ExpectVerdict { reason } => self.verdict(&line, reason),
            State::SendAuth | State::Finished => UpstreamStep::NeedMore,
        }
    }
}

impl UpstreamMachine for Pop3Upstream {}

/// Response codes that mean "try again later": RFC 3206 §4 (`SYS/TEMP`),
/// RFC 2449 §8.1 (`IN-USE`, `LOGIN-DELAY`).
const TEMPORARY_CODES: [&str; 3] = ["[SYS/TEMP]", "[IN-USE]", "[LOGIN-DELAY]"];

/// Sorts a `-ERR` by its RFC 3206 code and Microsoft's throttling text.
fn classify_err(text: &[u8], reason: Option<String>) -> UpstreamRejection {
    let text = text_of(text);
    if let Some(backoff) = throttled(&text) {
        return UpstreamRejection::Throttled { text, backoff };
    }
    let upper = text.to_ascii_uppercase();
    if TEMPORARY_CODES.iter().any(|code| upper.starts_with(code)) {
        return UpstreamRejection::Unavailable(text);
    }
    match reason {
        Some(reason) if !reason.is_empty() => {
            UpstreamRejection::AuthFailed(format!("{text} ({reason})"))
        }
        _ => UpstreamRejection::AuthFailed(text),
    }
}

/// Uncut: the credential scrubs a rejection, then cuts it.
fn text_of(text: &[u8]) -> String {
    sanitize_bytes(text, MAX_UNSCRUBBED_TEXT)
}

fn protocol(what: &str) -> UpstreamRejection {
    UpstreamRejection::Protocol(what.to_owned())
}

fn protocol_with(what: &str, line: &[u8]) -> UpstreamRejection {
    UpstreamRejection::Protocol(format!("{what}: {}", text_of(line)))
}

fn send(bytes: Vec<u8>) -> UpstreamStep {
    UpstreamStep::Send(Secret::new(bytes))
}
