//! Transcripts for the POP3 client machine, each run whole and byte by byte.

use super::Pop3Client;
use super::transcript::{Transcript, both_ways, reply};
use crate::proto::sasl::encode;
use crate::proto::{
    ClientLimits, ClientOptions, ClientStep, Credentials, LoginFailure, UpstreamSuccess,
};
use crate::proto::{ClientMachine, Machine};
use crate::secret::Secret;

type T = Transcript<Pop3Client>;

fn opts() -> ClientOptions {
    ClientOptions {
        hostname: "gate.example".into(),
        tls_active: false,
        starttls_available: true,
        require_tls_for_auth: false,
        limits: ClientLimits::default(),
    }
}

fn run(opts: ClientOptions, script: impl Fn(&mut T)) {
    both_ways(|| Pop3Client::new(opts.clone()), script);
}

fn login(user: &str, password: &str) -> ClientStep {
    ClientStep::Login(Credentials {
        username: user.into(),
        authzid: None,
        password: Secret::from(password),
    })
}

const CAPA_PLAIN: &str = "+OK Capability list follows\r\nUSER\r\nSASL PLAIN LOGIN\r\n\
    RESP-CODES\r\nAUTH-RESP-CODE\r\nSTLS\r\nIMPLEMENTATION mailgate\r\n.\r\n";

#[test]
fn greeting_and_capa() {
    run(opts(), |t| {
        assert_eq!(t.machine.greeting(), b"+OK mailgate POP3 ready\r\n");
        assert_eq!(
            t.send(b"CAPA\r\ncapa\r\n"),
            vec![reply(CAPA_PLAIN), reply(CAPA_PLAIN)]
        );
    });
}

#[test]
fn user_pass_logs_in_and_success_line_is_passed_on() {
    run(opts(), |t| {
        let steps = t.send(b"USER alice@example.com\r\nPASS pass with spaces\r\nLIST\r\n");
        assert_eq!(
            steps,
            vec![
                reply("+OK Send PASS\r\n"),
                login("alice@example.com", "pass with spaces")
            ]
        );
        assert_eq!(&t.buffer[..], b"LIST\r\n");
        let up = UpstreamSuccess {
            line: b"+OK User successfully authenticated.".to_vec(),
            ..Default::default()
        };
        assert_eq!(
            t.machine.login_succeeded(&up),
            b"+OK User successfully authenticated.\r\n"
        );
        assert_eq!(t.send(b""), vec![]);
        assert_eq!(&t.buffer[..], b"LIST\r\n");
    });
}

#[test]
fn success_line_from_upstream_is_sanitised() {
    let mut c = Pop3Client::new(opts());
    let up = UpstreamSuccess {
        line: b"+OK hi\r\n-ERR forged\x00".to_vec(),
        ..Default::default()
    };
    assert_eq!(c.login_succeeded(&up), b"+OK hi -ERR forged\r\n");
    let up = UpstreamSuccess {
        line: b"weird".to_vec(),
        ..Default::default()
    };
    assert_eq!(c.login_succeeded(&up), b"+OK Logged in\r\n");
}

#[test]
fn pass_without_user_and_user_forgotten_after_other_command() {
    run(opts(), |t| {
        assert_eq!(t.send(b"PASS x\r\n"), vec![reply("-ERR USER first\r\n")]);
        let steps = t.send(b"USER bob\r\nNOOP\r\nPASS x\r\nUSER\r\n");
        assert_eq!(
            steps,
            vec![
                reply("+OK Send PASS\r\n"),
                reply("-ERR Command not valid before login\r\n"),
                reply("-ERR USER first\r\n"),
                reply("-ERR Syntax: USER name\r\n"),
            ]
        );
    });
}

#[test]
fn auth_plain_with_initial_response() {
    let ir = encode(b"\0alice\0secret");
    run(opts(), |t| {
        let steps = t.send(format!("AUTH PLAIN {ir}\r\nSTAT\r\n").as_bytes());
        assert_eq!(steps, vec![login("alice", "secret")]);
        assert_eq!(&t.buffer[..], b"STAT\r\n");
    });
}

#[test]
fn auth_plain_two_step_with_authzid() {
    let msg = encode(b"shared@x\0alice\0secret");
    run(opts(), |t| {
        assert_eq!(t.send(b"auth plain\r\n"), vec![reply("+ \r\n")]);
        let expected = ClientStep::Login(Credentials {
            username: "alice".into(),
            authzid: Some("shared@x".into()),
            password: Secret::from("secret"),
        });
        assert_eq!(t.send(format!("{msg}\r\n").as_bytes()), vec![expected]);
    });
}

#[test]
fn auth_login_both_forms() {
    let (user, pass) = (encode(b"alice"), encode(b"pw"));
    run(opts(), |t| {
        assert_eq!(t.send(b"AUTH LOGIN\r\n"), vec![reply("+ VXNlcm5hbWU6\r\n")]);
        assert_eq!(
            t.send(format!("{user}\r\n").as_bytes()),
            vec![reply("+ UGFzc3dvcmQ6\r\n")]
        );
        assert_eq!(
            t.send(format!("{pass}\r\n").as_bytes()),
            vec![login("alice", "pw")]
        );
    });
    run(opts(), |t| {
        let steps = t.send(format!("AUTH LOGIN {user}\r\n{pass}\r\n").as_bytes());
        assert_eq!(
            steps,
            vec![reply("+ UGFzc3dvcmQ6\r\n"), login("alice", "pw")]
        );
    });
}

#[test]
fn sasl_cancel_bad_base64_malformed_and_unknown_mechanism() {
    run(opts(), |t| {
        let steps =
            t.send(b"AUTH PLAIN\r\n*\r\nAUTH PLAIN !!\r\nAUTH PLAIN =\r\nAUTH CRAM-MD5\r\n");
        assert_eq!(
            steps,
            vec![
                reply("+ \r\n"),
                reply("-ERR [AUTH] Authentication cancelled\r\n"),
                reply("-ERR [AUTH] SASL message is not valid base64\r\n"),
                reply("-ERR [AUTH] Malformed SASL message\r\n"),
                reply("-ERR Unsupported SASL mechanism\r\n"),
            ]
        );
        assert_eq!(
            t.send(b"AUTH\r\n"),
            vec![reply("+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n")]
        );
    });
}

#[test]
fn oversized_sasl_message_is_refused() {
    let long = "A".repeat(crate::proto::sasl::MAX_SASL_MESSAGE + 4);
    run(opts(), |t| {
        assert_eq!(t.send(b"AUTH LOGIN\r\n"), vec![reply("+ VXNlcm5hbWU6\r\n")]);
        let steps = t.send(format!("{long}\r\n").as_bytes());
        assert_eq!(steps, vec![reply("-ERR [AUTH] SASL message too long\r\n")]);
    });
}

#[test]
fn stls_leaves_later_bytes_and_hides_itself_afterwards() {
    run(opts(), |t| {
        let steps = t.send(b"STLS\r\nUSER injected\r\n");
        assert_eq!(
            steps,
            vec![ClientStep::StartTls(
                b"+OK Begin TLS negotiation\r\n".to_vec()
            )]
        );
        assert_eq!(&t.buffer[..], b"USER injected\r\n");
        t.buffer.clear();
        t.machine.tls_established();
        let capa = CAPA_PLAIN.replace("STLS\r\n", "");
        assert_eq!(
            t.send(b"CAPA\r\nSTLS\r\n"),
            vec![reply(&capa), reply("-ERR STLS not available\r\n")]
        );
    });
}

#[test]
fn tls_required_refuses_credentials_until_stls() {
    let required = ClientOptions {
        require_tls_for_auth: true,
        ..opts()
    };
    run(required, |t| {
        let refusal = || reply("-ERR [AUTH] TLS required: use STLS first\r\n");
        let capa = "+OK Capability list follows\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nSTLS\r\n\
            IMPLEMENTATION mailgate\r\n.\r\n";
        let steps = t.send(b"CAPA\r\nUSER a\r\nPASS b\r\nAUTH PLAIN\r\n");
        assert_eq!(steps, vec![reply(capa), refusal(), refusal(), refusal()]);
        assert!(matches!(t.send(b"STLS\r\n")[..], [ClientStep::StartTls(_)]));
        t.machine.tls_established();
        let steps = t.send(b"USER a\r\nPASS b\r\n");
        assert_eq!(steps, vec![reply("+OK Send PASS\r\n"), login("a", "b")]);
    });
}

#[test]
fn stls_unavailable_without_certificate() {
    let no_tls = ClientOptions {
        starttls_available: false,
        ..opts()
    };
    run(no_tls, |t| {
        assert_eq!(
            t.send(b"STLS\r\n"),
            vec![reply("-ERR STLS not available\r\n")]
        );
        let capa = CAPA_PLAIN.replace("STLS\r\n", "");
        assert_eq!(t.send(b"CAPA\r\n"), vec![reply(&capa)]);
    });
}

#[test]
fn quit_closes() {
    run(opts(), |t| {
        let steps = t.send(b"QUIT\r\nCAPA\r\n");
        let close = ClientStep::Close {
            reply: b"+OK mailgate POP3 signing off\r\n".to_vec(),
            reason: "client quit",
        };
        assert_eq!(steps, vec![close]);
        assert_eq!(t.send(b""), vec![]);
    });
}

#[test]
fn command_bound_closes() {
    let limits = ClientLimits {
        max_commands: 3,
        ..ClientLimits::default()
    };
    run(ClientOptions { limits, ..opts() }, |t| {
        let steps = t.send(b"NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n");
        let err = || reply("-ERR Command not valid before login\r\n");
        let close = ClientStep::Close {
            reply: b"-ERR Too many commands before login\r\n".to_vec(),
            reason: "too many commands",
        };
        assert_eq!(steps, vec![err(), err(), err(), close]);
        assert_eq!(&t.buffer[..], b"NOOP\r\n");
    });
}

#[test]
fn line_bound_closes() {
    let limits = ClientLimits {
        max_line: 16,
        ..ClientLimits::default()
    };
    run(ClientOptions { limits, ..opts() }, |t| {
        let steps = t.send(b"USER aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        let close = ClientStep::Close {
            reply: b"-ERR Line too long\r\n".to_vec(),
            reason: "line too long",
        };
        assert_eq!(steps, vec![close]);
    });
}

#[test]
fn failures_map_to_response_codes() {
    let mut c = Pop3Client::new(ClientOptions {
        limits: ClientLimits {
            max_auth_failures: 10,
            ..ClientLimits::default()
        },
        ..opts()
    });
    let cases = [
        (
            LoginFailure::BadCredentials,
            "-ERR [AUTH] Authentication failed: unknown account or wrong local password (accounts are enrolled with: mailgate login ADDRESS)\r\n",
        ),
        (
            LoginFailure::NeedsAuthorisation("run mailgate login a\r\n+OK".into()),
            "-ERR [AUTH] run mailgate login a +OK\r\n",
        ),
        (
            LoginFailure::Temporary("token endpoint unreachable".into()),
            "-ERR [SYS/TEMP] token endpoint unreachable\r\n",
        ),
        (
            LoginFailure::UpstreamRejected("AUTH failed".into()),
            "-ERR [AUTH] Upstream refused the login: AUTH failed\r\n",
        ),
    ];
    for (failure, expected) in cases {
        assert_eq!(c.login_failed(&failure), reply(expected));
    }
    let long = LoginFailure::Temporary("x".repeat(5000));
    let ClientStep::Reply(bytes) = c.login_failed(&long) else {
        panic!("expected a reply")
    };
    assert!(bytes.len() <= 512, "{}", bytes.len());
}

#[test]
fn auth_failure_bound_closes_and_state_resets() {
    run(opts(), |t| {
        let bad = LoginFailure::BadCredentials;
        let text =
            b"-ERR [AUTH] Authentication failed: unknown account or wrong local password (accounts are enrolled with: mailgate login ADDRESS)\r\n"
                .to_vec();
        for _ in 0..2 {
            assert_eq!(
                t.send(b"USER a\r\nPASS b\r\n"),
                vec![reply("+OK Send PASS\r\n"), login("a", "b")]
            );
            assert_eq!(
                t.machine.login_failed(&bad),
                ClientStep::Reply(text.clone())
            );
            assert_eq!(t.send(b"PASS b\r\n"), vec![reply("-ERR USER first\r\n")]);
        }
        assert_eq!(
            t.send(b"USER a\r\nPASS b\r\n"),
            vec![reply("+OK Send PASS\r\n"), login("a", "b")]
        );
        let close = ClientStep::Close {
            reply: text.clone(),
            reason: "too many failed logins",
        };
        assert_eq!(t.machine.login_failed(&bad), close);
        assert_eq!(t.send(b"USER a\r\n"), vec![]);
    });
}

#[test]
fn timeout_and_shutdown_replies() {
    let c = Pop3Client::new(opts());
    assert!(c.timeout_reply().starts_with(b"-ERR "));
    assert_eq!(
        c.shutdown_reply(),
        b"-ERR [SYS/TEMP] mailgate is shutting down\r\n"
    );
}
