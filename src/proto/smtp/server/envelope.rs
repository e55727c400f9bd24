//! MAIL FROM and RCPT TO (RFC 5321 §4.1.1.2–3): the path in angle brackets
//! and the parameters of the extensions mailgate offers, SIZE (RFC 1870),
//! BODY (RFC 6152) and SMTPUTF8 (RFC 6531). Anything else is refused with
//! `555` (RFC 5321 §4.1.1.11), so a client never believes an extension is in
//! effect that is not.

use super::MAX_PATH;
use crate::proto::text::sanitize_bytes;

/// The parameters of an accepted MAIL command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct MailParams {
    pub eight_bit: bool,
    pub smtputf8: bool,
}

/// Why a MAIL or RCPT command is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PathError {
    /// Not `FROM:<...>` / `TO:<...>`.
    Syntax(&'static str),
    /// The path has characters no address has, or is empty where it may not be.
    Address {
        recipient: bool,
    },
    /// Non-ASCII address without `SMTPUTF8` (RFC 6531 §3.4).
    NotAscii,
    TooLong,
    Unknown(String),
    BadValue(&'static str),
    /// `SIZE=` beyond what the backend can send (RFC 1870 §6.1).
    TooBig,
}

impl PathError {
    /// The reply line, CRLF-terminated.
    pub fn reply(&self, max_size: usize) -> String {
        match self {
            Self::Syntax(usage) => format!("501 5.5.4 Syntax: {usage}\r\n"),
            Self::Address { recipient: false } => "501 5.1.7 Bad sender address syntax\r\n".into(),
            Self::Address { recipient: true } => {
                "501 5.1.3 Bad recipient address syntax\r\n".into()
            }
            Self::NotAscii => {
                "553 5.6.7 Non-ASCII address requires MAIL FROM with SMTPUTF8\r\n".into()
            }
            Self::TooLong => format!("501 5.5.4 Path too long (at most {MAX_PATH} octets)\r\n"),
            Self::Unknown(key) => format!("555 5.5.4 Unsupported parameter {key}\r\n"),
            Self::BadValue(usage) => format!("501 5.5.4 Syntax: {usage}\r\n"),
            Self::TooBig => format!(
                "552 5.3.4 Message size exceeds fixed maximum message size ({max_size} bytes)\r\n"
            ),
        }
    }
}

/// `FROM:<path> [params]` after the verb: the reverse-path (empty for the
/// null sender) and the parameters. `max_size` bounds `SIZE=`.
pub(super) fn parse_mail(rest: &[u8], max_size: usize) -> Result<(String, MailParams), PathError> {
    const USAGE: &str = "MAIL FROM:<address>";
    let after = strip_keyword(rest, b"FROM:").ok_or(PathError::Syntax(USAGE))?;
    let (raw, params) = split_path(after).ok_or(PathError::Syntax(USAGE))?;
    let mut parsed = MailParams::default();
    for param in words(params) {
        mail_param(param, max_size, &mut parsed)?;
    }
    let from = address(raw, parsed.smtputf8, false)?;
    Ok((from, parsed))
}

/// `TO:<path>` after the verb; no RCPT parameters are offered (DSN is not).
pub(super) fn parse_rcpt(rest: &[u8], smtputf8: bool) -> Result<String, PathError> {
    const USAGE: &str = "RCPT TO:<address>";
    let after = strip_keyword(rest, b"TO:").ok_or(PathError::Syntax(USAGE))?;
    let (raw, params) = split_path(after).ok_or(PathError::Syntax(USAGE))?;
    if let Some(param) = words(params).next() {
        return Err(unknown(param));
    }
    let to = address(raw, smtputf8, true)?;
    if to.is_empty() {
        return Err(PathError::Address { recipient: true });
    }
    Ok(to)
}

fn mail_param(param: &[u8], max_size: usize, parsed: &mut MailParams) -> Result<(), PathError> {
    let (key, value) = match param.iter().position(|&b| b == b'=') {
        Some(eq) => (&param[..eq], Some(&param[eq + 1..])),
        None => (param, None),
    };
    let key = key.to_ascii_uppercase();
    match (key.as_slice(), value) {
        (b"SIZE", Some(value)) => {
            let size = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .ok_or(PathError::BadValue("SIZE=<number>"))?;
            // More digits than a usize holds is too big as well.
            match size.parse::<usize>() {
                Ok(n) if n <= max_size => Ok(()),
                _ => Err(PathError::TooBig),
            }
        }
        (b"BODY", Some(value)) => {
            parsed.eight_bit = match value.to_ascii_uppercase().as_slice() {
                b"7BIT" => false,
                b"8BITMIME" => true,
                _ => return Err(PathError::BadValue("BODY=7BIT|8BITMIME")),
            };
            Ok(())
        }
        (b"SMTPUTF8", None) => {
            parsed.smtputf8 = true;
            Ok(())
        }
        _ => Err(unknown(param)),
    }
}

fn unknown(param: &[u8]) -> PathError {
    let key = param.split(|&b| b == b'=').next().unwrap_or_default();
    PathError::Unknown(sanitize_bytes(key, 64))
}

/// `FROM:` / `TO:` in any case; one space after the colon is tolerated
/// (common in the wild, RFC 5321 §4.1.2 has none).
fn strip_keyword<'a>(rest: &'a [u8], keyword: &[u8]) -> Option<&'a [u8]> {
    let head = rest.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let after = &rest[keyword.len()..];
    Some(after.strip_prefix(b" ").unwrap_or(after))
}

/// `<path>` and what follows it. A `>` inside a quoted local part does not
/// end the path.
fn split_path(after: &[u8]) -> Option<(&[u8], &[u8])> {
    let inner = after.strip_prefix(b"<")?;
    let (mut quoted, mut escaped) = (false, false);
    for (i, &b) in inner.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'>' if !quoted => {
                let rest = &inner[i + 1..];
                if !rest.is_empty() && rest[0] != b' ' {
                    return None;
                }
                return Some((&inner[..i], rest));
            }
            _ => {}
        }
    }
    None
}

fn words(params: &[u8]) -> impl Iterator<Item = &[u8]> {
    params.split(|&b| b == b' ').filter(|w| !w.is_empty())
}

/// The address inside the brackets: a source route (`@a,@b:`) is dropped
/// (RFC 5321 §4.1.2 says to accept and ignore it); control characters and
/// unquoted spaces are refused; non-ASCII needs SMTPUTF8.
fn address(raw: &[u8], smtputf8: bool, recipient: bool) -> Result<String, PathError> {
    if raw.len() + 2 > MAX_PATH {
        return Err(PathError::TooLong);
    }
    let raw = match raw.first() {
        Some(b'@') => match raw.iter().position(|&b| b == b':') {
            Some(colon) => &raw[colon + 1..],
            None => return Err(PathError::Address { recipient }),
        },
        _ => raw,
    };
    let bad = PathError::Address { recipient };
    if raw.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(bad);
    }
    let mut quoted = false;
    for &b in raw {
        match b {
            b'"' => quoted = !quoted,
            b' ' if !quoted => return Err(bad),
            _ => {}
        }
    }
    if !raw.is_ascii() && !smtputf8 {
        return Err(PathError::NotAscii);
    }
    String::from_utf8(raw.to_vec()).map_err(|_| bad)
}
