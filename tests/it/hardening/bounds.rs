//! Line length, SASL message size, pre-auth command count, the pre-auth
//! deadline against a one-byte-per-second client, the relay idle timeout and
//! the TLS handshake timeout: each tripped over a real socket, each protocol.

use std::time::{Duration, Instant};

use crate::support::client::Client;
use crate::support::fake_upstream::Proto;
use crate::support::proxy::{Proxy, Setup, login_ok};

const PROTOS: [Proto; 3] = [Proto::Imap, Proto::Pop3, Proto::Smtp];

async fn gate(proto: Proto, limits: &'static str) -> Proxy {
    Proxy::start(Setup {
        limits,
        ..Setup::new(proto)
    })
    .await
}

fn command(proto: Proto, body: &str) -> String {
    match proto {
        Proto::Imap => format!("a {body}\r\n"),
        _ => format!("{body}\r\n"),
    }
}

#[tokio::test]
async fn overlong_line_is_refused_and_closed() {
    for proto in PROTOS {
        let g = gate(proto, "max_line = 1024").await;
        let mut c = g.client().await;
        let long = "X".repeat(1024 + 200);
        c.send(&command(proto, &format!("NOOP {long}"))).await;
        let answer = c.line().await;
        assert!(
            answer.to_ascii_lowercase().contains("too long"),
            "{proto:?}: {answer}"
        );
        assert!(c.closed_within(Duration::from_secs(5)).await, "{proto:?}");
        // Without a terminator at all: refused once the bound is passed.
        let mut c = g.client().await;
        c.send_bytes(&vec![b'Y'; 64 * 1024]).await;
        let answer = c.line().await;
        assert!(
            answer.to_ascii_lowercase().contains("too long"),
            "{proto:?}: {answer}"
        );
        assert!(c.closed_within(Duration::from_secs(5)).await, "{proto:?}");
        assert_eq!(g.grants(), 0);
        g.assert_healthy().await;
    }
}

#[tokio::test]
async fn oversized_sasl_message_is_refused() {
    let big = "A".repeat(mailgate::proto::sasl::MAX_SASL_MESSAGE + 400);
    for proto in PROTOS {
        let g = gate(proto, "").await;
        let mut c = g.client().await;
        if proto == Proto::Smtp {
            c.send("EHLO client.test\r\n").await;
            c.until("250 ").await;
        }
        let verb = if proto == Proto::Imap {
            "AUTHENTICATE"
        } else {
            "AUTH"
        };
        c.send(&command(proto, &format!("{verb} PLAIN {big}")))
            .await;
        let answer = c.line().await;
        assert!(
            answer.to_ascii_lowercase().contains("too long"),
            "{proto:?}: {answer}"
        );
        // As a continuation answer too.
        let mut c = g.client().await;
        if proto == Proto::Smtp {
            c.send("EHLO client.test\r\n").await;
            c.until("250 ").await;
        }
        c.send(&command(proto, &format!("{verb} PLAIN"))).await;
        let cont = c.line().await;
        assert!(
            cont.starts_with('+') || cont.starts_with("334"),
            "{proto:?}: {cont}"
        );
        c.send(&format!("{big}\r\n")).await;
        let answer = c.line().await;
        assert!(
            answer.to_ascii_lowercase().contains("too long"),
            "{proto:?}: {answer}"
        );
        assert_eq!(g.grants(), 0, "no token was asked for");
        g.assert_healthy().await;
    }
}

#[tokio::test]
async fn preauth_command_count_is_bounded() {
    for proto in PROTOS {
        let g = gate(proto, "max_commands = 5").await;
        let mut c = g.client().await;
        let mut sent = 0;
        for _ in 0..20 {
            if !c.send(&command(proto, "NOOP")).await {
                break;
            }
            sent += 1;
        }
        assert!(sent > 5, "{proto:?}");
        let mut lines = Vec::new();
        for _ in 0..30 {
            let l = c.line().await;
            if l.is_empty() {
                break;
            }
            lines.push(l);
        }
        assert!(
            lines.len() <= 7,
            "{proto:?}: answered past the bound: {lines:?}"
        );
        assert!(
            c.closed_within(Duration::from_secs(5)).await,
            "{proto:?}: {lines:?}"
        );
        g.assert_healthy().await;
    }
}

/// One byte per second never completes a login: dropped at the deadline.
#[tokio::test]
async fn slow_client_is_dropped_at_the_preauth_deadline() {
    let runs = PROTOS.map(|proto| async move {
        let g = gate(proto, "preauth_timeout_secs = 2").await;
        let mut c = g.client().await;
        let start = Instant::now();
        let trickle = command(proto, "NOOP and then some more bytes that never end");
        let mut answer = String::new();
        for b in trickle.bytes() {
            if !c.send_bytes(&[b]).await {
                break;
            }
            let read = tokio::time::timeout(Duration::from_secs(1), c.line()).await;
            if let Ok(line) = read {
                answer = line;
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{proto:?} never dropped"
            );
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(1800) && elapsed < Duration::from_secs(5),
            "{proto:?}: dropped after {elapsed:?}"
        );
        let expected = match proto {
            Proto::Imap => "* BYE",
            Proto::Pop3 => "-ERR",
            Proto::Smtp => "421",
        };
        assert!(answer.starts_with(expected), "{proto:?}: {answer:?}");
        assert!(c.closed_within(Duration::from_secs(5)).await);
        g.assert_healthy().await;
    });
    futures_join3(runs).await;
}

async fn futures_join3<F: std::future::Future<Output = ()>>(runs: [F; 3]) {
    let [a, b, c] = runs;
    tokio::join!(a, b, c);
}

#[tokio::test]
async fn idle_relay_is_closed() {
    let runs = PROTOS.map(|proto| async move {
        let g = gate(proto, "relay_idle_timeout_secs = 2").await;
        let mut c = g.client().await;
        login_ok(proto, &mut c).await;
        let start = Instant::now();
        assert!(c.closed_within(Duration::from_secs(8)).await, "{proto:?}");
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(1800),
            "{proto:?}: {elapsed:?}"
        );
        g.assert_healthy().await;
    });
    futures_join3(runs).await;
}

#[tokio::test]
async fn silent_tls_client_is_dropped_at_the_handshake_timeout() {
    let g = Proxy::start(Setup {
        local_tls: "implicit",
        limits: "tls_handshake_timeout_secs = 2",
        ..Setup::new(Proto::Imap)
    })
    .await;
    let start = Instant::now();
    let mut c = Client::raw(g.addr).await;
    assert!(c.closed_within(Duration::from_secs(8)).await);
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1800) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    let mut ok = crate::support::client::Client::connect_tls(
        g.addr,
        crate::support::certs::client_config(g.ca.cert_pem()),
    )
    .await;
    assert!(ok.line().await.starts_with("* OK"));
    ok.send(&format!(
        "h LOGIN {} \"{}\"\r\n",
        crate::support::proxy::USER,
        crate::support::proxy::PASSWORD
    ))
    .await;
    assert!(ok.until("h ").await.last().unwrap().starts_with("h OK"));
}
