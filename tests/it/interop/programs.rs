//! Debian's mail programs doing their everyday jobs through mailgate:
//! fetchmail retrieves (POP3 with STLS, IMAP over implicit TLS), msmtp
//! sends (AUTH PLAIN with STARTTLS, AUTH LOGIN over implicit TLS), mbsync
//! mirrors INBOX to a local maildir, mutt sends in batch mode. Each is
//! checked on the other side: the bytes retrieved or the recipient's maildir.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::harness::{ALICE, BOB, DELIVERY_TIMEOUT, Env, PASSWORD, SEEDED};

/// Writes a private (0600) file, as these programs insist for files holding
/// a password; returns its path.
fn private(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path.display().to_string()
}

fn lf(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace("\r\n", "\n")
}

fn output(out: &std::process::Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn fetchmail_retrieves_over_pop3_stls_and_imaps_into_an_mda() {
    let env = Env::start();
    env.servers.seed_message(ALICE, SEEDED).expect("seed");
    let ca = env.ca();
    for (protocol, listener, tls) in [
        ("POP3", "pop3-starttls", "sslproto TLS1.2+"),
        ("IMAP", "imap-implicit", "ssl"),
    ] {
        let sink = env.dir.join(format!("fetched-{protocol}"));
        let mda = private(
            &env.dir,
            &format!("mda-{protocol}.sh"),
            &format!("#!/bin/sh\ncat >> '{}'\n", sink.display()),
        );
        std::fs::set_permissions(&mda, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let rc = private(
            &env.dir,
            &format!("fetchmailrc-{protocol}"),
            &format!(
                "set no bouncemail\nset invisible\n\
                 poll 127.0.0.1 service {port} protocol {protocol} auth password\n\
                 \tuser \"{ALICE}\" password \"{PASSWORD}\" is root here\n\
                 \t{tls} sslcertck sslcertfile \"{ca}\" sslcommonname localhost\n\
                 \tkeep fetchall mda \"{mda}\"\n",
                port = env.port(listener),
            ),
        );
        let home = env.dir.join(format!("fetchmail-home-{protocol}"));
        std::fs::create_dir_all(&home).expect("fetchmail home");
        let home = home.display().to_string();
        let out = env.run(
            "env",
            &[
                &format!("FETCHMAILHOME={home}"),
                "fetchmail",
                "--nosyslog",
                "--nodetach",
                "-v",
                "-f",
                &rc,
                "--pidfile",
                &format!("{home}/pid"),
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{protocol}: {}\n{}",
            output(&out),
            env.logs()
        );
        let fetched = std::fs::read(&sink).unwrap_or_default();
        assert!(
            lf(&fetched).ends_with(&lf(SEEDED)),
            "{protocol}: fetched {:?}\n{}",
            String::from_utf8_lossy(&fetched),
            output(&out)
        );
    }
}

#[test]
fn msmtp_sends_with_auth_plain_over_starttls_and_auth_login_over_tls() {
    let env = Env::start();
    let ca = env.ca();
    for (auth, listener, starttls) in [
        ("plain", "smtp-starttls", "on"),
        ("login", "smtp-implicit", "off"),
    ] {
        let rc = private(
            &env.dir,
            &format!("msmtprc-{auth}"),
            &format!(
                "account default\nhost 127.0.0.1\nport {port}\nfrom {ALICE}\n\
                 auth {auth}\nuser {ALICE}\npassword {PASSWORD}\n\
                 tls on\ntls_starttls {starttls}\ntls_trust_file {ca}\nlogfile -\n",
                port = env.port(listener),
            ),
        );
        let message = format!(
            "From: {ALICE}\r\nTo: {BOB}\r\nSubject: msmtp {auth}\r\n\r\nsent by msmtp with auth {auth}\r\n"
        );
        let out = env.run("msmtp", &["-C", &rc, BOB], Some(message.as_bytes()));
        assert!(
            out.status.success(),
            "{auth}: {}\n{}",
            output(&out),
            env.logs()
        );
        let delivered = lf(&env.delivered(BOB, DELIVERY_TIMEOUT));
        assert!(
            delivered.contains(&format!("\n\nsent by msmtp with auth {auth}\n")),
            "{auth}: {delivered}"
        );
    }
}

#[test]
fn mbsync_mirrors_inbox_into_a_local_maildir() {
    let env = Env::start();
    env.servers.seed_message(ALICE, SEEDED).expect("seed");
    let second = b"From: dave@example.test\r\nSubject: second\r\n\r\nanother one\r\n";
    env.servers.seed_message(ALICE, second).expect("seed");
    let local = env.dir.join("mbsync-local");
    std::fs::create_dir_all(&local).expect("local maildir root");
    let rc = private(
        &env.dir,
        "mbsyncrc",
        &format!(
            "IMAPAccount mg\nHost localhost\nPort {port}\nUser {ALICE}\nPass {PASSWORD}\n\
             AuthMechs LOGIN\nSSLType STARTTLS\nCertificateFile {ca}\n\n\
             IMAPStore far\nAccount mg\n\n\
             MaildirStore near\nPath {local}/\nInbox {local}/INBOX\n\n\
             Channel inbox\nFar :far:\nNear :near:\nPatterns INBOX\nCreate Near\nSyncState *\n",
            port = env.port("imap-starttls"),
            ca = env.ca(),
            local = local.display(),
        ),
    );
    let out = env.run("mbsync", &["-c", &rc, "-V", "inbox"], None);
    assert!(out.status.success(), "{}\n{}", output(&out), env.logs());
    let mut got: Vec<String> = ["new", "cur"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(local.join("INBOX").join(sub)).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|e| lf(&std::fs::read(e.path()).expect("read synced message")))
        .map(|m| without_tuid(&m))
        .collect();
    got.sort();
    let mut want = vec![lf(SEEDED), lf(second)];
    want.sort();
    assert_eq!(got, want, "{}", output(&out));
}

/// mbsync's own tracking header (`X-TUID`) removed.
fn without_tuid(message: &str) -> String {
    message
        .split_inclusive('\n')
        .filter(|line| !line.starts_with("X-TUID: "))
        .collect()
}

#[test]
fn mutt_sends_in_batch_mode_through_smtp_url() {
    let env = Env::start();
    let home = env.dir.join("mutt-home");
    std::fs::create_dir_all(&home).expect("mutt home");
    let rc = private(
        &env.dir,
        "muttrc",
        &format!(
            "set from=\"{ALICE}\"\nset realname=\"Alice\"\n\
             set smtp_url=\"smtp://{user}@127.0.0.1:{port}/\"\nset smtp_pass=\"{PASSWORD}\"\n\
             set smtp_authenticators=\"plain\"\n\
             set ssl_starttls=yes\nset ssl_force_tls=yes\n\
             set ssl_ca_certificates_file=\"{ca}\"\nset certificate_file=\"{home}/certificates\"\n\
             set record=\"\"\nset copy=no\nset folder=\"{home}\"\nset spoolfile=\"{home}/inbox\"\n",
            user = ALICE.replace('@', "%40"),
            port = env.port("smtp-starttls"),
            ca = env.ca(),
            home = home.display(),
        ),
    );
    let body = b"sent by mutt in batch mode\n";
    let home_var = format!("HOME={}", home.display());
    let out = env.run(
        "env",
        &[&home_var, "mutt", "-n", "-F", &rc, "-s", "mutt batch", BOB],
        Some(body),
    );
    assert!(out.status.success(), "{}\n{}", output(&out), env.logs());
    let delivered = lf(&env.delivered(BOB, DELIVERY_TIMEOUT));
    assert!(
        delivered.contains("Subject: mutt batch\n")
            && delivered.contains("\n\nsent by mutt in batch mode\n"),
        "{delivered}"
    );
}
