//! SIGKILL the instance holding the refresh lease in the middle of its
//! refresh (the provider answers slowly): the other instances take the
//! lease once the database drops the dead holder's connection, refresh
//! themselves, and finish their logins; the account works afterwards with
//! refresh tokens that are single-use again, so what is stored is the
//! newest the provider issued. Three times, each on a fresh cluster.
//!
//! The provider keeps redeemed refresh tokens usable during the kill (as
//! Entra ID does): the dead holder may have redeemed the stored one without
//! living to save the answer.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::client::{Client, connect_from};
use crate::support::cluster::{ALICE, Cluster, Options, PASSWORD, StoreKind};

const LOGINS: usize = 30;
const ROUNDS: usize = 3;
const SLOW_PROVIDER: Duration = Duration::from_secs(3);
const FIND_HOLDER: Duration = Duration::from_secs(10);
const LOGINS_LIMIT: Duration = Duration::from_secs(60);

/// The index of the instance with a connection open to `port`.
fn connected_to(cluster: &Cluster, port: u16) -> Option<usize> {
    let out = Command::new("ss")
        .args(["-tnpH", "state", "established"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let needle = format!("127.0.0.1:{port} ");
    (0..cluster.instances.len()).find(|&i| {
        let Some(pid) = cluster.instances[i].as_ref().and_then(|s| s.pid()) else {
            return false;
        };
        let owner = format!("pid={pid},");
        text.lines()
            .any(|l| l.contains(&needle) && l.contains(&owner))
    })
}

#[test]
fn killing_the_lease_holder_mid_refresh_loses_no_refresh_token() {
    for round in 0..ROUNDS {
        one_round(round);
    }
}

fn one_round(round: usize) {
    let cluster = Arc::new(Cluster::start(Options {
        store: StoreKind::Postgres,
        enrol_lifetime: Some(Duration::from_secs(1)),
        refresh_margin_secs: 1,
        sessions: 64,
        ..Options::default()
    }));
    std::thread::sleep(Duration::from_millis(1100));
    let idp_port: u16 = cluster
        .idp
        .token_url()
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next()?.parse().ok())
        .expect("IdP port");
    cluster.idp.set_keep_redeemed(true);
    cluster.idp.set_access_lifetime(Duration::from_secs(2));
    cluster.idp.set_latency(SLOW_PROVIDER);
    let rt = super::runtime();
    let mut logins = tokio::task::JoinSet::new();
    for _ in 0..LOGINS {
        let c = cluster.clone();
        logins.spawn_on(
            async move { c.login("127.0.0.1", PASSWORD).await },
            rt.handle(),
        );
    }
    let deadline = Instant::now() + FIND_HOLDER;
    let holder = loop {
        if let Some(i) = connected_to(&cluster, idp_port) {
            break i;
        }
        assert!(
            Instant::now() < deadline,
            "round {round}: no instance refreshing\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Some(serve) = &cluster.instances[holder] {
        serve.signal("KILL");
    }
    cluster.idp.set_latency(Duration::ZERO);
    let answers = rt.block_on(async {
        let mut answers = Vec::new();
        let all = async {
            while let Some(answer) = logins.join_next().await {
                answers.push(answer.unwrap_or_else(|e| e.to_string()));
            }
        };
        tokio::time::timeout(LOGINS_LIMIT, all)
            .await
            .expect("logins ended in time");
        answers
    });
    let ok = answers.iter().filter(|a| a.starts_with("a OK")).count();
    assert!(
        ok >= LOGINS - LOGINS / 3,
        "round {round}: the logins on the survivors finish (holder {holder}): {answers:#?}\n{}",
        cluster.logs()
    );
    // Single-use refresh tokens again: the next refresh works only with
    // the newest, unredeemed one in the store.
    cluster.idp.set_keep_redeemed(false);
    std::thread::sleep(Duration::from_millis(1100));
    let before = cluster.refreshes();
    let survivor = (holder + 1) % cluster.instances.len();
    let answer = rt.block_on(direct_login(cluster.ports[survivor]));
    assert!(
        answer.starts_with("a OK"),
        "round {round}: {answer}\n{}",
        cluster.logs()
    );
    assert!(
        cluster.refreshes() > before,
        "round {round}: the check refreshed"
    );
}

/// LOGIN straight to an instance from 127.0.0.5 (not a balancer: no header).
async fn direct_login(port: u16) -> String {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut c = Client::from_tcp(connect_from("127.0.0.5", addr).await);
    let _greeting = c.line().await;
    c.send(&format!("a LOGIN {ALICE} \"{PASSWORD}\"\r\n")).await;
    c.until("a ").await.pop().unwrap_or_default()
}
