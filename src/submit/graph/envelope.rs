//! Making Graph deliver to exactly the SMTP envelope.
//!
//! Graph has no envelope: `sendMail` takes the recipients from the MIME
//! header fields To, Cc and Bcc (`docs/design.md`, "Sending through Graph").
//! SMTP clients, though, mean the `RCPT TO` list (RFC 5321 §3.3), and the
//! header fields only say what readers see. So the header section is
//! rewritten before the message goes to Graph:
//!
//! - every To/Cc mailbox that is not an envelope recipient is removed (a
//!   header-only address must never be sent to), and a To/Cc field left
//!   empty is dropped;
//! - every Bcc field the client wrote is dropped, and one new `Bcc` field
//!   lists the envelope recipients that are in neither To nor Cc (Exchange
//!   strips Bcc from what recipients receive, as RFC 5322 §3.6.3 expects).
//!
//! Nothing else changes: other fields, their order and the body stay
//! byte for byte.

use std::collections::HashSet;

/// Why a header section cannot be rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the message has no header section")]
    NoHeader,
    #[error("the message has no recipient")]
    NoRecipient,
}

/// A header field: its name and everything after the colon up to the
/// final CRLF, folding kept.
struct Field<'a> {
    name: &'a str,
    raw: &'a [u8],
}

/// Rewrites `content` so that To, Cc and Bcc name exactly `recipients`
/// (see the module docs). `content` uses CRLF line ends.
pub fn rewrite(content: &[u8], recipients: &[String]) -> Result<Vec<u8>, EnvelopeError> {
    if recipients.is_empty() {
        return Err(EnvelopeError::NoRecipient);
    }
    let (head, body) = split_head(content).ok_or(EnvelopeError::NoHeader)?;
    let wanted: HashSet<String> = recipients.iter().map(|r| fold(r)).collect();
    let mut visible = HashSet::new();
    let mut out = Vec::with_capacity(content.len() + 256);
    for field in fields(head) {
        let name = field.name.to_ascii_lowercase();
        match name.as_str() {
            "bcc" => {}
            "to" | "cc" => {
                let kept: Vec<&str> = mailboxes(field.raw)
                    .into_iter()
                    .filter(|m| address_of(m).is_some_and(|a| wanted.contains(&fold(&a))))
                    .collect();
                for m in &kept {
                    if let Some(a) = address_of(m) {
                        visible.insert(fold(&a));
                    }
                }
                if !kept.is_empty() {
                    write_list(&mut out, field.name, &kept);
                }
            }
            "" => {
                out.extend_from_slice(field.raw);
                out.extend_from_slice(b"\r\n");
            }
            _ => {
                out.extend_from_slice(field.name.as_bytes());
                out.push(b':');
                out.extend_from_slice(field.raw);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    let hidden: Vec<&str> = recipients
        .iter()
        .filter(|r| !visible.contains(&fold(r)))
        .map(String::as_str)
        .collect();
    if !hidden.is_empty() {
        let hidden: Vec<String> = hidden.iter().map(|r| format!("<{r}>")).collect();
        let hidden: Vec<&str> = hidden.iter().map(String::as_str).collect();
        write_list(&mut out, "Bcc", &hidden);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Ok(out)
}

/// Addresses compare case-insensitively: Exchange treats them so.
fn fold(address: &str) -> String {
    address.trim().to_lowercase()
}

/// The header section (each field with its CRLF) and the body after the
/// empty line.
fn split_head(content: &[u8]) -> Option<(&[u8], &[u8])> {
    if content.starts_with(b"\r\n") {
        return None;
    }
    match content.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => Some((&content[..at + 2], &content[at + 4..])),
        None => Some((content, &[])),
    }
}

/// Splits a header section into fields; continuation lines (RFC 5322
/// §2.2.3) stay with their field. A line without a colon is kept as a
/// field without a name, so nothing is lost.
fn fields(head: &[u8]) -> Vec<Field<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < head.len() {
        let Some(end) = head[i..].windows(2).position(|w| w == b"\r\n") else {
            break;
        };
        let next = i + end + 2;
        let continues = head.get(next).is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continues {
            out.push(field(&head[start..next - 2]));
            start = next;
        }
        i = next;
    }
    if start < head.len() {
        out.push(field(&head[start..]));
    }
    out
}

fn field(line: &[u8]) -> Field<'_> {
    let named = line
        .iter()
        .position(|b| *b == b':')
        .and_then(|c| Some((c, std::str::from_utf8(&line[..c]).ok()?)));
    match named {
        Some((colon, name)) => Field {
            name,
            raw: &line[colon + 1..],
        },
        None => Field {
            name: "",
            raw: line,
        },
    }
}

/// The mailboxes of an address-list field value (RFC 5322 §3.4), as the
/// client wrote them: split at commas outside quotes, angle brackets and
/// comments, group names and their `;` removed.
fn mailboxes(raw: &[u8]) -> Vec<&str> {
    let Ok(text) = std::str::from_utf8(raw) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut comment, mut escaped) = (false, false, 0u32, false);
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted || comment > 0 => escaped = true,
            '"' if comment == 0 => quoted = !quoted,
            '(' if !quoted => comment += 1,
            ')' if !quoted && comment > 0 => comment -= 1,
            '<' if !quoted && comment == 0 => angle = true,
            '>' if !quoted && comment == 0 => angle = false,
            ',' | ';' | ':' if !quoted && !angle && comment == 0 => {
                if c != ':' {
                    out.push(&text[start..i]);
                }
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out.into_iter()
        .map(|m| m.trim_matches(|c: char| c.is_ascii_whitespace()))
        .filter(|m| !m.is_empty())
        .collect()
}

/// The addr-spec of one mailbox: inside `<>` when present, else the text
/// without comments.
fn address_of(mailbox: &str) -> Option<String> {
    if let (Some(open), Some(close)) = (mailbox.rfind('<'), mailbox.rfind('>'))
        && open < close
    {
        return Some(mailbox[open + 1..close].trim().to_owned());
    }
    let mut out = String::new();
    let mut depth = 0u32;
    for c in mailbox.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if depth == 0 && !c.is_whitespace() => out.push(c),
            _ => {}
        }
    }
    out.contains('@').then_some(out)
}

/// Writes `name: a,\r\n b\r\n`, one mailbox per line so no line grows long.
fn write_list(out: &mut Vec<u8>, name: &str, items: &[&str]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.extend_from_slice(b",\r\n ");
        }
        out.extend_from_slice(item.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
