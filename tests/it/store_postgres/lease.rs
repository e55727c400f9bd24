//! One writer per account across instances: the lease is an advisory lock
//! that waits a bounded time, dies with its connection, and a writer whose
//! lease passed to another instance meanwhile gets a typed conflict.

use std::time::{Duration, Instant};

use mailgate::store::{StoreError, TokenStore};

use super::{Fixture, enrol, name, settings};
use crate::support::servers::PgCluster;

/// A second instance on the same database.
fn second(f: &Fixture, tag: &str) -> Fixture {
    let cluster = PgCluster::shared().unwrap();
    let mut s = settings(
        cluster.url(&f.db_name),
        mailgate::config::PgTls::Disable,
        None,
    );
    s.timeout = Duration::from_secs(1);
    Fixture::on(tag, s, f.db_name.clone())
}

#[test]
fn lease_excludes_other_instances_and_waits_a_bounded_time() {
    let f = Fixture::new("lease-wait");
    enrol(&f.store(), "l@example.test", "pw", "RT-1");
    let other = second(&f, "lease-wait-2");
    let held = f.pg.lease(&name("l@example.test")).unwrap();
    let started = Instant::now();
    let err = other.pg.lease(&name("l@example.test")).unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Other accounts are not held up.
    other.pg.lease(&name("x@example.test")).unwrap();
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match other.pg.lease(&name("l@example.test")) {
            Ok(_) => break,
            Err(e) => assert!(Instant::now() < deadline, "lease never released: {e}"),
        }
    }
}

/// The holder's connection is killed (as if its instance died): the lock
/// goes with it, another instance saves, and the old holder's save is a
/// conflict instead of overwriting the newer record.
#[test]
fn killed_holder_frees_the_account_and_its_late_save_conflicts() {
    let f = Fixture::new("lease-kill");
    let account = name("k@example.test");
    enrol(&f.store(), "k@example.test", "pw", "RT-1");
    let other = second(&f, "lease-kill-2");
    let stale = f.pg.lease(&account).unwrap();
    let cluster = PgCluster::shared().unwrap();
    let killed = cluster
        .sql(
            &f.db_name,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks \
             WHERE locktype = 'advisory' AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .unwrap();
    assert_eq!(killed, "1");

    let deadline = Instant::now() + Duration::from_secs(10);
    let lease = loop {
        match other.pg.lease(&account) {
            Ok(lease) => break lease,
            Err(e) => assert!(Instant::now() < deadline, "account wedged: {e}"),
        }
    };
    let mut winner = other.pg.load(&account).unwrap().unwrap();
    winner.last_error = Some("saved by the winner".to_owned());
    other.pg.save(&lease, &winner).unwrap();

    let mut late = f.pg.load(&account).unwrap().unwrap();
    late.last_error = Some("saved by the stale holder".to_owned());
    let err = f.pg.save(&stale, &late).unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let kept = f.pg.load(&account).unwrap().unwrap();
    assert_eq!(kept.last_error.as_deref(), Some("saved by the winner"));
}

/// Compare-and-swap: a save checks the version its lease saw.
#[test]
fn save_is_a_compare_and_swap_on_the_version() {
    let f = Fixture::new("cas");
    let account = name("c@example.test");
    enrol(&f.store(), "c@example.test", "pw", "RT-1");
    let lease = f.pg.lease(&account).unwrap();
    let rec = f.pg.load(&account).unwrap().unwrap();
    f.pg.save(&lease, &rec).unwrap();
    f.pg.save(&lease, &rec).unwrap();
    // Someone without the lease bumps the version behind its back.
    PgCluster::shared()
        .unwrap()
        .sql(&f.db_name, "UPDATE mailgate_accounts SET rev = rev + 1")
        .unwrap();
    let err = f.pg.save(&lease, &rec).unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    // A lease for another account proves nothing for this one.
    let elsewhere = f.pg.lease(&name("d@example.test")).unwrap();
    assert!(matches!(
        f.pg.save(&elsewhere, &rec),
        Err(StoreError::Conflict { .. })
    ));
}
