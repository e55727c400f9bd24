//! From a login name and local password to an account: which mailbox it
//! means, which token opens it, and whether the password is right.
//!
//! A login name is, in this order: a shared mailbox named by a SASL PLAIN
//! authzid (RFC 4616 §2) that a `shared` rule lets the authenticating
//! delegate open; a config rule (`app-only`, or `shared` naming a delegate);
//! or a delegated account in the token store. For shared mailboxes DESIGN.md
//! ("Microsoft facts") fixes the XOAUTH2 `user=`: the shared address for IMAP
//! and POP, the delegate for SMTP (the client sends MAIL FROM the shared
//! address).
//!
//! Passwords: the first login of an account in a process pays one Argon2id
//! run (store accounts: the file's parameters; app-only: the PHC string).
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
//! layer's failed-login back-off keeps rare.

mod warm;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::config::{AccountKind, AccountRule, Config};
use crate::secret::Secret;
use crate::token::crypto::CryptoError;
use crate::token::store::{Store, StoreError, Unlocked};
use crate::token::{Protocol, TokenError};

pub use warm::Verifier;

/// Argon2id runs at once, process-wide: each takes 64 MiB and a core, and a
/// burst of first logins must not exhaust either.
pub const MAX_CONCURRENT_KDF: usize = 4;

/// What a login name resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A store account; `mailbox` overrides its `user=` (shared mailboxes).
    Delegated {
        account: String,
        mailbox: Option<String>,
    },
    /// Client credentials; `rule` is the matching rule's login (the cache key).
    AppOnly {
        rule: String,
        provider: Option<String>,
        password_hash: String,
        mailbox: String,
    },
}

/// Resolves a login (see module docs). Pure: no I/O, no password check.
pub fn resolve(
    rules: &[AccountRule],
    username: &str,
    authzid: Option<&str>,
    protocol: Protocol,
) -> Result<Target, TokenError> {
    let shared_user = |mailbox: &str| match protocol {
        Protocol::Smtp => None,
        Protocol::Imap | Protocol::Pop3 => Some(mailbox.to_owned()),
    };
    if let Some(z) = authzid.filter(|z| !z.is_empty() && !z.eq_ignore_ascii_case(username)) {
        return match find_rule(rules, z).map(|r| &r.kind) {
            Some(AccountKind::Shared { delegate }) if delegate.eq_ignore_ascii_case(username) => {
                Ok(Target::Delegated {
                    account: delegate.clone(),
                    mailbox: shared_user(z),
                })
            }
            _ => Err(TokenError::BadCredentials),
        };
    }
    Ok(match find_rule(rules, username) {
        Some(rule) => match &rule.kind {
            AccountKind::AppOnly {
                password_hash,
                mailbox,
            } => Target::AppOnly {
                rule: rule.login.clone(),
                provider: rule.provider.clone(),
                password_hash: password_hash.clone(),
                mailbox: mailbox.clone().unwrap_or_else(|| username.to_owned()),
            },
            AccountKind::Shared { delegate } => Target::Delegated {
                account: delegate.clone(),
                mailbox: shared_user(username),
            },
        },
        None => Target::Delegated {
            account: username.to_owned(),
            mailbox: None,
        },
    })
}

/// An exact rule beats a `*@domain` rule; among equals, the first one wins.
fn find_rule<'r>(rules: &'r [AccountRule], login: &str) -> Option<&'r AccountRule> {
    let exact = rules
        .iter()
        .find(|r| !r.login.starts_with("*@") && r.matches(login));
    exact.or_else(|| rules.iter().find(|r| r.matches(login)))
}

/// Password checks with the warm-login cache.
pub struct Accounts {
    /// Replaced as a whole on reload; a login resolves against one snapshot.
    rules: std::sync::RwLock<Arc<Vec<AccountRule>>>,
    store: Store,
    verifier: Verifier,
    kdf_permits: Semaphore,
    slots: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<warm::Slot>>>>,
    app_tags: std::sync::Mutex<HashMap<String, warm::Tag>>,
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
            kdf_permits: Semaphore::new(MAX_CONCURRENT_KDF),
            slots: Default::default(),
            app_tags: Default::default(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn resolve(
        &self,
        username: &str,
        authzid: Option<&str>,
        protocol: Protocol,
    ) -> Result<Target, TokenError> {
        let rules = self.rules.read().unwrap_or_else(|p| p.into_inner()).clone();
        resolve(&rules, username, authzid, protocol)
    }

    /// Takes the account rules of a reloaded configuration. Logins already
    /// resolved keep what they resolved to.
    pub fn set_rules(&self, rules: Vec<AccountRule>) {
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rules);
    }

    /// Checks the local password of a store account and returns it unlocked.
    pub async fn unlock(
        &self,
        account: &str,
        password: &Secret<String>,
    ) -> Result<Unlocked, TokenError> {
        if self
            .store
            .stamp(account)
            .map_err(|e| store_error(account, e))?
            .is_none()
        {
            let (store, pw) = (self.store.clone(), password.clone());
            self.blocking_kdf(move || store.dummy_unlock(&pw)).await?;
            return Err(TokenError::BadCredentials);
        }
        let slot = self.slot(account)?;
        let mut slot = slot.lock().await;
        if let Some(held) = self.warm_hit(&mut slot, account, password)? {
            return Ok(held);
        }
        let store = self.store.clone();
        let (name, pw) = (account.to_owned(), password.clone());
        let result = self
            .blocking_kdf(move || match store.unlock(&name, &pw) {
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
        let held = result.map_err(|e| store_error(account, e))?;
        slot.stamp = self.store.stamp(account).ok().flatten();
        slot.tag = Some(self.verifier.tag(account, password));
        slot.held = Some(held.clone());
        Ok(held)
    }

    /// Installs an account opened with the machine key; a password login
    /// still needs one full check before it is trusted.
    pub async fn adopt(&self, held: Unlocked) {
        let account = held.record.account.clone();
        let Ok(slot) = self.slot(&account) else {
            return;
        };
        let mut slot = slot.lock().await;
        if slot.held.is_none() {
            slot.stamp = self.store.stamp(&account).ok().flatten();
            slot.held = Some(held);
        }
    }

    /// Accounts whose data key is in memory, for background refresh.
    pub async fn held(&self) -> Vec<Unlocked> {
        let slots: Vec<_> = match self.slots.lock() {
            Ok(map) => map.values().cloned().collect(),
            Err(_) => return Vec::new(),
        };
        let mut out = Vec::new();
        for s in slots {
            if let Some(h) = &s.lock().await.held {
                out.push(h.clone());
            }
        }
        out
    }

    /// Forgets a held key that no longer opens the file (re-enrolled).
    pub async fn forget(&self, account: &str) {
        if let Ok(slot) = self.slot(account) {
            *slot.lock().await = warm::Slot::default();
        }
    }

    /// Checks an app-only rule's password against its Argon2id PHC string.
    pub async fn check_app_password(
        &self,
        rule: &str,
        password_hash: &str,
        password: &Secret<String>,
    ) -> Result<(), TokenError> {
        let tag = self
            .verifier
            .tag(&format!("{rule}\0{password_hash}"), password);
        let known = self.app_tags.lock().ok().and_then(|m| m.get(rule).cloned());
        if known.is_some_and(|k| warm::same(&k, &tag)) {
            return Ok(());
        }
        let (hash, pw) = (password_hash.to_owned(), password.clone());
        if !self
            .blocking_kdf(move || warm::verify_phc(&hash, &pw))
            .await?
        {
            return Err(TokenError::BadCredentials);
        }
        if let Ok(mut m) = self.app_tags.lock() {
            m.insert(rule.to_owned(), tag);
        }
        Ok(())
    }

    fn warm_hit(
        &self,
        slot: &mut warm::Slot,
        account: &str,
        password: &Secret<String>,
    ) -> Result<Option<Unlocked>, TokenError> {
        let (Some(held), Some(tag)) = (&slot.held, &slot.tag) else {
            return Ok(None);
        };
        if !self.verifier.matches(account, password, tag) {
            return Ok(None);
        }
        let stamp = self
            .store
            .stamp(account)
            .map_err(|e| store_error(account, e))?;
        if stamp.is_some() && stamp == slot.stamp {
            return Ok(Some(held.clone()));
        }
        let current = self
            .store
            .load(account)
            .map_err(|e| store_error(account, e))?;
        match current {
            Some(rec) if rec.key_id == held.record.key_id => {
                slot.stamp = stamp;
                Ok(Some(held.clone()))
            }
            _ => {
                *slot = warm::Slot::default();
                Ok(None)
            }
        }
    }

    async fn blocking_kdf<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, TokenError> {
        let _permit = self
            .kdf_permits
            .acquire()
            .await
            .map_err(|_| temporary("shutting down"))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|_| temporary("password check failed to run"))
    }

    fn slot(&self, account: &str) -> Result<Arc<tokio::sync::Mutex<warm::Slot>>, TokenError> {
        let key =
            crate::token::store::normalise(account).map_err(|_| TokenError::BadCredentials)?;
        let mut map = self
            .slots
            .lock()
            .map_err(|_| temporary("account table poisoned"))?;
        Ok(map.entry(key).or_default().clone())
    }
}

/// Maps a store failure to what the client should be told: only a wrong
/// password or an unknown account is "bad credentials".
pub fn store_error(account: &str, e: StoreError) -> TokenError {
    match e {
        StoreError::BadPassword | StoreError::UnknownAccount(_) | StoreError::InvalidAccount(_) => {
            TokenError::BadCredentials
        }
        StoreError::Io { .. } | StoreError::Crypto(_) => {
            tracing::error!(account, error = %e, "token store unavailable");
            temporary("token store unavailable")
        }
        other => {
            tracing::error!(account, error = %other, "token store record unusable");
            TokenError::NeedsAuthorisation {
                account: account.to_owned(),
                hint: other.to_string(),
            }
        }
    }
}

fn temporary(reason: &str) -> TokenError {
    TokenError::Temporary {
        reason: reason.to_owned(),
        retry_after: None,
    }
}

#[cfg(test)]
mod tests;
