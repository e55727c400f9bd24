//! Courtesy towards the provider, per mailbox: a cap on concurrent upstream
//! sessions (Microsoft allows few: 3 submitting SMTP connections per mailbox,
//! and throttles IMAP beyond ~16) with a short queue, and memory of a
//! "Suggested Backoff Time" so new logins for that mailbox get a temporary
//! error instead of hammering the provider until the time has passed.
//!
//! Mailboxes are [`AccountName`]s: every spelling of an address shares one
//! cap and one back-off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::base::AccountName;

/// Longest back-off honoured from a provider's suggestion.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// Back-off used when the provider throttles without suggesting a time.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GateError {
    #[error("the provider asked to back off for this mailbox; retry in {0} s")]
    BackingOff(u64),
    #[error("too many concurrent sessions for this mailbox; retry shortly")]
    Busy,
}

#[derive(Default)]
struct Entry {
    slots: Option<Arc<Semaphore>>,
    backoff_until: Option<Instant>,
}

/// Entries below which the map is never swept.
const SWEEP_MIN: usize = 1024;

#[derive(Default)]
struct Table {
    entries: HashMap<AccountName, Entry>,
    /// Size at which idle entries are next swept (amortised: twice the
    /// live size after a sweep).
    sweep_at: usize,
}

pub struct MailboxGate {
    cap: usize,
    /// How long a login waits for a free slot before a temporary error.
    queue_wait: Duration,
    table: Mutex<Table>,
}

impl MailboxGate {
    pub fn new(cap: usize, queue_wait: Duration) -> Self {
        Self {
            cap: cap.max(1),
            queue_wait,
            table: Mutex::new(Table {
                entries: HashMap::new(),
                sweep_at: SWEEP_MIN,
            }),
        }
    }

    /// Waits (briefly) for an upstream slot for `mailbox`.
    pub async fn enter(&self, mailbox: &AccountName) -> Result<OwnedSemaphorePermit, GateError> {
        let slots = {
            let mut table = self.lock();
            let entry = table.entries.entry(mailbox.clone()).or_default();
            if let Some(until) = entry.backoff_until {
                let now = Instant::now();
                if until > now {
                    return Err(GateError::BackingOff((until - now).as_secs().max(1)));
                }
                entry.backoff_until = None;
            }
            entry
                .slots
                .get_or_insert_with(|| Arc::new(Semaphore::new(self.cap)))
                .clone()
        };
        match tokio::time::timeout(self.queue_wait, slots.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(GateError::Busy),
        }
    }

    /// Upstream sessions holding a slot, per mailbox that has any.
    pub fn open_sessions(&self) -> Vec<(AccountName, usize)> {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table
            .entries
            .iter()
            .filter_map(|(name, e)| {
                let used = self.cap - e.slots.as_ref()?.available_permits().min(self.cap);
                (used > 0).then(|| (name.clone(), used))
            })
            .collect()
    }

    /// Records the provider's request to back off for `mailbox`.
    pub fn back_off(&self, mailbox: &AccountName, suggested: Option<Duration>) {
        let wait = suggested.unwrap_or(DEFAULT_BACKOFF).min(MAX_BACKOFF);
        let mut table = self.lock();
        table
            .entries
            .entry(mailbox.clone())
            .or_default()
            .backoff_until = Some(Instant::now() + wait);
    }

    /// The table, swept of idle entries whenever it has doubled since the
    /// last sweep, so it stays about as small as the set of mailboxes in use.
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.entries.len() >= table.sweep_at {
            self.sweep(&mut table);
        }
        table
    }

    fn sweep(&self, table: &mut Table) {
        let now = Instant::now();
        table.entries.retain(|_, e| {
            let busy = e
                .slots
                .as_ref()
                .is_some_and(|s| Arc::strong_count(s) > 1 || s.available_permits() < self.cap);
            busy || e.backoff_until.is_some_and(|u| u > now)
        });
        table.sweep_at = (table.entries.len() * 2).max(SWEEP_MIN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> AccountName {
        AccountName::parse(s).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn cap_queues_then_refuses() {
        let gate = MailboxGate::new(2, Duration::from_secs(10));
        let a = gate.enter(&name("box@x")).await.unwrap();
        let _b = gate.enter(&name("BOX@x")).await.unwrap();
        assert_eq!(
            gate.enter(&name("box@x")).await.unwrap_err(),
            GateError::Busy
        );
        assert!(
            gate.enter(&name("other@x")).await.is_ok(),
            "other mailboxes are not affected"
        );
        drop(a);
        assert!(gate.enter(&name("box@x")).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_is_honoured_then_expires() {
        let gate = MailboxGate::new(4, Duration::from_secs(10));
        gate.back_off(&name("box@x"), Some(Duration::from_millis(5000)));
        assert_eq!(
            gate.enter(&name("box@x")).await.unwrap_err(),
            GateError::BackingOff(5)
        );
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(gate.enter(&name("box@x")).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn sweep_keeps_only_live_entries() {
        let gate = MailboxGate::new(1, Duration::from_secs(10));
        let held = gate.enter(&name("a@x")).await.unwrap();
        drop(gate.enter(&name("b@x")).await.unwrap());
        gate.sweep(&mut gate.table.lock().unwrap());
        assert_eq!(gate.table.lock().unwrap().entries.len(), 1);
        drop(held);
        gate.sweep(&mut gate.table.lock().unwrap());
        assert!(gate.table.lock().unwrap().entries.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_table_stays_bounded_as_mailboxes_come_and_go() {
        let gate = MailboxGate::new(2, Duration::from_secs(1));
        let held = gate.enter(&name("busy@x")).await.unwrap();
        for i in 0..10 * SWEEP_MIN {
            drop(gate.enter(&name(&format!("user{i}@x"))).await.unwrap());
        }
        let table = gate.table.lock().unwrap();
        assert!(
            table.entries.len() <= SWEEP_MIN,
            "{} entries kept",
            table.entries.len()
        );
        assert!(
            table.entries.contains_key(&name("busy@x")),
            "a mailbox in use is never swept"
        );
        drop(table);
        drop(held);
    }
}
