//! [`TokenCache`]: per-account (or per-provider, for app-only) token state in
//! memory: the cached access token, the back-off after a failure, and when
//! we last refreshed.
//!
//! [`RefusalTable`] remembers upstream refusals of fresh tokens, so that a
//! mailbox whose upstream refuses every token (IMAP disabled, say) costs one
//! refresh per quiet time instead of one per login.
//!
//! The cache runs on tokio's monotonic clock, so the paused clock in tests
//! drives expiry deterministically; the wall-clock expiry stored on disk is
//! consulted only once, when a process first meets an account (a token
//! fetched before a restart is still good to use).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::TokenError;
use crate::base::AccountName;
use crate::oauth::TokenResponse;
use crate::secret::Secret;

/// First back-off after a temporary failure; doubles per failure.
pub const BACKOFF_START: Duration = Duration::from_secs(2);
/// Longest back-off we choose ourselves.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5 * 60);
/// After an upstream refused an unexpired token, no further refusal of the
/// same account costs a refresh for this long; doubles per refusal.
pub const REFUSAL_BACKOFF_START: Duration = Duration::from_secs(5 * 60);
/// Longest pause between refusal-triggered refreshes.
pub const REFUSAL_BACKOFF_MAX: Duration = Duration::from_secs(6 * 3600);
/// Most accounts whose refusals are remembered at once.
pub const REFUSAL_TABLE_MAX: usize = 4096;
/// Longest provider-suggested `Retry-After` we honour (untrusted input).
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone)]
pub struct Cached {
    pub token: Secret<String>,
    pub expires_at: SystemTime,
    /// After this the token has less than the refresh margin left.
    pub fresh_until: Instant,
}

#[derive(Debug, Clone)]
pub struct Backoff {
    pub until: Instant,
    pub failures: u32,
    pub reason: String,
}

/// Whose token a [`TokenCache`] holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CacheKey {
    /// A delegated account's own token.
    Account(AccountName),
    /// The client-credentials token of a provider, shared by its app-only rules.
    App(String),
    /// A delegated account's Microsoft Graph token.
    Graph(AccountName),
    /// A provider's client-credentials token for Microsoft Graph.
    GraphApp(String),
}

#[derive(Debug, Default)]
pub struct TokenCache {
    pub access: Option<Cached>,
    pub backoff: Option<Backoff>,
    pub last_refresh: Option<Instant>,
    pub last_touch: Option<Instant>,
    /// The disk's access token has been considered once.
    pub seen_disk: bool,
    /// The enrolment (`key_id`) this state belongs to.
    pub key_id: String,
}

impl TokenCache {
    /// Starts over when `mailgate login` enrolled the account again: the old
    /// tokens, failures and back-off belong to the old sign-in.
    pub fn follow(&mut self, key_id: &str) {
        if self.key_id != key_id {
            *self = TokenCache {
                key_id: key_id.to_owned(),
                last_touch: self.last_touch,
                ..TokenCache::default()
            };
        }
    }

    pub fn fresh(&self, now: Instant) -> Option<&Cached> {
        self.access.as_ref().filter(|c| c.fresh_until > now)
    }

    /// The error to repeat while backing off, without asking the provider.
    pub fn backing_off(&self, now: Instant) -> Option<TokenError> {
        let b = self.backoff.as_ref().filter(|b| b.until > now)?;
        Some(TokenError::Temporary {
            reason: b.reason.clone(),
            retry_after: Some(b.until - now),
        })
    }

    /// A Graph token that can be answered without asking the provider: the
    /// cached one unless the upstream just `refused` it, or the back-off's
    /// error. `None`: ask the provider.
    pub fn reuse(
        &mut self,
        refused: Option<&Secret<String>>,
        now: Instant,
    ) -> Option<Result<Secret<String>, TokenError>> {
        if let (Some(r), Some(c)) = (refused, &self.access)
            && c.token == *r
        {
            self.access = None;
        }
        if let Some(c) = self.fresh(now) {
            return Some(Ok(c.token.clone()));
        }
        self.backing_off(now).map(Err)
    }

    /// Caches a new token; see [`margin_for`] for the margin.
    pub fn store(&mut self, token: Secret<String>, life: Duration, margin: Duration) -> Cached {
        let now = Instant::now();
        let cached = Cached {
            token,
            expires_at: SystemTime::now() + life,
            fresh_until: now + life.saturating_sub(margin),
        };
        self.access = Some(cached.clone());
        self.backoff = None;
        self.last_refresh = Some(now);
        cached
    }

    /// Records a temporary failure; returns the error for the caller.
    pub fn fail(&mut self, reason: String, retry_after: Option<Duration>) -> TokenError {
        let failures = self.backoff.as_ref().map_or(0, |b| b.failures) + 1;
        let ours = BACKOFF_START
            .saturating_mul(1 << (failures - 1).min(16))
            .min(BACKOFF_MAX);
        let wait = retry_after.map_or(ours, |r| r.min(RETRY_AFTER_MAX).max(ours));
        self.backoff = Some(Backoff {
            until: Instant::now() + wait,
            failures,
            reason: reason.clone(),
        });
        TokenError::Temporary {
            reason,
            retry_after: Some(wait),
        }
    }
}

/// The refresh margin for `answer`: the provider's, except when the
/// provider omitted `expires_in`. Its assumed life
/// ([`crate::oauth::DEFAULT_EXPIRES_IN`]) is shorter than the default
/// margin, which would refresh on every login; such a token is used for half
/// its assumed life instead.
pub fn margin_for(answer: &TokenResponse, margin: Duration) -> Duration {
    if answer.expires_in_assumed {
        margin.min(answer.expires_in / 2)
    } else {
        margin
    }
}

/// Upstream refusals of fresh tokens for one account.
#[derive(Debug, Clone)]
struct Refusals {
    quiet_until: Instant,
    count: u32,
}

/// When an upstream refusal of an unexpired token may cost a refresh,
/// per account (the grant's account: a mailbox, for app-only rules).
#[derive(Debug, Default)]
pub struct RefusalTable(std::sync::Mutex<HashMap<String, Refusals>>);

impl RefusalTable {
    /// An upstream refused `account`'s unexpired token: may it refresh?
    /// Yes once; then not until a quiet time has passed, which doubles per
    /// refusal from [`REFUSAL_BACKOFF_START`] to [`REFUSAL_BACKOFF_MAX`]
    /// and starts over when the upstream accepts the account again.
    pub fn refused(&self, account: &str, now: Instant) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = match map.get(account) {
            Some(r) if now < r.quiet_until => return false,
            Some(r) if now < r.quiet_until + REFUSAL_BACKOFF_MAX => r.count + 1,
            _ => 1,
        };
        if map.len() >= REFUSAL_TABLE_MAX && !map.contains_key(account) {
            map.retain(|_, r| now < r.quiet_until + REFUSAL_BACKOFF_MAX);
            if map.len() >= REFUSAL_TABLE_MAX {
                // Full of live entries: spare the identity provider.
                return false;
            }
        }
        let quiet = REFUSAL_BACKOFF_START
            .saturating_mul(1 << (count - 1).min(16))
            .min(REFUSAL_BACKOFF_MAX);
        let quiet_until = now + quiet;
        map.insert(account.to_owned(), Refusals { quiet_until, count });
        true
    }

    /// The upstream accepted `account`: its next refusal may refresh again.
    pub fn accepted(&self, account: &str) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(account);
    }
}
