//! The guard's side of sharing (see [`super::ledger`] for why it is shaped
//! this way): an outbox of this instance's verdicts, the background task
//! that publishes it and pulls the others', and how another instance's
//! verdict is applied to this one's tables.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::clock::Clock;
use super::ledger::{GuardLedger, LedgerError, Shared, Verdict};
use super::{LoginGuard, Target};

/// How often verdicts are exchanged: a lock-out reached on one instance
/// holds on the others within about this long.
pub const SHARE_INTERVAL: Duration = Duration::from_millis(250);
/// The longest one exchange with the ledger may take before it is given up
/// (and tried again at the next interval).
pub const LEDGER_TIMEOUT: Duration = Duration::from_secs(2);
/// Verdicts waiting to be published; past it the oldest are dropped (they
/// still count on this instance).
pub const MAX_OUTBOX: usize = 10_000;
/// Verdicts applied per exchange; the rest wait for the next one.
pub const MAX_PULLED: usize = 10_000;

/// Verdicts settled here and not yet published.
#[derive(Default)]
pub(super) struct Outbox {
    queue: VecDeque<Shared>,
}

impl Outbox {
    pub fn push(&mut self, shared: Shared) {
        if self.queue.len() >= MAX_OUTBOX {
            self.queue.pop_front();
        }
        self.queue.push_back(shared);
    }

    /// Puts back a batch that could not be published, ahead of newer ones.
    fn restore(&mut self, batch: Vec<Shared>) {
        for shared in batch.into_iter().rev() {
            if self.queue.len() >= MAX_OUTBOX {
                break;
            }
            self.queue.push_front(shared);
        }
    }
}

impl LoginGuard {
    /// From now on this guard's verdicts are kept for a ledger
    /// ([`keep_shared`] publishes them).
    pub fn enable_sharing(&self) {
        self.lock().outbox.get_or_insert_with(Outbox::default);
    }

    /// Queues a verdict settled here, when sharing is enabled.
    pub(super) fn queue_shared(
        &self,
        source: std::net::IpAddr,
        target: Option<&Target>,
        verdict: Verdict,
    ) {
        let at = Clock::now().unix(Instant::now());
        if let Some(outbox) = self.lock().outbox.as_mut() {
            outbox.push(Shared {
                source,
                target: target.cloned(),
                verdict,
                at,
            });
        }
    }

    /// Applies other instances' verdicts as if settled here at their time:
    /// a failure counts for the source, for the target unless the source is
    /// trusted for it here, and for the (source, target) pair; a success
    /// refunds the pair and trusts the source for the target.
    pub fn apply_shared(&self, verdicts: &[Shared]) {
        if verdicts.is_empty() {
            return;
        }
        let clock = Clock::now();
        let now = clock.instant;
        let capacity = self.settings.capacity;
        let mut t = self.lock();
        for v in verdicts.iter().take(MAX_PULLED) {
            let at = clock.instant_of(v.at).min(now);
            match v.verdict {
                Verdict::Failed => {
                    t.by_source.note_failure(v.source, at, now);
                    if let Some(target) = &v.target {
                        if !t.trusts(target, v.source, now) {
                            t.by_target.note_failure(target.clone(), at, now);
                        }
                        t.note_pair(v.source, target, capacity);
                    }
                }
                Verdict::Succeeded => {
                    if let Some(target) = &v.target {
                        if let Some(n) = t.pairs.remove(&(v.source, target.clone())) {
                            t.by_source.refund(&v.source, n, now);
                        }
                        t.trust(target.clone(), v.source, now, capacity);
                    }
                }
            }
        }
        t.dirty = true;
        drop(t);
        self.settled.notify_waiters();
    }

    fn take_outbox(&self) -> Vec<Shared> {
        self.lock()
            .outbox
            .as_mut()
            .map(|o| o.queue.drain(..).collect())
            .unwrap_or_default()
    }

    fn restore_outbox(&self, batch: Vec<Shared>) {
        if let Some(outbox) = self.lock().outbox.as_mut() {
            outbox.restore(batch);
        }
    }
}

/// One exchange: publish the outbox, then apply what the others published.
/// Each call is bounded by [`LEDGER_TIMEOUT`].
pub async fn exchange(guard: &LoginGuard, ledger: &dyn GuardLedger) -> Result<(), LedgerError> {
    let batch = guard.take_outbox();
    if !batch.is_empty() {
        let published = tokio::time::timeout(LEDGER_TIMEOUT, ledger.publish(batch.clone())).await;
        match published {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                guard.restore_outbox(batch);
                return Err(e);
            }
            Err(_) => {
                guard.restore_outbox(batch);
                return Err(LedgerError::Timeout(LEDGER_TIMEOUT));
            }
        }
    }
    let pulled = tokio::time::timeout(LEDGER_TIMEOUT, ledger.pull())
        .await
        .map_err(|_| LedgerError::Timeout(LEDGER_TIMEOUT))??;
    guard.apply_shared(&pulled);
    Ok(())
}

/// Exchanges verdicts every [`SHARE_INTERVAL`] until `stop`, and once more
/// then (the last verdicts of a draining instance). A failing ledger is
/// logged when it starts and stops failing, not at every interval.
pub async fn keep_shared(
    guard: Arc<LoginGuard>,
    ledger: Arc<dyn GuardLedger>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    guard.enable_sharing();
    let mut failing = false;
    loop {
        let stopping = tokio::select! {
            () = tokio::time::sleep(SHARE_INTERVAL) => false,
            () = crate::net::stopped(&mut stop) => true,
        };
        match exchange(&guard, ledger.as_ref()).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("login guard shares verdicts again");
            }
            Ok(()) => {}
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "login guard cannot share verdicts; counting on this instance alone");
            }
            Err(_) => {}
        }
        if stopping {
            return;
        }
    }
}
