//! The legacy client's side of IMAP, from the greeting until it has given
//! credentials (RFC 9051 §6.1–§6.2, not-authenticated state).
//!
//! mailgate answers as a server of its own until the login succeeds: its
//! capabilities, its STARTTLS, its LOGIN and AUTHENTICATE (PLAIN, RFC 4616;
//! LOGIN; SASL-IR, RFC 4959). Everything else a client may send before login is
//! refused with BAD, because nothing can be relayed before there is an upstream.
//!
//! Once credentials are handed out ([`ClientStep::Login`]) the machine stops
//! reading: pipelined bytes stay in the caller's buffer, to be read again after
//! [`ImapClient::login_failed`] or forwarded upstream after
//! [`ImapClient::login_succeeded`].
//!
//! A line longer than `max_line` closes the connection instead of being skipped:
//! the part that was not read may end in a literal announcement, and guessing
//! wrong would run literal data (possibly a password) as commands.
//! While `require_tls_for_auth` holds and TLS is not active, LOGINDISABLED is
//! advertised and credentials are refused with `[PRIVACYREQUIRED]`
//! (RFC 9051 §6.2.3, §7.1); a LOGIN announcing a synchronising literal is
//! refused before the client is invited to send its password in the clear.

use bytes::BytesMut;

use crate::proto::{ClientMachine, Machine};

use super::command::{Assembler, Assembly, Command};
use super::text::{capability_list, sanitise};
use crate::proto::failures::Failures;
use crate::proto::sasl::Exchange;
use crate::proto::{ClientOptions, ClientStep, LoginFailure, UpstreamSuccess};

/// The client-side IMAP machine. See the module documentation.
#[derive(Debug)]
pub struct ImapClient {
    opts: ClientOptions,
    state: State,
    commands: usize,
    failures: Failures,
}

#[derive(Debug)]
enum State {
    ExpectCommand(Assembler),
    /// AUTHENTICATE is waiting for the client's answer to a `+` challenge.
    ExpectSaslResponse {
        tag: String,
        exchange: Exchange,
    },
    /// Credentials are with the driver; nothing is read until it reports back.
    AwaitLoginResult {
        tag: String,
        verb: &'static str,
    },
    /// Logged in or closed.
    Done,
}

impl ImapClient {
    pub fn new(opts: ClientOptions) -> Self {
        Self {
            opts,
            state: State::ExpectCommand(Assembler::default()),
            commands: 0,
            failures: Failures::default(),
        }
    }

    /// The tag of the login in flight, moving on to `next`; `*` (and no change)
    /// if the driver reports a login the machine did not hand out.
    fn take_login_tag(&mut self, next: State) -> String {
        match std::mem::replace(&mut self.state, next) {
            State::AwaitLoginResult { tag, .. } => tag,
            other => {
                self.state = other;
                "*".to_owned()
            }
        }
    }

    fn login_disabled(&self) -> bool {
        self.opts.require_tls_for_auth && !self.opts.tls_active
    }

    fn capabilities(&self) -> String {
        let mut caps = String::from("IMAP4rev1 SASL-IR LITERAL+ ID");
        if self.opts.starttls_available && !self.opts.tls_active {
            caps.push_str(" STARTTLS");
        }
        caps.push_str(if self.login_disabled() {
            " LOGINDISABLED"
        } else {
            " AUTH=PLAIN AUTH=LOGIN"
        });
        caps
    }

    fn on_assembly(&mut self, outcome: Assembly) -> ClientStep {
        match outcome {
            Assembly::NeedMore => ClientStep::NeedMore,
            Assembly::SendContinuation => {
                ClientStep::Reply(b"+ Ready for literal data\r\n".to_vec())
            }
            Assembly::Fatal(text) => self.close(text),
            Assembly::Bad { tag, text } => {
                self.counted(|_| ClientStep::Reply(bad(tag.as_deref().unwrap_or("*"), text)))
            }
            Assembly::Complete(command) => self.counted(|me| me.dispatch(command)),
        }
    }

    /// Counts one command against `max_commands` before running it.
    fn counted(&mut self, run: impl FnOnce(&mut Self) -> ClientStep) -> ClientStep {
        self.commands = self.commands.saturating_add(1);
        if self.commands > self.opts.limits.max_commands {
            return self.close("Too many commands before login");
        }
        run(self)
    }

    fn close(&mut self, text: &'static str) -> ClientStep {
        self.state = State::Done;
        ClientStep::Close {
            reply: format!("* BYE {text}\r\n").into(),
            reason: text,
        }
    }

    fn dispatch(&mut self, command: Command) -> ClientStep {
        let tag = command.tag.as_str();
        let Some(verb) = command.verb() else {
            return ClientStep::Reply(bad(tag, "Missing command"));
        };
        let no_args = command.args().is_empty();
        match verb.as_str() {
            "CAPABILITY" | "NOOP" | "LOGOUT" | "STARTTLS" if !no_args => {
                ClientStep::Reply(bad(tag, "Unexpected arguments"))
            }
            "CAPABILITY" => ClientStep::Reply(
                format!(
                    "* CAPABILITY {}\r\n{tag} OK CAPABILITY completed\r\n",
                    self.capabilities()
                )
                .into(),
            ),
            "NOOP" => ClientStep::Reply(format!("{tag} OK NOOP completed\r\n").into()),
            "ID" => ClientStep::Reply(
                format!("* ID (\"name\" \"mailgate\")\r\n{tag} OK ID completed\r\n").into(),
            ),
            "LOGOUT" => {
                self.state = State::Done;
                ClientStep::Close {
                    reply: format!("* BYE mailgate logging out\r\n{tag} OK LOGOUT completed\r\n")
                        .into(),
                    reason: "client logged out",
                }
            }
            "STARTTLS" => self.starttls(tag),
            "LOGIN" | "AUTHENTICATE" if self.login_disabled() => {
                ClientStep::Reply(privacy_required(tag))
            }
            "LOGIN" => self.login_command(&command),
            "AUTHENTICATE" => self.authenticate(&command),
            _ => ClientStep::Reply(bad(tag, "Command not allowed before login")),
        }
    }

    fn starttls(&mut self, tag: &str) -> ClientStep {
        if self.opts.tls_active {
            return ClientStep::Reply(bad(tag, "TLS is already active"));
        }
        if !self.opts.starttls_available {
            return ClientStep::Reply(bad(tag, "STARTTLS is not available"));
        }
        ClientStep::StartTls(format!("{tag} OK Begin TLS negotiation now\r\n").into())
    }
}

impl Machine for ImapClient {
    type Step = ClientStep;

    /// Reads at most one command (or one SASL response) off the front of `input`.
    fn step(&mut self, input: &mut BytesMut) -> ClientStep {
        match std::mem::replace(&mut self.state, State::Done) {
            State::ExpectCommand(mut assembler) => {
                let outcome = assembler.step(input, &self.opts.limits);
                if outcome == Assembly::SendContinuation
                    && self.login_disabled()
                    && let Some(tag) = assembler.abandon("LOGIN")
                {
                    self.state = State::ExpectCommand(assembler);
                    return self.counted(|_| ClientStep::Reply(privacy_required(&tag)));
                }
                self.state = State::ExpectCommand(assembler);
                self.on_assembly(outcome)
            }
            State::ExpectSaslResponse { tag, exchange } => self.sasl_response(input, tag, exchange),
            waiting @ (State::AwaitLoginResult { .. } | State::Done) => {
                self.state = waiting;
                ClientStep::NeedMore
            }
        }
    }

    /// TLS is now active on the client connection (after [`ClientStep::StartTls`]).
    fn tls_established(&mut self) {
        self.opts.tls_active = true;
    }
}

impl ClientMachine for ImapClient {
    /// The untagged greeting, with mailgate's capabilities (RFC 9051 §7.1.1).
    fn greeting(&self) -> Vec<u8> {
        format!(
            "* OK [CAPABILITY {}] mailgate IMAP4rev1 ready\r\n",
            self.capabilities()
        )
        .into()
    }

    /// The login failed: the tagged NO, or the NO and a BYE once the client has
    /// used up `max_auth_failures` (temporary failures count too, so that a
    /// client cannot retry an unavailable upstream without end).
    fn login_failed(&mut self, failure: &LoginFailure) -> ClientStep {
        let tag = self.take_login_tag(State::ExpectCommand(Assembler::default()));
        let reply = format!("{tag} NO {}\r\n", failure_text(failure));
        let step = self.failures.answer(
            &self.opts.limits,
            reply.into(),
            b"* BYE Too many failed logins\r\n",
        );
        if let ClientStep::Close { .. } = step {
            self.state = State::Done;
        }
        step
    }

    /// The login succeeded upstream: the tagged OK for the client, carrying the
    /// upstream's capabilities when known (RFC 9051 §7.1, CAPABILITY code).
    fn login_succeeded(&mut self, up: &UpstreamSuccess) -> Vec<u8> {
        let verb = match &self.state {
            State::AwaitLoginResult { verb, .. } => *verb,
            _ => "LOGIN",
        };
        let tag = self.take_login_tag(State::Done);
        let code = up
            .capabilities
            .as_deref()
            .and_then(|caps| capability_list(caps.as_bytes()))
            .map(|caps| format!("[CAPABILITY {caps}] "))
            .unwrap_or_default();
        format!("{tag} OK {code}{verb} completed\r\n").into()
    }

    /// Sent when the client took too long to log in (RFC 9051 §5.4 autologout).
    fn timeout_reply(&self) -> Vec<u8> {
        b"* BYE Autologout; idle for too long\r\n".to_vec()
    }

    fn shutdown_reply(&self) -> Vec<u8> {
        b"* BYE mailgate is shutting down\r\n".to_vec()
    }
}

/// RFC 9051 §6.2.3: LOGIN is refused while LOGINDISABLED is advertised.
fn privacy_required(tag: &str) -> Vec<u8> {
    format!("{tag} NO [PRIVACYREQUIRED] Log in only after STARTTLS\r\n").into()
}

fn bad(tag: &str, text: &str) -> Vec<u8> {
    format!("{tag} BAD {text}\r\n").into()
}

/// docs/design.md's error table: never say "wrong password" when it isn't.
fn failure_text(failure: &LoginFailure) -> String {
    match failure {
        LoginFailure::BadCredentials => {
            format!(
                "[AUTHENTICATIONFAILED] {}",
                crate::proto::BAD_CREDENTIALS_TEXT
            )
        }
        LoginFailure::NeedsAuthorisation(hint) => format!(
            "[AUTHENTICATIONFAILED] {}",
            sanitise(hint.as_bytes(), "The account must be authorised again")
        ),
        LoginFailure::Temporary(text) => {
            format!(
                "[UNAVAILABLE] {}",
                sanitise(text.as_bytes(), "Temporarily unavailable")
            )
        }
        LoginFailure::UpstreamRejected(text) => format!(
            "[AUTHENTICATIONFAILED] Upstream refused the login: {}",
            sanitise(text.as_bytes(), "no reason given")
        ),
    }
}

#[path = "client_auth.rs"]
mod auth;

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
