//! SMTP towards the legacy client *after* AUTH, when mailgate itself is the
//! server (a submission backend that is an HTTP mail API, not an SMTP relay).
//!
//! The machine answers EHLO/HELO again, runs mail transactions (MAIL, RCPT,
//! DATA, RSET) and hands each complete message to its caller as a
//! [`ServerStep::Deliver`]; the caller answers with [`SmtpServer::delivered`]
//! once the backend accepted or refused it, so `250` is only ever said for a
//! message the backend has. The sender is checked at MAIL time
//! ([`ServerStep::CheckSender`]), before the client sends any data.
//!
//! Pipelining (RFC 2920): every whole command in the buffer is answered in
//! order and the replies go out in one write when the machine needs more
//! input or must wait for its caller, so a step may take several commands
//! off the front. BDAT (RFC 3030) is not offered.
//!
//! Every bound is named below; the timeouts per phase live with the caller
//! (`submit::accept::ServerLimits`), which asks [`SmtpServer::in_data`] which
//! one applies.

mod commands;
mod data;
mod envelope;

#[cfg(test)]
mod tests;

use bytes::{Bytes, BytesMut};

use crate::proto::text::sanitize;
use data::{DataReader, Fed};
use envelope::MailParams;

/// Longest command line, CRLF excluded: RFC 5321 §4.5.3.1.4 says 512 octets
/// with CRLF; the SIZE, BODY and SMTPUTF8 parameters (RFC 1870 §3, RFC 6152,
/// RFC 6531 §3.4) may each extend it a little, which the rounding covers.
pub const MAX_COMMAND_LINE: usize = 512;
/// Recipients per message: RFC 5321 §4.5.3.1.8 asks servers to take at least
/// 100; more are refused with `452 4.5.3` and the client sends them in a
/// second transaction.
pub const MAX_RECIPIENTS: usize = 100;
/// Longest reverse- or forward-path, brackets included (RFC 5321 §4.5.3.1.3).
pub const MAX_PATH: usize = 256;
/// Refused commands before the connection is closed, counted from the last
/// accepted message (Postfix's `smtpd_hard_error_limit`): a client that is
/// not speaking SMTP should not get unlimited tries.
pub const MAX_ERRORS: usize = 20;

/// The extensions mailgate offers in EHLO when it is the server, for a
/// backend that can send messages up to `max_size` bytes. AUTH and STARTTLS
/// are added by the pre-AUTH machine where they apply.
pub fn extensions(max_size: usize) -> Vec<String> {
    vec![
        "PIPELINING".into(),
        format!("SIZE {max_size}"),
        "8BITMIME".into(),
        "SMTPUTF8".into(),
        "ENHANCEDSTATUSCODES".into(),
    ]
}

/// One message ready for the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// Reverse-path without brackets; empty for the null sender.
    pub from: String,
    /// Forward-paths without brackets, in the order given.
    pub recipients: Vec<String>,
    /// `BODY=8BITMIME` was given.
    pub eight_bit: bool,
    /// `SMTPUTF8` was given.
    pub smtputf8: bool,
    /// Dot-unstuffed, every line ending in CRLF, without the final `.`.
    pub content: Bytes,
}

/// A refusal from the backend: code and text (enhanced status code first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub text: String,
}

/// What the caller must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum ServerStep {
    /// No whole command (or the rest of the message) yet: read, then step.
    NeedMore,
    /// Write these bytes, then step again.
    Reply(Vec<u8>),
    /// Ask the backend whether the client may send as this address, then
    /// answer with [`SmtpServer::sender_checked`].
    CheckSender(String),
    /// Hand this message to the backend, then answer with
    /// [`SmtpServer::delivered`].
    Deliver(Transaction),
    /// Write these bytes and close.
    Close {
        reply: Vec<u8>,
        reason: &'static str,
    },
}

/// What the machine is waiting for.
#[derive(Debug)]
enum Stage {
    /// A command.
    Command,
    /// The message after `354`.
    Data(DataReader),
    /// The caller's [`SmtpServer::sender_checked`] for this MAIL.
    SenderCheck(String, MailParams),
    /// The caller's [`SmtpServer::delivered`].
    Delivery,
    /// Closed: nothing more to say.
    Closed,
}

/// How one unit of input went.
enum Unit {
    /// Not enough bytes for a whole unit.
    Incomplete,
    /// Handled; any reply is in the output.
    Done,
    /// The caller must act before the machine can go on.
    Yield(ServerStep),
    Close(&'static str, &'static str),
}

/// An open transaction: MAIL accepted, recipients so far.
#[derive(Debug)]
struct Open {
    from: String,
    params: MailParams,
    recipients: Vec<String>,
}

/// The post-AUTH SMTP server machine.
#[derive(Debug)]
pub struct SmtpServer {
    hostname: String,
    max_size: usize,
    stage: Stage,
    open: Option<Open>,
    out: Vec<u8>,
    held: Option<ServerStep>,
    errors: usize,
}

impl SmtpServer {
    /// `max_size`: the largest message content the backend can send.
    pub fn new(hostname: &str, max_size: usize) -> Self {
        Self {
            hostname: sanitize(hostname, 255).replace(' ', ""),
            max_size,
            stage: Stage::Command,
            open: None,
            out: Vec::new(),
            held: None,
            errors: 0,
        }
    }

    /// Whether the message text is being read (the data timeout applies).
    pub fn in_data(&self) -> bool {
        matches!(self.stage, Stage::Data(_))
    }

    /// RFC 5321 §4.5.3.2: a server that gives up on a client says 421.
    pub fn timeout_reply(&self) -> Vec<u8> {
        let waiting = if self.in_data() {
            "the message"
        } else {
            "a command"
        };
        format!(
            "421 4.4.2 {} Timeout waiting for {waiting}, closing connection\r\n",
            self.hostname
        )
        .into_bytes()
    }

    /// Answers the MAIL command the last [`ServerStep::CheckSender`] was for.
    pub fn sender_checked(&mut self, verdict: Result<(), Refusal>) {
        let Stage::SenderCheck(from, params) = std::mem::replace(&mut self.stage, Stage::Command)
        else {
            return;
        };
        match verdict {
            Ok(()) => {
                self.open = Some(Open {
                    from,
                    params,
                    recipients: Vec::new(),
                });
                self.say("250 2.1.0 Sender OK\r\n");
            }
            Err(refusal) => self.refuse(&refusal),
        }
    }

    /// Answers the message the last [`ServerStep::Deliver`] carried.
    pub fn delivered(&mut self, verdict: Result<(), Refusal>) {
        if !matches!(self.stage, Stage::Delivery) {
            return;
        }
        self.stage = Stage::Command;
        match verdict {
            Ok(()) => {
                self.errors = 0;
                self.say("250 2.0.0 Message accepted for delivery\r\n");
            }
            Err(refusal) => self.refuse(&refusal),
        }
    }

    /// Takes every whole command (or message bytes) off the front of
    /// `input` that it can answer without its caller; see the module docs.
    pub fn step(&mut self, input: &mut BytesMut) -> ServerStep {
        if let Some(held) = self.held.take() {
            return held;
        }
        loop {
            let unit = match &mut self.stage {
                Stage::Command => self.command(input),
                Stage::Data(reader) => match reader.feed(input) {
                    Fed::More => Unit::Incomplete,
                    Fed::End => self.end_of_data(),
                },
                Stage::SenderCheck(..) | Stage::Delivery | Stage::Closed => Unit::Incomplete,
            };
            match unit {
                Unit::Done => continue,
                Unit::Incomplete if self.out.is_empty() => return ServerStep::NeedMore,
                Unit::Incomplete => return ServerStep::Reply(std::mem::take(&mut self.out)),
                Unit::Yield(step) if self.out.is_empty() => return step,
                Unit::Yield(step) => {
                    self.held = Some(step);
                    return ServerStep::Reply(std::mem::take(&mut self.out));
                }
                Unit::Close(reply, reason) => {
                    self.say(reply);
                    self.stage = Stage::Closed;
                    let reply = std::mem::take(&mut self.out);
                    return ServerStep::Close { reply, reason };
                }
            }
        }
    }

    fn refuse(&mut self, refusal: &Refusal) {
        let text = sanitize(&refusal.text, MAX_COMMAND_LINE);
        let code = if (400..600).contains(&refusal.code) {
            refusal.code
        } else {
            451
        };
        self.say(&format!("{code} {text}\r\n"));
    }

    /// A refused command; too many of them close the connection.
    fn error(&mut self, line: &str) -> Unit {
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            return Unit::Close(
                "421 4.7.0 Too many errors, closing connection\r\n",
                "too many errors",
            );
        }
        self.say_ok(line)
    }

    fn say_ok(&mut self, line: &str) -> Unit {
        self.say(line);
        Unit::Done
    }

    fn say(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
    }
}
