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

use crate::base::AccountName;
use crate::config::Config;
use crate::config::StoreSettings;
use crate::enrol::{self, EnrolError, EnrolRequest, PendingEnrolment};
use crate::secret::Secret;
use crate::store::crypto::KdfParams;
use crate::store::migrate::{self, Action};
use crate::store::{AccountSummary, Database, FileStore, PgStore, Store, StoreError, TokenStore};

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
    #[error(
        "the config has no database: `store migrate` needs a [store] table with kind = \"postgres\""
    )]
    NoDatabase,
    #[error("--from and --to name the same store")]
    SameStore,
    #[error("the admin task stopped before it finished: {0}")]
    Interrupted(String),
}

/// A token store backend, as `store migrate` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    File,
    Postgres,
}

/// Account administration for one gateway.
#[derive(Debug, Clone)]
pub struct Admin {
    config: Arc<Config>,
}

impl Admin {
    pub fn new(config: Arc<Config>) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Every enrolled account with its state; holds no secret.
    pub async fn accounts(&self) -> Result<Vec<AccountSummary>, AdminError> {
        let config = Arc::clone(&self.config);
        blocking(move || Ok(Store::for_config(&config)?.list()?)).await
    }

    /// Signs an account out: removes its stored tokens.
    pub async fn logout(&self, account: &str) -> Result<(), AdminError> {
        let config = Arc::clone(&self.config);
        let account = account.to_owned();
        blocking(move || {
            let name = AccountName::parse(&account).map_err(StoreError::from)?;
            if Store::for_config(&config)?.remove(&name)? {
                Ok(())
            } else {
                Err(AdminError::UnknownAccount(account))
            }
        })
        .await
    }

    /// Copies sealed records between the state directory's file store and
    /// the configured database ([`crate::store::migrate`]); a dry run
    /// only says what it would copy.
    pub async fn migrate_store(
        &self,
        from: StoreKind,
        to: StoreKind,
        dry_run: bool,
    ) -> Result<Vec<(AccountName, Action)>, AdminError> {
        if from == to {
            return Err(AdminError::SameStore);
        }
        let StoreSettings::Postgres(pg) = &self.config.store else {
            return Err(AdminError::NoDatabase);
        };
        let file: Arc<dyn TokenStore> = Arc::new(FileStore::open(&self.config.state_dir)?);
        let db: Arc<dyn TokenStore> =
            Arc::new(PgStore::new(Database::new(pg)?, &self.config.state_dir)?);
        let (src, dst) = match from {
            StoreKind::File => (file, db),
            StoreKind::Postgres => (db, file),
        };
        blocking(move || Ok(migrate::copy_records(&*src, &*dst, dry_run)?)).await
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
