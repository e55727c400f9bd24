//! Brute-force protection for local passwords. Failed logins are counted per
//! client source and per target; past a few free attempts each further
//! failure doubles a lock-out window, during which logins are refused at once
//! (no Argon2 work, no provider traffic, nothing held while waiting).
//!
//! What is counted is what is being guessed. The target is the account or
//! rule a login resolves to (`accounts::resolve`), not the typed name: every
//! invented `a1@domain`, `a2@domain` under one `*@domain` rule guesses the
//! same rule password, so they share one count. A source is a client
//! address, IPv6 grouped by prefix (`base::source_of`).
//!
//! A failure is reserved before the password is checked ([`LoginGuard::begin`]
//! returns an [`Attempt`]), so parallel guesses count as many, not as one:
//! once the checks in flight could use up the free failures, further checks
//! wait for their verdicts (legitimate parallel logins then go on; guesses
//! meet the lock-out). A success takes back only the source's failures at
//! the same target (typos before the right password), never those at
//! other targets.
//!
//! An attacker hammering one account from elsewhere must not lock out its
//! owner: a source that has logged in to a target successfully is exempt
//! from that target's lock-out (not from its own source's). Counts,
//! lock-outs and these exemptions are saved with the state ([`persist`]),
//! so a restart neither hands out fresh free attempts nor locks the owner
//! out.
//!
//! Several instances share their verdicts through a [`ledger::GuardLedger`]
//! ([`share`]), so N instances do not give an attacker N times the guesses;
//! each still decides on its own tables, never waiting on the ledger.
//!
//! Every table is bounded and fails closed (see [`table`]); keys are
//! bounded too: an address, an [`AccountName`] (at most
//! [`crate::base::MAX_ACCOUNT_LEN`] bytes) or a rule login from the config.

mod clock;
pub mod file_ledger;
pub mod ledger;
pub mod persist;
pub mod pg_ledger;
pub mod share;
mod table;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::accounts::Resolved;
use crate::audit::{AuditLog, Event};
use crate::base::{AccountName, DEFAULT_IPV6_PREFIX, source_of};
use table::Table;

/// Failures allowed before lock-outs start.
pub const FREE_FAILURES: u32 = 3;
/// First lock-out; doubles with each further failure.
pub const BASE_LOCKOUT: Duration = Duration::from_secs(2);
/// Longest lock-out.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Quiet time after which a run of failures that reached lock-outs is
/// forgotten (up to [`FREE_FAILURES`] are forgotten after [`MAX_LOCKOUT`]).
pub const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Entries kept per table (sources, targets, trusted pairs).
pub const MAX_ENTRIES: usize = 100_000;
/// How long an address stays trusted for an account after a success.
pub const TRUST_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// The wait given to a new source or target while its table is full.
pub const TABLE_FULL_WAIT: Duration = Duration::from_secs(60);

/// Why a check may not start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Locked out for this long.
    Locked(Duration),
    /// Checks in flight hold every free failure; wait for their verdicts.
    Busy,
    /// The table has no room for a new source or target (fails closed).
    Full,
}

impl Refusal {
    /// What to tell the client to wait.
    pub fn wait(self) -> Duration {
        match self {
            Refusal::Locked(wait) => wait,
            Refusal::Busy => BASE_LOCKOUT,
            Refusal::Full => TABLE_FULL_WAIT,
        }
    }
}

/// What a login guesses the password of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A store account (for a shared mailbox: its delegate).
    Account(AccountName),
    /// An app-only rule, by its `login` (`*@domain` or one address).
    Rule(String),
}

impl Target {
    /// The web console's sign-in: one shared password, so one target. A
    /// rule login always holds an `@`, so this name is no rule's.
    pub fn console() -> Target {
        Target::Rule("admin console".to_owned())
    }

    pub fn of(resolved: &Resolved) -> Target {
        match resolved {
            Resolved::Delegated { account, .. } => Target::Account(account.clone()),
            Resolved::AppOnly { rule, .. } => Target::Rule(rule.clone()),
        }
    }
}

/// Sizes and grouping; [`Default`] is what `serve` uses with a default config.
#[derive(Debug, Clone, Copy)]
pub struct GuardSettings {
    pub ipv6_prefix: u8,
    pub capacity: usize,
}

impl Default for GuardSettings {
    fn default() -> Self {
        Self {
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
            capacity: MAX_ENTRIES,
        }
    }
}

struct Tables {
    by_source: Table<IpAddr>,
    by_target: Table<Target>,
    trusted: HashMap<(Target, IpAddr), Instant>,
    /// Failures per (source, target), for the refund on a success.
    pairs: HashMap<(IpAddr, Target), u32>,
    /// Changed since the last save.
    dirty: bool,
    /// Verdicts for other instances, once sharing is enabled.
    outbox: Option<share::Outbox>,
}

pub struct LoginGuard {
    tables: Mutex<Tables>,
    settings: GuardSettings,
    /// Woken whenever an attempt is settled (busy checks wait on it).
    settled: tokio::sync::Notify,
    /// Where lock-outs of a target are recorded, once `serve` set it.
    audit: std::sync::OnceLock<Arc<AuditLog>>,
}

impl Default for LoginGuard {
    fn default() -> Self {
        Self::new(GuardSettings::default())
    }
}

/// A password check the guard let through, with its failure reserved.
/// Settle it with [`Attempt::failed`] or [`Attempt::succeeded`]; dropping
/// it (a temporary error, a client gone) gives the reservation back.
#[must_use = "an attempt holds a reserved failure until settled"]
pub struct Attempt<'g> {
    guard: &'g LoginGuard,
    source: IpAddr,
    /// The target, and whether its count holds a reservation.
    target: Option<(Target, bool)>,
    settled: bool,
}

impl LoginGuard {
    pub fn new(settings: GuardSettings) -> Self {
        Self {
            tables: Mutex::new(Tables {
                by_source: Table::new(settings.capacity),
                by_target: Table::new(settings.capacity),
                trusted: HashMap::new(),
                pairs: HashMap::new(),
                dirty: false,
                outbox: None,
            }),
            settings,
            settled: tokio::sync::Notify::new(),
            audit: std::sync::OnceLock::new(),
        }
    }

    /// Records each new lock-out of a target in `audit` from now on.
    pub fn record_in(&self, audit: Arc<AuditLog>) {
        let _ = self.audit.set(audit);
    }

    /// Whether `target` is locked out now (for sources it does not trust).
    pub fn target_locked(&self, target: &Target) -> bool {
        self.lock().by_target.locked(target, Instant::now())
    }

    /// Forgets `target`'s failures, ending its lock-out (an admin's unlock);
    /// whether it had any. Sources keep their own counts.
    pub fn unlock(&self, target: &Target) -> bool {
        let mut t = self.lock();
        let had = t.by_target.forget(target);
        t.pairs.retain(|(_, k), _| k != target);
        t.dirty |= had;
        had
    }

    /// [`LoginGuard::try_begin`], waiting up to `patience` while checks in
    /// flight hold the free failures; `Err(wait)` when refused.
    pub async fn begin(
        &self,
        ip: IpAddr,
        target: Option<&Target>,
        patience: Duration,
    ) -> Result<Attempt<'_>, Duration> {
        let deadline = Instant::now() + patience;
        loop {
            let notified = self.settled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.try_begin(ip, target) {
                Ok(attempt) => return Ok(attempt),
                Err(Refusal::Busy) => {}
                Err(refusal) => return Err(refusal.wait()),
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Refusal::Busy.wait());
            }
        }
    }

    /// Reserves a failure for a password check from `ip` against `target`
    /// (`None`: the name cannot be an account, only the source counts), or
    /// says why not. A source trusted for `target` is exempt from the
    /// target's lock-out.
    pub fn try_begin(&self, ip: IpAddr, target: Option<&Target>) -> Result<Attempt<'_>, Refusal> {
        let now = Instant::now();
        let source = source_of(ip, self.settings.ipv6_prefix);
        let mut t = self.lock();
        t.by_source.admits(&source, now)?;
        let counted = target.map(|k| (k, !t.trusts(k, source, now)));
        if let Some((k, true)) = counted {
            t.by_target.admits(k, now)?;
        }
        t.by_source.reserve(source, now);
        if let Some((k, true)) = counted {
            t.by_target.reserve(k.clone(), now);
        }
        Ok(Attempt {
            guard: self,
            source,
            target: counted.map(|(k, c)| (k.clone(), c)),
            settled: false,
        })
    }

    /// Whether `ip` (as its source) is locked out now.
    pub fn source_locked(&self, ip: IpAddr) -> bool {
        let source = source_of(ip, self.settings.ipv6_prefix);
        self.lock().by_source.locked(&source, Instant::now())
    }

    /// Entries in the (sources, targets, trusted, pairs) tables.
    pub fn sizes(&self) -> [usize; 4] {
        let t = self.lock();
        [
            t.by_source.map.len(),
            t.by_target.map.len(),
            t.trusted.len(),
            t.pairs.len(),
        ]
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn settle(&self, a: &Attempt<'_>, outcome: Outcome) {
        let now = Instant::now();
        let failed = outcome == Outcome::Failed;
        let mut t = self.lock();
        t.by_source.settle(&a.source, failed, now);
        let mut locked_now = None;
        if let Some((k, counted)) = &a.target {
            if *counted {
                let before = t.by_target.locked(k, now);
                t.by_target.settle(k, failed, now);
                if !before && t.by_target.locked(k, now) {
                    locked_now = Some(k.clone());
                }
            }
            match outcome {
                Outcome::Failed => t.note_pair(a.source, k, self.settings.capacity),
                Outcome::Succeeded => {
                    if let Some(n) = t.pairs.remove(&(a.source, k.clone())) {
                        t.by_source.refund(&a.source, n, now);
                    }
                    t.trust(k.clone(), a.source, now, self.settings.capacity);
                }
                Outcome::Released => {}
            }
        }
        t.dirty |= outcome != Outcome::Released;
        drop(t);
        let target = a.target.as_ref().map(|(k, _)| k);
        match outcome {
            Outcome::Failed => self.queue_shared(a.source, target, ledger::Verdict::Failed),
            Outcome::Succeeded => self.queue_shared(a.source, target, ledger::Verdict::Succeeded),
            Outcome::Released => {}
        }
        self.settled.notify_waiters();
        if let (Some(target), Some(audit)) = (locked_now, self.audit.get()) {
            let event =
                Event::now("mailgate", "locked out after repeated wrong passwords").from(a.source);
            audit.record(match &target {
                Target::Account(name) => event.account(name.as_str()),
                Target::Rule(rule) => event.account(rule),
            });
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Failed,
    Succeeded,
    Released,
}

impl Attempt<'_> {
    /// The password was wrong (or the name is no account).
    pub fn failed(mut self) {
        self.settled = true;
        self.guard.settle(&self, Outcome::Failed);
    }

    /// The password was right: the source becomes trusted for the target.
    pub fn succeeded(mut self) {
        self.settled = true;
        self.guard.settle(&self, Outcome::Succeeded);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.guard.settle(self, Outcome::Released);
        }
    }
}

impl Tables {
    fn trusts(&self, target: &Target, source: IpAddr, now: Instant) -> bool {
        self.trusted
            .get(&(target.clone(), source))
            .is_some_and(|&until| until > now)
    }

    /// Counts a failure of `source` at `target`; when the table is full
    /// even after dropping pairs whose source count is gone, it is not
    /// noted, and a later success simply refunds less.
    fn note_pair(&mut self, source: IpAddr, target: &Target, capacity: usize) {
        let key = (source, target.clone());
        if !self.pairs.contains_key(&key) && self.pairs.len() >= capacity {
            let sources = &self.by_source;
            self.pairs.retain(|(s, _), _| sources.contains(s));
        }
        if self.pairs.contains_key(&key) || self.pairs.len() < capacity {
            *self.pairs.entry(key).or_insert(0) += 1;
        }
    }

    /// Trusts `source` for `target`; when the table is full even after
    /// dropping expired entries, the source simply is not trusted.
    fn trust(&mut self, target: Target, source: IpAddr, now: Instant, capacity: usize) {
        let key = (target, source);
        if !self.trusted.contains_key(&key) && self.trusted.len() >= capacity {
            self.trusted.retain(|_, until| *until > now);
        }
        if self.trusted.contains_key(&key) || self.trusted.len() < capacity {
            self.trusted.insert(key, now + TRUST_TTL);
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod share_tests;
