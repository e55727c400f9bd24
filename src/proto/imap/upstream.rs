//! mailgate's login to the provider's IMAP server with SASL XOAUTH2.
//!
//! Greeting (RFC 9051 §7.1.1), optional STARTTLS (§6.2.1), then
//! `AUTHENTICATE XOAUTH2` (§6.2.2) with the initial response on the command line
//! (SASL-IR, RFC 4959) when the server allows it, else as the answer to its `+`.
//!
//! Capability knowledge comes only from the greeting's `[CAPABILITY ...]` code,
//! which decides whether XOAUTH2 is offered and SASL-IR may be used. Without
//! one (Microsoft's greeting has none) SASL-IR is assumed, as Microsoft
//! supports it. After STARTTLS the pre-TLS list is void (§6.2.1 has clients
//! discard it; servers often list no AUTH= mechanism before TLS), so the
//! upgraded connection is treated like one whose greeting had no list. Nor
//! is any pre-TLS list passed on to the client after login: an attacker on
//! the path could have written it; only one received over TLS is.
//!
//! After the STARTTLS OK, bytes still buffered were sent in plaintext and are
//! dropped (RFC 9051 §11.1 command injection), and no second greeting comes.
//! A provider answering a bad token with a `+ <base64 JSON>` challenge gets an
//! empty line so it sends its final NO; the JSON becomes part of the reason.
//! Every line is bounded by [`MAX_UPSTREAM_LINE`]; the number of lines is bounded
//! by the driver's login timeout. Responses are read line by line: nothing a
//! provider sends before the tagged answer to AUTHENTICATE carries a literal.
//! The token never appears in a rejection.

use bytes::BytesMut;

use super::response::{Response, capabilities_in_code, code, parse};
use super::text::{capability_list, has_capability, sanitise_upto};
use crate::proto::credential::Credential;
use crate::proto::line::{Line, take_line};
use crate::proto::sasl;
use crate::proto::text::MAX_UNSCRUBBED_TEXT;
use crate::proto::throttle::suggested_backoff;
use crate::proto::{
    MAX_UPSTREAM_LINE, UpstreamLogin, UpstreamRejection, UpstreamStep, UpstreamSuccess,
};
use crate::proto::{Machine, UpstreamMachine};
use crate::secret::Secret;

/// The upstream-side IMAP machine. See the module documentation.
#[derive(Debug)]
pub struct ImapUpstream {
    credential: Credential,
    starttls: bool,
    state: State,
    next_tag: u32,
    capabilities: Option<String>,
    challenge: Option<String>,
}

#[derive(Debug)]
enum State {
    ExpectGreeting,
    ExpectStartTlsOk {
        tag: String,
    },
    /// TLS is up; the next step sends AUTHENTICATE without reading anything.
    SendAuthenticate,
    /// Two-step form: waiting for the `+` that asks for the initial response.
    ExpectContinuation {
        tag: String,
    },
    ExpectAuthResult {
        tag: String,
    },
    Done,
}

impl ImapUpstream {
    pub fn new(login: UpstreamLogin, starttls: bool) -> Self {
        Self {
            credential: Credential::new(login),
            starttls,
            state: State::ExpectGreeting,
            next_tag: 1,
            capabilities: None,
            challenge: None,
        }
    }

    /// Ends the login: every rejection goes through the credential, which
    /// keeps the token out of its text.
    fn reject(&mut self, rejection: UpstreamRejection) -> UpstreamStep {
        self.state = State::Done;
        self.credential.reject(rejection)
    }

    fn on_response(
        &mut self,
        state: State,
        line: &[u8],
        response: Response<'_>,
        input: &mut BytesMut,
    ) -> Option<UpstreamStep> {
        match state {
            State::ExpectGreeting => Some(self.greeting(response)),
            State::ExpectStartTlsOk { tag } => match response {
                Response::Tagged {
                    tag: t,
                    status,
                    rest,
                } if t == tag.as_bytes() => Some(self.starttls_answer(&status, rest, input)),
                other => self.untagged(other, State::ExpectStartTlsOk { tag }),
            },
            State::ExpectContinuation { tag } => match response {
                Response::Continuation(_) => {
                    self.state = State::ExpectAuthResult { tag };
                    Some(self.send_token(b""))
                }
                other => {
                    self.auth_result(tag, line, other, |tag| State::ExpectContinuation { tag })
                }
            },
            State::ExpectAuthResult { tag } => match response {
                Response::Continuation(data) => Some(self.error_challenge(tag, data)),
                other => self.auth_result(tag, line, other, |tag| State::ExpectAuthResult { tag }),
            },
            State::SendAuthenticate | State::Done => None,
        }
    }

    fn greeting(&mut self, response: Response<'_>) -> UpstreamStep {
        let rest = match response {
            Response::Untagged { kind, rest } if kind == "OK" => rest,
            Response::Untagged { kind, rest } if kind == "BYE" => {
                return self.reject(temporary(rest));
            }
            Response::Untagged { kind, .. } if kind == "PREAUTH" => {
                let text = "upstream greeted with PREAUTH; cannot log in with XOAUTH2";
                return self.reject(UpstreamRejection::Protocol(text.into()));
            }
            _ => {
                let text = "upstream did not send an IMAP greeting";
                return self.reject(UpstreamRejection::Protocol(text.into()));
            }
        };
        let capabilities = capabilities_in_code(rest);
        let caps = capabilities.as_deref();
        if !self.starttls && caps.is_some_and(|c| !has_capability(c, "AUTH=XOAUTH2")) {
            let text = "upstream does not offer AUTH=XOAUTH2";
            return self.reject(UpstreamRejection::Protocol(text.into()));
        }
        if !self.starttls {
            return self.authenticate(caps.is_none_or(|c| has_capability(c, "SASL-IR")));
        }
        let tag = self.tag();
        let command = format!("{tag} STARTTLS\r\n").into_bytes();
        self.state = State::ExpectStartTlsOk { tag };
        UpstreamStep::Send(Secret::new(command))
    }

    /// The tagged answer to STARTTLS. On OK, plaintext still buffered is
    /// dropped: it arrived before TLS and may be injected; so is an untagged
    /// CAPABILITY seen before it, which must never reach the client.
    fn starttls_answer(&mut self, status: &str, rest: &[u8], input: &mut BytesMut) -> UpstreamStep {
        if status != "OK" {
            let why = uncut(rest, "no reason given");
            let text = format!("upstream refused STARTTLS: {why}");
            return self.reject(UpstreamRejection::Protocol(text));
        }
        input.clear();
        self.capabilities = None;
        self.state = State::SendAuthenticate;
        UpstreamStep::StartTls
    }

    fn authenticate(&mut self, sasl_ir: bool) -> UpstreamStep {
        let tag = self.tag();
        let command = format!("{tag} AUTHENTICATE XOAUTH2");
        if sasl_ir {
            let mut prefix = command.into_bytes();
            prefix.push(b' ');
            self.state = State::ExpectAuthResult { tag };
            self.send_token(&prefix)
        } else {
            self.state = State::ExpectContinuation { tag };
            UpstreamStep::Send(Secret::new(format!("{command}\r\n").into_bytes()))
        }
    }

    /// `prefix` and the XOAUTH2 initial response; the token is sent once.
    fn send_token(&mut self, prefix: &[u8]) -> UpstreamStep {
        match self.credential.xoauth2_line(prefix) {
            Some(line) => UpstreamStep::Send(line),
            None => self.reject(UpstreamRejection::Protocol("token already sent".into())),
        }
    }

    fn error_challenge(&mut self, tag: String, data: &[u8]) -> UpstreamStep {
        if self.challenge.is_some() {
            let text = "upstream sent a second XOAUTH2 challenge";
            return self.reject(UpstreamRejection::Protocol(text.into()));
        }
        let json = sasl::decode_xoauth2_challenge(data);
        self.challenge = Some(uncut(json.as_bytes(), "empty challenge"));
        self.state = State::ExpectAuthResult { tag };
        UpstreamStep::Send(Secret::new(b"\r\n".to_vec()))
    }

    /// The answer to AUTHENTICATE, or untagged data before it (then the
    /// machine keeps waiting in `wait(tag)`).
    fn auth_result(
        &mut self,
        tag: String,
        line: &[u8],
        response: Response<'_>,
        wait: fn(String) -> State,
    ) -> Option<UpstreamStep> {
        let (status, rest) = match response {
            Response::Tagged {
                tag: t,
                status,
                rest,
            } if t == tag.as_bytes() => (status, rest),
            Response::Tagged { .. } | Response::Continuation(_) => {
                let text = "upstream sent an unexpected response during login";
                return Some(self.reject(UpstreamRejection::Protocol(text.into())));
            }
            other => return self.untagged(other, wait(tag)),
        };
        let rejection = match status.as_str() {
            "OK" => {
                let capabilities = capabilities_in_code(rest).or_else(|| self.capabilities.take());
                return Some(UpstreamStep::Authenticated(UpstreamSuccess {
                    line: line.to_vec(),
                    capabilities,
                }));
            }
            "NO" if code(rest).is_some_and(|(name, _)| name == "UNAVAILABLE") => temporary(rest),
            "NO" if is_throttled(rest) => temporary(rest),
            "NO" | "BAD" => UpstreamRejection::AuthFailed(self.with_challenge(rest)),
            _ => {
                let text = "upstream answered AUTHENTICATE with an unknown status";
                UpstreamRejection::Protocol(text.into())
            }
        };
        Some(self.reject(rejection))
    }

    /// Untagged data while waiting for a tagged answer: BYE ends the login,
    /// CAPABILITY is remembered, anything else is skipped.
    fn untagged(&mut self, response: Response<'_>, wait: State) -> Option<UpstreamStep> {
        match response {
            Response::Untagged { kind, rest } if kind == "BYE" => {
                Some(self.reject(temporary(rest)))
            }
            Response::Untagged { kind, rest } => {
                if kind == "CAPABILITY" {
                    self.capabilities = capability_list(rest);
                }
                self.state = wait;
                None
            }
            _ => {
                let text = "upstream sent an unexpected response during login";
                Some(self.reject(UpstreamRejection::Protocol(text.into())))
            }
        }
    }

    fn with_challenge(&self, rest: &[u8]) -> String {
        let text = uncut(rest, "authentication failed");
        match &self.challenge {
            Some(challenge) => format!("{text} ({challenge})"),
            None => text,
        }
    }

    fn tag(&mut self) -> String {
        let tag = format!("mg{}", self.next_tag);
        self.next_tag = self.next_tag.saturating_add(1);
        tag
    }
}

impl Machine for ImapUpstream {
    type Step = UpstreamStep;

    /// Reads upstream lines off the front of `input` until there is something
    /// to do; each pass consumes one line, so this ends with the buffer.
    fn step(&mut self, input: &mut BytesMut) -> UpstreamStep {
        loop {
            let state = std::mem::replace(&mut self.state, State::Done);
            let line = match state {
                State::SendAuthenticate => return self.authenticate(true),
                State::Done => return UpstreamStep::NeedMore,
                _ => match take_line(input, MAX_UPSTREAM_LINE) {
                    Line::Complete(line) => line,
                    Line::Incomplete => {
                        self.state = state;
                        return UpstreamStep::NeedMore;
                    }
                    Line::TooLong => {
                        return self.reject(UpstreamRejection::Protocol(format!(
                            "upstream sent a line longer than {MAX_UPSTREAM_LINE} bytes"
                        )));
                    }
                },
            };
            let Some(response) = parse(&line) else {
                return self.reject(UpstreamRejection::Protocol(
                    "upstream sent an empty line".into(),
                ));
            };
            if let Some(step) = self.on_response(state, &line, response, input) {
                return step;
            }
        }
    }
}

impl UpstreamMachine for ImapUpstream {}

/// A NO or BYE that means "later": throttling (with its back-off) or unavailable.
fn temporary(rest: &[u8]) -> UpstreamRejection {
    let text = uncut(rest, "upstream is unavailable");
    if is_throttled(rest) {
        let backoff = suggested_backoff(&text);
        return UpstreamRejection::Throttled { text, backoff };
    }
    UpstreamRejection::Unavailable(text)
}

/// Rejection text, uncut: the credential scrubs it, then cuts it.
fn uncut(raw: &[u8], fallback: &str) -> String {
    sanitise_upto(raw, fallback, MAX_UNSCRUBBED_TEXT)
}

fn is_throttled(rest: &[u8]) -> bool {
    let text = uncut(rest, "").to_ascii_lowercase();
    text.contains("request is throttled")
}

#[cfg(test)]
#[path = "upstream_tests.rs"]
mod tests;
