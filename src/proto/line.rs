//! Line framing shared by the three protocols. "Need more bytes" is an ordinary
//! answer ([`Line::Incomplete`]), distinct from a violated bound, and the caller's
//! buffer keeps every byte after the line: STARTTLS must drop them and the relay
//! must forward them.

use bytes::{Buf, BytesMut};

/// Outcome of looking for one CRLF- (or bare LF-) terminated line.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A whole line, terminator stripped.
    Complete(Vec<u8>),
    /// No terminator yet and the buffer is still within `max`.
    Incomplete,
    /// The line (or what has arrived of it) is longer than `max` bytes.
    TooLong,
}

/// Takes one line off the front of `buf`, if a whole one is there.
///
/// Bare LF is accepted as a terminator because real legacy clients send it;
/// a CR before the LF is stripped. `max` counts the line without its terminator.
pub fn take_line(buf: &mut BytesMut, max: usize) -> Line {
    match memchr_lf(buf) {
        Some(lf) => {
            let end = if lf > 0 && buf[lf - 1] == b'\r' {
                lf - 1
            } else {
                lf
            };
            if end > max {
                return Line::TooLong;
            }
            let line = buf[..end].to_vec();
            buf.advance(lf + 1);
            Line::Complete(line)
        }
        None if buf.len() > max + 1 => Line::TooLong,
        None => Line::Incomplete,
    }
}

fn memchr_lf(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

/// Splits a command line into its first word (upper-cased ASCII) and the rest,
/// with the single separating space removed.
pub fn verb_and_rest(line: &[u8]) -> (String, &[u8]) {
    let (verb, rest) = match line.iter().position(|&b| b == b' ') {
        Some(sp) => (&line[..sp], &line[sp + 1..]),
        None => (line, &line[line.len()..]),
    };
    (String::from_utf8_lossy(verb).to_ascii_uppercase(), rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_keeps_leftover() {
        let mut buf = BytesMut::from(&b"ONE\r\nTWO\nTH"[..]);
        assert_eq!(take_line(&mut buf, 10), Line::Complete(b"ONE".to_vec()));
        assert_eq!(take_line(&mut buf, 10), Line::Complete(b"TWO".to_vec()));
        assert_eq!(take_line(&mut buf, 10), Line::Incomplete);
        assert_eq!(&buf[..], b"TH");
    }

    #[test]
    fn bounds_complete_and_partial_lines() {
        let mut buf = BytesMut::from(&b"12345\r\n"[..]);
        assert_eq!(take_line(&mut buf, 4), Line::TooLong);
        let mut buf = BytesMut::from(&b"123456"[..]);
        assert_eq!(take_line(&mut buf, 4), Line::TooLong);
        let mut buf = BytesMut::from(&b"1234\r"[..]);
        assert_eq!(take_line(&mut buf, 4), Line::Incomplete);
        let mut buf = BytesMut::from(&b"1234\r\n"[..]);
        assert_eq!(take_line(&mut buf, 4), Line::Complete(b"1234".to_vec()));
    }

    #[test]
    fn verb_is_uppercased() {
        assert_eq!(
            verb_and_rest(b"auth PLAIN x"),
            ("AUTH".into(), &b"PLAIN x"[..])
        );
        assert_eq!(verb_and_rest(b"QUIT"), ("QUIT".into(), &b""[..]));
    }
}
