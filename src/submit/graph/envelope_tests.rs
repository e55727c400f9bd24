use super::*;

fn rcpts(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn rewritten(content: &str, list: &[&str]) -> String {
    String::from_utf8(rewrite(content.as_bytes(), &rcpts(list)).unwrap()).unwrap()
}

#[test]
fn header_recipients_matching_the_envelope_stay_as_written() {
    let m = "From: a@x\r\nTo: \"B, Bee\" <b@x>, c@x\r\nSubject: hi\r\n\r\nbody\r\n";
    assert_eq!(
        rewritten(m, &["b@x", "C@X"]),
        "From: a@x\r\nTo: \"B, Bee\" <b@x>,\r\n c@x\r\nSubject: hi\r\n\r\nbody\r\n"
    );
}

#[test]
fn envelope_only_recipients_become_bcc() {
    let m = "From: a@x\r\nTo: b@x\r\n\r\nbody\r\n";
    assert_eq!(
        rewritten(m, &["b@x", "hidden@y"]),
        "From: a@x\r\nTo: b@x\r\nBcc: <hidden@y>\r\n\r\nbody\r\n"
    );
}

#[test]
fn header_only_recipients_are_removed_and_empty_fields_dropped() {
    let m = "From: a@x\r\nTo: b@x,\r\n  Carol (work) <carol@x>\r\nCc: d@x\r\n\r\nbody\r\n";
    assert_eq!(
        rewritten(m, &["b@x"]),
        "From: a@x\r\nTo: b@x\r\n\r\nbody\r\n"
    );
}

#[test]
fn client_bcc_is_replaced_by_the_envelope() {
    let m = "To: b@x\r\nBcc: secret@x,\r\n other@x\r\nSubject: s\r\n\r\nbody";
    assert_eq!(
        rewritten(m, &["b@x", "other@x"]),
        "To: b@x\r\nSubject: s\r\nBcc: <other@x>\r\n\r\nbody"
    );
}

#[test]
fn groups_comments_and_quotes_are_understood() {
    let m = "To: Team: \"x@evil\" <b@x>, (c@x) d@x;, undisclosed-recipients:;\r\n\r\n";
    assert_eq!(
        rewritten(m, &["b@x", "d@x", "c@x"]),
        "To: \"x@evil\" <b@x>,\r\n (c@x) d@x\r\nBcc: <c@x>\r\n\r\n"
    );
}

#[test]
fn body_and_other_fields_stay_byte_for_byte() {
    let body = "line\r\nTo: not-a-header@x\r\n\r\n\u{e9}t\u{e9}\r\n";
    let m = format!("Subject: =?utf-8?q?caf=C3=A9?=\r\nX-A: 1\r\n\tmore\r\nTo: b@x\r\n\r\n{body}");
    let out = rewritten(&m, &["b@x"]);
    assert!(out.ends_with(&format!("\r\n\r\n{body}")), "{out}");
    assert!(out.starts_with("Subject: =?utf-8?q?caf=C3=A9?=\r\nX-A: 1\r\n\tmore\r\nTo: b@x\r\n"));
}

#[test]
fn non_ascii_addresses_and_case_match() {
    let m = "To: J\u{fc}rgen <J\u{dc}RGEN@b\u{fc}ro.example>\r\n\r\n";
    assert_eq!(
        rewritten(m, &["j\u{fc}rgen@B\u{dc}RO.example"]),
        "To: J\u{fc}rgen <J\u{dc}RGEN@b\u{fc}ro.example>\r\n\r\n"
    );
}

#[test]
fn refuses_what_it_cannot_rewrite() {
    assert_eq!(
        rewrite(b"\r\nbody", &rcpts(&["b@x"])),
        Err(EnvelopeError::NoHeader)
    );
    assert_eq!(
        rewrite(b"To: b@x\r\n\r\n", &[]),
        Err(EnvelopeError::NoRecipient)
    );
}

#[test]
fn header_without_body_keeps_its_last_line() {
    assert_eq!(rewritten("To: b@x", &["b@x"]), "To: b@x\r\n\r\n");
}
