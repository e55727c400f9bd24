//! POP3 towards the legacy client, up to the moment it has presented
//! credentials (the AUTHORIZATION state, RFC 1939 §4).
//!
//! mailgate answers on its own until login: CAPA (RFC 2449), USER/PASS
//! (RFC 1939 §7), AUTH PLAIN and LOGIN (RFC 5034, with and without initial
//! response), STLS (RFC 2595 §4) and QUIT. Failures carry RFC 3206 response
//! codes so that a client can tell "wrong password" (`[AUTH]`) from "try again
//! later" (`[SYS/TEMP]`): archivers disable accounts after a few of the former.

use bytes::BytesMut;

use crate::proto::failures::Failures;
use crate::proto::line::{Line, take_line, verb_and_rest};
use crate::proto::sasl::{Exchange, Progress, SaslError};
use crate::proto::text::{MAX_REPLY_TEXT, sanitize, success_line};
use crate::proto::{ClientMachine, Machine};
use crate::proto::{ClientOptions, ClientStep, Credentials, LoginFailure, UpstreamSuccess};
use crate::secret::Secret;

/// What the client machine waits for.
#[derive(Debug)]
enum State {
    /// A command in the AUTHORIZATION state.
    Command,
    /// PASS, right after a successful USER (RFC 1939 §7).
    Pass { user: String },
    /// The next line of a SASL exchange (RFC 5034 §4).
    Sasl(Exchange),
    /// The driver is logging in; it answers with `login_*`.
    LoginPending,
    /// The driver is starting TLS; it answers with `tls_established`.
    TlsPending,
    /// Logged in or closing: the machine has nothing more to say.
    Finished,
}

/// The POP3 client-side machine.
#[derive(Debug)]
pub struct Pop3Client {
    opts: ClientOptions,
    state: State,
    commands: usize,
    failures: Failures,
}

const TLS_REQUIRED: &str = "-ERR [AUTH] TLS required: use STLS first\r\n";

impl Pop3Client {
    pub fn new(opts: ClientOptions) -> Self {
        Self {
            opts,
            state: State::Command,
            commands: 0,
            failures: Failures::default(),
        }
    }

    fn command(&mut self, line: &[u8], user: Option<String>) -> ClientStep {
        self.commands += 1;
        if self.commands > self.opts.limits.max_commands {
            return self.close(
                "-ERR Too many commands before login\r\n",
                "too many commands",
            );
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
            "AUTH" => self.auth(rest),
            "STLS" => self.stls(),
            "QUIT" => self.close("+OK mailgate POP3 signing off\r\n", "client quit"),
            _ => reply("-ERR Command not valid before login\r\n"),
        }
    }

    fn tls_required(&self) -> bool {
        self.opts.require_tls_for_auth && !self.opts.tls_active
    }

    fn starttls_offered(&self) -> bool {
        self.opts.starttls_available && !self.opts.tls_active
    }

    /// RFC 2449 §5; USER and SASL are hidden while credentials would be refused.
    fn capabilities(&self) -> Vec<u8> {
        let mut out = String::from("+OK Capability list follows\r\n");
        if !self.tls_required() {
            out.push_str("USER\r\nSASL PLAIN LOGIN\r\n");
        }
        out.push_str("RESP-CODES\r\nAUTH-RESP-CODE\r\n");
        if self.starttls_offered() {
            out.push_str("STLS\r\n");
        }
        out.push_str("IMPLEMENTATION mailgate\r\n.\r\n");
        out.into_bytes()
    }

    fn user(&mut self, rest: &[u8]) -> ClientStep {
        match std::str::from_utf8(rest) {
            Ok(user) if !user.trim().is_empty() => {
                self.state = State::Pass {
                    user: user.trim().to_owned(),
                };
                reply("+OK Send PASS\r\n")
            }
            _ => reply("-ERR Syntax: USER name\r\n"),
        }
    }

    /// The password is the whole rest of the line: RFC 1939 §7 lets it hold spaces.
    fn pass(&mut self, user: String, rest: &[u8]) -> ClientStep {
        match String::from_utf8(rest.to_vec()) {
            Ok(password) => self.login(Credentials {
                username: user,
                authzid: None,
                password: Secret::new(password),
            }),
            Err(_) => reply("-ERR [AUTH] Password is not valid UTF-8\r\n"),
        }
    }

    /// RFC 5034 §4; a bare `AUTH` lists the mechanisms (RFC 1734 habit).
    fn auth(&mut self, rest: &[u8]) -> ClientStep {
        let (mechanism, initial) = verb_and_rest(rest);
        if mechanism.is_empty() {
            return reply("+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n");
        }
        match Exchange::start(&mechanism, (!initial.is_empty()).then_some(initial)) {
            Some(progress) => self.sasl(progress),
            None => reply("-ERR Unsupported SASL mechanism\r\n"),
        }
    }

    fn sasl(&mut self, progress: Result<Progress, SaslError>) -> ClientStep {
        match progress {
            Ok(Progress::Challenge { next, challenge }) => {
                self.state = State::Sasl(next);
                ClientStep::Reply(format!("+ {challenge}\r\n").into_bytes())
            }
            Ok(Progress::Done(credentials)) => self.login(credentials),
            Err(e) => sasl_error(e),
        }
    }

    fn stls(&mut self) -> ClientStep {
        if self.starttls_offered() {
            self.state = State::TlsPending;
            ClientStep::StartTls(b"+OK Begin TLS negotiation\r\n".to_vec())
        } else {
            reply("-ERR STLS not available\r\n")
        }
    }

    fn login(&mut self, credentials: Credentials) -> ClientStep {
        self.state = State::LoginPending;
        ClientStep::Login(credentials)
    }

    fn close(&mut self, reply: &str, reason: &'static str) -> ClientStep {
        self.state = State::Finished;
        ClientStep::Close {
            reply: reply.as_bytes().to_vec(),
            reason,
        }
    }
}

impl Machine for Pop3Client {
    type Step = ClientStep;

    /// Parses at most one command or SASL line off the front of `input` and
    /// leaves every later byte there. While a login or TLS upgrade is pending,
    /// and once finished, it answers `NeedMore` and touches nothing.
    /// The line may hold a password, so its copy is zeroed when dropped.
    fn step(&mut self, input: &mut BytesMut) -> ClientStep {
        if matches!(
            self.state,
            State::LoginPending | State::TlsPending | State::Finished
        ) {
            return ClientStep::NeedMore;
        }
        let line = match take_line(input, self.opts.limits.max_line) {
            Line::Incomplete => return ClientStep::NeedMore,
            Line::TooLong => return self.close("-ERR Line too long\r\n", "line too long"),
            Line::Complete(line) => Secret::new(line),
        };
        let line = line.expose();
        match std::mem::replace(&mut self.state, State::Command) {
            State::Sasl(exchange) => self.sasl(exchange.step(line)),
            State::Pass { user } => self.command(line, Some(user)),
            _ => self.command(line, None),
        }
    }

    /// The client connection is now encrypted (after STLS): back to a fresh
    /// AUTHORIZATION state, with STLS no longer offered.
    fn tls_established(&mut self) {
        self.opts.tls_active = true;
        self.state = State::Command;
    }
}

impl ClientMachine for Pop3Client {
    fn greeting(&self) -> Vec<u8> {
        b"+OK mailgate POP3 ready\r\n".to_vec()
    }

    /// Answers a failed login; closes after `max_auth_failures`.
    fn login_failed(&mut self, failure: &LoginFailure) -> ClientStep {
        let step = self
            .failures
            .answer(&self.opts.limits, failure_reply(failure), b"");
        self.state = match step {
            ClientStep::Close { .. } => State::Finished,
            _ => State::Command,
        };
        step
    }

    /// Passes the upstream's `+OK` line on; the relay takes over after it.
    fn login_succeeded(&mut self, up: &UpstreamSuccess) -> Vec<u8> {
        self.state = State::Finished;
        success_line(&up.line, "+OK", "+OK Logged in")
    }

    fn timeout_reply(&self) -> Vec<u8> {
        b"-ERR Timed out waiting for login, closing connection\r\n".to_vec()
    }

    fn shutdown_reply(&self) -> Vec<u8> {
        b"-ERR [SYS/TEMP] mailgate is shutting down\r\n".to_vec()
    }
}

/// DESIGN.md's error table, POP3 column (RFC 3206 §4, §5).
fn failure_reply(failure: &LoginFailure) -> Vec<u8> {
    let text = |t: &str| sanitize(t, MAX_REPLY_TEXT);
    let line = match failure {
        LoginFailure::BadCredentials => {
            format!("-ERR [AUTH] {}", crate::proto::BAD_CREDENTIALS_TEXT)
        }
        LoginFailure::NeedsAuthorisation(how) => format!("-ERR [AUTH] {}", text(how)),
        LoginFailure::Temporary(why) => format!("-ERR [SYS/TEMP] {}", text(why)),
        LoginFailure::UpstreamRejected(why) => {
            format!("-ERR [AUTH] Upstream refused the login: {}", text(why))
        }
    };
    format!("{line}\r\n").into_bytes()
}

/// RFC 5034 §4: a cancelled or undecodable exchange fails with `-ERR`.
fn sasl_error(e: SaslError) -> ClientStep {
    reply(match e {
        SaslError::Cancelled => "-ERR [AUTH] Authentication cancelled\r\n",
        SaslError::TooLong => "-ERR [AUTH] SASL message too long\r\n",
        SaslError::Base64 => "-ERR [AUTH] SASL message is not valid base64\r\n",
        SaslError::Malformed | SaslError::EmptyUser => "-ERR [AUTH] Malformed SASL message\r\n",
    })
}

fn reply(text: &str) -> ClientStep {
    ClientStep::Reply(text.as_bytes().to_vec())
}
