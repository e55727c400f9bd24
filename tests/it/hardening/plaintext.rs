//! Safe defaults on a LAN: a non-loopback listener without TLS is refused by
//! validation (and by `mailgate check-config`), and credentials over plaintext
//! are refused when TLS is required.
//!
//! Every socket test must stay on 127.0.0.0/8, and mailgate counts every
//! 127.x peer as loopback (plaintext is fine there). So the "peer that is not
//! loopback" path is proven in two halves: the listener decides
//! `require_tls_for_auth` from `Listener::plaintext_auth_ok(peer)` (checked here
//! for a LAN address), and the machines, given that option, advertise
//! LOGINDISABLED / withhold USER and AUTH and never yield credentials (checked
//! here by driving each client machine directly).

use std::net::IpAddr;

use bytes::BytesMut;
use mailgate::proto::{ClientLimits, ClientOptions, ClientStep};
use mailgate::session::machine::ClientMachine;

use crate::support::config::{ConfigBuilder, Listener, Upstream};

/// A plaintext IMAP listener named "lan" on `bind`; `extra` are listener keys.
fn listener(bind: &str, extra: &str) -> String {
    let upstream = Upstream::new(993, "implicit");
    ConfigBuilder::new()
        .state_dir(std::path::Path::new("/tmp/mailgate-never-used"))
        .provider_unused()
        .listener(
            Listener::new("imap", bind, upstream)
                .name("lan")
                .tls("none")
                .keys_raw(extra),
        )
        .toml()
}

#[test]
fn non_loopback_plaintext_listener_is_refused_by_validation() {
    let dir = std::path::Path::new("/tmp");
    let err = mailgate::config::parse(&listener("0.0.0.0:1143", ""), "lan.toml", dir)
        .expect_err("plaintext on a LAN address must be refused");
    let text = err.to_string();
    assert!(text.contains("allow_plaintext_auth"), "{text}");
    let ok = mailgate::config::parse(&listener("127.0.0.1:1143", ""), "lo.toml", dir);
    assert!(ok.is_ok(), "loopback plaintext is the safe default: {ok:?}");
    let allowed = mailgate::config::parse(
        &listener("0.0.0.0:1143", "allow_plaintext_auth = true"),
        "lan.toml",
        dir,
    )
    .expect("explicitly allowed");
    let lan: IpAddr = "192.168.1.20".parse().unwrap();
    assert!(allowed.listeners[0].plaintext_auth_ok(lan));
}

#[test]
fn check_config_exits_non_zero_naming_the_key() {
    let dir = crate::support::scratch::temp_dir("plaintext");
    let path = dir.join("lan.toml");
    std::fs::write(&path, listener("0.0.0.0:1143", "")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailgate"))
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run mailgate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("allow_plaintext_auth") || stdout.contains("allow_plaintext_auth"),
        "{stdout}{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_lan_peer_on_a_plaintext_listener_must_use_tls_first() {
    let config = mailgate::config::parse(
        &listener("127.0.0.1:1143", "allow_plaintext_auth = false"),
        "lo.toml",
        std::path::Path::new("/tmp"),
    )
    .unwrap();
    let l = &config.listeners[0];
    assert!(l.plaintext_auth_ok("127.0.0.2".parse().unwrap()));
    assert!(l.plaintext_auth_ok("::1".parse().unwrap()));
    assert!(!l.plaintext_auth_ok("192.168.1.20".parse().unwrap()));
    assert!(!l.plaintext_auth_ok("10.0.0.1".parse().unwrap()));
}

fn opts() -> ClientOptions {
    ClientOptions {
        hostname: "mailgate.test".into(),
        tls_active: false,
        starttls_available: true,
        require_tls_for_auth: true,
        limits: ClientLimits::default(),
    }
}

/// Feeds a whole conversation; returns every reply, panicking on a Login.
fn replies(m: &mut dyn ClientMachine, input: &str) -> String {
    let mut buf = BytesMut::from(input.as_bytes());
    let mut out = String::from_utf8_lossy(&m.greeting()).into_owned();
    for _ in 0..100 {
        match m.step(&mut buf) {
            ClientStep::NeedMore => return out,
            ClientStep::Reply(r) => out.push_str(&String::from_utf8_lossy(&r)),
            ClientStep::Close { reply, .. } => {
                out.push_str(&String::from_utf8_lossy(&reply));
                return out;
            }
            ClientStep::Login(_) => panic!("credentials accepted before TLS:\n{out}"),
            ClientStep::StartTls(_) => panic!("unexpected STARTTLS"),
        }
    }
    out
}

#[test]
fn imap_advertises_logindisabled_and_refuses_every_login_form() {
    let mut m = mailgate::proto::imap::ImapClient::new(opts());
    let plain = mailgate::proto::sasl::encode(b"\0alice\0pw");
    let out = replies(
        &mut m,
        &format!(
            "c CAPABILITY\r\na LOGIN alice pw\r\nb AUTHENTICATE PLAIN {plain}\r\nd LOGIN alice {{2}}\r\n"
        ),
    );
    assert!(out.contains("LOGINDISABLED"), "{out}");
    assert!(out.contains("STARTTLS"), "{out}");
    assert!(!out.contains("AUTH=PLAIN"), "{out}");
    assert!(out.contains("a NO") || out.contains("a BAD"), "{out}");
    assert!(out.contains("b NO") || out.contains("b BAD"), "{out}");
    assert!(
        !out.contains("\r\n+ "),
        "no continuation for a LOGIN literal: {out}"
    );
}

#[test]
fn pop3_requires_stls_before_user_or_auth() {
    let mut m = mailgate::proto::pop3::Pop3Client::new(opts());
    let plain = mailgate::proto::sasl::encode(b"\0alice\0pw");
    let out = replies(
        &mut m,
        &format!("CAPA\r\nUSER alice\r\nPASS pw\r\nAUTH PLAIN {plain}\r\n"),
    );
    assert!(out.contains("STLS"), "{out}");
    assert_eq!(out.matches("-ERR").count(), 3, "{out}");
}

#[test]
fn smtp_requires_starttls_before_auth() {
    let mut m = mailgate::proto::smtp::SmtpClient::new(opts());
    let plain = mailgate::proto::sasl::encode(b"\0alice\0pw");
    let out = replies(&mut m, &format!("EHLO c\r\nAUTH PLAIN {plain}\r\n"));
    assert!(out.contains("STARTTLS"), "{out}");
    assert!(
        !out.contains("250-AUTH") && !out.contains("250 AUTH"),
        "{out}"
    );
    assert!(out.contains("530"), "{out}");
}
