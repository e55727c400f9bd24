//! Several guards sharing verdicts through a ledger behave as one guard.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::file_ledger::FileLedger;
use super::ledger::{GuardLedger, MemoryLedger, Shared, Verdict};
use super::share::{MAX_OUTBOX, exchange};
use super::*;

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const OWNER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

fn acct(s: &str) -> Target {
    Target::Account(AccountName::parse(s).unwrap())
}

fn fail(g: &LoginGuard, ip: IpAddr, target: &Target) {
    g.try_begin(ip, Some(target)).unwrap().failed();
}

fn three() -> Vec<(LoginGuard, Box<dyn GuardLedger>)> {
    let ledger = Arc::new(MemoryLedger::default());
    (0..3)
        .map(|_| {
            let g = LoginGuard::default();
            g.enable_sharing();
            (g, Box::new(ledger.member()) as Box<dyn GuardLedger>)
        })
        .collect()
}

async fn exchange_all(guards: &[(LoginGuard, Box<dyn GuardLedger>)]) {
    for (g, l) in guards {
        exchange(g, l.as_ref()).await.unwrap();
    }
}

#[tokio::test]
async fn failures_spread_over_instances_lock_out_on_all_of_them() {
    let guards = three();
    let a = acct("alice");
    // Four failures, round robin: no instance sees more than two itself.
    for i in 0..=FREE_FAILURES as usize {
        fail(&guards[i % 3].0, ATTACKER, &a);
        exchange_all(&guards).await;
    }
    exchange_all(&guards).await;
    for (g, _) in &guards {
        assert!(g.source_locked(ATTACKER));
        assert!(matches!(
            g.try_begin(ATTACKER, Some(&a)),
            Err(Refusal::Locked(_))
        ));
    }
}

#[tokio::test]
async fn an_owner_trusted_on_one_instance_is_trusted_on_all() {
    let guards = three();
    let a = acct("alice");
    guards[0].0.try_begin(OWNER, Some(&a)).unwrap().succeeded();
    exchange_all(&guards).await;
    for i in 0..20u8 {
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
        if let Ok(attempt) = guards[usize::from(i) % 3].0.try_begin(ip, Some(&a)) {
            attempt.failed();
        }
        exchange_all(&guards).await;
    }
    for (g, _) in &guards {
        assert!(
            matches!(g.try_begin(ip_other(), Some(&a)), Err(Refusal::Locked(_))),
            "the account is locked for strangers"
        );
        assert!(
            g.try_begin(OWNER, Some(&a)).is_ok(),
            "but not for its owner"
        );
    }
}

fn ip_other() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, 1, 1))
}

#[tokio::test]
async fn without_sharing_nothing_is_queued() {
    let g = LoginGuard::default();
    fail(&g, ATTACKER, &acct("alice"));
    let ledger = Arc::new(MemoryLedger::default());
    let (me, other) = (ledger.member(), ledger.member());
    exchange(&g, &me).await.unwrap();
    assert!(other.pull().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_outbox_is_bounded() {
    let g = LoginGuard::default();
    g.enable_sharing();
    for i in 0..(MAX_OUTBOX + 10) {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i as u32));
        g.try_begin(ip, None).unwrap().failed();
    }
    let ledger = Arc::new(MemoryLedger::default());
    let (me, other) = (ledger.member(), ledger.member());
    exchange(&g, &me).await.unwrap();
    assert_eq!(other.pull().await.unwrap().len(), MAX_OUTBOX);
}

#[tokio::test]
async fn instances_sharing_a_state_dir_read_each_other() {
    let dir = crate::store::testutil::TempDir::new("guard-share");
    let (a, b) = (
        FileLedger::open(dir.path()).unwrap(),
        FileLedger::open(dir.path()).unwrap(),
    );
    assert!(b.pull().await.unwrap().is_empty());
    let v = Shared {
        source: ATTACKER,
        target: Some(acct("alice")),
        verdict: Verdict::Failed,
        at: 1_700_000_000,
    };
    a.publish(vec![v.clone(), v.clone()]).await.unwrap();
    assert!(a.pull().await.unwrap().is_empty(), "not its own");
    assert_eq!(b.pull().await.unwrap(), vec![v.clone(), v.clone()]);
    assert!(b.pull().await.unwrap().is_empty(), "each verdict once");
    // A late joiner starts at the end.
    let c = FileLedger::open(dir.path()).unwrap();
    assert!(c.pull().await.unwrap().is_empty());
    a.publish(vec![v.clone()]).await.unwrap();
    assert_eq!(c.pull().await.unwrap(), vec![v]);
}

/// A ledger that is down.
struct Down;

impl GuardLedger for Down {
    fn publish(
        &self,
        _: Vec<Shared>,
    ) -> crate::base::BoxFuture<'_, Result<(), super::ledger::LedgerError>> {
        Box::pin(async { Err(super::ledger::LedgerError::Backend("down".into())) })
    }

    fn pull(&self) -> crate::base::BoxFuture<'_, Result<Vec<Shared>, super::ledger::LedgerError>> {
        Box::pin(async { Err(super::ledger::LedgerError::Backend("down".into())) })
    }
}

#[tokio::test]
async fn a_ledger_that_is_down_leaves_the_instance_guarding_alone_and_keeps_the_verdicts() {
    let g = LoginGuard::default();
    g.enable_sharing();
    let a = acct("alice");
    for _ in 0..=FREE_FAILURES {
        fail(&g, ATTACKER, &a);
        assert!(exchange(&g, &Down).await.is_err());
    }
    assert!(
        g.source_locked(ATTACKER),
        "fails open to this instance's limits only"
    );
    assert!(
        g.try_begin(OWNER, Some(&acct("bob"))).is_ok(),
        "nobody else is refused"
    );
    let ledger = Arc::new(MemoryLedger::default());
    let (me, other) = (ledger.member(), ledger.member());
    exchange(&g, &me).await.unwrap();
    let kept = other.pull().await.unwrap();
    assert_eq!(
        kept.len(),
        FREE_FAILURES as usize + 1,
        "published once it is back"
    );
}

#[tokio::test]
async fn a_file_ledger_rotates_and_readers_follow() {
    use super::file_ledger::ROTATE_BYTES;
    let dir = crate::store::testutil::TempDir::new("guard-rotate");
    let (a, b) = (
        FileLedger::open(dir.path()).unwrap(),
        FileLedger::open(dir.path()).unwrap(),
    );
    assert!(b.pull().await.unwrap().is_empty());
    let v = Shared {
        source: ATTACKER,
        target: Some(acct("alice")),
        verdict: Verdict::Failed,
        at: 1_700_000_000,
    };
    // About 80 bytes a line: enough batches for three generations.
    let batch = vec![v.clone(); 1000];
    let mut published = 0;
    for _ in 0..(3 * ROTATE_BYTES as usize / 80_000 + 1) {
        a.publish(batch.clone()).await.unwrap();
        published += batch.len();
        let pulled = b.pull().await.unwrap();
        assert_eq!(pulled.len(), batch.len());
    }
    let files = std::fs::read_dir(dir.path().join(super::file_ledger::DIR_NAME))
        .unwrap()
        .count();
    assert!(
        files <= 2,
        "at most the current and the previous generation: {files}"
    );
    assert!(published > 3 * 10_000);
}
