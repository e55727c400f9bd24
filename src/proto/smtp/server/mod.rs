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

mod data;
mod envelope;

#[cfg(test)]
mod tests;

use bytes::{Bytes, BytesMut};

use crate::proto::line::{Line, take_line, verb_and_rest};
use crate::proto::text::sanitize;
use data::{DataReader, Fed};
use envelope::{MailParams, PathError, parse_mail, parse_rcpt};

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

    fn command(&mut self, input: &mut BytesMut) -> Unit {
        let line = match take_line(input, MAX_COMMAND_LINE) {
            Line::Incomplete => return Unit::Incomplete,
            Line::TooLong => {
                return Unit::Close(
                    "500 5.5.2 Line too long, closing connection\r\n",
                    "command line too long",
                );
            }
            Line::Complete(line) => line,
        };
        let (verb, rest) = verb_and_rest(&line);
        match verb.as_str() {
            "EHLO" | "HELO" => self.hello(rest, verb == "EHLO"),
            "MAIL" => self.mail(rest),
            "RCPT" => self.rcpt(rest),
            "DATA" => self.data(rest),
            "RSET" => self.no_argument(rest, "RSET", true),
            "NOOP" => {
                self.say("250 2.0.0 OK\r\n");
                Unit::Done
            }
            "QUIT" => Unit::Close("221 2.0.0 Bye\r\n", "client quit"),
            "HELP" => self.say_ok("214 2.0.0 See RFC 5321\r\n"),
            "VRFY" | "EXPN" => {
                self.say_ok("252 2.5.0 Cannot verify the user, but will try delivery\r\n")
            }
            "AUTH" => self.error("503 5.5.1 Already authenticated\r\n"),
            "STARTTLS" => self.error("503 5.5.1 STARTTLS is not possible after AUTH\r\n"),
            "BDAT" => self.error("502 5.5.1 BDAT not implemented\r\n"),
            _ => self.error("500 5.5.2 Command not recognized\r\n"),
        }
    }

    /// RFC 5321 §4.1.4: EHLO or HELO again resets the transaction.
    fn hello(&mut self, rest: &[u8], extended: bool) -> Unit {
        let name = rest.split(|&b| b == b' ').find(|w| !w.is_empty());
        if !name.is_some_and(|n| n.len() <= 255 && n.iter().all(u8::is_ascii_graphic)) {
            let verb = if extended { "EHLO" } else { "HELO" };
            return self.error(&format!("501 5.5.4 Syntax: {verb} hostname\r\n"));
        }
        self.open = None;
        if !extended {
            let line = format!("250 {}\r\n", self.hostname);
            return self.say_ok(&line);
        }
        let mut lines = vec![self.hostname.clone()];
        lines.extend(extensions(self.max_size));
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            self.say(&format!("250{sep}{line}\r\n"));
        }
        Unit::Done
    }

    fn mail(&mut self, rest: &[u8]) -> Unit {
        if self.open.is_some() {
            return self.error("503 5.5.1 Nested MAIL command\r\n");
        }
        let (from, params) = match parse_mail(rest, self.max_size) {
            Ok(parsed) => parsed,
            Err(e) => return self.path_error(e),
        };
        self.stage = Stage::SenderCheck(from.clone(), params);
        Unit::Yield(ServerStep::CheckSender(from))
    }

    fn rcpt(&mut self, rest: &[u8]) -> Unit {
        let Some(open) = &self.open else {
            return self.error("503 5.5.1 Need MAIL command first\r\n");
        };
        if open.recipients.len() >= MAX_RECIPIENTS {
            let line = format!("452 4.5.3 Too many recipients (at most {MAX_RECIPIENTS})\r\n");
            return self.say_ok(&line);
        }
        match parse_rcpt(rest, open.params.smtputf8) {
            Ok(to) => {
                if let Some(open) = &mut self.open {
                    open.recipients.push(to);
                }
                self.say_ok("250 2.1.5 Recipient OK\r\n")
            }
            Err(e) => self.path_error(e),
        }
    }

    fn data(&mut self, rest: &[u8]) -> Unit {
        if !rest.is_empty() {
            return self.error("501 5.5.4 Syntax: DATA\r\n");
        }
        match &self.open {
            None => self.error("503 5.5.1 Need MAIL command first\r\n"),
            Some(open) if open.recipients.is_empty() => {
                self.error("554 5.5.1 No valid recipients\r\n")
            }
            Some(_) => {
                self.stage = Stage::Data(DataReader::new(self.max_size));
                self.say_ok("354 Start mail input; end with <CRLF>.<CRLF>\r\n")
            }
        }
    }

    /// The final `.`: the transaction ends either way (RFC 5321 §4.1.1.4).
    fn end_of_data(&mut self) -> Unit {
        let Stage::Data(reader) = std::mem::replace(&mut self.stage, Stage::Command) else {
            return Unit::Done;
        };
        let Some(open) = self.open.take() else {
            return Unit::Done;
        };
        let Some(content) = reader.into_content() else {
            let line = format!(
                "552 5.3.4 Message too big (at most {} bytes)\r\n",
                self.max_size
            );
            return self.say_ok(&line);
        };
        self.stage = Stage::Delivery;
        Unit::Yield(ServerStep::Deliver(Transaction {
            from: open.from,
            recipients: open.recipients,
            eight_bit: open.params.eight_bit,
            smtputf8: open.params.smtputf8,
            content,
        }))
    }

    fn no_argument(&mut self, rest: &[u8], verb: &str, reset: bool) -> Unit {
        if !rest.is_empty() {
            return self.error(&format!("501 5.5.4 Syntax: {verb}\r\n"));
        }
        if reset {
            self.open = None;
        }
        self.say_ok("250 2.0.0 OK\r\n")
    }

    fn path_error(&mut self, e: PathError) -> Unit {
        let line = e.reply(self.max_size);
        self.error(&line)
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
