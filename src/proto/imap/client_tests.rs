//! Client-side transcripts. Every script is played whole and byte by byte
//! (see `transcript`); `S:` lines are what mailgate sends.

use bytes::BytesMut;

use super::*;
use crate::proto::imap::transcript::{Action, Flow, Machine, call, feed, run};
use crate::proto::{ClientLimits, ClientOptions};

const CAPS: &str = "IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN AUTH=LOGIN";

impl Machine for ImapClient {
    type Step = ClientStep;

    fn step(&mut self, input: &mut BytesMut) -> ClientStep {
        ImapClient::step(self, input)
    }

    fn describe(step: &ClientStep) -> (Flow, String) {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match step {
            ClientStep::NeedMore => (Flow::NeedMore, String::new()),
            ClientStep::Reply(b) => (Flow::Continue, format!("S: {}", text(b))),
            ClientStep::StartTls(b) => (Flow::Discard, format!("S: {}[starttls]", text(b))),
            ClientStep::Login(c) => {
                let (user, pass) = (&c.username, c.password.expose());
                (
                    Flow::Pause,
                    format!("login: {user} / {pass} / {:?}", c.authzid),
                )
            }
            ClientStep::Close { reply, reason } => {
                (Flow::Stop, format!("S: {}[close: {reason}]", text(reply)))
            }
        }
    }
}

fn opts() -> ClientOptions {
    ClientOptions {
        hostname: "mailgate.test".into(),
        tls_active: false,
        starttls_available: false,
        require_tls_for_auth: false,
        limits: ClientLimits::default(),
    }
}

fn with_limits(limits: ClientLimits) -> ClientOptions {
    ClientOptions { limits, ..opts() }
}

fn play(opts: ClientOptions, script: &[Action<ImapClient>]) -> Vec<String> {
    run(|| ImapClient::new(opts.clone()), script)
}

fn client(input: &[u8]) -> Vec<String> {
    play(opts(), &[feed(input)])
}

fn failed(failure: LoginFailure) -> Action<ImapClient> {
    call(move |c: &mut ImapClient| Some(c.login_failed(&failure)))
}

fn succeeded(capabilities: Option<&str>) -> Action<ImapClient> {
    let up = UpstreamSuccess {
        line: b"mg1 OK AUTHENTICATE completed.".to_vec(),
        capabilities: capabilities.map(str::to_owned),
    };
    call(move |c: &mut ImapClient| Some(ClientStep::Reply(c.login_succeeded(&up))))
}

fn tls_up() -> Action<ImapClient> {
    call(|c: &mut ImapClient| {
        c.tls_established();
        None
    })
}

#[test]
fn greeting_shows_own_capabilities() {
    let greeting = |opts| String::from_utf8(ImapClient::new(opts).greeting()).unwrap();
    assert_eq!(
        greeting(opts()),
        format!("* OK [CAPABILITY {CAPS}] mailgate IMAP4rev1 ready\r\n")
    );
    let starttls = ClientOptions {
        starttls_available: true,
        ..opts()
    };
    assert!(greeting(starttls).contains("ID STARTTLS AUTH=PLAIN"));
    let strict = ClientOptions {
        starttls_available: true,
        require_tls_for_auth: true,
        ..opts()
    };
    assert_eq!(
        greeting(strict),
        "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID STARTTLS LOGINDISABLED] mailgate IMAP4rev1 ready\r\n"
    );
    let tls = ClientOptions {
        tls_active: true,
        starttls_available: true,
        ..opts()
    };
    assert!(!greeting(tls).contains("STARTTLS"));
}

#[test]
fn capability_noop_id_logout() {
    let out = client(
        b"a1 capability\r\nA2 NoOp\r\na3 ID (\"name\" \"mutt\")\r\na4 ID NIL\r\na5 LOGOUT\r\nafter",
    );
    assert_eq!(
        out,
        [
            format!("S: * CAPABILITY {CAPS}\r\na1 OK CAPABILITY completed\r\n"),
            "S: A2 OK NOOP completed\r\n".into(),
            "S: * ID (\"name\" \"mailgate\")\r\na3 OK ID completed\r\n".into(),
            "S: * ID (\"name\" \"mailgate\")\r\na4 OK ID completed\r\n".into(),
            "S: * BYE mailgate logging out\r\na5 OK LOGOUT completed\r\n[close: client logged out]"
                .into(),
            "leftover: after".into(),
        ]
    );
}

#[test]
fn bare_lf_and_unexpected_arguments() {
    let out = client(b"a1 NOOP\na2 CAPABILITY now\r\na3 LOGOUT please\r\n");
    assert_eq!(
        out,
        [
            "S: a1 OK NOOP completed\r\n",
            "S: a2 BAD Unexpected arguments\r\n",
            "S: a3 BAD Unexpected arguments\r\n",
        ]
    );
}

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
    let no =
        "NO [AUTHENTICATIONFAILED] Authentication failed: unknown account or wrong local password";
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

#[test]
fn starttls_leaves_later_bytes_for_the_driver() {
    let starttls = ClientOptions {
        starttls_available: true,
        ..opts()
    };
    let mut c = ImapClient::new(starttls.clone());
    let mut buf = BytesMut::from(&b"a STARTTLS\r\nb LOGIN evil injected\r\n"[..]);
    assert_eq!(
        c.step(&mut buf),
        ClientStep::StartTls(b"a OK Begin TLS negotiation now\r\n".to_vec())
    );
    assert_eq!(&buf[..], b"b LOGIN evil injected\r\n");

    let script = [
        feed(b"a STARTTLS\r\nb LOGIN evil injected\r\n"),
        tls_up(),
        feed(b"c CAPABILITY\r\nd STARTTLS\r\ne LOGIN alice pw\r\n"),
    ];
    assert_eq!(
        play(starttls, &script),
        [
            "S: a OK Begin TLS negotiation now\r\n[starttls]".to_string(),
            format!("S: * CAPABILITY {CAPS}\r\nc OK CAPABILITY completed\r\n"),
            "S: d BAD TLS is already active\r\n".into(),
            "login: alice / pw / None".into(),
        ]
    );
    assert_eq!(
        client(b"a STARTTLS\r\n"),
        ["S: a BAD STARTTLS is not available\r\n"]
    );
}

#[test]
fn logindisabled_until_tls() {
    let strict = ClientOptions {
        starttls_available: true,
        require_tls_for_auth: true,
        ..opts()
    };
    let no = "NO [PRIVACYREQUIRED] Log in only after STARTTLS";
    let script = [
        feed(b"a CAPABILITY\r\nb LOGIN alice pw\r\nc AUTHENTICATE PLAIN AGFsaWNlAHB3\r\nd AUTHENTICATE LOGIN\r\ne STARTTLS\r\n"),
        tls_up(),
        feed(b"f CAPABILITY\r\ng LOGIN alice pw\r\n"),
    ];
    assert_eq!(
        play(strict, &script),
        [
            "S: * CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID STARTTLS LOGINDISABLED\r\na OK CAPABILITY completed\r\n".to_string(),
            format!("S: b {no}\r\n"),
            format!("S: c {no}\r\n"),
            format!("S: d {no}\r\n"),
            "S: e OK Begin TLS negotiation now\r\n[starttls]".into(),
            format!("S: * CAPABILITY {CAPS}\r\nf OK CAPABILITY completed\r\n"),
            "login: alice / pw / None".into(),
        ]
    );
}

#[test]
fn other_commands_and_bad_tags_are_refused() {
    let out = client(
        b"a SELECT INBOX\r\n* NOOP\r\n+a NOOP\r\n\r\nb\r\nc{ NOOP\r\n(x) NOOP\r\nok] NOOP\r\n",
    );
    assert_eq!(
        out,
        [
            "S: a BAD Command not allowed before login\r\n",
            "S: * BAD Missing or invalid tag\r\n",
            "S: * BAD Missing or invalid tag\r\n",
            "S: * BAD Missing or invalid tag\r\n",
            "S: b BAD Missing command\r\n",
            "S: * BAD Missing or invalid tag\r\n",
            "S: * BAD Missing or invalid tag\r\n",
            "S: ok] OK NOOP completed\r\n",
        ]
    );
}

#[test]
fn literals_on_other_commands_keep_the_stream_in_sync() {
    let out = client(b"a SELECT {5+}\r\nb OK \r\nc ID ({4}\r\nname {2+}\r\nmg)\r\nd NOOP\r\n");
    assert_eq!(
        out,
        [
            "S: a BAD Command not allowed before login\r\n",
            "S: + Ready for literal data\r\n",
            "S: * ID (\"name\" \"mailgate\")\r\nc OK ID completed\r\n",
            "S: d OK NOOP completed\r\n",
        ]
    );
}

#[test]
fn huge_literals_never_allocate() {
    let limits = ClientLimits {
        max_literal: 16,
        ..ClientLimits::default()
    };
    let script = [feed(
        b"a LOGIN {4294967296}\r\nb LOGIN {99999999999999999999999999999}\r\nc LOGIN {17}\r\nd LOGIN {16}\r\n",
    )];
    assert_eq!(
        play(with_limits(limits), &script),
        [
            "S: a BAD Literal too large\r\n",
            "S: b BAD Literal too large\r\n",
            "S: c BAD Literal too large\r\n",
            "S: + Ready for literal data\r\n",
        ]
    );
    let out = play(
        with_limits(limits),
        &[feed(b"a LOGIN {4294967296+}\r\nxxxx")],
    );
    assert_eq!(
        out,
        [
            "S: * BYE Literal too large\r\n[close: Literal too large]",
            "leftover: xxxx"
        ]
    );
}

#[test]
fn literal_count_is_bounded() {
    let mut input = b"a ID (".to_vec();
    for _ in 0..=super::super::command::MAX_LITERALS_PER_COMMAND {
        input.extend_from_slice(b"{1+}\r\nx ");
    }
    input.extend_from_slice(b")\r\n");
    let out = client(&input);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(
        out[0],
        "S: * BYE Too many literals\r\n[close: Too many literals]"
    );
}

#[test]
fn command_count_is_bounded() {
    let limits = ClientLimits {
        max_commands: 3,
        ..ClientLimits::default()
    };
    let out = play(
        with_limits(limits),
        &[feed(b"a NOOP\r\n* x\r\nc SELECT x\r\nd NOOP\r\ne NOOP\r\n")],
    );
    assert_eq!(
        out,
        [
            "S: a OK NOOP completed\r\n",
            "S: * BAD Missing or invalid tag\r\n",
            "S: c BAD Command not allowed before login\r\n",
            "S: * BYE Too many commands before login\r\n[close: Too many commands before login]",
            "leftover: e NOOP\r\n",
        ]
    );
}

#[test]
fn long_lines_close() {
    let limits = ClientLimits {
        max_line: 32,
        ..ClientLimits::default()
    };
    let mut input = b"a LOGIN alice ".to_vec();
    input.extend_from_slice(&[b'x'; 40]);
    input.extend_from_slice(b"\r\n");
    let out = play(with_limits(limits), &[feed(&input)]);
    assert_eq!(out[0], "S: * BYE Line too long\r\n[close: Line too long]");
    let sasl = play(
        with_limits(limits),
        &[feed(b"a AUTHENTICATE PLAIN\r\n"), feed(&[b'A'; 64])],
    );
    assert_eq!(sasl[1], "S: * BYE Line too long\r\n[close: Line too long]");
}

#[test]
fn goodbye_texts() {
    let c = ImapClient::new(opts());
    assert_eq!(
        c.timeout_reply(),
        b"* BYE Autologout; idle for too long\r\n"
    );
    assert_eq!(c.shutdown_reply(), b"* BYE mailgate is shutting down\r\n");
}
