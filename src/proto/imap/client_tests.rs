//! Client-side transcripts. Every script is played whole and byte by byte
//! (see `transcript`); `S:` lines are what mailgate sends.

use bytes::BytesMut;

use super::*;
use crate::proto::imap::transcript::{Action, Described, Flow, call, feed, run};
use crate::proto::sasl;
use crate::proto::{ClientLimits, ClientOptions};

const CAPS: &str = "IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN AUTH=LOGIN";

impl Described for ImapClient {
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

#[path = "client_login_tests.rs"]
mod login;

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
fn logindisabled_never_invites_a_literal_password() {
    let strict = ClientOptions {
        starttls_available: true,
        require_tls_for_auth: true,
        ..opts()
    };
    let out = play(
        strict,
        &[feed(b"a LOGIN {5}\r\nb LOGIN alice {2}\r\nc NOOP\r\n")],
    );
    assert_eq!(
        out,
        [
            "S: a NO [PRIVACYREQUIRED] Log in only after STARTTLS\r\n",
            "S: b NO [PRIVACYREQUIRED] Log in only after STARTTLS\r\n",
            "S: c OK NOOP completed\r\n",
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
