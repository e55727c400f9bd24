//! 500 simultaneous IMAP logins for one account through HAProxy, spread
//! round-robin over three instances, its access token expired: every login
//! succeeds, and the refresh tokens, which rotate on every use, are never
//! redeemed twice.
//!
//! The lease held across the refresh makes it one refresh for all three
//! instances: PostgreSQL's per-account advisory lock. (Instances sharing a
//! file-store state directory are not a supported setup: the file store
//! holds no lease across the refresh; README "Deployment: several
//! instances".)

use std::sync::Arc;
use std::time::Duration;

use crate::support::cluster::{Cluster, Options, PASSWORD, StoreKind};

const BURST: usize = 500;
const INSTANCES: usize = 3;
const BURST_LIMIT: Duration = Duration::from_secs(120);

#[test]
fn five_hundred_simultaneous_logins_with_an_expired_token_over_three_instances_on_postgres() {
    burst(StoreKind::Postgres, 1);
}

/// The burst on `store`; the provider must see exactly `refreshes`.
fn burst(store: StoreKind, expected_refreshes: u64) {
    let cluster = Arc::new(Cluster::start(Options {
        store,
        instances: INSTANCES,
        enrol_lifetime: Some(Duration::from_secs(1)),
        refresh_margin_secs: 1,
        sessions: 600,
        database_url: None,
    }));
    std::thread::sleep(Duration::from_millis(1100));
    let rt = super::runtime();
    let answers = rt.block_on(async {
        let mut logins = tokio::task::JoinSet::new();
        for _ in 0..BURST {
            let cluster = cluster.clone();
            logins.spawn(async move { cluster.login("127.0.0.1", PASSWORD).await });
        }
        let all = async {
            let mut answers = Vec::new();
            while let Some(answer) = logins.join_next().await {
                answers.push(answer);
            }
            answers
        };
        tokio::time::timeout(BURST_LIMIT, all)
            .await
            .expect("the burst ended in time")
    });
    let ok = answers
        .iter()
        .filter(|a| a.as_ref().is_ok_and(|a| a.starts_with("a OK")))
        .count();
    let mut others: Vec<String> = answers
        .iter()
        .filter_map(|a| match a {
            Ok(a) if a.starts_with("a OK") => None,
            Ok(a) => Some(a.clone()),
            Err(e) => Some(e.to_string()),
        })
        .collect();
    others.sort();
    others.dedup();
    assert_eq!(
        ok,
        BURST,
        "all logins succeed: {others:#?}\n{}",
        cluster.logs()
    );
    let refreshes = cluster.refreshes();
    assert_eq!(
        refreshes,
        expected_refreshes,
        "refreshes at the provider\n{}",
        cluster.logs()
    );
}
