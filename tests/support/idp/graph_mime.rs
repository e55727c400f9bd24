//! The little MIME the test Graph needs: header fields, addresses, Bcc
//! removal, and adding attachments back to a draft the way Exchange does.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Unfolded header fields of a header section.
pub fn fields(head: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(head);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push_str(line);
            }
        } else if let Some((n, v)) = line.split_once(':') {
            out.push((n.trim().to_owned(), v.to_owned()));
        }
    }
    out
}

/// The addresses in To, Cc and Bcc, each once (first occurrence kept,
/// compared case-insensitively): Graph delivers once per distinct
/// recipient, however often the message names it.
pub fn distinct_recipients(fields: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let named = fields
        .iter()
        .filter(|(n, _)| ["to", "cc", "bcc"].contains(&n.to_ascii_lowercase().as_str()))
        .flat_map(|(_, v)| addresses(v));
    for address in named {
        if !out.contains(&address) {
            out.push(address);
        }
    }
    out
}

/// Lower-cased addr-specs of an address list (quotes and comments aware
/// enough for the tests).
pub fn addresses(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut depth) = (false, false, 0u32);
    let mut item = String::new();
    let mut push = |item: &mut String| {
        let a = match (item.find('<'), item.rfind('>')) {
            (Some(o), Some(c)) if o < c => item[o + 1..c].to_owned(),
            _ => item.clone(),
        };
        let a = a.trim().to_lowercase();
        if a.contains('@') {
            out.push(a);
        }
        item.clear();
    };
    for c in value.chars() {
        match c {
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            _ => {}
        }
        if depth > 0 || c == ')' || quoted || c == '"' {
            continue;
        }
        if (c == ',' || c == ';') && !angle {
            push(&mut item);
        } else if c == ':' && !angle {
            item.clear();
        } else {
            item.push(c);
        }
    }
    push(&mut item);
    out
}

/// The message without its Bcc field.
pub fn without_bcc(mime: &[u8], head_end: usize) -> Vec<u8> {
    let head = String::from_utf8_lossy(&mime[..head_end]);
    let mut out = String::new();
    let mut skipping = false;
    for line in head.split_inclusive("\r\n") {
        if line.starts_with([' ', '\t']) {
            if !skipping {
                out.push_str(line);
            }
            continue;
        }
        skipping = line.to_ascii_lowercase().starts_with("bcc:");
        if !skipping {
            out.push_str(line);
        }
    }
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&mime[head_end..]);
    bytes
}

/// Adds `attachments` to a multipart draft before its closing delimiter.
pub fn assemble(mime: &[u8], attachments: &[(String, String, Vec<u8>)]) -> Vec<u8> {
    if attachments.is_empty() {
        return mime.to_vec();
    }
    let head_end = find(mime, b"\r\n\r\n").map_or(mime.len(), |n| n + 2);
    let boundary = fields(&mime[..head_end])
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .and_then(|(_, v)| {
            v.split(';').find_map(|p| {
                p.trim()
                    .strip_prefix("boundary=")
                    .map(|b| b.trim_matches('"').to_owned())
            })
        })
        .expect("a draft with attachments is multipart");
    let closing = format!("--{boundary}--");
    let at = find(mime, closing.as_bytes()).expect("closing delimiter");
    let mut out = mime[..at].to_vec();
    for (name, ct, bytes) in attachments {
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: {ct}; name=\"{name}\"\r\n\
                 Content-Disposition: attachment; filename=\"{name}\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n"
            )
            .as_bytes(),
        );
        for line in STANDARD.encode(bytes).as_bytes().chunks(76) {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(&mime[at..]);
    out
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_recipient_named_twice_is_delivered_once() {
        let fields = vec![
            (
                "To".to_owned(),
                "Bob <bob@example.test>, carol@example.test".to_owned(),
            ),
            ("Cc".to_owned(), "BOB@Example.Test".to_owned()),
            (
                "Bcc".to_owned(),
                "carol@example.test, dave@example.test".to_owned(),
            ),
            ("Subject".to_owned(), "x@example.test".to_owned()),
        ];
        assert_eq!(
            super::distinct_recipients(&fields),
            [
                "bob@example.test",
                "carol@example.test",
                "dave@example.test"
            ]
        );
    }
}
