//! Connection-level bounds: total and per-IP connection limits (refused with
//! a line in the client's protocol), allowed_networks, brute-force lock-out
//! that spares an owner's known address, and the per-mailbox upstream cap.

use std::time::{Duration, Instant};

use crate::support::client::{Client, connect_from};
use crate::support::fake_upstream::Proto;
use crate::support::proxy::{PASSWORD, Proxy, Setup, USER, login_ok};

#[tokio::test]
async fn total_connection_limit_refuses_in_protocol() {
    for (proto, refusal) in [
        (Proto::Imap, "* BYE [UNAVAILABLE]"),
        (Proto::Pop3, "-ERR [SYS/TEMP]"),
        (Proto::Smtp, "421 4.7.0"),
    ] {
        let g = Proxy::start(Setup {
            limits: "max_connections = 3",
            ..Setup::new(proto)
        })
        .await;
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(g.client().await);
        }
        // A different source address: the total limit, not the per-IP one.
        let mut extra = Client::from_tcp(connect_from("127.0.0.3", g.addr).await);
        let line = extra.line().await;
        assert!(line.starts_with(refusal), "{proto:?}: {line}");
        assert!(extra.closed_within(Duration::from_secs(5)).await);
        drop(held);
        wait_until_healthy(&g).await;
    }
}

#[tokio::test]
async fn per_ip_connection_limit_spares_other_addresses() {
    let g = Proxy::start(Setup {
        limits: "max_connections_per_ip = 2",
        ..Setup::new(Proto::Imap)
    })
    .await;
    let a = g.client().await;
    let b = g.client().await;
    let mut third = Client::raw(g.addr).await;
    let line = third.line().await;
    assert!(line.starts_with("* BYE [UNAVAILABLE]"), "{line}");
    let mut other = g.client_from("127.0.0.2").await;
    login_ok(Proto::Imap, &mut other).await;
    drop((a, b));
    wait_until_healthy(&g).await;
}

/// Slots are released when the server notices the close; retry briefly.
async fn wait_until_healthy(g: &Proxy) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = Client::raw(g.addr).await;
        let line = c.line().await;
        if crate::support::proxy::greeting_ok(g.proto, &line) {
            login_ok(g.proto, &mut c).await;
            return;
        }
        assert!(Instant::now() < deadline, "never admitted again: {line}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn allowed_networks_drops_other_clients() {
    let g = Proxy::start(Setup {
        listener: r#"allowed_networks = ["127.0.0.2/32"]"#,
        ..Setup::new(Proto::Imap)
    })
    .await;
    let mut outsider = Client::raw(g.addr).await;
    assert!(outsider.closed_within(Duration::from_secs(5)).await);
    let mut insider = g.client_from("127.0.0.2").await;
    login_ok(Proto::Imap, &mut insider).await;
}

async fn imap_login(c: &mut Client, password: &str) -> String {
    c.send(&format!("t LOGIN {USER} \"{password}\"\r\n")).await;
    c.until("t ").await.pop().unwrap_or_default()
}

#[tokio::test]
async fn brute_force_is_locked_out_and_the_owner_still_gets_in() {
    let g = Proxy::start(Setup::new(Proto::Imap)).await;
    // The owner logs in once from their own address.
    let mut owner = g.client_from("127.0.0.2").await;
    login_ok(Proto::Imap, &mut owner).await;
    drop(owner);
    // The attacker hammers the same account from 127.0.0.1.
    let mut answers = Vec::new();
    for _ in 0..8 {
        let mut c = g.client().await;
        answers.push(imap_login(&mut c, "wrong guess").await);
    }
    let grants_after_attack = g.grants();
    // Further guesses are answered at once, without asking the token source.
    let start = Instant::now();
    let mut c = g.client().await;
    let locked = imap_login(&mut c, PASSWORD).await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the lock-out must not hold the connection"
    );
    assert!(
        locked.starts_with("t NO [UNAVAILABLE]") || locked.starts_with("t NO"),
        "{locked}"
    );
    assert!(!locked.starts_with("t OK"), "{locked}");
    assert_eq!(
        g.grants(),
        grants_after_attack,
        "locked out: token source not consulted"
    );
    assert!(
        grants_after_attack < 8,
        "lock-out started after a few failures: {grants_after_attack} grants, {answers:?}"
    );
    assert!(
        answers
            .iter()
            .any(|a| a.contains("UNAVAILABLE") || a.to_ascii_lowercase().contains("try again")),
        "{answers:?}"
    );
    // The owner's known address is exempt from the account lock-out.
    let mut owner = g.client_from("127.0.0.2").await;
    login_ok(Proto::Imap, &mut owner).await;
}

#[tokio::test]
async fn per_mailbox_upstream_cap_queues_then_refuses() {
    let g = Proxy::start(Setup {
        listener: "max_upstream_per_mailbox = 2",
        limits: "upstream_queue_timeout_secs = 1",
        ..Setup::new(Proto::Imap)
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = g.client().await;
        login_ok(Proto::Imap, &mut c).await;
        held.push(c);
    }
    let mut third = g.client().await;
    let start = Instant::now();
    let answer = imap_login(&mut third, PASSWORD).await;
    let waited = start.elapsed();
    assert!(answer.starts_with("t NO"), "{answer}");
    assert!(
        answer.contains("UNAVAILABLE") || answer.contains("retry"),
        "{answer}"
    );
    assert!(
        waited >= Duration::from_millis(900),
        "queued before refusing: {waited:?}"
    );
    assert_eq!(g.upstream.logins(), 2, "the third never reached upstream");
    // A slot freed is a slot for the next login.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = g.client().await;
        let answer = imap_login(&mut c, PASSWORD).await;
        if answer.starts_with("t OK") {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed: {answer}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
