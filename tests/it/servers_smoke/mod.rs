//! Proves with real clients (curl, Python's imaplib/smtplib, swaks) that the
//! private test servers behave like Microsoft 365 as far as mailgate cares:
//! implicit-TLS IMAP and POP3 with SASL XOAUTH2, submission with STARTTLS
//! required before AUTH, and tokens checked on every login by introspection
//! against the test identity provider (tests/support/idp), the same one the
//! interop suite and the OAuth tests use.

use crate::support::idp::BlockingIdp;
use crate::support::servers;

use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use servers::{INSTALL_HINT, MailServers, StartOptions};

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";
/// Upper bound for a message to travel submission → queue → LMTP → maildir.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound for one client program run.
const CLIENT_TIMEOUT_SECS: &str = "20";
/// Length of a Microsoft-sized access token (theirs are JWTs of 1.5–3 KB).
const LONG_TOKEN_LEN: usize = 3000;

const SEEDED: &[u8] = b"From: carol@example.test\r\nTo: alice@example.test\r\n\
Subject: seeded for the smoke test\r\nMessage-ID: <seed-1@example.test>\r\n\r\n\
line one\r\nline two with trailing spaces   \r\n\r\nlast line\r\n";

/// A fresh access token for `user` from the test IdP.
fn token(idp: &BlockingIdp, user: &str) -> String {
    idp.mint(user).access_token
}

/// The test IdP that the servers ask about every token (RFC 7662).
fn identity_provider() -> BlockingIdp {
    let idp = BlockingIdp::start();
    idp.add_user(ALICE);
    idp.add_user(BOB);
    idp
}

fn require(binaries: &[&str]) {
    for binary in binaries {
        if let Err(missing) = servers::find_binary(binary) {
            panic!("{missing}");
        }
    }
}

fn start(idp: &BlockingIdp, options: &StartOptions) -> MailServers {
    require(&["dovecot", "postconf", "curl", "python3", "swaks", "timeout"]);
    MailServers::start_with(&idp.introspect_url(), &[ALICE, BOB], options)
        .unwrap_or_else(|e| panic!("mail servers did not start:\n{e}"))
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg(CLIENT_TIMEOUT_SECS)
        .arg(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}; {INSTALL_HINT}"))
}

pub(crate) fn python(script: &str, args: &[&str]) -> String {
    let mut all = vec!["-c", script];
    all.extend_from_slice(args);
    let out = run("python3", &all);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn curl(servers: &MailServers, url: &str, bearer: &str) -> Output {
    let ca = servers.ca_pem_path().display().to_string();
    run(
        "curl",
        &[
            "-sS",
            "--cacert",
            &ca,
            "--user",
            &format!("{ALICE}:"),
            "--oauth2-bearer",
            bearer,
            "--login-options",
            "AUTH=XOAUTH2",
            url,
        ],
    )
}

mod retrieval;
mod submission;

#[test]
fn start_failure_reports_the_dovecot_log() {
    let idp = identity_provider();
    let squatter = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = squatter.local_addr().expect("addr").port();
    let options = StartOptions {
        imaps_port: Some(taken),
        ..StartOptions::default()
    };
    require(&["dovecot", "postconf"]);
    let error = match MailServers::start_with(&idp.introspect_url(), &[ALICE], &options) {
        Ok(_) => panic!("started although port {taken} is taken"),
        Err(e) => e,
    };
    assert!(error.contains("dovecot failed to start"), "{error}");
    assert!(error.contains("--- dovecot.log ---"), "{error}");
    assert!(error.contains("Address already in use"), "{error}");
}

#[test]
fn parallel_instances_start_quickly_and_stay_apart() {
    let idp = identity_provider();
    let url = idp.introspect_url();
    require(&["dovecot", "postconf"]);
    let began = Instant::now();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || MailServers::start(&url, &[ALICE]))
        })
        .collect();
    let started: Vec<MailServers> = handles
        .into_iter()
        .map(|h| h.join().expect("thread").unwrap_or_else(|e| panic!("{e}")))
        .collect();
    eprintln!("two instances started in {:?}", began.elapsed());
    assert_ne!(started[0].imaps_port(), started[1].imaps_port());
    assert_ne!(started[0].dir(), started[1].dir());
    let dirs: Vec<_> = started.iter().map(|s| s.dir().to_path_buf()).collect();
    drop(started);
    assert!(
        dirs.iter().all(|d| !d.exists()),
        "temporary directories left behind"
    );
}
