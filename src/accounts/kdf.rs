//! Where Argon2id runs: a bounded pool with separate lanes, so that the
//! derivations a stranger can cause cannot delay the ones an owner needs.
//!
//! Each derivation takes 64 MiB and a core for a fraction of a second. The
//! permit that admits one is moved into the blocking task that runs it: a
//! client that hangs up mid-check drops only the waiting future, and the
//! derivation keeps its permit until it really ends, so no more than
//! [`MAX_CONCURRENT_KDF`] ever run at once (docs/design.md §6, security model).
//!
//! Lanes, each its own FIFO queue with its own permits (together the cap):
//! - [`Lane::Known`]: an account or rule that exists and has not failed a
//!   check recently; where the owner's cold login runs.
//! - [`Lane::Suspect`]: an existing account whose last check failed within
//!   [`SUSPECT_WINDOW`]; guesses at it queue here, not in front of others.
//! - [`Lane::Unknown`]: dummy derivations for names that are no account.
//!
//! A flood in one lane therefore delays the known lane by nothing; a known
//! check waits at most for the known-lane checks queued before it, and the
//! guard bounds those (a few failures per account, then a lock-out).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

/// Argon2id runs at once, process-wide, over every lane.
pub const MAX_CONCURRENT_KDF: usize = 4;
/// Of those, the known lane's share.
pub const KNOWN_KDF: usize = 2;
/// How long an account whose check failed stays in the suspect lane.
pub const SUSPECT_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Which queue a derivation waits in (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Known,
    Suspect,
    Unknown,
}

/// The derivation cannot run (shutting down, or the blocking pool failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotRun;

pub struct KdfPool {
    known: Arc<Semaphore>,
    suspect: Arc<Semaphore>,
    unknown: Arc<Semaphore>,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Default for KdfPool {
    fn default() -> Self {
        let others = MAX_CONCURRENT_KDF - KNOWN_KDF;
        Self {
            known: Arc::new(Semaphore::new(KNOWN_KDF)),
            suspect: Arc::new(Semaphore::new(others.div_ceil(2))),
            unknown: Arc::new(Semaphore::new(others / 2)),
            running: Arc::default(),
            peak: Arc::default(),
        }
    }
}

impl KdfPool {
    /// Runs `f` on the blocking pool once `lane` has a free permit.
    pub async fn run<T: Send + 'static>(
        &self,
        lane: Lane,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, NotRun> {
        let semaphore = match lane {
            Lane::Known => &self.known,
            Lane::Suspect => &self.suspect,
            Lane::Unknown => &self.unknown,
        };
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| NotRun)?;
        let (running, peak) = (self.running.clone(), self.peak.clone());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let busy = Busy::enter(running);
            peak.fetch_max(busy.now, Ordering::SeqCst);
            f()
        })
        .await
        .map_err(|_| NotRun)
    }

    /// The most derivations that have run at once since start.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// One running derivation in the count, until dropped (even by a panic).
struct Busy {
    running: Arc<AtomicUsize>,
    now: usize,
}

impl Busy {
    fn enter(running: Arc<AtomicUsize>) -> Busy {
        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
        Busy { running, now }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }
}
