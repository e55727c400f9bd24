//! Transcripts for AUTH PLAIN and LOGIN, login answers and their bounds.

use super::super::SmtpClient;
use super::{EHLO, login, opts, run};
use crate::proto::ClientMachine;
use crate::proto::pop3::transcript::reply;
use crate::proto::sasl::encode;
use crate::proto::{
    ClientLimits, ClientOptions, ClientStep, Credentials, LoginFailure, UpstreamSuccess,
};
use crate::secret::Secret;

#[test]
fn helo_allows_auth_for_legacy_clients() {
    let ir = encode(b"\0alice\0pw");
    run(opts(), |t| {
        assert_eq!(
            t.send(b"HELO old-copier\r\n"),
            vec![reply("250 gate.example\r\n")]
        );
        assert_eq!(t.machine.client_name(), Some("old-copier"));
        let steps = t.send(format!("AUTH PLAIN {ir}\r\n").as_bytes());
        assert_eq!(steps, vec![login("alice", "pw")]);
    });
}

#[test]
fn pipelined_mail_from_stays_after_auth_plain() {
    let ir = encode(b"\0alice@example.com\0secret");
    run(opts(), |t| {
        let wire = format!("EHLO c\r\nAUTH PLAIN {ir}\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\n");
        let steps = t.send(wire.as_bytes());
        assert_eq!(
            steps,
            vec![reply(EHLO), login("alice@example.com", "secret")]
        );
        assert_eq!(&t.buffer[..], b"MAIL FROM:<a>\r\nRCPT TO:<b>\r\n");
        let up = UpstreamSuccess {
            line: b"235 2.7.0 Authentication successful".to_vec(),
            ..Default::default()
        };
        assert_eq!(
            t.machine.login_succeeded(&up),
            b"235 2.7.0 Authentication successful\r\n"
        );
        assert_eq!(t.send(b""), vec![]);
        assert_eq!(&t.buffer[..], b"MAIL FROM:<a>\r\nRCPT TO:<b>\r\n");
    });
}

#[test]
fn auth_plain_two_step_with_authzid_and_empty_ir() {
    let msg = encode(b"shared@x\0alice\0pw");
    run(opts(), |t| {
        assert_eq!(
            t.send(b"EHLO c\r\nauth plain\r\n"),
            vec![reply(EHLO), reply("334 \r\n")]
        );
        let expected = ClientStep::Login(Credentials {
            username: "alice".into(),
            authzid: Some("shared@x".into()),
            password: Secret::from("pw"),
        });
        assert_eq!(t.send(format!("{msg}\r\n").as_bytes()), vec![expected]);
    });
    run(opts(), |t| {
        let steps = t.send(b"EHLO c\r\nAUTH PLAIN =\r\n");
        assert_eq!(
            steps,
            vec![
                reply(EHLO),
                reply("501 5.5.2 Malformed authentication response\r\n")
            ]
        );
    });
}

#[test]
fn auth_login_both_forms() {
    let (user, pass) = (encode(b"alice"), encode(b"pw"));
    run(opts(), |t| {
        assert_eq!(
            t.send(b"EHLO c\r\nAUTH LOGIN\r\n"),
            vec![reply(EHLO), reply("334 VXNlcm5hbWU6\r\n")]
        );
        assert_eq!(
            t.send(format!("{user}\r\n").as_bytes()),
            vec![reply("334 UGFzc3dvcmQ6\r\n")]
        );
        assert_eq!(
            t.send(format!("{pass}\r\nMAIL FROM:<a>\r\n").as_bytes()),
            vec![login("alice", "pw")]
        );
        assert_eq!(&t.buffer[..], b"MAIL FROM:<a>\r\n");
    });
    run(opts(), |t| {
        let steps = t.send(format!("EHLO c\r\nAUTH LOGIN {user}\r\n{pass}\r\n").as_bytes());
        assert_eq!(
            steps,
            vec![
                reply(EHLO),
                reply("334 UGFzc3dvcmQ6\r\n"),
                login("alice", "pw")
            ]
        );
    });
}

#[test]
fn sasl_cancel_bad_base64_and_unknown_mechanism() {
    run(opts(), |t| {
        let steps =
            t.send(b"EHLO c\r\nAUTH LOGIN\r\n*\r\nAUTH PLAIN %%\r\nAUTH CRAM-MD5\r\nAUTH\r\n");
        assert_eq!(
            steps,
            vec![
                reply(EHLO),
                reply("334 VXNlcm5hbWU6\r\n"),
                reply("501 5.0.0 Authentication cancelled\r\n"),
                reply("501 5.5.2 Cannot decode response\r\n"),
                reply("504 5.5.4 Unrecognized authentication type\r\n"),
                reply("501 5.5.4 Syntax: AUTH mechanism\r\n"),
            ]
        );
    });
}

#[test]
fn failures_map_to_reply_codes() {
    let limits = ClientLimits {
        max_auth_failures: 10,
        ..ClientLimits::default()
    };
    let mut c = SmtpClient::new(ClientOptions { limits, ..opts() });
    let cases = [
        (
            LoginFailure::BadCredentials,
            "535 5.7.8 Authentication failed: unknown account or wrong local password (accounts are enrolled with: mailgate login ADDRESS)\r\n",
        ),
        (
            LoginFailure::NeedsAuthorisation("run: mailgate login a".into()),
            "535 5.7.8 run: mailgate login a\r\n",
        ),
        (
            LoginFailure::Temporary("busy\r\n250 forged".into()),
            "454 4.7.0 busy 250 forged\r\n",
        ),
        (
            LoginFailure::UpstreamRejected(
                "535 5.7.139 SmtpClientAuthentication is disabled".into(),
            ),
            "535 5.7.8 Upstream refused the login: 535 5.7.139 SmtpClientAuthentication is disabled\r\n",
        ),
    ];
    for (failure, expected) in cases {
        assert_eq!(c.login_failed(&failure), reply(expected));
    }
}

#[test]
fn auth_failure_bound_closes_and_ehlo_is_kept() {
    let ir = encode(b"\0a\0b");
    run(opts(), |t| {
        let bad = LoginFailure::BadCredentials;
        let text = b"535 5.7.8 Authentication failed: unknown account or wrong local password (accounts are enrolled with: mailgate login ADDRESS)\r\n"
            .to_vec();
        assert_eq!(t.send(b"EHLO c\r\n"), vec![reply(EHLO)]);
        for _ in 0..2 {
            assert_eq!(
                t.send(format!("AUTH PLAIN {ir}\r\n").as_bytes()),
                vec![login("a", "b")]
            );
            assert_eq!(
                t.machine.login_failed(&bad),
                ClientStep::Reply(text.clone())
            );
        }
        assert_eq!(
            t.send(format!("AUTH PLAIN {ir}\r\n").as_bytes()),
            vec![login("a", "b")]
        );
        let close = ClientStep::Close {
            reply: text.clone(),
            reason: "too many failed logins",
        };
        assert_eq!(t.machine.login_failed(&bad), close);
        assert_eq!(t.send(b"NOOP\r\n"), vec![]);
    });
}

#[test]
fn success_line_is_sanitised_and_replies_are_bounded() {
    let mut c = SmtpClient::new(opts());
    let up = UpstreamSuccess {
        line: b"235 2.7.0 ok\r\n250 forged".to_vec(),
        ..Default::default()
    };
    assert_eq!(c.login_succeeded(&up), b"235 2.7.0 ok 250 forged\r\n");
    let up = UpstreamSuccess {
        line: b"+OK".to_vec(),
        ..Default::default()
    };
    assert_eq!(
        c.login_succeeded(&up),
        b"235 2.7.0 Authentication successful\r\n"
    );
    let mut c = SmtpClient::new(opts());
    let ClientStep::Reply(r) = c.login_failed(&LoginFailure::Temporary("y".repeat(9000))) else {
        panic!("expected a reply")
    };
    assert!(r.len() <= 512, "{}", r.len());
}
