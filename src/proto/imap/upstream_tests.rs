//! Upstream transcripts, played whole and byte by byte. `C:` lines are what
//! mailgate sends to the provider.

use std::time::Duration;

use bytes::BytesMut;

use super::*;
use crate::proto::imap::transcript::{Described, Flow, feed, run};

const TOKEN: &str = "EwBoA8l6BAAU-very-secret-token";
const MS_GREETING: &[u8] =
    b"* OK The Microsoft Exchange IMAP4 service is ready. [TQBOADIAUABSADAAMAA1AEMAQQAwADAAMAAzAC4A]\r\n";

impl Described for ImapUpstream {
    fn describe(step: &UpstreamStep) -> (Flow, String) {
        match step {
            UpstreamStep::NeedMore => (Flow::NeedMore, String::new()),
            UpstreamStep::Send(bytes) => (
                Flow::Continue,
                format!("C: {}", String::from_utf8_lossy(bytes.expose())),
            ),
            UpstreamStep::StartTls => (Flow::Discard, "[starttls]".into()),
            UpstreamStep::Authenticated(s) => {
                let line = String::from_utf8_lossy(&s.line);
                (
                    Flow::Stop,
                    format!("authenticated: {line} caps={:?}", s.capabilities),
                )
            }
            UpstreamStep::Rejected(r) => (Flow::Stop, format!("rejected: {r:?}")),
        }
    }
}

fn login() -> UpstreamLogin {
    UpstreamLogin {
        user: "alice@example.com".into(),
        access_token: Secret::from(TOKEN),
    }
}

fn xoauth2() -> String {
    sasl::encode_xoauth2("alice@example.com", &Secret::from(TOKEN))
        .expose()
        .clone()
}

fn upstream(starttls: bool, chunks: &[&[u8]]) -> Vec<String> {
    let script: Vec<_> = chunks.iter().map(|c| feed(c)).collect();
    let out = run(|| ImapUpstream::new(login(), starttls), &script);
    if let Some(last) = out.last().filter(|l| l.starts_with("rejected")) {
        assert!(!last.contains(TOKEN), "token leaked into {last}");
    }
    out
}

fn rejected(rejection: UpstreamRejection) -> String {
    format!("rejected: {rejection:?}")
}

#[test]
fn microsoft_one_step_success() {
    let out = upstream(false, &[MS_GREETING, b"mg1 OK AUTHENTICATE completed.\r\n"]);
    assert_eq!(
        out,
        [
            format!("C: mg1 AUTHENTICATE XOAUTH2 {}\r\n", xoauth2()),
            "authenticated: mg1 OK AUTHENTICATE completed. caps=None".into(),
        ]
    );
}

#[test]
fn capabilities_from_greeting_and_ok_code() {
    let greeting = b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=PLAIN] ready\r\n";
    let ok = b"mg1 OK [CAPABILITY IMAP4rev1 IDLE MOVE] done\r\nmailbox data";
    let out = upstream(false, &[greeting, ok]);
    assert_eq!(
        out[1],
        "authenticated: mg1 OK [CAPABILITY IMAP4rev1 IDLE MOVE] done caps=Some(\"IMAP4rev1 IDLE MOVE\")"
    );
    assert_eq!(out[2], "leftover: mailbox data");
}

#[test]
fn two_step_without_sasl_ir_and_untagged_capability() {
    let greeting = b"* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] ready\r\n";
    let out = upstream(
        false,
        &[
            greeting,
            b"* 1 NOISE\r\n+ \r\n",
            b"* CAPABILITY IMAP4rev1 IDLE\r\nmg1 OK Success\r\n",
        ],
    );
    assert_eq!(
        out,
        [
            "C: mg1 AUTHENTICATE XOAUTH2\r\n".to_string(),
            format!("C: {}\r\n", xoauth2()),
            "authenticated: mg1 OK Success caps=Some(\"IMAP4rev1 IDLE\")".into(),
        ]
    );
}

#[test]
fn refuses_servers_without_xoauth2() {
    let greeting = b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready\r\n";
    let text = "upstream does not offer AUTH=XOAUTH2".to_string();
    assert_eq!(
        upstream(false, &[greeting]),
        [rejected(UpstreamRejection::Protocol(text))]
    );
}

#[test]
fn starttls_then_authenticate_without_new_greeting() {
    // The pre-TLS list (no AUTH=, no SASL-IR) is void once TLS is up.
    let greeting = b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n";
    let out = upstream(
        true,
        &[
            greeting,
            b"* NOTE hi\r\nmg1 OK Begin TLS\r\n* injected\r\n",
            b"mg2 OK Logged in\r\n",
        ],
    );
    assert_eq!(
        out,
        [
            "C: mg1 STARTTLS\r\n".to_string(),
            "[starttls]".into(),
            format!("C: mg2 AUTHENTICATE XOAUTH2 {}\r\n", xoauth2()),
            "authenticated: mg2 OK Logged in caps=None".into(),
        ]
    );
    let mut up = ImapUpstream::new(login(), true);
    let mut buf = BytesMut::from(&b"* OK ready\r\nmg1 OK go\r\n* injected\r\n"[..]);
    assert!(matches!(up.step(&mut buf), UpstreamStep::Send(_)));
    assert_eq!(up.step(&mut buf), UpstreamStep::StartTls);
    assert!(
        buf.is_empty(),
        "plaintext after the STARTTLS OK must be dropped"
    );
    assert!(matches!(up.step(&mut buf), UpstreamStep::Send(_)));
}

#[test]
fn starttls_refused() {
    let out = upstream(true, &[b"* OK hi\r\n", b"mg1 BAD unknown command\r\n"]);
    let text = "upstream refused STARTTLS: unknown command".to_string();
    assert_eq!(out[1], rejected(UpstreamRejection::Protocol(text)));
}

#[test]
fn error_challenge_gets_an_empty_line() {
    let json = r#"{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}"#;
    let challenge = format!("+ {}\r\n", sasl::encode(json.as_bytes()));
    let out = upstream(
        false,
        &[
            MS_GREETING,
            challenge.as_bytes(),
            b"mg1 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n",
        ],
    );
    assert_eq!(out[1], "C: \r\n");
    let text = format!("[AUTHENTICATIONFAILED] Invalid credentials ({json})");
    assert_eq!(out[2], rejected(UpstreamRejection::AuthFailed(text)));

    let twice = upstream(false, &[MS_GREETING, b"+ e30=\r\n+ e30=\r\n"]);
    let text = "upstream sent a second XOAUTH2 challenge".to_string();
    assert_eq!(twice[2], rejected(UpstreamRejection::Protocol(text)));
}

#[test]
fn failure_answers_are_classified() {
    let ms = 299_720;
    let table: &[(&[u8], UpstreamRejection)] = &[
        (b"mg1 NO AUTHENTICATE failed.\r\n", UpstreamRejection::AuthFailed("AUTHENTICATE failed.".into())),
        (
            b"mg1 BAD User is authenticated but not connected.\r\n",
            UpstreamRejection::AuthFailed("User is authenticated but not connected.".into()),
        ),
        (
            b"mg1 NO Request is throttled. Suggested Backoff Time: 299720 milliseconds\r\n",
            UpstreamRejection::Throttled {
                text: format!("Request is throttled. Suggested Backoff Time: {ms} milliseconds"),
                backoff: Some(Duration::from_millis(ms)),
            },
        ),
        (
            b"mg1 NO Request is throttled. Suggested Backoff Time: 99999999999999999999 milliseconds\r\n",
            UpstreamRejection::Throttled {
                text: "Request is throttled. Suggested Backoff Time: 99999999999999999999 milliseconds"
                    .into(),
                backoff: Some(crate::proto::throttle::MAX_BACKOFF),
            },
        ),
        (
            b"mg1 NO [UNAVAILABLE] Try again later\r\n",
            UpstreamRejection::Unavailable("[UNAVAILABLE] Try again later".into()),
        ),
        (
            b"* BYE Session invalidated\r\n",
            UpstreamRejection::Unavailable("Session invalidated".into()),
        ),
        (
            b"mg1 NO\r\n",
            UpstreamRejection::AuthFailed("authentication failed".into()),
        ),
        (
            b"mg7 OK not ours\r\n",
            UpstreamRejection::Protocol("upstream sent an unexpected response during login".into()),
        ),
        (
            b"mg1 MAYBE\r\n",
            UpstreamRejection::Protocol("upstream answered AUTHENTICATE with an unknown status".into()),
        ),
        (b"\r\n", UpstreamRejection::Protocol("upstream sent an empty line".into())),
    ];
    for (answer, expected) in table {
        let out = upstream(false, &[MS_GREETING, answer]);
        assert_eq!(
            out[1],
            rejected(expected.clone()),
            "{}",
            String::from_utf8_lossy(answer)
        );
    }
}

#[test]
fn bad_greetings() {
    let protocol = |t: &str| rejected(UpstreamRejection::Protocol(t.into()));
    let table: &[(&[u8], String)] = &[
        (
            b"* BYE Too busy\r\n",
            rejected(UpstreamRejection::Unavailable("Too busy".into())),
        ),
        (
            b"* PREAUTH welcome\r\n",
            protocol("upstream greeted with PREAUTH; cannot log in with XOAUTH2"),
        ),
        (
            b"HTTP/1.1 400 Bad Request\r\n",
            protocol("upstream did not send an IMAP greeting"),
        ),
        (
            b"+OK POP3 ready\r\n",
            protocol("upstream did not send an IMAP greeting"),
        ),
    ];
    for (greeting, expected) in table {
        assert_eq!(upstream(false, &[greeting]), std::slice::from_ref(expected));
    }
}

#[test]
fn long_lines_are_refused() {
    let mut up = ImapUpstream::new(login(), false);
    let mut buf = BytesMut::from(&vec![b'*'; MAX_UPSTREAM_LINE + 2][..]);
    let text = format!("upstream sent a line longer than {MAX_UPSTREAM_LINE} bytes");
    assert_eq!(
        up.step(&mut buf),
        UpstreamStep::Rejected(UpstreamRejection::Protocol(text))
    );
}

#[test]
fn secrets_stay_redacted_in_debug() {
    let up = ImapUpstream::new(login(), false);
    assert!(!format!("{up:?}").contains(TOKEN));
    let mut up = ImapUpstream::new(login(), false);
    let step = up.step(&mut BytesMut::from(MS_GREETING));
    assert!(!format!("{step:?}").contains(&xoauth2()));
}

#[test]
fn an_echoed_command_does_not_carry_the_token_into_the_rejection() {
    let echo = format!(
        "mg1 BAD Unknown command AUTHENTICATE XOAUTH2 {}\r\n",
        xoauth2()
    );
    let out = upstream(false, &[MS_GREETING, echo.as_bytes()]);
    let last = out.last().unwrap();
    assert!(last.starts_with("rejected"), "{last}");
    assert!(!last.contains(&xoauth2()), "{last}");
    assert!(last.contains("[redacted]"), "{last}");
    let echo = format!("mg1 NO bearer {TOKEN} is not valid\r\n");
    let out = upstream(false, &[MS_GREETING, echo.as_bytes()]);
    assert!(!out.last().unwrap().contains(TOKEN));
}

/// The token straddles the 400-byte cut of a rejection text: it must be
/// scrubbed while still whole, so not even its first bytes remain.
#[test]
fn a_token_across_the_truncation_point_is_scrubbed_before_the_cut() {
    for filler in 380..400 {
        for secret in [TOKEN.to_owned(), xoauth2()] {
            let echo = format!("mg1 NO {} {secret} invalid\r\n", "x".repeat(filler));
            let out = upstream(false, &[MS_GREETING, echo.as_bytes()]);
            let last = out.last().unwrap();
            assert!(last.starts_with("rejected"), "{last}");
            assert!(!last.contains(&secret[..8]), "prefix leaked: {last}");
        }
    }
}

/// RFC 9051 §6.2.1: what the server announced before TLS may have been
/// forged by someone on the path; only a list received after TLS counts.
#[test]
fn capabilities_seen_before_starttls_never_reach_the_client() {
    let out = upstream(
        true,
        &[
            b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n",
            b"* CAPABILITY IMAP4rev1 STARTTLS X-FORGED\r\nmg1 OK Begin TLS\r\n",
            b"mg2 OK Logged in\r\n",
        ],
    );
    assert_eq!(
        out,
        [
            "C: mg1 STARTTLS\r\n".to_string(),
            "[starttls]".into(),
            format!("C: mg2 AUTHENTICATE XOAUTH2 {}\r\n", xoauth2()),
            "authenticated: mg2 OK Logged in caps=None".into(),
        ]
    );
    let out = upstream(
        true,
        &[
            b"* OK ready\r\n",
            b"* CAPABILITY IMAP4rev1 X-FORGED\r\nmg1 OK Begin TLS\r\n",
            b"* CAPABILITY IMAP4rev1 IDLE\r\nmg2 OK Logged in\r\n",
        ],
    );
    assert_eq!(
        out.last().unwrap(),
        "authenticated: mg2 OK Logged in caps=Some(\"IMAP4rev1 IDLE\")"
    );
}
