//! The seam through which several instances share the guard's verdicts.
//!
//! Each instance keeps deciding on its own tables (`super::table`): a login's
//! guard check never waits on anything shared. What is shared is the
//! verdicts: every failure and success an instance settles is published to
//! a [`GuardLedger`], and every instance applies the others' verdicts to its
//! own tables, in the background, every [`super::share::SHARE_INTERVAL`].
//! A lock-out one instance reaches therefore holds on all of them within
//! that interval plus the ledger's latency, and N instances give an attacker
//! the guesses of one (give or take those in flight during one interval).
//!
//! When the ledger is unreachable the guard fails *open to per-instance
//! limits*: each instance still counts and locks out on what it sees
//! itself; it does not refuse logins because the ledger is down. Refusing
//! would turn an outage of the shared store into an outage of every login,
//! warm tokens included, for the benefit of an attacker's factor N during
//! the outage only. Verdicts not yet published wait in a bounded outbox.
//!
//! Implementations: [`MemoryLedger`] (instances in one process; tests),
//! `super::file_ledger::FileLedger` (instances sharing a state directory).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use super::Target;
use crate::base::BoxFuture;

/// Verdicts kept by a [`MemoryLedger`]; the oldest go first.
pub const MEMORY_LEDGER_CAPACITY: usize = 100_000;

/// What a password check came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Failed,
    Succeeded,
}

/// One settled password check, as another instance applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    /// The client's source (already grouped: `base::source_of`).
    pub source: IpAddr,
    /// What it guessed, when the guard counted a target.
    pub target: Option<Target>,
    pub verdict: Verdict,
    /// When, in Unix seconds.
    pub at: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("guard ledger I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("guard ledger: {0}")]
    Backend(String),
    #[error("guard ledger did not answer within {0:?}")]
    Timeout(std::time::Duration),
}

/// Where instances publish and read each other's verdicts. Both calls are
/// made off the login path, bounded in time by the caller.
pub trait GuardLedger: Send + Sync {
    /// Publishes this instance's verdicts, oldest first.
    fn publish(&self, verdicts: Vec<Shared>) -> BoxFuture<'_, Result<(), LedgerError>>;
    /// The other instances' verdicts published since the last call (none
    /// from before this ledger was opened), oldest first.
    fn pull(&self) -> BoxFuture<'_, Result<Vec<Shared>, LedgerError>>;
}

/// Several guards in one process sharing verdicts: what a ledger must do,
/// without a store. Each [`MemoryLedger::member`] reads the others'.
#[derive(Default)]
pub struct MemoryLedger {
    inner: Mutex<Book>,
}

#[derive(Default)]
struct Book {
    /// (sequence, member, verdict).
    log: std::collections::VecDeque<(u64, usize, Shared)>,
    next: u64,
    members: usize,
    /// Per member, the next sequence number it has not read.
    read: HashMap<usize, u64>,
}

/// One instance's handle on a [`MemoryLedger`].
pub struct Member {
    ledger: std::sync::Arc<MemoryLedger>,
    id: usize,
}

impl MemoryLedger {
    pub fn member(self: &std::sync::Arc<Self>) -> Member {
        let mut b = self.book();
        let id = b.members;
        b.members += 1;
        let next = b.next;
        b.read.insert(id, next);
        Member {
            ledger: self.clone(),
            id,
        }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl GuardLedger for Member {
    fn publish(&self, verdicts: Vec<Shared>) -> BoxFuture<'_, Result<(), LedgerError>> {
        let mut b = self.ledger.book();
        for v in verdicts {
            let seq = b.next;
            b.next += 1;
            b.log.push_back((seq, self.id, v));
            if b.log.len() > MEMORY_LEDGER_CAPACITY {
                b.log.pop_front();
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn pull(&self) -> BoxFuture<'_, Result<Vec<Shared>, LedgerError>> {
        let mut b = self.ledger.book();
        let from = b.read.get(&self.id).copied().unwrap_or(0);
        let out: Vec<Shared> = b
            .log
            .iter()
            .filter(|(seq, who, _)| *seq >= from && *who != self.id)
            .map(|(_, _, v)| v.clone())
            .collect();
        let next = b.next;
        b.read.insert(self.id, next);
        Box::pin(async move { Ok(out) })
    }
}
