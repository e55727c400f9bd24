//! One refresh of a delegated account: the provider call and the save of the
//! rotated refresh token, run in a task of its own.
//!
//! A refresh the provider completed has already rotated the refresh token
//! (`docs/design.md`: refresh tokens rotate on every use), so throwing the
//! answer away risks losing the sign-in. Hence the task owns the account's
//! cache lock and runs to the end even when every caller gave up (a client
//! hung up, a login timed out), and a failed save is tried again a few
//! times before the tokens are dropped. [`TokenService::settle`] then turns
//! the outcome into the answer, the account's state and the provider's health.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::OwnedMutexGuard;

use super::TokenError;
use super::cache::{Cached, TokenCache, margin_for};
use super::service::{CONFIG_FAULT_REASON, TokenService};
use crate::metrics::{self, GrantKind, TokenOutcome};
use crate::oauth::{Fault, OAuthError, TokenEndpoint, TokenResponse, recorded_fault};
use crate::store::{AccountState, Lease, Store, StoreError, Unlocked};

/// Saves tried before the new tokens are dropped.
pub const SAVE_TRIES: u32 = 3;
/// Pause before the second save; doubles before each further one.
pub const SAVE_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// How a refresh ended.
pub(super) enum Outcome {
    /// Saved and cached.
    Saved(Cached),
    /// The provider answered but the answer could not be saved.
    SaveFailed(StoreError),
    /// The provider refused or could not be reached.
    Refused(OAuthError),
    /// Another instance sharing the store refreshed meanwhile: its token.
    Adopted(Cached),
    /// The shared store could not give the lease: nothing was refreshed.
    Unavailable(StoreError),
}

/// What the refresh needs, moved into its task.
pub(super) struct Flight {
    pub cache: OwnedMutexGuard<TokenCache>,
    pub endpoint: Arc<dyn TokenEndpoint>,
    pub store: Store,
    pub current: Unlocked,
    pub margin: Duration,
}

/// Runs the refresh in its own task; `None` only if that task panicked.
pub(super) async fn run(flight: Flight) -> Option<(OwnedMutexGuard<TokenCache>, Outcome)> {
    tokio::spawn(fly(flight)).await.ok()
}

async fn fly(f: Flight) -> (OwnedMutexGuard<TokenCache>, Outcome) {
    let Flight {
        mut cache,
        endpoint,
        store,
        mut current,
        margin,
    } = f;
    let mut lease = None;
    if store.backend().shared() {
        match lease_and_reread(&store, &current).await {
            Ok((held, newest)) => {
                if let Some(outcome) = adopt(&mut cache, &current, &newest, margin) {
                    return (cache, outcome);
                }
                lease = Some(held);
                current = newest;
            }
            Err(e) => return (cache, Outcome::Unavailable(e)),
        }
    }
    let outcome = match endpoint.refresh(&current.tokens.refresh_token).await {
        Ok(answer) => match save(&store, &mut lease, &current, &answer).await {
            Ok(()) => {
                tracing::info!(account = %current.record.account, "access token refreshed");
                let margin = margin_for(&answer, margin);
                Outcome::Saved(cache.store(answer.access_token, answer.expires_in, margin))
            }
            Err(e @ StoreError::Conflict { .. }) => {
                drop(lease);
                match reread(&store, &current).await {
                    Ok(newest) => adopt(&mut cache, &current, &newest, margin)
                        .unwrap_or(Outcome::SaveFailed(e)),
                    Err(_) => Outcome::SaveFailed(e),
                }
            }
            Err(e) => Outcome::SaveFailed(e),
        },
        Err(e) => Outcome::Refused(e),
    };
    (cache, outcome)
}

/// On a shared backend: the account's lease across instances, then the
/// record as it is under it (another instance may have refreshed).
async fn lease_and_reread(
    store: &Store,
    current: &Unlocked,
) -> Result<(Lease, Unlocked), StoreError> {
    let (store, cur) = (store.clone(), current.clone());
    tokio::task::spawn_blocking(move || {
        let lease = store.lease(&cur.record.account)?;
        let newest = store.reopen(&cur.record.account, &cur.key, &cur.record.key_id)?;
        Ok((lease, newest))
    })
    .await
    .unwrap_or_else(|_| Err(not_run()))
}

async fn reread(store: &Store, current: &Unlocked) -> Result<Unlocked, StoreError> {
    let (store, cur) = (store.clone(), current.clone());
    tokio::task::spawn_blocking(move || {
        store.reopen(&cur.record.account, &cur.key, &cur.record.key_id)
    })
    .await
    .unwrap_or_else(|_| Err(not_run()))
}

/// Another instance refreshed since `current` was read and its access
/// token has life left: use it instead of refreshing again.
fn adopt(
    cache: &mut TokenCache,
    current: &Unlocked,
    newest: &Unlocked,
    margin: Duration,
) -> Option<Outcome> {
    if newest.tokens.refresh_token.expose() == current.tokens.refresh_token.expose() {
        return None;
    }
    let token = newest.tokens.access_token.clone()?;
    let left = newest
        .tokens
        .access_expires_at?
        .duration_since(SystemTime::now())
        .ok()
        .filter(|left| *left > margin)?;
    tracing::info!(account = %current.record.account, "another instance refreshed the access token; using it");
    Some(Outcome::Adopted(cache.store(token, left, margin)))
}

fn not_run() -> StoreError {
    StoreError::Io {
        action: "use",
        path: "the token store".into(),
        source: std::io::Error::other("the store task did not run"),
    }
}

impl TokenService {
    /// What a refresh's outcome does to the cache, the account and the
    /// provider's health (see [`crate::oauth::Fault`]).
    pub(super) async fn settle(
        &self,
        s: &mut TokenCache,
        current: &Unlocked,
        outcome: Outcome,
    ) -> Result<Cached, TokenError> {
        let account = &current.record.account;
        let provider = &current.record.provider;
        let counted = |outcome| metrics::global().token_request(GrantKind::refresh_token, outcome);
        let e = match outcome {
            Outcome::Saved(cached) => {
                counted(TokenOutcome::ok);
                self.provider_ok(provider);
                return Ok(cached);
            }
            Outcome::Adopted(cached) => return Ok(cached),
            Outcome::Unavailable(e) => {
                tracing::warn!(account = %account, error = %e, "token store unavailable; not refreshing");
                return Err(s.fail("token store unavailable".to_owned(), None));
            }
            Outcome::SaveFailed(e) => {
                counted(TokenOutcome::save_failed);
                tracing::error!(account = %account, error = %e, "cannot save the rotated refresh token; not using the new access token");
                return Err(s.fail("cannot save tokens".to_owned(), None));
            }
            Outcome::Refused(e) => e,
        };
        let key_id = &current.record.key_id;
        counted(fault_outcome(&e.fault()));
        match e.fault() {
            Fault::Temporary { retry_after } => {
                tracing::warn!(account = %account, error = %e, "token refresh failed; will retry later");
                let err = s.fail(temporary_reason(&e), retry_after);
                self.mark(
                    account,
                    key_id,
                    AccountState::RefreshFailing,
                    &e.to_string(),
                )
                .await;
                Err(err)
            }
            Fault::ProviderConfig { fix } => {
                self.config_fault(provider, &e, fix);
                Err(s.fail(CONFIG_FAULT_REASON.to_owned(), None))
            }
            Fault::DeadGrant => {
                s.access = None;
                let hint = format!("the provider refused the stored sign-in ({e})");
                self.mark(account, key_id, AccountState::NeedsLogin, &e.to_string())
                    .await;
                Err(self.needs_login(account, &hint, true))
            }
        }
    }
}

/// A refused token request as `mailgate_token_requests_total` counts it.
pub(super) fn fault_outcome(fault: &Fault) -> TokenOutcome {
    match fault {
        Fault::Temporary { .. } => TokenOutcome::temporary,
        Fault::ProviderConfig { .. } => TokenOutcome::config_fault,
        Fault::DeadGrant => TokenOutcome::needs_login,
    }
}

/// The account is `needs-login` because an earlier version pinned a
/// configuration or temporary fault on it: try again, the fault may be fixed.
pub(super) fn marked_by_mistake(current: &Unlocked) -> bool {
    let recorded = current.record.last_error.as_deref().map(recorded_fault);
    recorded.is_some_and(|f| f != Fault::DeadGrant)
}

/// What a client is told about a temporary failure.
pub(super) fn temporary_reason(e: &OAuthError) -> String {
    match e {
        OAuthError::Temporary { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// Saves `answer`, trying again after a failure (a full disk, a lock held
/// too long); a newer enrolment is final.
async fn save(
    store: &Store,
    lease: &mut Option<Lease>,
    current: &Unlocked,
    answer: &TokenResponse,
) -> Result<(), StoreError> {
    let account = &current.record.account;
    let mut pause = SAVE_RETRY_PAUSE;
    let mut attempt = 1;
    loop {
        let (store, cur, ans, held) =
            (store.clone(), current.clone(), answer.clone(), lease.take());
        let done = tokio::task::spawn_blocking(move || {
            let now = SystemTime::now();
            let saved = match &held {
                Some(l) => store.save_refresh_under(l, &cur, &ans, now),
                None => store.save_refresh(&cur, &ans, now),
            };
            (held, saved)
        })
        .await;
        let error = match done {
            Ok((held, saved)) => {
                *lease = held;
                match saved {
                    Ok(_) => return Ok(()),
                    Err(e @ (StoreError::Replaced { .. } | StoreError::Conflict { .. })) => {
                        return Err(e);
                    }
                    Err(e) => e,
                }
            }
            Err(_) => StoreError::Io {
                action: "save",
                path: "the token store".into(),
                source: std::io::Error::other("the save task did not run"),
            },
        };
        if attempt >= SAVE_TRIES {
            return Err(error);
        }
        tracing::warn!(%account, attempt, %error, "cannot save the rotated refresh token; trying again");
        tokio::time::sleep(pause).await;
        pause = pause.saturating_mul(2);
        attempt += 1;
    }
}
