//! Reading SMTP replies from the upstream (RFC 5321 §4.2): `ddd-text` lines
//! continue a reply, `ddd text` (or a bare `ddd`) ends it, and every line of
//! one reply carries the same code. Lines arrive in pieces, so the partial
//! reply is kept between calls; its size is bounded.

use bytes::BytesMut;

use crate::proto::MAX_UPSTREAM_LINE;
use crate::proto::line::{Line, take_line};

/// Most lines accepted in one reply (EHLO answers run to about fifteen).
pub(crate) const MAX_REPLY_LINES: usize = 128;

/// A whole reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub code: u16,
    /// Each line's text after the code and separator.
    pub lines: Vec<String>,
    /// The last line as received (code included), without CRLF.
    pub last: Vec<u8>,
}

impl Reply {
    /// The text of all lines, joined by spaces, code first.
    pub fn text(&self) -> String {
        let mut out = self.code.to_string();
        for line in &self.lines {
            if !line.is_empty() {
                out.push(' ');
                out.push_str(line);
            }
        }
        out
    }

    /// Whether the first text starts with the enhanced status code `code`
    /// (RFC 3463), e.g. `5.7.139`.
    pub fn has_enhanced_code(&self, code: &str) -> bool {
        self.lines
            .first()
            .and_then(|l| l.split(' ').next())
            .is_some_and(|first| first == code)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadReply {
    Incomplete,
    Complete(Reply),
    Malformed(&'static str),
}

/// Collects one reply across calls.
#[derive(Debug, Default)]
pub(crate) struct ReplyReader {
    code: Option<u16>,
    lines: Vec<String>,
    bytes: usize,
}

impl ReplyReader {
    /// Consumes whole lines off `input` until a reply is complete.
    pub fn read(&mut self, input: &mut BytesMut) -> ReadReply {
        loop {
            let line = match take_line(input, MAX_UPSTREAM_LINE) {
                Line::Incomplete => return ReadReply::Incomplete,
                Line::TooLong => return ReadReply::Malformed("upstream line too long"),
                Line::Complete(line) => line,
            };
            match self.add(line) {
                ReadReply::Incomplete => continue,
                done => return done,
            }
        }
    }

    fn add(&mut self, line: Vec<u8>) -> ReadReply {
        let Some((code, more, text)) = split_line(&line) else {
            return ReadReply::Malformed("malformed SMTP reply line");
        };
        if self.code.is_some_and(|c| c != code) {
            return ReadReply::Malformed("SMTP reply lines disagree on the code");
        }
        self.bytes += line.len();
        if self.lines.len() >= MAX_REPLY_LINES || self.bytes > MAX_UPSTREAM_LINE {
            return ReadReply::Malformed("SMTP reply too long");
        }
        self.code = Some(code);
        self.lines.push(String::from_utf8_lossy(text).into_owned());
        if more {
            return ReadReply::Incomplete;
        }
        let lines = std::mem::take(&mut self.lines);
        *self = Self::default();
        ReadReply::Complete(Reply {
            code,
            lines,
            last: line,
        })
    }
}

/// `(code, continues, text)` of one reply line.
fn split_line(line: &[u8]) -> Option<(u16, bool, &[u8])> {
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    match line.get(3) {
        None => Some((code, false, &[])),
        Some(b' ') => Some((code, false, &line[4..])),
        Some(b'-') => Some((code, true, &line[4..])),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8], chunk: usize) -> Vec<ReadReply> {
        let (mut r, mut buf, mut out) = (ReplyReader::default(), BytesMut::new(), Vec::new());
        for piece in bytes.chunks(chunk) {
            buf.extend_from_slice(piece);
            loop {
                match r.read(&mut buf) {
                    ReadReply::Incomplete => break,
                    done => out.push(done),
                }
            }
        }
        out
    }

    #[test]
    fn multi_line_reply_split_at_every_byte() {
        let wire =
            b"250-mx.example Hello\r\n250-AUTH LOGIN XOAUTH2\r\n250 STARTTLS\r\n235 2.7.0 ok\r\n";
        for chunk in [wire.len(), 1, 2, 3, 7] {
            let replies = read_all(wire, chunk);
            let ReadReply::Complete(ehlo) = &replies[0] else {
                panic!("{replies:?}")
            };
            assert_eq!(ehlo.code, 250);
            assert_eq!(
                ehlo.lines,
                ["mx.example Hello", "AUTH LOGIN XOAUTH2", "STARTTLS"]
            );
            assert_eq!(ehlo.last, b"250 STARTTLS");
            let ReadReply::Complete(auth) = &replies[1] else {
                panic!("{replies:?}")
            };
            assert_eq!((auth.code, auth.text().as_str()), (235, "235 2.7.0 ok"));
            assert!(auth.has_enhanced_code("2.7.0"));
            assert_eq!(replies.len(), 2);
        }
    }

    #[test]
    fn bare_code_and_malformed_lines() {
        assert!(matches!(&read_all(b"220\r\n", 1)[..], [ReadReply::Complete(r)] if r.code == 220));
        for bad in [
            &b"hello\r\n"[..],
            b"25\r\n",
            b"250x\r\n",
            b"650 x\r\n",
            b"250-a\r\n251 b\r\n",
        ] {
            assert!(
                matches!(read_all(bad, 1).last(), Some(ReadReply::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn line_count_is_bounded() {
        let wire = b"250-x\r\n".repeat(MAX_REPLY_LINES + 1);
        let out = read_all(&wire, wire.len());
        assert_eq!(out, vec![ReadReply::Malformed("SMTP reply too long")]);
    }
}
