//! Just enough of RFC 9051 §7 response syntax for the upstream login: the
//! continuation request (`+`), untagged responses (`*`) and tagged status
//! responses, plus the `[CODE ...]` that may open their text (§7.1).

use super::text::capability_list;

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Response<'a> {
    /// `+ <text or base64>`
    Continuation(&'a [u8]),
    /// `* <kind> <rest>`, kind upper-cased (`OK`, `BYE`, `CAPABILITY`, ...).
    Untagged { kind: String, rest: &'a [u8] },
    /// `<tag> <status> <rest>`, status upper-cased.
    Tagged {
        tag: &'a [u8],
        status: String,
        rest: &'a [u8],
    },
}

/// Classifies one response line (terminator already stripped).
pub(super) fn parse(line: &[u8]) -> Option<Response<'_>> {
    if let Some(rest) = line.strip_prefix(b"+") {
        return Some(Response::Continuation(
            rest.strip_prefix(b" ").unwrap_or(rest),
        ));
    }
    let (first, rest) = split_word(line);
    let (second, rest) = split_word(rest);
    let word = String::from_utf8_lossy(second).to_ascii_uppercase();
    match first {
        b"" => None,
        b"*" => Some(Response::Untagged { kind: word, rest }),
        tag => Some(Response::Tagged {
            tag,
            status: word,
            rest,
        }),
    }
}

/// The name of the response code opening `resp_text`, upper-cased, and its arguments.
pub(super) fn code(resp_text: &[u8]) -> Option<(String, &[u8])> {
    let inner = resp_text.strip_prefix(b"[")?;
    let end = inner.iter().position(|&b| b == b']')?;
    let (name, args) = split_word(&inner[..end]);
    Some((String::from_utf8_lossy(name).to_ascii_uppercase(), args))
}

/// Capabilities from a `[CAPABILITY ...]` code opening `resp_text`.
pub(super) fn capabilities_in_code(resp_text: &[u8]) -> Option<String> {
    match code(resp_text)? {
        (name, args) if name == "CAPABILITY" => capability_list(args),
        _ => None,
    }
}

fn split_word(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&b| b == b' ') {
        Some(sp) => (&line[..sp], &line[sp + 1..]),
        None => (line, &line[line.len()..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_three_kinds() {
        assert_eq!(parse(b"+ eyJ9"), Some(Response::Continuation(b"eyJ9")));
        assert_eq!(parse(b"+"), Some(Response::Continuation(b"")));
        assert_eq!(
            parse(b"* ok [CAPABILITY IMAP4rev1] hi"),
            Some(Response::Untagged {
                kind: "OK".into(),
                rest: b"[CAPABILITY IMAP4rev1] hi"
            })
        );
        assert_eq!(
            parse(b"mg1 NO failed"),
            Some(Response::Tagged {
                tag: b"mg1",
                status: "NO".into(),
                rest: b"failed"
            })
        );
        assert_eq!(parse(b""), None);
    }

    #[test]
    fn reads_response_codes() {
        assert_eq!(
            code(b"[UNAVAILABLE] later"),
            Some(("UNAVAILABLE".into(), &b""[..]))
        );
        assert_eq!(code(b"no code"), None);
        assert_eq!(code(b"[unterminated"), None);
        assert_eq!(
            capabilities_in_code(b"[capability IMAP4rev1 IDLE] done").as_deref(),
            Some("IMAP4rev1 IDLE")
        );
        assert_eq!(capabilities_in_code(b"[ALERT] x"), None);
    }
}
