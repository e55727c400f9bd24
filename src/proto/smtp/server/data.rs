//! The message text after `354` (RFC 5321 §4.1.1.4, §4.5.2), read as it
//! arrives rather than line by line, so a long line costs no more memory
//! than the message bound.
//!
//! - Dot-unstuffing: a line that starts with `.` and has more on it loses
//!   the first `.`; a line that is `.` alone ends the message.
//! - Line ends are normalised: CRLF and a bare LF both end a line and are
//!   stored as CRLF (the same framing as the command lines, and what Postfix
//!   does with `smtpd_forbid_bare_newline = normalize`). A CR not followed
//!   by LF is message text. The backend gets a message and never SMTP
//!   framing, so no second reader can see a different end of the message.
//! - Beyond `max` bytes the text is read to the final `.` but no longer
//!   kept, so the client is answered `552` in step instead of mid-stream.

use bytes::{Buf, Bytes, BytesMut};

/// Whether the final `.` arrived.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Fed {
    More,
    End,
}

#[derive(Debug)]
pub(super) struct DataReader {
    content: BytesMut,
    max: usize,
    too_big: bool,
    line_start: bool,
}

impl DataReader {
    pub fn new(max: usize) -> Self {
        Self {
            content: BytesMut::new(),
            max,
            too_big: false,
            line_start: true,
        }
    }

    /// Consumes message text off `input` up to and including the final `.`
    /// line; leaves everything after it (pipelined commands) in `input`. A
    /// trailing CR, or a `.` at the start of a line, stays in `input` until
    /// the next byte says what it is.
    pub fn feed(&mut self, input: &mut BytesMut) -> Fed {
        loop {
            if self.line_start && input.first() == Some(&b'.') {
                match (input.get(1), input.get(2)) {
                    (None, _) | (Some(b'\r'), None) => return Fed::More,
                    (Some(b'\n'), _) => {
                        input.advance(2);
                        return Fed::End;
                    }
                    (Some(b'\r'), Some(b'\n')) => {
                        input.advance(3);
                        return Fed::End;
                    }
                    _ => {
                        input.advance(1);
                        self.line_start = false;
                    }
                }
            }
            match input.iter().position(|&b| b == b'\n') {
                Some(lf) => {
                    let end = if lf > 0 && input[lf - 1] == b'\r' {
                        lf - 1
                    } else {
                        lf
                    };
                    self.keep(&input[..end]);
                    self.keep(b"\r\n");
                    input.advance(lf + 1);
                    self.line_start = true;
                }
                None => {
                    let take = input.len() - usize::from(input.last() == Some(&b'\r'));
                    if take > 0 {
                        self.keep(&input[..take]);
                        input.advance(take);
                        self.line_start = false;
                    }
                    return Fed::More;
                }
            }
        }
    }

    /// The message, or `None` when it exceeded the bound.
    pub fn into_content(self) -> Option<Bytes> {
        (!self.too_big).then(|| self.content.freeze())
    }

    fn keep(&mut self, bytes: &[u8]) {
        if self.too_big {
            return;
        }
        if self.content.len() + bytes.len() > self.max {
            self.too_big = true;
            self.content = BytesMut::new();
            return;
        }
        self.content.extend_from_slice(bytes);
    }
}
