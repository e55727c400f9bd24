//! Credentials from LOGIN (RFC 9051 §6.2.3) and AUTHENTICATE (§6.2.2) with
//! PLAIN (RFC 4616) or LOGIN, with or without an initial response (SASL-IR,
//! RFC 4959). Malformed or cancelled exchanges are answered with a tagged BAD
//! (§6.2.2), and the client may try again.

use bytes::BytesMut;

use super::{ImapClient, SaslWait, State, bad};
use crate::proto::imap::command::{Assembler, Command, Token};
use crate::proto::line::{Line, take_line};
use crate::proto::sasl::{self, SaslError};
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
        match (mechanism.as_slice(), initial) {
            (b"PLAIN", None) => self.challenge(tag, SaslWait::Plain, ""),
            (b"PLAIN", Some(initial)) => self.plain(tag, initial),
            (b"LOGIN", None) => {
                self.challenge(tag, SaslWait::LoginUsername, sasl::LOGIN_USERNAME_PROMPT)
            }
            (b"LOGIN", Some(initial)) => self.login_username(tag, initial),
            _ => ClientStep::Reply(
                format!("{tag} NO Unsupported authentication mechanism\r\n").into(),
            ),
        }
    }

    fn challenge(&mut self, tag: String, wait: SaslWait, prompt: &str) -> ClientStep {
        self.state = State::ExpectSaslResponse { tag, wait };
        ClientStep::Reply(format!("+ {prompt}\r\n").into())
    }

    pub(super) fn sasl_response(
        &mut self,
        input: &mut BytesMut,
        tag: String,
        wait: SaslWait,
    ) -> ClientStep {
        let line = match take_line(input, self.opts.limits.max_line) {
            Line::Complete(line) => Secret::new(line),
            Line::Incomplete => {
                self.state = State::ExpectSaslResponse { tag, wait };
                return ClientStep::NeedMore;
            }
            Line::TooLong => return self.close("Line too long"),
        };
        self.state = State::ExpectCommand(Assembler::default());
        match wait {
            SaslWait::Plain => self.plain(tag, line.expose()),
            SaslWait::LoginUsername => self.login_username(tag, line.expose()),
            SaslWait::LoginPassword(username) => match sasl::decode_login_field(line.expose()) {
                Ok(password) => {
                    let password = Secret::new(password);
                    self.login(
                        tag,
                        "AUTHENTICATE",
                        Credentials {
                            username,
                            authzid: None,
                            password,
                        },
                    )
                }
                Err(e) => sasl_failed(&tag, &e),
            },
        }
    }

    fn plain(&mut self, tag: String, response: &[u8]) -> ClientStep {
        let message = match sasl::decode_response(response) {
            Ok(message) => Secret::new(message),
            Err(e) => return sasl_failed(&tag, &e),
        };
        match sasl::decode_plain(message.expose()) {
            Ok(credentials) => self.login(tag, "AUTHENTICATE", credentials),
            Err(e) => sasl_failed(&tag, &e),
        }
    }

    fn login_username(&mut self, tag: String, response: &[u8]) -> ClientStep {
        match sasl::decode_login_field(response) {
            Ok(username) if username.is_empty() => ClientStep::Reply(bad(&tag, "Empty user name")),
            Ok(username) => {
                let wait = SaslWait::LoginPassword(username);
                self.challenge(tag, wait, sasl::LOGIN_PASSWORD_PROMPT)
            }
            Err(e) => sasl_failed(&tag, &e),
        }
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
    };
    ClientStep::Reply(bad(tag, text))
}
