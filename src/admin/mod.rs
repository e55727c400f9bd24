//! The admin service: the one place account actions live. The `accounts`,
//! `logout`, `login` and `hash-password` commands call it, and so will a web
//! console, which is why it returns data and never prints, prompts or reads a
//! terminal. It is built from a [`Config`] today and can be built from a
//! running server's shared config the same way.
//!
//! Store work (file I/O, Argon2id) runs on the blocking pool, so that calling
//! the service from a server's runtime never stalls its connections.

mod password;

use std::sync::Arc;

use crate::audit::{AuditLog, Event};
use crate::base::AccountName;
use crate::config::Config;
use crate::enrol::{self, EnrolError, EnrolRequest, PendingEnrolment};
use crate::guard::{LoginGuard, Target};
use crate::secret::Secret;
use crate::store::crypto::KdfParams;
use crate::store::{AccountSummary, Store, StoreError};

pub use password::MAX_PASSWORD_LEN;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no enrolled account {0:?}; `mailgate accounts` lists them")]
    UnknownAccount(String),
    #[error("no password given: type it on one line")]
    EmptyPassword,
    #[error("password longer than {MAX_PASSWORD_LEN} bytes")]
    PasswordTooLong,
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("unlocking needs the running server: use the web console")]
    NotRunning,
    #[error("the admin task stopped before it finished: {0}")]
    Interrupted(String),
}

/// Who acts, for the audit log: `admin` at the console, `cli` at a shell,
/// `self-service` through an enrolment link; and from which address.
#[derive(Debug, Clone)]
pub struct Actor {
    pub who: String,
    pub from: Option<String>,
}

/// Account administration for one gateway.
#[derive(Clone)]
pub struct Admin {
    config: Arc<Config>,
    audit: Arc<AuditLog>,
    actor: Actor,
    /// The running server's login guard, when there is one (the console).
    guard: Option<Arc<LoginGuard>>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl Admin {
    pub fn new(config: Arc<Config>) -> Self {
        let audit = Arc::new(AuditLog::new(&config.state_dir));
        Self {
            config,
            audit,
            actor: Actor {
                who: "cli".to_owned(),
                from: None,
            },
            guard: None,
        }
    }

    /// The service of a running server: its audit log and login guard.
    pub fn running(
        config: Arc<Config>,
        audit: Arc<AuditLog>,
        guard: Option<Arc<LoginGuard>>,
    ) -> Self {
        Self {
            guard,
            audit,
            ..Self::new(config)
        }
    }

    /// The same service acting for `actor`.
    pub fn acting(&self, actor: Actor) -> Self {
        Self {
            actor,
            ..self.clone()
        }
    }

    /// Records `what` about `account` as done by the current actor.
    pub fn record(&self, what: &str, account: Option<&str>) {
        let mut event = Event::now(&self.actor.who, what);
        if let Some(account) = account {
            event = event.account(account);
        }
        if let Some(from) = &self.actor.from {
            event = event.from(from);
        }
        self.audit.record(event);
    }

    /// Up to `limit` audit events, newest first.
    pub async fn events(&self, limit: usize) -> Vec<Event> {
        let audit = Arc::clone(&self.audit);
        tokio::task::spawn_blocking(move || audit.recent(limit))
            .await
            .unwrap_or_default()
    }

    /// Whether the running guard holds `account` locked out.
    pub fn locked_out(&self, account: &AccountName) -> bool {
        self.guard
            .as_ref()
            .is_some_and(|g| g.target_locked(&Target::Account(account.clone())))
    }

    /// Ends `account`'s lock-out in the running guard.
    pub fn unlock(&self, account: &str) -> Result<bool, AdminError> {
        let name = AccountName::parse(account).map_err(StoreError::from)?;
        let guard = self.guard.as_ref().ok_or(AdminError::NotRunning)?;
        let had = guard.unlock(&Target::Account(name));
        self.record("unlocked (lock-out ended)", Some(account));
        Ok(had)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Every enrolled account with its state; holds no secret.
    pub async fn accounts(&self) -> Result<Vec<AccountSummary>, AdminError> {
        let config = Arc::clone(&self.config);
        blocking(move || Ok(Store::open(&config.state_dir)?.list()?)).await
    }

    /// Signs an account out: removes its stored tokens.
    pub async fn logout(&self, account: &str) -> Result<(), AdminError> {
        let config = Arc::clone(&self.config);
        let name = account.to_owned();
        let account = account.to_owned();
        blocking(move || {
            let name = AccountName::parse(&account).map_err(StoreError::from)?;
            if Store::open(&config.state_dir)?.remove(&name)? {
                Ok(())
            } else {
                Err(AdminError::UnknownAccount(account))
            }
        })
        .await?;
        self.record("signed out (tokens removed)", Some(&name));
        Ok(())
    }

    /// The Argon2id PHC string of `password`, for an app-only account's
    /// `password_hash`.
    /// Needs no gateway state, so it needs no [`Admin`] either.
    pub async fn hash_password(password: Secret<String>) -> Result<Secret<String>, AdminError> {
        blocking(move || password::hash(password.expose(), KdfParams::DEFAULT)).await
    }

    /// Starts enrolling (or re-authorising) an account; the caller shows the
    /// returned prompt to the user and then awaits
    /// [`PendingEnrolment::finish`].
    pub async fn start_enrolment(
        &self,
        request: EnrolRequest,
    ) -> Result<PendingEnrolment, EnrolError> {
        enrol::start(&self.config, request).await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AdminError> + Send + 'static,
) -> Result<T, AdminError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AdminError::Interrupted(e.to_string()))?
}

#[cfg(test)]
mod tests;
