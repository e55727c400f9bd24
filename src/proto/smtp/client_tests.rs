//! Transcripts for the SMTP client machine, each run whole and byte by byte:
//! greeting, EHLO/HELO, STARTTLS and bounds here, the AUTH forms in [`auth`].

mod auth;

use super::SmtpClient;
use crate::proto::pop3::transcript::{Transcript, both_ways, reply};
use crate::proto::{ClientLimits, ClientOptions, ClientStep, Credentials};
use crate::proto::{ClientMachine, Machine};
use crate::secret::Secret;

pub(super) type T = Transcript<SmtpClient>;

pub(super) fn opts() -> ClientOptions {
    ClientOptions {
        hostname: "gate.example".into(),
        tls_active: false,
        starttls_available: true,
        require_tls_for_auth: false,
        limits: ClientLimits::default(),
    }
}

pub(super) fn run(opts: ClientOptions, script: impl Fn(&mut T)) {
    both_ways(|| SmtpClient::new(opts.clone()), script);
}

pub(super) fn login(user: &str, password: &str) -> ClientStep {
    ClientStep::Login(Credentials {
        username: user.into(),
        authzid: None,
        password: Secret::from(password),
    })
}

pub(super) const EHLO: &str = "250-gate.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n\
    250-ENHANCEDSTATUSCODES\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n";
const EHLO_TLS: &str = "250-gate.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n\
    250-ENHANCEDSTATUSCODES\r\n250 AUTH PLAIN LOGIN\r\n";
const EHLO_NO_AUTH: &str = "250-gate.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n\
    250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n";

#[test]
fn greeting_ehlo_and_client_name() {
    run(opts(), |t| {
        assert_eq!(
            t.machine.greeting(),
            b"220 gate.example ESMTP mailgate ready\r\n"
        );
        assert_eq!(t.machine.client_name(), None);
        assert_eq!(t.send(b"EHLO scanner.local\r\n"), vec![reply(EHLO)]);
        assert_eq!(t.machine.client_name(), Some("scanner.local"));
        assert_eq!(t.send(b"ehlo [192.168.1.7]\r\n"), vec![reply(EHLO)]);
        assert_eq!(t.machine.client_name(), Some("[192.168.1.7]"));
    });
}

#[test]
fn ehlo_and_helo_need_a_printable_name() {
    run(opts(), |t| {
        let steps = t.send(b"EHLO\r\nHELO \r\nEHLO bad\x01name\r\n");
        assert_eq!(
            steps,
            vec![
                reply("501 5.5.4 Syntax: EHLO hostname\r\n"),
                reply("501 5.5.4 Syntax: HELO hostname\r\n"),
                reply("501 5.5.4 Syntax: EHLO hostname\r\n"),
            ]
        );
        assert_eq!(t.machine.client_name(), None);
    });
}

#[test]
fn auth_before_ehlo_and_mail_before_auth() {
    run(opts(), |t| {
        let steps = t.send(b"AUTH PLAIN\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nVRFY x\r\n");
        let required = || reply("530 5.7.0 Authentication required\r\n");
        assert_eq!(
            steps,
            vec![
                reply("503 5.5.1 EHLO first\r\n"),
                required(),
                required(),
                required(),
                reply("500 5.5.2 Command not recognized\r\n"),
            ]
        );
    });
}

#[test]
fn noop_rset_quit() {
    run(opts(), |t| {
        let steps = t.send(b"NOOP\r\nRSET\r\nQUIT\r\nNOOP\r\n");
        let ok = || reply("250 2.0.0 OK\r\n");
        let bye = ClientStep::Close {
            reply: b"221 2.0.0 Bye\r\n".to_vec(),
            reason: "client quit",
        };
        assert_eq!(steps, vec![ok(), ok(), bye]);
        assert_eq!(t.send(b""), vec![]);
    });
}

#[test]
fn starttls_leaves_later_bytes_and_forgets_ehlo() {
    run(opts(), |t| {
        let steps = t.send(b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<injected>\r\n");
        let tls = ClientStep::StartTls(b"220 2.0.0 Ready to start TLS\r\n".to_vec());
        assert_eq!(steps, vec![reply(EHLO), tls]);
        assert_eq!(&t.buffer[..], b"MAIL FROM:<injected>\r\n");
        t.buffer.clear();
        t.machine.tls_established();
        assert_eq!(t.machine.client_name(), None);
        assert_eq!(
            t.send(b"AUTH PLAIN\r\n"),
            vec![reply("503 5.5.1 EHLO first\r\n")]
        );
        assert_eq!(t.send(b"EHLO again\r\n"), vec![reply(EHLO_TLS)]);
        assert_eq!(t.machine.client_name(), Some("again"));
        assert_eq!(
            t.send(b"STARTTLS\r\n"),
            vec![reply("503 5.5.1 TLS already active\r\n")]
        );
    });
}

#[test]
fn starttls_unavailable_or_with_arguments() {
    run(
        ClientOptions {
            starttls_available: false,
            ..opts()
        },
        |t| {
            let steps = t.send(b"STARTTLS\r\nSTARTTLS now\r\nEHLO c\r\n");
            let ehlo = EHLO.replace(
                "250-AUTH PLAIN LOGIN\r\n250 STARTTLS",
                "250 AUTH PLAIN LOGIN",
            );
            assert_eq!(
                steps,
                vec![
                    reply("502 5.5.1 STARTTLS not available\r\n"),
                    reply("501 5.5.4 Syntax: STARTTLS\r\n"),
                    reply(&ehlo),
                ]
            );
        },
    );
}

#[test]
fn tls_required_hides_auth_until_starttls() {
    run(
        ClientOptions {
            require_tls_for_auth: true,
            ..opts()
        },
        |t| {
            let steps = t.send(b"EHLO c\r\nAUTH PLAIN\r\nAUTH LOGIN\r\n");
            let must = || reply("530 5.7.0 Must issue a STARTTLS command first\r\n");
            assert_eq!(steps, vec![reply(EHLO_NO_AUTH), must(), must()]);
            assert!(matches!(
                t.send(b"STARTTLS\r\n")[..],
                [ClientStep::StartTls(_)]
            ));
            t.machine.tls_established();
            let steps = t.send(b"EHLO c\r\nAUTH LOGIN\r\n");
            assert_eq!(steps, vec![reply(EHLO_TLS), reply("334 VXNlcm5hbWU6\r\n")]);
        },
    );
}

#[test]
fn command_bound_closes() {
    let limits = ClientLimits {
        max_commands: 2,
        ..ClientLimits::default()
    };
    run(ClientOptions { limits, ..opts() }, |t| {
        let steps = t.send(b"NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n");
        let close = ClientStep::Close {
            reply: b"421 4.7.0 Too many commands before login, closing connection\r\n".to_vec(),
            reason: "too many commands",
        };
        assert_eq!(
            steps,
            vec![reply("250 2.0.0 OK\r\n"), reply("250 2.0.0 OK\r\n"), close]
        );
        assert_eq!(&t.buffer[..], b"NOOP\r\n");
    });
}

#[test]
fn line_bound_closes() {
    let limits = ClientLimits {
        max_line: 20,
        ..ClientLimits::default()
    };
    run(ClientOptions { limits, ..opts() }, |t| {
        let steps = t.send(b"EHLO a-very-long-client-name.example\r\n");
        let close = ClientStep::Close {
            reply: b"500 5.5.2 Line too long, closing connection\r\n".to_vec(),
            reason: "line too long",
        };
        assert_eq!(steps, vec![close]);
    });
}

#[test]
fn timeout_and_shutdown_replies() {
    let c = SmtpClient::new(opts());
    assert!(c.timeout_reply().starts_with(b"421 4.4.2 gate.example "));
    assert_eq!(
        c.shutdown_reply(),
        b"421 4.3.2 gate.example Service shutting down\r\n"
    );
}

#[test]
fn an_accepting_backend_sets_what_ehlo_offers() {
    let extensions = super::server::extensions(35 * 1024 * 1024);
    both_ways(
        || SmtpClient::with_extensions(opts(), extensions.clone()),
        |t| {
            assert_eq!(
                t.send(b"EHLO scanner.local\r\n"),
                vec![reply(
                    "250-gate.example\r\n250-PIPELINING\r\n250-SIZE 36700160\r\n250-8BITMIME\r\n\
                     250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"
                )]
            );
        },
    );
}
