//! From a login name and local password to an account: which mailbox it
//! means ([`resolve`]), which token opens it, and whether the password is
//! right. This layer sits on the token store and below the token service.
//!
//! Passwords: the first login of an account in a process pays one Argon2id
//! run (store accounts: the record's parameters; app-only: the PHC string).
//! After a success we keep the unlocked data key and an HMAC-SHA256 of the
//! password under a random per-process key, never the password; a later
//! login whose HMAC matches costs microseconds. A password that does not
//! match the HMAC gets the full Argon2id check, because `mailgate login` may
//! have changed it. Unknown accounts run a dummy Argon2id so that they take
//! as long as a wrong password, and leave nothing behind in memory.
//!
//! A full check holds the account's lock, so a burst of first logins costs
//! one Argon2id, not one each; a wrong password therefore delays the
//! account's other cold logins by one Argon2id run, which the session
//! layer's failed-login back-off keeps rare. Derivations run in [`kdf`]'s
//! lanes: unknown names, recently failed accounts and the rest each have
//! their own queue, so guesses cannot starve an owner's first login.

mod kdf;
mod resolve;
mod warm;

use std::collections::HashMap;
use std::sync::Arc;

use crate::base::{AccountName, Protocol};
use crate::config::{AccountRule, Config};
use crate::secret::Secret;
use crate::store::{CryptoError, Stamp, Store, StoreError, Unlocked};

pub use kdf::{KNOWN_KDF, MAX_CONCURRENT_KDF, SUSPECT_WINDOW};
pub use resolve::{Resolved, resolve};
pub use warm::Verifier;

use kdf::{KdfPool, Lane};

/// Why a login cannot be turned into an unlocked account; the token service
/// maps each to the protocol answer it deserves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// Unknown account or wrong local password.
    #[error("unknown account or wrong local password")]
    BadCredentials,
    /// The stored record cannot be used; `hint` tells the admin why.
    #[error("account {account} needs authorisation: {hint}")]
    NeedsAuthorisation { account: AccountName, hint: String },
    /// The store or the machine is failing; the client should come back.
    #[error("temporary account failure: {0}")]
    Temporary(String),
}
/// Password checks with the warm-login cache.
pub struct Accounts {
    /// Replaced as a whole on reload; a login resolves against one snapshot.
    rules: std::sync::RwLock<Arc<Vec<AccountRule>>>,
    store: Store,
    verifier: Verifier,
    kdf: KdfPool,
    entries: std::sync::Mutex<HashMap<AccountName, Arc<tokio::sync::Mutex<warm::WarmEntry>>>>,
    app_tags: std::sync::Mutex<HashMap<String, warm::Tag>>,
    /// App-only rules whose password check failed, and when (one per rule).
    app_failed: std::sync::Mutex<HashMap<String, std::time::Instant>>,
}

impl Accounts {
    /// Fails only if the system random number generator does: without it no
    /// verifier key can be made.
    pub fn new(config: &Config, store: Store) -> Result<Accounts, CryptoError> {
        let verifier = Verifier::new().map_err(|_| CryptoError::Random)?;
        Ok(Accounts {
            rules: std::sync::RwLock::new(Arc::new(config.accounts.clone())),
            store,
            verifier,
            kdf: KdfPool::default(),
            entries: Default::default(),
            app_tags: Default::default(),
            app_failed: Default::default(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn resolve(
        &self,
        login: &AccountName,
        authzid: Option<&str>,
        protocol: Protocol,
    ) -> Result<Resolved, AccountError> {
        let rules = self.rules.read().unwrap_or_else(|p| p.into_inner()).clone();
        resolve(&rules, login, authzid, protocol)
    }

    /// Takes the account rules of a reloaded configuration. Logins already
    /// resolved keep what they resolved to.
    pub fn set_rules(&self, rules: Vec<AccountRule>) {
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rules);
    }

    /// Checks the local password of a store account and returns it unlocked.
    pub async fn unlock(
        &self,
        account: &AccountName,
        password: &Secret<String>,
    ) -> Result<Unlocked, AccountError> {
        let stamp = match self.store.stamp(account) {
            Ok(stamp) => stamp,
            Err(e @ StoreError::Unavailable { .. }) => {
                return self.warm_while_unavailable(account, password, e).await;
            }
            Err(e) => return Err(store_error(account, e)),
        };
        if stamp.is_none() {
            let (store, pw) = (self.store.clone(), password.clone());
            self.blocking_kdf(Lane::Unknown, move || store.dummy_unlock(&pw))
                .await?;
            return Err(AccountError::BadCredentials);
        }
        let entry = self.entry(account)?;
        let mut entry = entry.lock().await;
        if let Some(held) = self.warm_hit(&mut entry, account, password, stamp)? {
            return Ok(held);
        }
        let lane = lane_after(entry.failed_at);
        let store = self.store.clone();
        let (name, pw) = (account.clone(), password.clone());
        let result = self
            .blocking_kdf(lane, move || match store.unlock(&name, &pw) {
                Err(StoreError::UnknownAccount(a)) => {
                    store.dummy_unlock(&pw);
                    Err(StoreError::UnknownAccount(a))
                }
                Ok(held) => {
                    if let Err(e) = store.sync_machine_wrap(&held) {
                        tracing::warn!(account = %name, error = %e, "cannot update the machine-key wrap");
                    }
                    Ok(held)
                }
                other => other,
            })
            .await?;
        if matches!(result, Err(StoreError::BadPassword)) {
            entry.failed_at = Some(std::time::Instant::now());
        }
        let held = result.map_err(|e| store_error(account, e))?;
        entry.failed_at = None;
        entry.stamp = self.store.stamp(account).ok().flatten();
        entry.tag = Some(self.verifier.tag(account.as_str(), password));
        entry.held = Some(held.clone());
        Ok(held)
    }

    /// Installs an account opened with the machine key; a password login
    /// still needs one full check before it is trusted.
    pub async fn adopt(&self, held: Unlocked) {
        let account = held.record.account.clone();
        let Ok(entry) = self.entry(&account) else {
            return;
        };
        let mut entry = entry.lock().await;
        if entry.held.is_none() {
            entry.stamp = self.store.stamp(&account).ok().flatten();
            entry.held = Some(held);
        }
    }

    /// Accounts whose data key is in memory, for background refresh.
    pub async fn held(&self) -> Vec<Unlocked> {
        let entries: Vec<_> = match self.entries.lock() {
            Ok(map) => map.values().cloned().collect(),
            Err(_) => return Vec::new(),
        };
        let mut out = Vec::new();
        for s in entries {
            if let Some(h) = &s.lock().await.held {
                out.push(h.clone());
            }
        }
        out
    }

    /// Forgets a held key that no longer opens the file (re-enrolled).
    pub async fn forget(&self, account: &AccountName) {
        if let Ok(entry) = self.entry(account) {
            *entry.lock().await = warm::WarmEntry::default();
        }
    }

    /// Checks an app-only rule's password against its Argon2id PHC string.
    pub async fn check_app_password(
        &self,
        rule: &str,
        password_hash: &str,
        password: &Secret<String>,
    ) -> Result<(), AccountError> {
        let tag = self
            .verifier
            .tag(&format!("{rule}\0{password_hash}"), password);
        let known = self.app_tags.lock().ok().and_then(|m| m.get(rule).cloned());
        if known.is_some_and(|k| warm::same(&k, &tag)) {
            return Ok(());
        }
        let (hash, pw) = (password_hash.to_owned(), password.clone());
        let failed_at = self
            .app_failed
            .lock()
            .ok()
            .and_then(|m| m.get(rule).copied());
        let right = self
            .blocking_kdf(lane_after(failed_at), move || warm::verify_phc(&hash, &pw))
            .await?;
        if let Ok(mut m) = self.app_failed.lock() {
            if right {
                m.remove(rule);
            } else {
                m.insert(rule.to_owned(), std::time::Instant::now());
            }
        }
        if !right {
            return Err(AccountError::BadCredentials);
        }
        if let Ok(mut m) = self.app_tags.lock() {
            m.insert(rule.to_owned(), tag);
        }
        Ok(())
    }

    /// The shared store cannot be reached: an account already unlocked
    /// here with this very password keeps working on what memory holds (its
    /// cached access token); anyone else gets the temporary answer.
    async fn warm_while_unavailable(
        &self,
        account: &AccountName,
        password: &Secret<String>,
        e: StoreError,
    ) -> Result<Unlocked, AccountError> {
        let entry = self.entry(account)?;
        let entry = entry.lock().await;
        if let (Some(held), Some(tag)) = (&entry.held, &entry.tag)
            && self.verifier.matches(account.as_str(), password, tag)
        {
            tracing::debug!(%account, error = %e, "token store unavailable; using the account as unlocked earlier");
            return Ok(held.clone());
        }
        Err(store_error(account, e))
    }

    /// The same password as the last full check, on a record that is still
    /// the one unlocked then: `stamp` is the record's stamp as read by this
    /// login. A record that changed is read again; if the store fails
    /// that read, what memory holds is used, as when the stamp cannot be
    /// read ([`Accounts::warm_while_unavailable`]).
    fn warm_hit(
        &self,
        entry: &mut warm::WarmEntry,
        account: &AccountName,
        password: &Secret<String>,
        stamp: Option<Stamp>,
    ) -> Result<Option<Unlocked>, AccountError> {
        let (Some(held), Some(tag)) = (&entry.held, &entry.tag) else {
            return Ok(None);
        };
        if !self.verifier.matches(account.as_str(), password, tag) {
            return Ok(None);
        }
        if stamp.is_some() && stamp == entry.stamp {
            return Ok(Some(held.clone()));
        }
        let current = match self.store.load(account) {
            Ok(current) => current,
            Err(e @ StoreError::Unavailable { .. }) => {
                tracing::debug!(%account, error = %e, "token store unavailable; using the account as unlocked earlier");
                return Ok(Some(held.clone()));
            }
            Err(e) => return Err(store_error(account, e)),
        };
        match current {
            Some(rec) if rec.key_id == held.record.key_id => {
                entry.stamp = stamp;
                Ok(Some(held.clone()))
            }
            _ => {
                *entry = warm::WarmEntry::default();
                Ok(None)
            }
        }
    }

    async fn blocking_kdf<T: Send + 'static>(
        &self,
        lane: Lane,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AccountError> {
        self.kdf
            .run(lane, f)
            .await
            .map_err(|_| temporary("password check failed to run"))
    }

    /// The most Argon2id derivations that have run at once since start.
    pub fn kdf_peak(&self) -> usize {
        self.kdf.peak()
    }

    fn entry(
        &self,
        account: &AccountName,
    ) -> Result<Arc<tokio::sync::Mutex<warm::WarmEntry>>, AccountError> {
        let mut map = self
            .entries
            .lock()
            .map_err(|_| temporary("account table poisoned"))?;
        Ok(map.entry(account.clone()).or_default().clone())
    }
}

/// Maps a store failure to what the client should be told: only a wrong
/// password or an unknown account is "bad credentials".
pub fn store_error(account: &AccountName, e: StoreError) -> AccountError {
    match e {
        StoreError::BadPassword | StoreError::UnknownAccount(_) | StoreError::InvalidAccount(_) => {
            AccountError::BadCredentials
        }
        StoreError::Io { .. }
        | StoreError::Crypto(_)
        | StoreError::Unavailable { .. }
        | StoreError::Conflict { .. } => {
            tracing::error!(%account, error = %e, "token store unavailable");
            temporary("token store unavailable")
        }
        StoreError::Corrupt { .. } | StoreError::Version { .. } => {
            // The error names the file: the log gets it, the client does not.
            tracing::error!(%account, error = %e, "token store record unreadable");
            AccountError::NeedsAuthorisation {
                account: account.clone(),
                hint: format!(
                    "the stored sign-in of {account} cannot be read (the log says why); the administrator must run `mailgate login {account}`"
                ),
            }
        }
        other => {
            tracing::error!(%account, error = %other, "token store record unusable");
            AccountError::NeedsAuthorisation {
                account: account.clone(),
                hint: other.to_string(),
            }
        }
    }
}

/// The suspect lane while a failure is recent, the known lane otherwise.
fn lane_after(failed_at: Option<std::time::Instant>) -> Lane {
    match failed_at {
        Some(at) if at.elapsed() < SUSPECT_WINDOW => Lane::Suspect,
        _ => Lane::Known,
    }
}

fn temporary(reason: &str) -> AccountError {
    AccountError::Temporary(reason.to_owned())
}

#[cfg(test)]
mod tests;
