//! Restart of the database during traffic: logins with a warm token keep
//! working while it is down, a login that needs a refresh (the provider
//! dropped the token) gets a temporary answer, and logins succeed once the
//! database is back.
//!
//! Warm means: this instance checked the same password before and holds
//! the account's access token. The record's stamp cannot be read while the
//! database is down; the instance then uses what it holds instead of
//! refusing (`docs/design.md`, "Shared token store").

use std::time::{Duration, Instant};

use crate::support::cluster::{Cluster, Options, PASSWORD, StoreKind};
use crate::support::servers::PgCluster;

const ROUNDS: usize = 3;
const BACK_WITHIN: Duration = Duration::from_secs(20);

#[test]
fn logins_survive_a_database_restart() {
    let mut pg = PgCluster::start(false).expect("private PostgreSQL");
    let db = pg.database().expect("database");
    let cluster = Cluster::start(Options {
        store: StoreKind::Postgres,
        database_url: Some(pg.url(&db)),
        ..Options::default()
    });
    let rt = super::runtime();
    rt.block_on(async {
        // Warm: every instance has unlocked the account and holds a token.
        for _ in 0..ROUNDS {
            let answer = cluster.login("127.0.0.1", PASSWORD).await;
            assert!(answer.starts_with("a OK"), "{answer}\n{}", cluster.logs());
        }
    });
    pg.stop();
    rt.block_on(async {
        for _ in 0..ROUNDS {
            let answer = cluster.login("127.0.0.1", PASSWORD).await;
            assert!(
                answer.starts_with("a OK"),
                "warm token, database down: {answer}\n{}",
                cluster.logs()
            );
        }
    });
    // The provider drops the cached tokens: a login needs a refresh, and a
    // refresh needs the database's lease.
    cluster
        .idp
        .invalidate_access_tokens_for(crate::support::cluster::ALICE);
    let answer = rt.block_on(cluster.login("127.0.0.1", PASSWORD));
    assert!(
        !answer.starts_with("a OK") && !answer.contains("AUTHENTICATIONFAILED"),
        "a temporary answer while the database is down: {answer}\n{}",
        cluster.logs()
    );
    pg.start_again().expect("PostgreSQL back");
    let deadline = Instant::now() + BACK_WITHIN;
    rt.block_on(async {
        loop {
            let answer = cluster.login("127.0.0.1", PASSWORD).await;
            if answer.starts_with("a OK") {
                break;
            }
            assert!(
                !answer.contains("AUTHENTICATIONFAILED"),
                "never a permanent refusal: {answer}\n{}",
                cluster.logs()
            );
            assert!(Instant::now() < deadline, "{answer}\n{}", cluster.logs());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}
