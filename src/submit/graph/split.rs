//! How a message too large for one Graph request is sent anyway.
//!
//! Graph takes at most about 4 MB per request, and a MIME draft is one
//! request: it cannot be uploaded in pieces. What can be uploaded in pieces
//! is a file attachment (an upload session). So a large message is split
//! along its own structure: the top-level `multipart/*` body's base64 leaf
//! parts, largest first, are taken out until the rest (the *skeleton*)
//! fits; the skeleton becomes the draft, and each part taken out is added
//! back to the draft as a file attachment with its name, content type,
//! Content-ID and inline flag, then the draft is sent. The attachments'
//! bytes arrive unchanged; Exchange writes their MIME part headers anew.
//! A message that cannot be split that way (not multipart, or its large
//! parts not base64) is refused with `552` rather than sent altered.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A part taken out of the message, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub content_id: Option<String>,
    pub inline: bool,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("the message is not multipart, so it cannot be sent in pieces")]
    NotMultipart,
    #[error("the message's large parts are not base64 attachments")]
    CannotShrink,
}

/// Splits `mime` into a skeleton whose base64 form fits `limit` bytes and
/// the attachments taken out of it (see the module docs).
pub fn split(mime: &[u8], limit: usize) -> Result<(Vec<u8>, Vec<Attachment>), SplitError> {
    let at = find(mime, b"\r\n\r\n").ok_or(SplitError::NotMultipart)?;
    let boundary = header_value(&mime[..at + 2], "content-type")
        .filter(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        })
        .and_then(|ct| param(&ct, "boundary"))
        .ok_or(SplitError::NotMultipart)?;
    let parts = parts(mime, at + 4, boundary.as_bytes());
    let mut candidates: Vec<(usize, usize)> = parts
        .iter()
        .copied()
        .filter(|&(s, e)| is_base64_leaf(&mime[s..e]))
        .collect();
    candidates.sort_by_key(|&(s, e)| std::cmp::Reverse(e - s));
    let mut size = mime.len();
    let mut taken = Vec::new();
    for (s, e) in candidates {
        if encoded_len(size) <= limit {
            break;
        }
        size -= e - s;
        taken.push((s, e));
    }
    if encoded_len(size) > limit {
        return Err(SplitError::CannotShrink);
    }
    taken.sort_unstable();
    let mut skeleton = Vec::with_capacity(size);
    let mut attachments = Vec::new();
    let mut from = 0;
    for (s, e) in taken {
        skeleton.extend_from_slice(&mime[from..s]);
        from = e;
        attachments.push(attachment(&mime[s..e]).ok_or(SplitError::CannotShrink)?);
    }
    skeleton.extend_from_slice(&mime[from..]);
    Ok((skeleton, attachments))
}

/// Length of the base64 form of `n` bytes.
pub fn encoded_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// The parts of the multipart body starting at `body`: each range runs
/// from its delimiter line (`--boundary`, RFC 2046 §5.1.1) to the next.
fn parts(mime: &[u8], body: usize, boundary: &[u8]) -> Vec<(usize, usize)> {
    let mut delimiters = Vec::new();
    let mut line = body;
    while line < mime.len() {
        let end = find(&mime[line..], b"\r\n").map_or(mime.len(), |n| line + n + 2);
        let text = &mime[line..end];
        if text.starts_with(b"--") && text[2..].starts_with(boundary) {
            let rest = &text[2 + boundary.len()..];
            let closing = rest.starts_with(b"--");
            delimiters.push(line);
            if closing {
                break;
            }
        }
        line = end;
    }
    delimiters.windows(2).map(|w| (w[0], w[1])).collect()
}

fn is_base64_leaf(part: &[u8]) -> bool {
    let Some(at) = find(part, b"\r\n\r\n") else {
        return false;
    };
    let head = &part[..at + 2];
    let multipart = header_value(head, "content-type").is_some_and(|ct| {
        ct.trim_start()
            .to_ascii_lowercase()
            .starts_with("multipart/")
    });
    let base64 = header_value(head, "content-transfer-encoding")
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("base64"));
    base64 && !multipart
}

/// Decodes one part (its delimiter line included) into an attachment.
fn attachment(part: &[u8]) -> Option<Attachment> {
    let start = find(part, b"\r\n")? + 2;
    let at = start + find(&part[start..], b"\r\n\r\n")?;
    let head = &part[start..at + 2];
    let data: Vec<u8> = part[at + 4..]
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let bytes = STANDARD.decode(data).ok()?;
    let content_type = header_value(head, "content-type").unwrap_or_default();
    let disposition = header_value(head, "content-disposition").unwrap_or_default();
    let name = param(&disposition, "filename")
        .or_else(|| param(&content_type, "name"))
        .unwrap_or_else(|| "attachment".into());
    let mime_type = content_type.split(';').next().unwrap_or("").trim();
    Some(Attachment {
        name,
        content_type: if mime_type.is_empty() {
            "application/octet-stream".into()
        } else {
            mime_type.to_owned()
        },
        content_id: header_value(head, "content-id")
            .map(|c| c.trim().trim_matches(['<', '>']).to_owned()),
        inline: disposition
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("inline"),
        bytes,
    })
}

/// The unfolded value of the first `name` field of a header section.
fn header_value(head: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        let Some((field, value)) = line.split_once(':') else {
            continue;
        };
        if field.trim().eq_ignore_ascii_case(name) {
            let mut value = value.to_owned();
            while let Some(next) = lines.next_if(|l| l.starts_with([' ', '\t'])) {
                value.push_str(next);
            }
            return Some(value);
        }
    }
    None
}

/// A parameter of a structured field (`; name="value"` or `; name=value`).
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then(|| {
            let v = v.trim();
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
                .to_owned()
        })
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
#[path = "split_tests.rs"]
mod tests;
