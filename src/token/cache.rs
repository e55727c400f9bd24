//! [`TokenCache`]: per-account (or per-provider, for app-only) token state in
//! memory: the cached access token, the back-off after a failure, and when
//! we last refreshed.
//!
//! The cache runs on tokio's monotonic clock, so the paused clock in tests
//! drives expiry deterministically; the wall-clock expiry stored on disk is
//! consulted only once, when a process first meets an account (a token
//! fetched before a restart is still good to use).

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::TokenError;
use crate::base::AccountName;
use crate::oauth::OAuthError;
use crate::secret::Secret;

/// First back-off after a temporary failure; doubles per failure.
pub const BACKOFF_START: Duration = Duration::from_secs(2);
/// Longest back-off we choose ourselves.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5 * 60);
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

/// `(reason, retry_after)` of a temporary OAuth failure; `None` if permanent.
pub fn temporary_parts(e: &OAuthError) -> Option<(String, Option<Duration>)> {
    match e {
        OAuthError::Temporary {
            reason,
            retry_after,
        } => Some((reason.clone(), *retry_after)),
        OAuthError::Config(_) => Some((e.to_string(), None)),
        OAuthError::Rejected { .. } => None,
    }
}
