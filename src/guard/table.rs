//! One bounded table of failure counts (per source, or per target). Each
//! entry also counts the checks in flight, so a failure is reserved before
//! the slow password check runs: parallel guesses cannot all slip past a
//! check that only sees finished failures.
//!
//! When the table is full and a sweep frees nothing, a key it does not hold
//! is refused: a flood of fresh names or addresses is throttled, never let
//! through unguarded, and memory stays at `capacity` entries.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

use super::{BASE_LOCKOUT, FORGET_AFTER, FREE_FAILURES, MAX_LOCKOUT, Refusal};

/// Least time between two sweeps of a full table: a flood must not turn
/// every login into a pass over the whole table.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub count: u32,
    pub pending: u32,
    pub locked_until: Instant,
    pub last: Instant,
}

impl Entry {
    fn fresh(now: Instant) -> Entry {
        Entry {
            count: 0,
            pending: 0,
            locked_until: now,
            last: now,
        }
    }

    /// Whether the failures are old enough to forget: a few (typos) after
    /// [`MAX_LOCKOUT`] of quiet, a run that reached lock-outs only after
    /// [`FORGET_AFTER`]; otherwise an attacker could wait out one longest
    /// lock-out and start again with free attempts.
    fn forgotten(&self, now: Instant) -> bool {
        let quiet = now.saturating_duration_since(self.last);
        self.pending == 0
            && (quiet > FORGET_AFTER || (self.count <= FREE_FAILURES && quiet > MAX_LOCKOUT))
    }

    fn decay(&mut self, now: Instant) {
        if self.forgotten(now) {
            self.count = 0;
        }
    }

    /// Refused while locked, or busy while the checks in flight already
    /// use up the free failures (past them, one check at a time).
    fn admits(&self, now: Instant) -> Result<(), Refusal> {
        let wait = self.locked_until.saturating_duration_since(now);
        if !wait.is_zero() {
            return Err(Refusal::Locked(wait));
        }
        if self.pending > 0 && self.count + self.pending > FREE_FAILURES {
            return Err(Refusal::Busy);
        }
        Ok(())
    }

    /// Counts a failure at `at`; past the free ones it locks the key.
    fn fail(&mut self, at: Instant) {
        self.count = self.count.saturating_add(1);
        self.last = self.last.max(at);
        if self.count > FREE_FAILURES {
            self.locked_until = self.locked_until.max(at + lockout(self.count));
        }
    }

    /// Whether a sweep may drop the entry: nothing in flight, not locked,
    /// and its failures already forgotten.
    fn idle(&self, now: Instant) -> bool {
        self.locked_until <= now && self.forgotten(now)
    }
}

/// The lock-out after the `count`th failure in a row.
pub(super) fn lockout(count: u32) -> Duration {
    let doublings = count.saturating_sub(FREE_FAILURES + 1).min(16);
    (BASE_LOCKOUT * 2u32.pow(doublings)).min(MAX_LOCKOUT)
}

pub(super) struct Table<K> {
    pub map: HashMap<K, Entry>,
    capacity: usize,
    last_sweep: Option<Instant>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    pub fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            capacity,
            last_sweep: None,
        }
    }

    /// Whether `key` may start a check now (see [`Entry::admits`]); a key
    /// the table has no room for is refused.
    pub fn admits(&mut self, key: &K, now: Instant) -> Result<(), Refusal> {
        if let Some(e) = self.map.get_mut(key) {
            e.decay(now);
            return e.admits(now);
        }
        if self.map.len() >= self.capacity {
            self.sweep(now);
        }
        if self.map.len() >= self.capacity {
            return Err(Refusal::Full);
        }
        Ok(())
    }

    /// Reserves a failure for a check that [`Table::admits`] allowed.
    pub fn reserve(&mut self, key: K, now: Instant) {
        self.map
            .entry(key)
            .or_insert_with(|| Entry::fresh(now))
            .pending += 1;
    }

    /// Ends a reserved check: a failure counts and may lock the key; any
    /// other outcome gives the reservation back.
    pub fn settle(&mut self, key: &K, failed: bool, now: Instant) {
        let Some(e) = self.map.get_mut(key) else {
            return;
        };
        e.pending = e.pending.saturating_sub(1);
        if failed {
            e.fail(now);
        } else if e.count == 0 && e.pending == 0 {
            self.map.remove(key);
        }
    }

    /// Counts a failure another instance settled at `at`, when the table
    /// has room for its key (after a sweep); otherwise it is dropped: this
    /// instance still refuses keys it has no room for when they log in here.
    pub fn note_failure(&mut self, key: K, at: Instant, now: Instant) {
        if !self.map.contains_key(&key) && self.map.len() >= self.capacity {
            self.sweep(now);
        }
        if !self.map.contains_key(&key) && self.map.len() >= self.capacity {
            return;
        }
        let e = self.map.entry(key).or_insert_with(|| Entry::fresh(now));
        e.decay(now);
        e.fail(at);
    }

    /// Takes back `n` failures (the source then logged in to the target it
    /// had failed at: typos, not guesses); unlocks if they were the cause.
    pub fn refund(&mut self, key: &K, n: u32, now: Instant) {
        let Some(e) = self.map.get_mut(key) else {
            return;
        };
        e.count = e.count.saturating_sub(n);
        if e.count <= FREE_FAILURES {
            e.locked_until = e.locked_until.min(now);
        }
        if e.count == 0 && e.pending == 0 {
            self.map.remove(key);
        }
    }

    /// Drops `key`'s entry; whether there was one.
    pub fn forget(&mut self, key: &K) -> bool {
        self.map.remove(key).is_some()
    }

    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    pub fn locked(&self, key: &K, now: Instant) -> bool {
        self.map.get(key).is_some_and(|e| e.locked_until > now)
    }

    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|at| now.saturating_duration_since(at) < SWEEP_INTERVAL)
        {
            return;
        }
        self.last_sweep = Some(now);
        self.map.retain(|_, e| !e.idle(now));
    }

    /// Puts back a saved entry if there is room; whether it was put back.
    pub fn restore(&mut self, key: K, entry: Entry) -> bool {
        if self.map.len() >= self.capacity && !self.map.contains_key(&key) {
            return false;
        }
        self.map.insert(key, entry);
        true
    }
}
