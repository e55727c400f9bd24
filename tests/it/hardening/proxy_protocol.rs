//! The PROXY protocol through a real HAProxy (`send-proxy-v2` and
//! `send-proxy`) in front of the in-process proxy: the client's own address
//! reaches the logs and the guard, a client that sends a header itself is
//! refused, and a listed balancer that sends none is closed on.
//!
//! Clients connect from 127.0.0.2 and 127.0.0.3 while HAProxy connects from
//! 127.0.0.1, so the address mailgate sees tells which one it used.

use std::time::Duration;

use super::redaction::{self, Captured};
use crate::support::client::{Client, connect_from};
use crate::support::fake_upstream::Proto;
use crate::support::proxy::{Proxy, Setup, USER, greeting_ok, login_ok};
use crate::support::servers::{Haproxy, SendProxy};

/// HAProxy connects from here; only it may send a header.
const BALANCER: &str = "proxy_protocol_from = [\"127.0.0.1\"]\n";
/// The listed balancer's header must come within this (seconds).
const HEADER_LIMITS: &str = "tls_handshake_timeout_secs = 2\n";
const STEP: Duration = Duration::from_secs(30);

/// Runs `test` with every log line up to DEBUG captured.
fn with_logs<F: std::future::Future<Output = ()>>(test: impl FnOnce(Captured) -> F) {
    redaction::with_logs(tracing::Level::DEBUG, Duration::from_secs(240), test);
}

async fn proxy() -> Proxy {
    Proxy::start(Setup {
        listener: BALANCER,
        limits: HEADER_LIMITS,
        ..Setup::new(Proto::Imap)
    })
    .await
}

async fn client_via(haproxy: &Haproxy, source: &str) -> Client {
    let mut c = Client::from_tcp(connect_from(source, haproxy.addr).await);
    let greeting = c.line().await;
    assert!(
        greeting_ok(Proto::Imap, &greeting),
        "{greeting:?}\n{}",
        haproxy.log()
    );
    c
}

/// One wrong password through `haproxy` from `source`; the tagged answer.
async fn wrong_login(haproxy: &Haproxy, source: &str) -> String {
    let attempt = async {
        let mut c = client_via(haproxy, source).await;
        c.send(&format!("a LOGIN {USER} \"not-the-password\"\r\n"))
            .await;
        c.until("a ").await.pop().unwrap_or_default()
    };
    tokio::time::timeout(STEP, attempt)
        .await
        .expect("answered in time")
}

/// The captured log once it holds `needle` (a session logs its end just
/// after the client saw the close), or after a bounded wait.
async fn logged(captured: &Captured, needle: &str) -> String {
    for _ in 0..100 {
        let log = captured.text();
        if log.contains(needle) {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    captured.text()
}

#[test]
fn through_haproxy_v2_the_guard_and_the_logs_see_the_client() {
    with_logs(|captured| async move {
        let p = proxy().await;
        let haproxy = Haproxy::start(p.addr, SendProxy::V2).unwrap();
        let mut c = client_via(&haproxy, "127.0.0.2").await;
        login_ok(Proto::Imap, &mut c).await;
        drop(c);
        let log = logged(&captured, "peer=127.0.0.2:").await;
        assert!(log.contains("peer=127.0.0.2:"), "{log}");
        assert!(log.contains("via=127.0.0.1:"), "{log}");

        let mut answers = Vec::new();
        for _ in 0..5 {
            answers.push(wrong_login(&haproxy, "127.0.0.2").await);
        }
        assert!(
            answers[4].contains("Too many failed logins"),
            "127.0.0.2 is locked out: {answers:#?}"
        );
        let mut c = client_via(&haproxy, "127.0.0.3").await;
        login_ok(Proto::Imap, &mut c).await;
    });
}

#[test]
fn through_haproxy_v1_the_logs_see_the_client() {
    with_logs(|captured| async move {
        let p = proxy().await;
        let haproxy = Haproxy::start(p.addr, SendProxy::V1).unwrap();
        let mut c = client_via(&haproxy, "127.0.0.3").await;
        login_ok(Proto::Imap, &mut c).await;
        drop(c);
        let log = logged(&captured, "peer=127.0.0.3:").await;
        assert!(log.contains("peer=127.0.0.3:"), "{log}");
        assert!(log.contains("via=127.0.0.1:"), "{log}");
    });
}

#[test]
fn a_header_from_an_unlisted_address_is_refused() {
    with_logs(|captured| async move {
        let p = proxy().await;
        for header in [
            &b"PROXY TCP4 10.9.8.7 127.0.0.1 40000 143\r\n"[..],
            b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\x0a\x09\x08\x07\x7f\x00\x00\x01\x9c\x40\x00\x8f",
        ] {
            let mut c = p.client_from("127.0.0.4").await;
            c.send_bytes(header).await;
            let refusal = c.line().await;
            assert!(refusal.starts_with("* BYE"), "{refusal:?}");
            assert!(c.closed().await, "closed after the refusal");
        }
        let log = captured.text();
        assert!(log.contains("spoofing attempt"), "{log}");
        assert!(!log.contains("peer=10.9.8.7"), "{log}");
        let mut c = p.client_from("127.0.0.4").await;
        login_ok(Proto::Imap, &mut c).await;
    });
}

#[test]
fn a_listed_balancer_without_a_header_gets_no_greeting() {
    with_logs(|captured| async move {
        let p = proxy().await;
        // Silent: closed when the header is overdue.
        let mut c = Client::from_tcp(connect_from("127.0.0.1", p.addr).await);
        assert_eq!(c.line().await, "", "no greeting, closed");
        // Speaking the protocol instead of a header: closed at once.
        let mut c = Client::from_tcp(connect_from("127.0.0.1", p.addr).await);
        c.send("a1 CAPABILITY\r\n").await;
        assert_eq!(c.line().await, "", "no greeting, closed");
        let log = captured.text();
        assert!(
            log.contains("no PROXY header within the time allowed"),
            "{log}"
        );
        assert!(
            log.contains("does not start with a PROXY protocol header"),
            "{log}"
        );
        // A v2 LOCAL (a health check) is served as the balancer itself.
        let mut c = Client::from_tcp(connect_from("127.0.0.1", p.addr).await);
        c.send_bytes(b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00").await;
        let greeting = c.line().await;
        assert!(greeting_ok(Proto::Imap, &greeting), "{greeting:?}");
        login_ok(Proto::Imap, &mut c).await;
    });
}

#[test]
fn a_proxied_client_is_loopback_only_if_the_client_is() {
    with_logs(|captured| async move {
        let p = proxy().await;
        // The balancer is on loopback; the client it names is not, so
        // passwords may not cross this plain listener.
        let mut c = Client::from_tcp(connect_from("127.0.0.1", p.addr).await);
        c.send("PROXY TCP4 192.0.2.7 127.0.0.1 40000 143\r\n").await;
        let greeting = c.line().await;
        assert!(greeting_ok(Proto::Imap, &greeting), "{greeting:?}");
        c.send("a CAPABILITY\r\n").await;
        let lines = c.until("a ").await;
        assert!(lines[0].contains("LOGINDISABLED"), "{lines:?}");
        c.send("z LOGOUT\r\n").await;
        assert!(c.closed_within(STEP).await);
        let log = logged(&captured, "peer=192.0.2.7:40000").await;
        assert!(log.contains("peer=192.0.2.7:40000"), "{log}");
        // The same through HAProxy from a loopback client: allowed.
        let haproxy = Haproxy::start(p.addr, SendProxy::V2).unwrap();
        let mut c = client_via(&haproxy, "127.0.0.2").await;
        c.send("a CAPABILITY\r\n").await;
        let lines = c.until("a ").await;
        assert!(!lines[0].contains("LOGINDISABLED"), "{lines:?}");
    });
}
