//! Transcripts for the POP3 upstream machine, each run whole and byte by byte.

use std::time::Duration;

use super::Pop3Upstream;
use super::transcript::{Transcript, both_ways, send};
use crate::proto::sasl::{encode, encode_xoauth2};
use crate::proto::{UpstreamLogin, UpstreamRejection, UpstreamStep, UpstreamSuccess};
use crate::secret::Secret;

type T = Transcript<Pop3Upstream>;

const TOKEN: &str = "tok-SECRET-123";

fn login() -> UpstreamLogin {
    UpstreamLogin {
        user: "alice@example.com".into(),
        access_token: Secret::from(TOKEN),
    }
}

fn run(starttls: bool, script: impl Fn(&mut T)) {
    both_ways(|| Pop3Upstream::new(login(), starttls), script);
}

fn token_line() -> UpstreamStep {
    let token = encode_xoauth2("alice@example.com", &Secret::from(TOKEN));
    send(&format!("{}\r\n", token.expose()))
}

fn authenticated(line: &str) -> UpstreamStep {
    UpstreamStep::Authenticated(UpstreamSuccess {
        line: line.as_bytes().to_vec(),
        capabilities: None,
    })
}

fn rejected(r: UpstreamRejection) -> Vec<UpstreamStep> {
    vec![UpstreamStep::Rejected(r)]
}

/// Drives the login up to the point where the token has been sent.
fn to_token(t: &mut T) {
    assert_eq!(
        t.send(b"+OK The Microsoft Exchange POP3 service is ready.\r\n"),
        vec![send("AUTH XOAUTH2\r\n")]
    );
    assert_eq!(t.send(b"+ \r\n"), vec![token_line()]);
}

#[test]
fn plain_login_and_leftover_bytes_stay() {
    run(false, |t| {
        to_token(t);
        let steps = t.send(b"+OK User successfully authenticated.\r\n+OK 3 messages\r\n");
        assert_eq!(
            steps,
            vec![authenticated("+OK User successfully authenticated.")]
        );
        assert_eq!(&t.buffer[..], b"+OK 3 messages\r\n");
    });
}

#[test]
fn continuation_without_space_or_with_text() {
    for cont in [&b"+\r\n"[..], b"+ ready\r\n"] {
        run(false, |t| {
            assert_eq!(t.send(b"+OK hi\r\n"), vec![send("AUTH XOAUTH2\r\n")]);
            assert_eq!(t.send(cont), vec![token_line()]);
            assert_eq!(t.send(b"+OK\r\n"), vec![authenticated("+OK")]);
        });
    }
}

#[test]
fn stls_then_auth_without_new_greeting() {
    run(true, |t| {
        assert_eq!(t.send(b"+OK ready\r\n"), vec![send("STLS\r\n")]);
        let steps = t.send(b"+OK Begin TLS negotiation\r\n");
        assert_eq!(
            steps,
            vec![UpstreamStep::StartTls, send("AUTH XOAUTH2\r\n")]
        );
        assert_eq!(t.send(b"+ \r\n"), vec![token_line()]);
        assert_eq!(t.send(b"+OK done\r\n"), vec![authenticated("+OK done")]);
    });
}

#[test]
fn stls_refused_is_a_protocol_error() {
    run(true, |t| {
        assert_eq!(t.send(b"+OK ready\r\n"), vec![send("STLS\r\n")]);
        let expected = UpstreamRejection::Protocol("upstream refused STLS: -ERR not now".into());
        assert_eq!(t.send(b"-ERR not now\r\n"), rejected(expected));
    });
}

#[test]
fn greeting_errors() {
    run(false, |t| {
        let expected = UpstreamRejection::Unavailable("[SYS/TEMP] maintenance".into());
        assert_eq!(
            t.send(b"-ERR [SYS/TEMP] maintenance\r\n"),
            rejected(expected)
        );
    });
    run(false, |t| {
        let steps = t.send(b"* OK IMAP4 ready\r\n");
        assert!(
            matches!(
                &steps[..],
                [UpstreamStep::Rejected(UpstreamRejection::Protocol(_))]
            ),
            "{steps:?}"
        );
    });
}

#[test]
fn auth_failed() {
    run(false, |t| {
        to_token(t);
        let expected = UpstreamRejection::AuthFailed(
            "Authentication failure: unknown user name or bad password.".into(),
        );
        assert_eq!(
            t.send(b"-ERR Authentication failure: unknown user name or bad password.\r\n"),
            rejected(expected)
        );
    });
}

#[test]
fn temporary_and_in_use_are_unavailable() {
    for text in [
        "[SYS/TEMP] try later",
        "[IN-USE] mailbox locked",
        "[LOGIN-DELAY] wait",
    ] {
        run(false, |t| {
            to_token(t);
            let expected = UpstreamRejection::Unavailable(text.into());
            assert_eq!(
                t.send(format!("-ERR {text}\r\n").as_bytes()),
                rejected(expected)
            );
        });
    }
}

#[test]
fn throttled_with_backoff() {
    run(false, |t| {
        to_token(t);
        let text = "Request is throttled. Suggested Backoff Time: 1500 milliseconds";
        let expected = UpstreamRejection::Throttled {
            text: text.into(),
            backoff: Some(Duration::from_millis(1500)),
        };
        assert_eq!(
            t.send(format!("-ERR {text}\r\n").as_bytes()),
            rejected(expected)
        );
    });
}

#[test]
fn error_to_auth_command_itself() {
    run(false, |t| {
        assert_eq!(t.send(b"+OK hi\r\n"), vec![send("AUTH XOAUTH2\r\n")]);
        let expected = UpstreamRejection::AuthFailed("Unrecognized authentication type".into());
        assert_eq!(
            t.send(b"-ERR Unrecognized authentication type\r\n"),
            rejected(expected)
        );
    });
}

#[test]
fn error_challenge_is_answered_and_kept_as_reason() {
    let json = r#"{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}"#;
    let challenge = format!("+ {}\r\n", encode(json.as_bytes()));
    run(false, |t| {
        to_token(t);
        assert_eq!(t.send(challenge.as_bytes()), vec![send("\r\n")]);
        let steps = t.send(b"-ERR Authentication failed\r\n");
        let expected = UpstreamRejection::AuthFailed(format!("Authentication failed ({json})"));
        assert_eq!(steps, rejected(expected));
    });
}

#[test]
fn second_challenge_is_a_protocol_error() {
    run(false, |t| {
        to_token(t);
        assert_eq!(t.send(b"+ e30=\r\n"), vec![send("\r\n")]);
        let steps = t.send(b"+ e30=\r\n");
        assert!(
            matches!(
                &steps[..],
                [UpstreamStep::Rejected(UpstreamRejection::Protocol(_))]
            ),
            "{steps:?}"
        );
    });
}

/// Byte-at-a-time delivery of 64 KiB would rescan the buffer quadratically,
/// so the bound is approached in one write and crossed byte by byte.
#[test]
fn overlong_upstream_line_is_refused() {
    let max = crate::proto::MAX_UPSTREAM_LINE;
    let expected = rejected(UpstreamRejection::Protocol("upstream line too long".into()));
    let mut whole = T::new(Pop3Upstream::new(login(), false), usize::MAX);
    assert_eq!(whole.send(&vec![b'x'; max + 10]), expected);
    let mut split = T::new(Pop3Upstream::new(login(), false), 1);
    split.buffer.extend_from_slice(&vec![b'x'; max]);
    assert_eq!(split.send(b"x"), vec![]);
    assert_eq!(split.send(b"xx"), expected);
}

#[test]
fn token_never_appears_in_rejections_or_debug() {
    run(false, |t| {
        to_token(t);
        let steps = t.send(b"-ERR no\r\n");
        let debug = format!("{steps:?} {:?}", t.machine);
        assert!(!debug.contains(TOKEN), "{debug}");
        assert!(
            !debug.contains(
                &encode_xoauth2("alice@example.com", &Secret::from(TOKEN))
                    .expose()
                    .to_string()
            )
        );
    });
}

/// The token straddles the 400-byte cut of a rejection text: it must be
/// scrubbed while still whole, so not even its first bytes remain.
#[test]
fn a_token_across_the_truncation_point_is_scrubbed_before_the_cut() {
    for filler in 385..400 {
        run(false, |t| {
            to_token(t);
            let line = format!("-ERR {} {TOKEN} invalid\r\n", "x".repeat(filler));
            let steps = t.send(line.as_bytes());
            let debug = format!("{steps:?}");
            assert!(debug.contains("Rejected"), "{debug}");
            assert!(!debug.contains(&TOKEN[..6]), "prefix leaked: {debug}");
        });
    }
}
