//! Credentials from LOGIN (RFC 9051 §6.2.3) and AUTHENTICATE (§6.2.2) with
//! PLAIN (RFC 4616) or LOGIN, with or without an initial response (SASL-IR,
//! RFC 4959). Malformed or cancelled exchanges are answered with a tagged BAD
//! (§6.2.2), and the client may try again.

use bytes::BytesMut;

use super::{ImapClient, State, bad};
use crate::proto::imap::command::{Assembler, Command, Token};
use crate::proto::line::{Line, take_line};
use crate::proto::sasl::{Exchange, Progress, SaslError};
use crate::proto::{ClientStep, Credentials};
use crate::secret::Secret;

impl ImapClient {
    pub(super) fn login_command(&mut self, command: &Command) -> ClientStep {
        let tag = command.tag.clone();
        let [user, pass] = command.args() else {
            return ClientStep::Reply(bad(&tag, "LOGIN expects a user name and a password"));
        };
        let (Some(user), Some(pass)) = (user.astring(), pass.astring()) else {
            return ClientStep::Reply(bad(&tag, "LOGIN expects a user name and a password"));
        };
        let (Ok(user), Ok(pass)) = (std::str::from_utf8(user), std::str::from_utf8(pass)) else {
            return ClientStep::Reply(bad(&tag, "User name and password must be UTF-8"));
        };
        let credentials = Credentials {
            username: user.to_owned(),
            authzid: None,
            password: Secret::new(pass.to_owned()),
        };
        self.login(tag, "LOGIN", credentials)
    }

    pub(super) fn authenticate(&mut self, command: &Command) -> ClientStep {
        let tag = command.tag.clone();
        let (mechanism, initial) = match command.args() {
            [m] => (m.atom(), None),
            [m, Token::Atom(initial)] => (m.atom(), Some(initial.expose().as_slice())),
            _ => return ClientStep::Reply(bad(&tag, "AUTHENTICATE expects a mechanism")),
        };
        let mechanism = mechanism
            .map(<[u8]>::to_ascii_uppercase)
            .unwrap_or_default();
        let mechanism = String::from_utf8_lossy(&mechanism);
        match Exchange::start(&mechanism, initial) {
            Some(progress) => self.sasl(tag, progress),
            None => ClientStep::Reply(
                format!("{tag} NO Unsupported authentication mechanism\r\n").into(),
            ),
        }
    }

    fn sasl(&mut self, tag: String, progress: Result<Progress, SaslError>) -> ClientStep {
        match progress {
            Ok(Progress::Challenge { next, challenge }) => {
                self.state = State::ExpectSaslResponse {
                    tag,
                    exchange: next,
                };
                ClientStep::Reply(format!("+ {challenge}\r\n").into())
            }
            Ok(Progress::Done(credentials)) => self.login(tag, "AUTHENTICATE", credentials),
            Err(e) => sasl_failed(&tag, &e),
        }
    }

    pub(super) fn sasl_response(
        &mut self,
        input: &mut BytesMut,
        tag: String,
        exchange: Exchange,
    ) -> ClientStep {
        let line = match take_line(input, self.opts.limits.max_line) {
            Line::Complete(line) => Secret::new(line),
            Line::Incomplete => {
                self.state = State::ExpectSaslResponse { tag, exchange };
                return ClientStep::NeedMore;
            }
            Line::TooLong => return self.close("Line too long"),
        };
        self.state = State::ExpectCommand(Assembler::default());
        self.sasl(tag, exchange.step(line.expose()))
    }

    fn login(&mut self, tag: String, verb: &'static str, credentials: Credentials) -> ClientStep {
        if credentials.username.is_empty() {
            return ClientStep::Reply(bad(&tag, "Empty user name"));
        }
        self.state = State::AwaitLoginResult { tag, verb };
        ClientStep::Login(credentials)
    }
}

fn sasl_failed(tag: &str, error: &SaslError) -> ClientStep {
    let text = match error {
        SaslError::Cancelled => "Authentication cancelled",
        SaslError::TooLong => "SASL response too long",
        SaslError::Base64 => "SASL response is not valid base64",
        SaslError::Malformed => "Malformed SASL response",
        SaslError::EmptyUser => "Empty user name",
    };
    ClientStep::Reply(bad(tag, text))
}
