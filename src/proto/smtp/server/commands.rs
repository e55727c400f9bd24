//! The commands of a post-AUTH session (RFC 5321 §4.1.1), one handler
//! each; the stepping, the output batching and the replies to the caller's
//! verdicts stay in `mod.rs`.

use bytes::BytesMut;

use super::envelope::{PathError, parse_mail, parse_rcpt};
use super::{DataReader, MAX_COMMAND_LINE, MAX_RECIPIENTS, ServerStep, SmtpServer, Stage};
use super::{Transaction, Unit, extensions};
use crate::proto::line::{Line, take_line, verb_and_rest};

impl SmtpServer {
    pub(super) fn command(&mut self, input: &mut BytesMut) -> Unit {
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
    pub(super) fn end_of_data(&mut self) -> Unit {
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
}
