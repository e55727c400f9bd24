//! Text that crosses from one party to another. Reasons and capability lists may
//! come from the provider (or from configuration) and end up on the legacy
//! client's wire or in the log, so they are reduced to what IMAP allows there:
//! `resp-text` is printable 7-bit text without CR/LF (RFC 9051 §9, `TEXT-CHAR`),
//! and a capability is an atom (RFC 9051 §9, `capability`).

/// Longest human-readable text mailgate puts into one response or rejection.
pub(super) const MAX_TEXT: usize = 400;

/// Longest capability list passed on to the client after login. Real lists are
/// a few hundred bytes; this only bounds what a hostile upstream can make us echo.
pub(super) const MAX_CAPABILITY_LIST: usize = 4096;

/// Printable ASCII only, no CR/LF or other controls, at most [`MAX_TEXT`] bytes;
/// `fallback` when nothing printable is left.
pub(super) fn sanitise(raw: &[u8], fallback: &str) -> String {
    sanitise_upto(raw, fallback, MAX_TEXT)
}

/// [`sanitise`] up to `max` bytes: rejection texts are cut only after the
/// token has been scrubbed from them (`proto::credential`).
pub(super) fn sanitise_upto(raw: &[u8], fallback: &str, max: usize) -> String {
    let mut out: String = raw
        .iter()
        .take(max)
        .map(|&b| match b {
            0x20..=0x7e => b as char,
            b'\t' | b'\r' | b'\n' => ' ',
            _ => '?',
        })
        .collect();
    let trimmed = out.trim();
    if trimmed.is_empty() {
        return fallback.to_owned();
    }
    if trimmed.len() != out.len() {
        out = trimmed.to_owned();
    }
    out
}

/// Keeps the space-separated words of `raw` that are valid capability atoms,
/// up to [`MAX_CAPABILITY_LIST`] bytes; `None` if none is left.
pub(super) fn capability_list(raw: &[u8]) -> Option<String> {
    let mut list = String::new();
    for word in raw.split(|&b| b == b' ').filter(|w| is_atom(w)) {
        if list.len() + word.len() + 1 > MAX_CAPABILITY_LIST {
            break;
        }
        if !list.is_empty() {
            list.push(' ');
        }
        list.extend(word.iter().map(|&b| b as char));
    }
    (!list.is_empty()).then_some(list)
}

/// Whether `list` (as built by [`capability_list`]) names `capability`.
pub(super) fn has_capability(list: &str, capability: &str) -> bool {
    list.split(' ').any(|c| c.eq_ignore_ascii_case(capability))
}

/// RFC 9051 `atom`: one or more `ATOM-CHAR` (no atom-specials).
pub(super) fn is_atom(word: &[u8]) -> bool {
    !word.is_empty() && word.iter().all(|&b| is_atom_char(b))
}

fn is_atom_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && !b"(){%*\"\\]".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitise_strips_controls_and_bounds_length() {
        assert_eq!(sanitise(b"a\r\nb\x00c\xffd", "x"), "a  b?c?d");
        assert_eq!(sanitise(b" \r\n ", "fallback"), "fallback");
        assert_eq!(sanitise(&[b'a'; 5000], "x").len(), MAX_TEXT);
    }

    #[test]
    fn capability_list_keeps_atoms_only() {
        let list = capability_list(b"IMAP4rev1  AUTH=XOAUTH2 bad] x\"y SASL-IR").unwrap();
        assert_eq!(list, "IMAP4rev1 AUTH=XOAUTH2 SASL-IR");
        assert!(has_capability(&list, "sasl-ir"));
        assert!(!has_capability(&list, "STARTTLS"));
        assert_eq!(capability_list(b"] ) ("), None);
        let long = b"ABCDEFGH ".repeat(1000);
        assert!(capability_list(&long).unwrap().len() <= MAX_CAPABILITY_LIST);
    }
}
