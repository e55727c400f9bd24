//! Assembling one client command from its line segments and literals.
//!
//! A command is one line unless it carries literals: `{n}` is synchronising (the
//! client waits for a `+` continuation request, RFC 9051 §4.3 and §7.5), `{n+}`
//! is not (RFC 7888 LITERAL+; the n bytes follow at once). Each literal is
//! followed by the rest of the command, so assembly works segment by segment and
//! only interprets the command once it is whole. Doing this for every command,
//! not just LOGIN, keeps the byte stream in sync whatever the client sends.
//!
//! A literal is never allocated before its size is checked against
//! `max_literal`, and a command holds at most [`MAX_LITERALS_PER_COMMAND`]
//! literals, so one command costs at most
//! `(MAX_LITERALS_PER_COMMAND + 1) * max_line + MAX_LITERALS_PER_COMMAND * max_literal`.
//! A rejected synchronising literal is harmless (the client never sends it); a
//! rejected non-synchronising one is already on its way and cannot be told
//! apart from the next command, so that case closes the connection.
//!
//! Atoms are parsed leniently (RFC 9051 §9 `ASTRING-CHAR` plus `%`, `*` and
//! 8-bit bytes): legacy clients send such passwords unquoted, and rejecting them
//! would help nobody.

use bytes::{Buf, BytesMut};
use zeroize::{Zeroize, Zeroizing};

use super::text::is_atom;
use crate::proto::ClientLimits;
use crate::proto::line::{Line, take_line};
use crate::secret::Secret;

/// Literals accepted in one command (LOGIN needs two; ID might use a few).
pub(super) const MAX_LITERALS_PER_COMMAND: usize = 8;

/// One element of a command after its tag. Values may be passwords.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Token {
    Atom(Secret<Vec<u8>>),
    Quoted(Secret<Vec<u8>>),
    Literal(Secret<Vec<u8>>),
    Open,
    Close,
}

impl Token {
    /// The value of an `astring`: atom, quoted string or literal.
    pub(super) fn astring(&self) -> Option<&[u8]> {
        match self {
            Token::Atom(v) | Token::Quoted(v) | Token::Literal(v) => Some(v.expose()),
            Token::Open | Token::Close => None,
        }
    }

    pub(super) fn atom(&self) -> Option<&[u8]> {
        match self {
            Token::Atom(v) => Some(v.expose()),
            _ => None,
        }
    }
}

/// A whole command: its tag, its verb and arguments as tokens.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Command {
    pub(super) tag: String,
    tokens: Vec<Token>,
}

impl Command {
    /// The command name, upper-cased, if the first token is an atom.
    pub(super) fn verb(&self) -> Option<String> {
        let verb = self.tokens.first()?.atom()?;
        Some(String::from_utf8_lossy(verb).to_ascii_uppercase())
    }

    pub(super) fn args(&self) -> &[Token] {
        self.tokens.get(1..).unwrap_or_default()
    }
}

/// What one call to [`Assembler::step`] produced.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Assembly {
    NeedMore,
    /// A synchronising literal fits: send a continuation request.
    SendContinuation,
    Complete(Command),
    /// The command is rejected and the stream is still in sync. `None`: no
    /// usable tag, answer untagged.
    Bad {
        tag: Option<String>,
        text: &'static str,
    },
    /// The stream cannot be resynchronised: say this in a BYE and close.
    Fatal(&'static str),
}

#[derive(Debug, Default)]
pub(super) struct Assembler {
    partial: Option<Partial>,
}

#[derive(Debug)]
struct Partial {
    tag: String,
    tokens: Vec<Token>,
    literals: usize,
    pending: Option<PendingLiteral>,
}

/// A literal still arriving; it may be a password, so it is zeroed on drop
/// and its Debug shows only its progress.
struct PendingLiteral {
    data: Vec<u8>,
    len: usize,
}

impl std::fmt::Debug for PendingLiteral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PendingLiteral({}/{} bytes)", self.data.len(), self.len)
    }
}

impl Drop for PendingLiteral {
    fn drop(&mut self) {
        self.data.zeroize();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Marker {
    len: u64,
    sync: bool,
}

impl Assembler {
    /// Consumes bytes from the front of `input` until a command is whole, a
    /// continuation request is due, or more bytes are needed.
    pub(super) fn step(&mut self, input: &mut BytesMut, limits: &ClientLimits) -> Assembly {
        loop {
            if !self.fill_literal(input) {
                return Assembly::NeedMore;
            }
            let line = match take_line(input, limits.max_line) {
                Line::Complete(line) => Secret::new(line),
                Line::Incomplete => return Assembly::NeedMore,
                Line::TooLong => return Assembly::Fatal("Line too long"),
            };
            if let Some(outcome) = self.segment(line.expose(), limits) {
                return outcome;
            }
        }
    }

    /// Drops a command whose verb is `verb` while it waits for a synchronising
    /// literal (the client sends nothing until invited) and returns its tag.
    pub(super) fn abandon(&mut self, verb: &str) -> Option<String> {
        let partial = self.partial.as_ref()?;
        let first = partial.tokens.first()?.atom()?;
        if !first.eq_ignore_ascii_case(verb.as_bytes()) {
            return None;
        }
        self.partial.take().map(|p| p.tag)
    }

    /// Moves pending literal bytes out of `input`; false while some are missing.
    fn fill_literal(&mut self, input: &mut BytesMut) -> bool {
        let Some(partial) = self.partial.as_mut() else {
            return true;
        };
        let Some(pending) = partial.pending.as_mut() else {
            return true;
        };
        let take = (pending.len - pending.data.len()).min(input.len());
        pending.data.extend_from_slice(&input[..take]);
        input.advance(take);
        if pending.data.len() < pending.len {
            return false;
        }
        if let Some(mut done) = partial.pending.take() {
            let data = std::mem::take(&mut done.data);
            partial.tokens.push(Token::Literal(Secret::new(data)));
        }
        true
    }

    /// Handles one line segment; `None` means a non-synchronising literal follows.
    fn segment(&mut self, line: &[u8], limits: &ClientLimits) -> Option<Assembly> {
        let (body, marker) = split_marker(line);
        let (mut partial, rest) = match self.partial.take() {
            Some(partial) if body.first().is_none_or(|&b| b == b' ' || b == b')') => {
                (partial, body)
            }
            Some(partial) => {
                return Some(reject(
                    Some(partial.tag),
                    marker,
                    "Missing space after literal",
                ));
            }
            None => match split_tag(body) {
                Some((tag, rest)) => (Partial::new(tag), rest),
                None => return Some(reject(None, marker, "Missing or invalid tag")),
            },
        };
        if let Err(text) = tokenise(rest, &mut partial.tokens) {
            return Some(reject(Some(partial.tag), marker, text));
        }
        let Some(marker) = marker else {
            let Partial { tag, tokens, .. } = partial;
            return Some(Assembly::Complete(Command { tag, tokens }));
        };
        partial.literals += 1;
        if partial.literals > MAX_LITERALS_PER_COMMAND {
            return Some(reject(Some(partial.tag), Some(marker), "Too many literals"));
        }
        let len = match usize::try_from(marker.len) {
            Ok(len) if len <= limits.max_literal => len,
            _ => return Some(reject(Some(partial.tag), Some(marker), "Literal too large")),
        };
        partial.pending = Some(PendingLiteral {
            data: Vec::with_capacity(len),
            len,
        });
        self.partial = Some(partial);
        marker.sync.then_some(Assembly::SendContinuation)
    }
}

impl Partial {
    fn new(tag: String) -> Self {
        Self {
            tag,
            tokens: Vec::new(),
            literals: 0,
            pending: None,
        }
    }
}

fn reject(tag: Option<String>, marker: Option<Marker>, text: &'static str) -> Assembly {
    match marker {
        Some(Marker { sync: false, .. }) => Assembly::Fatal(text),
        _ => Assembly::Bad { tag, text },
    }
}

/// Splits a trailing literal announcement (`{n}` or `{n+}` after a space or
/// `(`) off a segment. Numbers too big for `u64` saturate: they are refused
/// by size like any other literal over the limit.
fn split_marker(line: &[u8]) -> (&[u8], Option<Marker>) {
    let Some(inner) = line.strip_suffix(b"}") else {
        return (line, None);
    };
    let Some(open) = inner.iter().rposition(|&b| b == b'{') else {
        return (line, None);
    };
    let spec = &inner[open + 1..];
    let (digits, sync) = match spec.strip_suffix(b"+") {
        Some(digits) => (digits, false),
        None => (spec, true),
    };
    let before = &line[..open];
    let starts_token = before.is_empty() || before.ends_with(b" ") || before.ends_with(b"(");
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || !starts_token {
        return (line, None);
    }
    let len = digits
        .iter()
        .try_fold(0u64, |acc, d| {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .unwrap_or(u64::MAX);
    (before, Some(Marker { len, sync }))
}

/// RFC 9051 `tag`: `ASTRING-CHAR`s except `+`, then a space or the end.
fn split_tag(body: &[u8]) -> Option<(String, &[u8])> {
    let (tag, rest) = match body.iter().position(|&b| b == b' ') {
        Some(sp) => (&body[..sp], &body[sp + 1..]),
        None => (body, &body[body.len()..]),
    };
    let valid = tag
        .iter()
        .all(|&b| b == b']' || (b != b'+' && is_atom(&[b])));
    (valid && !tag.is_empty()).then(|| (String::from_utf8_lossy(tag).into_owned(), rest))
}

fn tokenise(mut rest: &[u8], out: &mut Vec<Token>) -> Result<(), &'static str> {
    loop {
        rest = rest.trim_ascii_start();
        let (token, after) = match rest {
            [] => return Ok(()),
            [b'(', after @ ..] => (Token::Open, after),
            [b')', after @ ..] => (Token::Close, after),
            [b'"', after @ ..] => quoted(after)?,
            _ => atom(rest)?,
        };
        out.push(token);
        rest = after;
    }
}

fn quoted(mut rest: &[u8]) -> Result<(Token, &[u8]), &'static str> {
    let mut value = Zeroizing::new(Vec::new());
    loop {
        match rest {
            [b'"', after @ ..] => {
                if !after.first().is_none_or(|&b| b == b' ' || b == b')') {
                    return Err("Missing space after quoted string");
                }
                let value = std::mem::take(&mut *value);
                return Ok((Token::Quoted(Secret::new(value)), after));
            }
            [b'\\', c @ (b'"' | b'\\'), after @ ..] => {
                value.push(*c);
                rest = after;
            }
            [b'\\', ..] => return Err("Invalid escape in quoted string"),
            [b'\0' | b'\r', ..] => return Err("Invalid character in quoted string"),
            [c, after @ ..] => {
                value.push(*c);
                rest = after;
            }
            [] => return Err("Unterminated quoted string"),
        }
    }
}

fn atom(rest: &[u8]) -> Result<(Token, &[u8]), &'static str> {
    let end = rest
        .iter()
        .position(|&b| b == b' ' || b == b')')
        .unwrap_or(rest.len());
    let (value, after) = rest.split_at(end);
    let lenient = |b: &u8| *b >= 0x80 || matches!(b, b'%' | b'*' | b']') || is_atom(&[*b]);
    if value.iter().all(lenient) {
        Ok((Token::Atom(Secret::new(value.to_vec())), after))
    } else {
        Err("Invalid character in atom")
    }
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
