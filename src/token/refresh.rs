//! One refresh of a delegated account: the provider call and the save of the
//! rotated refresh token, run in a task of its own.
//!
//! A refresh the provider completed has already rotated the refresh token
//! (`docs/design.md`: refresh tokens rotate on every use), so throwing the
//! answer away risks losing the sign-in. Hence the task owns the account's
//! cache lock and runs to the end even when every caller gave up (a client
//! hung up, a login timed out), and a failed save is tried again a few
//! times before the tokens are dropped.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::OwnedMutexGuard;

use super::cache::{Cached, TokenCache};
use crate::oauth::{OAuthError, TokenEndpoint, TokenResponse};
use crate::store::{Store, StoreError, Unlocked};

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
        current,
        margin,
    } = f;
    let outcome = match endpoint.refresh(&current.tokens.refresh_token).await {
        Ok(answer) => match save(&store, &current, &answer).await {
            Ok(()) => {
                tracing::info!(account = %current.record.account, "access token refreshed");
                Outcome::Saved(cache.store(answer.access_token, answer.expires_in, margin))
            }
            Err(e) => Outcome::SaveFailed(e),
        },
        Err(e) => Outcome::Refused(e),
    };
    (cache, outcome)
}

/// Saves `answer`, trying again after a failure (a full disk, a lock held
/// too long); a newer enrolment is final.
async fn save(store: &Store, current: &Unlocked, answer: &TokenResponse) -> Result<(), StoreError> {
    let account = &current.record.account;
    let mut pause = SAVE_RETRY_PAUSE;
    let mut attempt = 1;
    loop {
        let (store, cur, ans) = (store.clone(), current.clone(), answer.clone());
        let done =
            tokio::task::spawn_blocking(move || store.save_refresh(&cur, &ans, SystemTime::now()))
                .await;
        let error = match done {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e @ StoreError::Replaced { .. })) => return Err(e),
            Ok(Err(e)) => e,
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
