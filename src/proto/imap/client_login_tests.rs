//! LOGIN and AUTHENTICATE transcripts, and what the driver reports back.

use bytes::BytesMut;

use super::*;

/// LOGIN astring forms: atoms, quoted strings with escapes, synchronising and
/// non-synchronising literals, and mixtures.
#[test]
fn login_astring_forms() {
    let ready = "S: + Ready for literal data\r\n";
    let table: &[(&[u8], &[&str], &str)] = &[
        (b"a LOGIN alice secret\r\n", &[], "alice / secret"),
        (
            b"a login alice@example.com p%ss*w]rd\r\n",
            &[],
            "alice@example.com / p%ss*w]rd",
        ),
        (b"a LOGIN \"alice\" \"pa ss\"\r\n", &[], "alice / pa ss"),
        (
            b"a LOGIN \"al\\\"ice\" \"back\\\\slash\"\r\n",
            &[],
            "al\"ice / back\\slash",
        ),
        (
            b"a LOGIN \"\" \"\"\r\n",
            &["S: a BAD Empty user name\r\n"],
            "",
        ),
        (
            b"a LOGIN {5}\r\nalice {6}\r\nse cr\"\r\n",
            &[ready, ready],
            "alice / se cr\"",
        ),
        (
            b"a LOGIN {5+}\r\nalice {8+}\r\np\r\nw{1}\\ \r\n",
            &[],
            "alice / p\r\nw{1}\\",
        ),
        (b"a LOGIN alice {0}\r\n\r\n", &[ready], "alice / "),
        (b"a LOGIN \"alice\" {3+}\r\npw!\r\n", &[], "alice / pw!"),
        (b"a LOGIN {5}\r\nalice \"pw\"\r\n", &[ready], "alice / pw"),
        (
            b"a LOGIN gr\xc3\xbc\xc3\x9f pw\r\n",
            &[],
            "gr\u{fc}\u{df} / pw",
        ),
    ];
    for (input, replies, login) in table {
        let out = client(input);
        let mut expected: Vec<String> = replies.iter().map(|r| r.to_string()).collect();
        if !login.is_empty() {
            expected.push(format!("login: {login} / None"));
        }
        assert_eq!(out, expected, "{}", String::from_utf8_lossy(input));
    }
}

#[test]
fn malformed_logins_are_bad() {
    let table: &[(&[u8], &str)] = &[
        (
            b"a LOGIN alice\r\n",
            "a BAD LOGIN expects a user name and a password",
        ),
        (
            b"a LOGIN a b c\r\n",
            "a BAD LOGIN expects a user name and a password",
        ),
        (
            b"a LOGIN (a) b\r\n",
            "a BAD LOGIN expects a user name and a password",
        ),
        (
            b"a LOGIN alice \"pw\r\n",
            "a BAD Unterminated quoted string",
        ),
        (
            b"a LOGIN alice \"p\\w\"\r\n",
            "a BAD Invalid escape in quoted string",
        ),
        (
            b"a LOGIN alice \"pw\"x\r\n",
            "a BAD Missing space after quoted string",
        ),
        (b"a LOGIN al\"ice pw\r\n", "a BAD Invalid character in atom"),
        (
            b"a LOGIN alice \xff\xfe\r\n",
            "a BAD User name and password must be UTF-8",
        ),
    ];
    for (input, reply) in table {
        assert_eq!(
            client(input),
            [format!("S: {reply}\r\n")],
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn literal_needs_space_after_it() {
    let out = client(b"a LOGIN {5}\r\nalicepw\r\nb NOOP\r\n");
    assert_eq!(
        out,
        [
            "S: + Ready for literal data\r\n",
            "S: a BAD Missing space after literal\r\n",
            "S: b OK NOOP completed\r\n",
        ]
    );
}

#[test]
fn bytes_after_login_stay_in_the_buffer() {
    let out = client(b"a1 LOGIN alice pw\r\na2 SELECT INBOX\r\na3 FETCH 1 BODY[]\r\n");
    assert_eq!(
        out,
        [
            "login: alice / pw / None",
            "leftover: a2 SELECT INBOX\r\na3 FETCH 1 BODY[]\r\n"
        ]
    );
    let mut c = ImapClient::new(opts());
    let mut buf = BytesMut::from(&b"a1 LOGIN alice pw\r\na2 NOOP\r\n"[..]);
    assert!(matches!(c.step(&mut buf), ClientStep::Login(_)));
    assert_eq!(c.step(&mut buf), ClientStep::NeedMore);
    assert_eq!(&buf[..], b"a2 NOOP\r\n");
}

#[test]
fn pipelined_commands_then_login_success() {
    let script = [
        feed(b"a1 NOOP\r\na2 LOGIN alice pw\r\na3 SELECT INBOX\r\n"),
        succeeded(Some("IMAP4rev1 IDLE AUTH=XOAUTH2")),
        feed(b"a4 IDLE\r\n"),
    ];
    assert_eq!(
        play(opts(), &script),
        [
            "S: a1 OK NOOP completed\r\n",
            "login: alice / pw / None",
            "S: a2 OK [CAPABILITY IMAP4rev1 IDLE AUTH=XOAUTH2] LOGIN completed\r\n",
            "leftover: a3 SELECT INBOX\r\na4 IDLE\r\n",
        ]
    );
}

#[test]
fn login_success_without_capabilities() {
    let script = [
        feed(b"x AUTHENTICATE PLAIN AGFsaWNlAHB3\r\n"),
        succeeded(None),
    ];
    assert_eq!(
        play(opts(), &script),
        [
            "login: alice / pw / None",
            "S: x OK AUTHENTICATE completed\r\n"
        ]
    );
    let hostile = [
        feed(b"x LOGIN a b\r\n"),
        succeeded(Some("IMAP4rev1 ]\r\n* BYE x")),
    ];
    assert_eq!(
        play(opts(), &hostile)[1],
        "S: x OK [CAPABILITY IMAP4rev1 BYE x] LOGIN completed\r\n"
    );
}

#[test]
fn failed_login_may_be_retried_then_closes() {
    let limits = ClientLimits {
        max_auth_failures: 2,
        ..ClientLimits::default()
    };
    let script = [
        feed(b"a1 LOGIN alice wrong\r\na2 NOOP\r\n"),
        failed(LoginFailure::BadCredentials),
        feed(b"a3 LOGIN alice wrong2\r\n"),
        failed(LoginFailure::BadCredentials),
        feed(b"a4 NOOP\r\n"),
    ];
    let no = "NO [AUTHENTICATIONFAILED] Authentication failed: unknown account or wrong local password (accounts are enrolled with: mailgate login ADDRESS)";
    assert_eq!(
        play(with_limits(limits), &script),
        [
            "login: alice / wrong / None".to_string(),
            format!("S: a1 {no}\r\n"),
            "S: a2 OK NOOP completed\r\n".into(),
            "login: alice / wrong2 / None".into(),
            format!(
                "S: a3 {no}\r\n* BYE Too many failed logins\r\n[close: too many failed logins]"
            ),
        ]
    );
}

#[test]
fn failure_texts_follow_the_error_table() {
    let table = [
        (
            LoginFailure::NeedsAuthorisation("Run: mailgate login alice".into()),
            "NO [AUTHENTICATIONFAILED] Run: mailgate login alice",
        ),
        (
            LoginFailure::Temporary("login.microsoftonline.com unreachable".into()),
            "NO [UNAVAILABLE] login.microsoftonline.com unreachable",
        ),
        (
            LoginFailure::UpstreamRejected("AUTHENTICATE failed.".into()),
            "NO [AUTHENTICATIONFAILED] Upstream refused the login: AUTHENTICATE failed.",
        ),
        (
            LoginFailure::UpstreamRejected("evil\r\n* OK injected\x00".into()),
            "NO [AUTHENTICATIONFAILED] Upstream refused the login: evil  * OK injected?",
        ),
        (
            LoginFailure::Temporary("\r\n".into()),
            "NO [UNAVAILABLE] Temporarily unavailable",
        ),
    ];
    for (failure, text) in table {
        let script = [feed(b"t LOGIN u p\r\n"), failed(failure)];
        assert_eq!(play(opts(), &script)[1], format!("S: t {text}\r\n"));
    }
    let long = LoginFailure::Temporary("x".repeat(10_000));
    let mut c = ImapClient::new(opts());
    c.step(&mut BytesMut::from(&b"t LOGIN u p\r\n"[..]));
    let ClientStep::Reply(reply) = c.login_failed(&long) else {
        panic!("expected a reply")
    };
    assert!(reply.len() < 500, "{}", reply.len());
}

#[test]
fn authenticate_plain_forms() {
    let plain = sasl::encode(b"\0alice\0pw");
    let with_authzid = sasl::encode(b"shared@x\0alice\0pw");
    let out = client(format!("a AUTHENTICATE plain {plain}\r\nnext").as_bytes());
    assert_eq!(out, ["login: alice / pw / None", "leftover: next"]);
    let out = client(format!("a AUTHENTICATE PLAIN\r\n{with_authzid}\r\n").as_bytes());
    assert_eq!(out, ["S: + \r\n", "login: alice / pw / Some(\"shared@x\")"]);
    let table: &[(&[u8], &[&str])] = &[
        (
            b"a AUTHENTICATE PLAIN =\r\n",
            &["S: a BAD Malformed SASL response\r\n"],
        ),
        (
            b"a AUTHENTICATE PLAIN !!!\r\n",
            &["S: a BAD SASL response is not valid base64\r\n"],
        ),
        (
            b"a AUTHENTICATE PLAIN\r\n*\r\n",
            &["S: + \r\n", "S: a BAD Authentication cancelled\r\n"],
        ),
        (
            b"a AUTHENTICATE PLAIN\r\n=\r\n",
            &["S: + \r\n", "S: a BAD Malformed SASL response\r\n"],
        ),
        (
            b"a AUTHENTICATE PLAIN \"AGEAYg==\"\r\n",
            &["S: a BAD AUTHENTICATE expects a mechanism\r\n"],
        ),
        (
            b"a AUTHENTICATE\r\n",
            &["S: a BAD AUTHENTICATE expects a mechanism\r\n"],
        ),
        (
            b"a AUTHENTICATE CRAM-MD5\r\n",
            &["S: a NO Unsupported authentication mechanism\r\n"],
        ),
    ];
    for (input, expected) in table {
        assert_eq!(
            client(input),
            *expected,
            "{}",
            String::from_utf8_lossy(input)
        );
    }
    let long = "A".repeat(sasl::MAX_SASL_MESSAGE + 4);
    let out = client(format!("a AUTHENTICATE PLAIN\r\n{long}\r\n").as_bytes());
    assert_eq!(out, ["S: + \r\n", "S: a BAD SASL response too long\r\n"]);
}

#[test]
fn authenticate_login_forms() {
    let (user, pass) = (sasl::encode(b"alice"), sasl::encode(b"p w"));
    let out = client(format!("a AUTHENTICATE LOGIN\r\n{user}\r\n{pass}\r\nrest\r\n").as_bytes());
    assert_eq!(
        out,
        [
            "S: + VXNlcm5hbWU6\r\n",
            "S: + UGFzc3dvcmQ6\r\n",
            "login: alice / p w / None",
            "leftover: rest\r\n"
        ]
    );
    let out = client(format!("a AUTHENTICATE LOGIN {user}\r\n{pass}\r\n").as_bytes());
    assert_eq!(out, ["S: + UGFzc3dvcmQ6\r\n", "login: alice / p w / None"]);
    let out = client(format!("a AUTHENTICATE LOGIN\r\n{user}\r\n*\r\nb NOOP\r\n").as_bytes());
    assert_eq!(
        out,
        [
            "S: + VXNlcm5hbWU6\r\n",
            "S: + UGFzc3dvcmQ6\r\n",
            "S: a BAD Authentication cancelled\r\n",
            "S: b OK NOOP completed\r\n",
        ]
    );
    let out = client(b"a AUTHENTICATE LOGIN\r\n%%%\r\n");
    assert_eq!(
        out,
        [
            "S: + VXNlcm5hbWU6\r\n",
            "S: a BAD SASL response is not valid base64\r\n"
        ]
    );
    let out = client(b"a AUTHENTICATE LOGIN =\r\n");
    assert_eq!(out, ["S: a BAD Empty user name\r\n"]);
}
