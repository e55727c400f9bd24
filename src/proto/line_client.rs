//! What the two line-based client machines (POP3 and SMTP) share: the stage
//! between lines (reading, or waiting for the driver to log in or start TLS,
//! or finished), the bounds on lines and commands, the failed-login count and
//! the answers to the driver's reports. Each protocol keeps only its own
//! commands and what it expects next (`S`).

use bytes::BytesMut;

use super::failures::Failures;
use super::line::{Line, take_line, verb_and_rest};
use super::sasl::{Exchange, Progress, SaslError};
use super::text::success_line;
use super::{ClientOptions, ClientStep, Credentials};
use crate::secret::Secret;

/// A protocol's words in a SASL exchange (POP3: RFC 5034 §4, SMTP: RFC 4954 §4).
pub(crate) struct SaslReplies {
    /// Starts a challenge line (`+`, `334`).
    pub prompt: &'static str,
    /// The answer to `AUTH` without a mechanism.
    pub no_mechanism: &'static str,
    pub unknown_mechanism: &'static str,
    /// The answer to a cancelled or undecodable exchange.
    pub failed: fn(SaslError) -> &'static str,
}

/// Where the machine stands between lines.
#[derive(Debug)]
enum Stage<S> {
    /// Reading; `S` is what the protocol expects the next line to be.
    Reading(S),
    /// The next line continues a SASL exchange.
    Sasl(Exchange),
    /// The driver is logging in; it answers with `login_*`.
    LoginPending,
    /// The driver is starting TLS; it answers with `tls_established`.
    TlsPending,
    /// Logged in or closing: the machine has nothing more to say.
    Finished,
}

/// The shared half of a POP3 or SMTP client machine.
#[derive(Debug)]
pub(crate) struct LineClient<S> {
    pub(crate) opts: ClientOptions,
    stage: Stage<S>,
    commands: usize,
    failures: Failures,
}

impl<S: Default> LineClient<S> {
    pub(crate) fn new(opts: ClientOptions) -> Self {
        Self {
            opts,
            stage: Stage::Reading(S::default()),
            commands: 0,
            failures: Failures::default(),
        }
    }

    /// Takes the next line off `input` (its copy is zeroed when dropped, it
    /// may hold a password) with what it was expected to be, or returns the
    /// step that ends this call: `NeedMore` while incomplete or while the
    /// driver is busy (nothing is touched then), a close on a line longer
    /// than `max_line` (answered with `too_long`), or the answer to a line of
    /// a SASL exchange.
    pub(crate) fn next_line(
        &mut self,
        input: &mut BytesMut,
        too_long: &str,
        words: &SaslReplies,
    ) -> Result<(Secret<Vec<u8>>, S), ClientStep> {
        if !matches!(self.stage, Stage::Reading(_) | Stage::Sasl(_)) {
            return Err(ClientStep::NeedMore);
        }
        let line = match take_line(input, self.opts.limits.max_line) {
            Line::Incomplete => return Err(ClientStep::NeedMore),
            Line::TooLong => return Err(self.close(too_long, "line too long")),
            Line::Complete(line) => Secret::new(line),
        };
        match std::mem::replace(&mut self.stage, Stage::Reading(S::default())) {
            Stage::Reading(expected) => Ok((line, expected)),
            Stage::Sasl(exchange) => Err(self.sasl(exchange.step(line.expose()), words)),
            _ => Err(ClientStep::NeedMore),
        }
    }

    /// Counts one command; once more than `max_commands` came before login,
    /// the close (answered with `too_many`) to return instead of running it.
    pub(crate) fn over_budget(&mut self, too_many: &str) -> Option<ClientStep> {
        self.commands += 1;
        (self.commands > self.opts.limits.max_commands)
            .then(|| self.close(too_many, "too many commands"))
    }

    /// What the next line is expected to be.
    pub(crate) fn expect(&mut self, next: S) {
        self.stage = Stage::Reading(next);
    }

    pub(crate) fn tls_required(&self) -> bool {
        self.opts.require_tls_for_auth && !self.opts.tls_active
    }

    pub(crate) fn starttls_offered(&self) -> bool {
        self.opts.starttls_available && !self.opts.tls_active
    }

    pub(crate) fn login(&mut self, credentials: Credentials) -> ClientStep {
        self.stage = Stage::LoginPending;
        ClientStep::Login(credentials)
    }

    pub(crate) fn start_tls(&mut self, reply: &[u8]) -> ClientStep {
        self.stage = Stage::TlsPending;
        ClientStep::StartTls(reply.to_vec())
    }

    pub(crate) fn close(&mut self, reply: &str, reason: &'static str) -> ClientStep {
        self.stage = Stage::Finished;
        ClientStep::Close {
            reply: reply.as_bytes().to_vec(),
            reason,
        }
    }

    /// TLS is up: a fresh start, with STARTTLS no longer offered.
    pub(crate) fn tls_established(&mut self) {
        self.opts.tls_active = true;
        self.stage = Stage::Reading(S::default());
    }

    /// Answers a failed login with `reply`; closes after `max_auth_failures`.
    pub(crate) fn login_failed(&mut self, reply: Vec<u8>) -> ClientStep {
        let step = self.failures.answer(&self.opts.limits, reply, b"");
        self.stage = match step {
            ClientStep::Close { .. } => Stage::Finished,
            _ => Stage::Reading(S::default()),
        };
        step
    }

    /// `AUTH mechanism [initial-response]`: starts a SASL exchange.
    pub(crate) fn auth(&mut self, rest: &[u8], words: &SaslReplies) -> ClientStep {
        let (mechanism, initial) = verb_and_rest(rest);
        if mechanism.is_empty() {
            return reply(words.no_mechanism);
        }
        match Exchange::start(&mechanism, (!initial.is_empty()).then_some(initial)) {
            Some(progress) => self.sasl(progress, words),
            None => reply(words.unknown_mechanism),
        }
    }

    /// One step of a SASL exchange: the next challenge, the login, or the
    /// failure's answer.
    fn sasl(&mut self, progress: Result<Progress, SaslError>, words: &SaslReplies) -> ClientStep {
        match progress {
            Ok(Progress::Challenge { next, challenge }) => {
                self.stage = Stage::Sasl(next);
                ClientStep::Reply(format!("{} {challenge}\r\n", words.prompt).into_bytes())
            }
            Ok(Progress::Done(credentials)) => self.login(credentials),
            Err(e) => reply((words.failed)(e)),
        }
    }

    /// Passes the upstream's success line on (see [`success_line`]); the
    /// relay takes over after it.
    pub(crate) fn login_succeeded(&mut self, line: &[u8], prefix: &str, fallback: &str) -> Vec<u8> {
        self.stage = Stage::Finished;
        success_line(line, prefix, fallback)
    }
}

fn reply(text: &str) -> ClientStep {
    ClientStep::Reply(text.as_bytes().to_vec())
}
