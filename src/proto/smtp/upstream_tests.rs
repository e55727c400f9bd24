//! Transcripts for the SMTP upstream machine, each run whole and byte by byte
//! (so every multi-line reply is also split at every byte).

use std::time::Duration;

use bytes::BytesMut;

use super::SmtpUpstream;
use crate::proto::Machine;
use crate::proto::pop3::transcript::{Transcript, both_ways, send};
use crate::proto::sasl::{encode, encode_xoauth2};
use crate::proto::{UpstreamLogin, UpstreamRejection, UpstreamStep, UpstreamSuccess};
use crate::secret::Secret;

type T = Transcript<SmtpUpstream>;

const TOKEN: &str = "tok-SECRET-456";

fn login() -> UpstreamLogin {
    UpstreamLogin {
        user: "alice@example.com".into(),
        access_token: Secret::from(TOKEN),
    }
}

fn run(starttls: bool, script: impl Fn(&mut T)) {
    both_ways(
        || SmtpUpstream::new(login(), starttls, "scanner.local".into()),
        script,
    );
}

fn auth_line() -> UpstreamStep {
    let token = encode_xoauth2("alice@example.com", &Secret::from(TOKEN));
    send(&format!("AUTH XOAUTH2 {}\r\n", token.expose()))
}

fn rejected(r: UpstreamRejection) -> Vec<UpstreamStep> {
    vec![UpstreamStep::Rejected(r)]
}

const GREETING: &[u8] =
    b"220-SN4PR0501CA0001.outlook.office365.com Microsoft ESMTP MAIL Service\r\n\
    220 ready at Sun, 22 Nov 2026 04:00:00 +0000\r\n";
const EHLO_PLAIN: &[u8] = b"250-SN4PR0501CA0001.outlook.office365.com Hello [127.0.0.1]\r\n\
    250-SIZE 157286400\r\n250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n\
    250-STARTTLS\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n";
const EHLO_TLS: &[u8] = b"250-SN4PR0501CA0001.outlook.office365.com Hello [127.0.0.1]\r\n\
    250-SIZE 157286400\r\n250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n\
    250-AUTH LOGIN XOAUTH2\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n";

/// Greeting, EHLO, STARTTLS, EHLO, up to the point where the token is sent.
fn to_token(t: &mut T) {
    assert_eq!(t.send(GREETING), vec![send("EHLO scanner.local\r\n")]);
    assert_eq!(t.send(EHLO_PLAIN), vec![send("STARTTLS\r\n")]);
    let steps = t.send(b"220 2.0.0 SMTP server ready\r\n");
    assert_eq!(
        steps,
        vec![UpstreamStep::StartTls, send("EHLO scanner.local\r\n")]
    );
    assert_eq!(t.send(EHLO_TLS), vec![auth_line()]);
}

#[test]
fn starttls_login_and_leftover_bytes_stay() {
    run(true, |t| {
        to_token(t);
        let steps = t.send(b"235 2.7.0 Authentication successful\r\n250 extra\r\n");
        let success = UpstreamSuccess {
            line: b"235 2.7.0 Authentication successful".to_vec(),
            capabilities: None,
        };
        assert_eq!(steps, vec![UpstreamStep::Authenticated(success)]);
        assert_eq!(&t.buffer[..], b"250 extra\r\n");
    });
}

#[test]
fn without_starttls_one_ehlo() {
    run(false, |t| {
        assert_eq!(t.send(b"220 hi\r\n"), vec![send("EHLO scanner.local\r\n")]);
        assert_eq!(
            t.send(b"250-mx\r\n250 AUTH=PLAIN XOAUTH2\r\n"),
            vec![auth_line()]
        );
        let steps = t.send(b"235 ok\r\n");
        assert!(
            matches!(&steps[..], [UpstreamStep::Authenticated(_)]),
            "{steps:?}"
        );
    });
}

#[test]
fn missing_starttls_or_xoauth2_is_a_protocol_error() {
    run(true, |t| {
        assert_eq!(t.send(b"220 hi\r\n"), vec![send("EHLO scanner.local\r\n")]);
        let expected = UpstreamRejection::Protocol("upstream does not offer STARTTLS".into());
        assert_eq!(
            t.send(b"250-mx\r\n250 AUTH LOGIN XOAUTH2\r\n"),
            rejected(expected)
        );
    });
    run(true, |t| {
        assert_eq!(t.send(GREETING), vec![send("EHLO scanner.local\r\n")]);
        assert_eq!(t.send(EHLO_PLAIN), vec![send("STARTTLS\r\n")]);
        let steps = t.send(b"220 go\r\n");
        assert_eq!(
            steps,
            vec![UpstreamStep::StartTls, send("EHLO scanner.local\r\n")]
        );
        let expected = UpstreamRejection::Protocol("upstream does not offer AUTH XOAUTH2".into());
        assert_eq!(
            t.send(b"250-mx\r\n250-XOAUTH2\r\n250 AUTH LOGIN PLAIN\r\n"),
            rejected(expected)
        );
    });
}

#[test]
fn greeting_refusals_are_unavailable() {
    for (wire, text) in [
        (
            &b"421 4.3.2 Service not available\r\n"[..],
            "421 4.3.2 Service not available",
        ),
        (
            b"554-No SMTP service\r\n554 here\r\n",
            "554 No SMTP service here",
        ),
    ] {
        run(true, |t| {
            assert_eq!(
                t.send(wire),
                rejected(UpstreamRejection::Unavailable(text.into()))
            );
        });
    }
    run(true, |t| {
        let steps = t.send(b"+OK pop3 here\r\n");
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
fn starttls_refused() {
    run(true, |t| {
        assert_eq!(t.send(b"220 hi\r\n"), vec![send("EHLO scanner.local\r\n")]);
        assert_eq!(
            t.send(b"250-mx\r\n250 STARTTLS\r\n"),
            vec![send("STARTTLS\r\n")]
        );
        let expected = UpstreamRejection::Unavailable("454 4.7.0 TLS not available".into());
        assert_eq!(
            t.send(b"454 4.7.0 TLS not available\r\n"),
            rejected(expected)
        );
    });
}

#[test]
fn auth_failed_and_auth_disabled() {
    run(true, |t| {
        to_token(t);
        let text =
            "535 5.7.3 Authentication unsuccessful [SN4PR0501CA0001.namprd05.prod.outlook.com]";
        let steps = t.send(format!("{text}\r\n").as_bytes());
        assert_eq!(steps, rejected(UpstreamRejection::AuthFailed(text.into())));
    });
    run(true, |t| {
        to_token(t);
        let text = "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.";
        let steps = t.send(format!("{text}\r\n").as_bytes());
        assert_eq!(
            steps,
            rejected(UpstreamRejection::SmtpAuthDisabled(text.into()))
        );
    });
}

#[test]
fn temporary_answers() {
    let cases = [
        "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded",
        "421 4.7.0 Temporary server error",
        "454 4.7.0 Temporary authentication failure",
    ];
    for text in cases {
        run(true, |t| {
            to_token(t);
            let steps = t.send(format!("{text}\r\n").as_bytes());
            assert_eq!(steps, rejected(UpstreamRejection::Unavailable(text.into())));
        });
    }
    run(true, |t| {
        to_token(t);
        let text = "451 4.7.500 Request is throttled. Suggested Backoff Time: 3000 milliseconds";
        let expected = UpstreamRejection::Throttled {
            text: text.into(),
            backoff: Some(Duration::from_secs(3)),
        };
        assert_eq!(t.send(format!("{text}\r\n").as_bytes()), rejected(expected));
    });
}

#[test]
fn error_challenge_is_answered_and_kept_as_reason() {
    let json = r#"{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}"#;
    run(true, |t| {
        to_token(t);
        let challenge = format!("334 {}\r\n", encode(json.as_bytes()));
        assert_eq!(t.send(challenge.as_bytes()), vec![send("\r\n")]);
        let steps =
            t.send(b"535-5.7.8 Username and Password not accepted.\r\n535 5.7.8 Learn more\r\n");
        let text =
            format!("535 5.7.8 Username and Password not accepted. 5.7.8 Learn more ({json})");
        assert_eq!(steps, rejected(UpstreamRejection::AuthFailed(text)));
    });
}

#[test]
fn malformed_replies_are_protocol_errors() {
    for wire in [&b"hello\r\n"[..], b"250-a\r\n220 b\r\n"] {
        run(false, |t| {
            let steps = t.send(wire);
            assert!(
                matches!(
                    &steps[..],
                    [UpstreamStep::Rejected(UpstreamRejection::Protocol(_))]
                ),
                "{steps:?}"
            );
        });
    }
}

#[test]
fn ehlo_name_is_cleaned() {
    let mut up = SmtpUpstream::new(login(), false, "bad\r\nMAIL FROM:<x>".into());
    let mut buf = BytesMut::from(&b"220 hi\r\n"[..]);
    assert_eq!(up.step(&mut buf), send("EHLO badMAILFROM:<x>\r\n"));
    let mut up = SmtpUpstream::new(login(), false, String::new());
    let mut buf = BytesMut::from(&b"220 hi\r\n"[..]);
    assert_eq!(up.step(&mut buf), send("EHLO localhost\r\n"));
}

#[test]
fn token_never_appears_in_rejections_or_debug() {
    run(true, |t| {
        to_token(t);
        let steps = t.send(b"535 5.7.3 no\r\n");
        let debug = format!("{steps:?} {:?}", t.machine);
        let encoded = encode_xoauth2("alice@example.com", &Secret::from(TOKEN));
        assert!(
            !debug.contains(TOKEN) && !debug.contains(encoded.expose().as_str()),
            "{debug}"
        );
    });
}

#[test]
fn ehlo_refusals() {
    run(true, |t| {
        assert_eq!(t.send(b"220 hi\r\n"), vec![send("EHLO scanner.local\r\n")]);
        let expected = UpstreamRejection::Unavailable("421 4.3.2 shutting down".into());
        assert_eq!(t.send(b"421 4.3.2 shutting down\r\n"), rejected(expected));
    });
    run(true, |t| {
        assert_eq!(t.send(b"220 hi\r\n"), vec![send("EHLO scanner.local\r\n")]);
        let expected =
            UpstreamRejection::Protocol("unexpected answer to EHLO: 501 5.5.4 bad name".into());
        assert_eq!(t.send(b"501 5.5.4 bad name\r\n"), rejected(expected));
    });
}

#[test]
fn empty_challenge_adds_no_reason() {
    run(false, |t| {
        assert_eq!(t.send(b"220 hi\r\n"), vec![send("EHLO scanner.local\r\n")]);
        assert_eq!(t.send(b"250-mx\r\n250 AUTH XOAUTH2\r\n"), vec![auth_line()]);
        assert_eq!(t.send(b"334 \r\n"), vec![send("\r\n")]);
        let expected = UpstreamRejection::AuthFailed("535 5.7.8 no".into());
        assert_eq!(t.send(b"535 5.7.8 no\r\n"), rejected(expected));
    });
}

/// The token straddles the 400-byte cut of a rejection text: it must be
/// scrubbed while still whole, so not even its first bytes remain.
#[test]
fn a_token_across_the_truncation_point_is_scrubbed_before_the_cut() {
    for filler in 370..400 {
        run(true, |t| {
            to_token(t);
            let line = format!("535 5.7.3 {} {TOKEN} invalid\r\n", "x".repeat(filler));
            let steps = t.send(line.as_bytes());
            let debug = format!("{steps:?}");
            assert!(debug.contains("Rejected"), "{debug}");
            assert!(!debug.contains(&TOKEN[..4]), "prefix leaked: {debug}");
        });
    }
}
