//! SMTP towards the provider: greeting, EHLO, STARTTLS (RFC 3207) and EHLO
//! again, then `AUTH XOAUTH2 <initial response>` in one step (RFC 4954 §4).
//! Microsoft offers `AUTH LOGIN XOAUTH2` only after STARTTLS, so the EHLO that
//! counts is the last one.
//!
//! Replies are sorted for the driver: `535 5.7.139` means SMTP AUTH is switched
//! off for the tenant or mailbox (a setting, not a bad token), other 5xx are
//! authentication failures, 4xx (`432 4.3.2` thread limit, `421`, `454`) are
//! temporary.

use bytes::BytesMut;

use super::reply::{ReadReply, Reply, ReplyReader};
use crate::proto::credential::Credential;
use crate::proto::text::{MAX_UNSCRUBBED_TEXT, sanitize};
use crate::proto::throttle::throttled;
use crate::proto::{Machine, UpstreamMachine};
use crate::proto::{UpstreamLogin, UpstreamRejection, UpstreamStep, UpstreamSuccess, sasl};
use crate::secret::Secret;

/// Longest EHLO name sent upstream (a domain is at most 255 octets, RFC 5321 §4.5.3.1.2).
const MAX_EHLO_NAME: usize = 255;

/// What the upstream machine waits for.
#[derive(Debug)]
enum State {
    ExpectGreeting,
    /// The EHLO reply; `after_tls` once STARTTLS is done (or not wanted).
    ExpectEhlo {
        after_tls: bool,
    },
    /// `220` to our STARTTLS.
    ExpectStartTls,
    /// TLS is up: send EHLO again without reading (RFC 3207 §4.2).
    SendEhlo,
    /// The verdict on the token; `reason` holds a decoded error challenge.
    ExpectVerdict {
        reason: Option<String>,
    },
    Finished,
}

/// The SMTP upstream-side machine.
#[derive(Debug)]
pub struct SmtpUpstream {
    credential: Credential,
    starttls: bool,
    ehlo_name: String,
    state: State,
    reader: ReplyReader,
}

impl SmtpUpstream {
    /// `ehlo_name` is normally the client's own EHLO name; anything that is not
    /// printable ASCII is dropped from it.
    pub fn new(login: UpstreamLogin, starttls: bool, ehlo_name: String) -> Self {
        let mut name: String = ehlo_name
            .chars()
            .filter(char::is_ascii_graphic)
            .take(MAX_EHLO_NAME)
            .collect();
        if name.is_empty() {
            name = "localhost".to_owned();
        }
        Self {
            credential: Credential::new(login),
            starttls,
            ehlo_name: name,
            state: State::ExpectGreeting,
            reader: ReplyReader::default(),
        }
    }

    fn greeting(&mut self, reply: &Reply) -> UpstreamStep {
        match reply.code {
            220 => self.ehlo(!self.starttls),
            400..=599 => self.reject(UpstreamRejection::Unavailable(text_of(reply))),
            _ => self.reject(unexpected("greeting", reply)),
        }
    }

    fn ehlo(&mut self, after_tls: bool) -> UpstreamStep {
        self.state = State::ExpectEhlo { after_tls };
        send(format!("EHLO {}\r\n", self.ehlo_name).into_bytes())
    }

    fn ehlo_reply(&mut self, reply: &Reply, after_tls: bool) -> UpstreamStep {
        match reply.code {
            250 => {}
            400..=499 => return self.reject(UpstreamRejection::Unavailable(text_of(reply))),
            _ => return self.reject(unexpected("EHLO", reply)),
        }
        let keywords = &reply.lines[1.min(reply.lines.len())..];
        if !after_tls {
            if !keywords.iter().any(|k| k.eq_ignore_ascii_case("STARTTLS")) {
                return self.reject(protocol("upstream does not offer STARTTLS"));
            }
            self.state = State::ExpectStartTls;
            return send(b"STARTTLS\r\n".to_vec());
        }
        if !keywords.iter().any(|k| offers_xoauth2(k)) {
            return self.reject(protocol("upstream does not offer AUTH XOAUTH2"));
        }
        self.auth()
    }

    fn starttls_reply(&mut self, reply: &Reply) -> UpstreamStep {
        match reply.code {
            220 => {
                self.state = State::SendEhlo;
                UpstreamStep::StartTls
            }
            400..=499 => self.reject(UpstreamRejection::Unavailable(text_of(reply))),
            _ => self.reject(unexpected("STARTTLS", reply)),
        }
    }

    fn auth(&mut self) -> UpstreamStep {
        let Some(line) = self.credential.xoauth2_line(b"AUTH XOAUTH2 ") else {
            return self.reject(protocol("token already sent"));
        };
        self.state = State::ExpectVerdict { reason: None };
        UpstreamStep::Send(line)
    }

    /// A `334 <base64 JSON>` after the token is an error challenge: answer
    /// with an empty line and report the final reply with its text.
    fn verdict(&mut self, reply: &Reply, reason: Option<String>) -> UpstreamStep {
        match reply.code {
            235 => {
                self.state = State::Finished;
                let success = UpstreamSuccess {
                    line: reply.last.clone(),
                    capabilities: None,
                };
                UpstreamStep::Authenticated(success)
            }
            334 if reason.is_none() => {
                let challenge = reply.lines.concat();
                let json = sasl::decode_xoauth2_challenge(challenge.as_bytes());
                self.state = State::ExpectVerdict {
                    reason: Some(sanitize(&json, MAX_UNSCRUBBED_TEXT)),
                };
                send(b"\r\n".to_vec())
            }
            500..=599 => self.reject(auth_refusal(reply, reason)),
            400..=499 => self.reject(temporary(reply)),
            _ => self.reject(unexpected("AUTH XOAUTH2", reply)),
        }
    }

    fn reject(&mut self, rejection: UpstreamRejection) -> UpstreamStep {
        self.state = State::Finished;
        self.credential.reject(rejection)
    }
}

impl Machine for SmtpUpstream {
    type Step = UpstreamStep;

    fn step(&mut self, input: &mut BytesMut) -> UpstreamStep {
        match self.state {
            State::Finished => return UpstreamStep::NeedMore,
            State::SendEhlo => return self.ehlo(true),
            _ => {}
        }
        let reply = match self.reader.read(input) {
            ReadReply::Incomplete => return UpstreamStep::NeedMore,
            ReadReply::Malformed(what) => return self.reject(protocol(what)),
            ReadReply::Complete(reply) => reply,
        };
        match std::mem::replace(&mut self.state, State::Finished) {
            State::ExpectGreeting => self.greeting(&reply),
            State::ExpectEhlo { after_tls } => self.ehlo_reply(&reply, after_tls),
            State::ExpectStartTls => self.starttls_reply(&reply),
            State::ExpectVerdict { reason } => self.verdict(&reply, reason),
            State::SendEhlo | State::Finished => UpstreamStep::NeedMore,
        }
    }
}

impl UpstreamMachine for SmtpUpstream {}

/// An EHLO keyword line such as `AUTH LOGIN XOAUTH2` (or the old `AUTH=...`).
fn offers_xoauth2(keyword_line: &str) -> bool {
    let mut words = keyword_line.split([' ', '=']);
    words.next().is_some_and(|k| k.eq_ignore_ascii_case("AUTH"))
        && words.any(|m| m.eq_ignore_ascii_case("XOAUTH2"))
}

fn auth_refusal(reply: &Reply, reason: Option<String>) -> UpstreamRejection {
    let text = text_of(reply);
    if reply.has_enhanced_code("5.7.139") {
        return UpstreamRejection::SmtpAuthDisabled(text);
    }
    match reason {
        Some(reason) if !reason.is_empty() => {
            UpstreamRejection::AuthFailed(format!("{text} ({reason})"))
        }
        _ => UpstreamRejection::AuthFailed(text),
    }
}

fn temporary(reply: &Reply) -> UpstreamRejection {
    let text = text_of(reply);
    match throttled(&text) {
        Some(backoff) => UpstreamRejection::Throttled { text, backoff },
        None => UpstreamRejection::Unavailable(text),
    }
}

/// Uncut: the credential scrubs a rejection, then cuts it.
fn text_of(reply: &Reply) -> String {
    sanitize(&reply.text(), MAX_UNSCRUBBED_TEXT)
}

fn protocol(what: &str) -> UpstreamRejection {
    UpstreamRejection::Protocol(what.to_owned())
}

fn unexpected(to: &str, reply: &Reply) -> UpstreamRejection {
    UpstreamRejection::Protocol(format!("unexpected answer to {to}: {}", text_of(reply)))
}

fn send(bytes: Vec<u8>) -> UpstreamStep {
    UpstreamStep::Send(Secret::new(bytes))
}
