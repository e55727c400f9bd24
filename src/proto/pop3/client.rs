//! POP3 towards the legacy client, up to the moment it has presented
//! credentials (the AUTHORIZATION state, RFC 1939 §4).
//!
//! mailgate answers on its own until login: CAPA (RFC 2449), USER/PASS
//! (RFC 1939 §7), AUTH PLAIN and LOGIN (RFC 5034, with and without initial
//! response), STLS (RFC 2595 §4) and QUIT. Failures carry RFC 3206 response
//! codes so that a client can tell "wrong password" (`[AUTH]`) from "try again
//! later" (`[SYS/TEMP]`): archivers disable accounts after a few of the former.

use bytes::BytesMut;

use crate::proto::line::verb_and_rest;
use crate::proto::line_client::{LineClient, SaslReplies};
use crate::proto::sasl::SaslError;
use crate::proto::text;
use crate::proto::{ClientMachine, Machine};
use crate::proto::{ClientOptions, ClientStep, Credentials, LoginFailure, UpstreamSuccess};
use crate::secret::Secret;

/// What the next client line is expected to be.
#[derive(Debug, Default)]
enum Expect {
    /// A command in the AUTHORIZATION state.
    #[default]
    Command,
    /// PASS, right after a successful USER (RFC 1939 §7).
    Pass { user: String },
}

/// RFC 5034 §4; a bare `AUTH` lists the mechanisms (RFC 1734 habit).
const SASL: SaslReplies = SaslReplies {
    prompt: "+",
    no_mechanism: "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n",
    unknown_mechanism: "-ERR Unsupported SASL mechanism\r\n",
    failed: sasl_error,
};

/// The POP3 client-side machine.
#[derive(Debug)]
pub struct Pop3Client {
    core: LineClient<Expect>,
}

const TLS_REQUIRED: &str = "-ERR [AUTH] TLS required: use STLS first\r\n";

impl Pop3Client {
    pub fn new(opts: ClientOptions) -> Self {
        Self {
            core: LineClient::new(opts),
        }
    }

    fn command(&mut self, line: &[u8], user: Option<String>) -> ClientStep {
        if let Some(close) = self
            .core
            .over_budget("-ERR Too many commands before login\r\n")
        {
            return close;
        }
        let (verb, rest) = verb_and_rest(line);
        match verb.as_str() {
            "CAPA" => ClientStep::Reply(self.capabilities()),
            "USER" | "PASS" | "AUTH" if self.tls_required() => reply(TLS_REQUIRED),
            "USER" => self.user(rest),
            "PASS" => match user {
                Some(user) => self.pass(user, rest),
                None => reply("-ERR USER first\r\n"),
            },
            "AUTH" => self.core.auth(rest, &SASL),
            "STLS" => self.stls(),
            "QUIT" => self
                .core
                .close("+OK mailgate POP3 signing off\r\n", "client quit"),
            _ => reply("-ERR Command not valid before login\r\n"),
        }
    }

    fn tls_required(&self) -> bool {
        self.core.tls_required()
    }

    /// RFC 2449 §5; USER and SASL are hidden while credentials would be refused.
    fn capabilities(&self) -> Vec<u8> {
        let mut out = String::from("+OK Capability list follows\r\n");
        if !self.tls_required() {
            out.push_str("USER\r\nSASL PLAIN LOGIN\r\n");
        }
        out.push_str("RESP-CODES\r\nAUTH-RESP-CODE\r\n");
        if self.core.starttls_offered() {
            out.push_str("STLS\r\n");
        }
        out.push_str("IMPLEMENTATION mailgate\r\n.\r\n");
        out.into_bytes()
    }

    fn user(&mut self, rest: &[u8]) -> ClientStep {
        match std::str::from_utf8(rest) {
            Ok(user) if !user.trim().is_empty() => {
                self.core.expect(Expect::Pass {
                    user: user.trim().to_owned(),
                });
                reply("+OK Send PASS\r\n")
            }
            _ => reply("-ERR Syntax: USER name\r\n"),
        }
    }

    /// The password is the whole rest of the line: RFC 1939 §7 lets it hold spaces.
    fn pass(&mut self, user: String, rest: &[u8]) -> ClientStep {
        match String::from_utf8(rest.to_vec()) {
            Ok(password) => self.core.login(Credentials {
                username: user,
                authzid: None,
                password: Secret::new(password),
            }),
            Err(_) => reply("-ERR [AUTH] Password is not valid UTF-8\r\n"),
        }
    }

    fn stls(&mut self) -> ClientStep {
        if self.core.starttls_offered() {
            self.core.start_tls(b"+OK Begin TLS negotiation\r\n")
        } else {
            reply("-ERR STLS not available\r\n")
        }
    }
}

impl Machine for Pop3Client {
    type Step = ClientStep;

    /// Parses at most one command or SASL line off the front of `input` and
    /// leaves every later byte there. While a login or TLS upgrade is pending,
    /// and once finished, it answers `NeedMore` and touches nothing.
    fn step(&mut self, input: &mut BytesMut) -> ClientStep {
        let (line, expected) = match self.core.next_line(input, "-ERR Line too long\r\n", &SASL) {
            Ok(next) => next,
            Err(step) => return step,
        };
        let line = line.expose();
        match expected {
            Expect::Pass { user } => self.command(line, Some(user)),
            Expect::Command => self.command(line, None),
        }
    }

    /// The client connection is now encrypted (after STLS): back to a fresh
    /// AUTHORIZATION state, with STLS no longer offered.
    fn tls_established(&mut self) {
        self.core.tls_established();
    }
}

impl ClientMachine for Pop3Client {
    fn greeting(&self) -> Vec<u8> {
        b"+OK mailgate POP3 ready\r\n".to_vec()
    }

    /// Answers a failed login; closes after `max_auth_failures`.
    fn login_failed(&mut self, failure: &LoginFailure) -> ClientStep {
        self.core.login_failed(failure_reply(failure))
    }

    /// Passes the upstream's `+OK` line on; the relay takes over after it.
    fn login_succeeded(&mut self, up: &UpstreamSuccess) -> Vec<u8> {
        self.core.login_succeeded(&up.line, "+OK", "+OK Logged in")
    }

    fn timeout_reply(&self) -> Vec<u8> {
        b"-ERR Timed out waiting for login, closing connection\r\n".to_vec()
    }

    fn shutdown_reply(&self) -> Vec<u8> {
        b"-ERR [SYS/TEMP] mailgate is shutting down\r\n".to_vec()
    }
}

/// docs/design.md's error table, POP3 column (RFC 3206 §4, §5).
fn failure_reply(failure: &LoginFailure) -> Vec<u8> {
    text::failure_reply(failure, "-ERR [AUTH]", "-ERR [SYS/TEMP]")
}

/// RFC 5034 §4: a cancelled or undecodable exchange fails with `-ERR`.
fn sasl_error(e: SaslError) -> &'static str {
    match e {
        SaslError::Cancelled => "-ERR [AUTH] Authentication cancelled\r\n",
        SaslError::TooLong => "-ERR [AUTH] SASL message too long\r\n",
        SaslError::Base64 => "-ERR [AUTH] SASL message is not valid base64\r\n",
        SaslError::Malformed | SaslError::EmptyUser => "-ERR [AUTH] Malformed SASL message\r\n",
    }
}

fn reply(text: &str) -> ClientStep {
    ClientStep::Reply(text.as_bytes().to_vec())
}
