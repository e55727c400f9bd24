//! [`Store`]: the cryptography of the token store over a [`TokenStore`]
//! backend.
//!
//! Security model (`docs/design.md`, "Local password and token store"): a
//! refresh token is as good as the mailbox password, so it is only ever
//! written sealed under a random data key, and the data key is only ever
//! written wrapped under Argon2id(local password). A stolen record is useless
//! without the password; a wrong password fails on the local unwrap, never
//! reaches the provider and never changes the record.
//!
//! Machine-key wrap (provider `machine_key_wrap`, off by default): the data key
//! is also wrapped under a random machine key (for the file store,
//! `<state_dir>/machine.key`, 0600). An unattended gateway can then refresh
//! idle accounts after a restart, before anyone logs in, which keeps refresh
//! tokens inside Microsoft's 90-day idle limit. The price: whoever can read
//! both the records and the machine key (root, a backup of the whole
//! directory) gets the refresh tokens without any password. Without it, an
//! account is only refreshed in the background once a client has logged in
//! since the start.
//!
//! Every read-modify-write holds the account's lease; a write carrying tokens
//! checks the record's `key_id` first and refuses to overwrite a newer
//! enrolment.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use super::crypto::{self, KdfParams, Key};
use super::record::{self, AccountState, FORMAT_VERSION, KdfRecord, Part, Record, Tokens};
use super::{
    AccountSummary, Database, Enrolment, FileStore, Lease, PgStore, Stamp, StoreError, TokenStore,
    Unlocked, layout,
};
use crate::base::{self, AccountName};
use crate::config::{Config, StoreSettings};
use crate::oauth::TokenResponse;
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct Store {
    backend: Arc<dyn TokenStore>,
    kdf: KdfParams,
    machine_wrap: Arc<[String]>,
}

/// The backend `config` names: the file store in `state_dir`, or the shared
/// database (which needs a tokio runtime).
pub fn backend_for(config: &Config) -> Result<Arc<dyn TokenStore>, StoreError> {
    Ok(match &config.store {
        StoreSettings::File => Arc::new(FileStore::open(&config.state_dir)?),
        StoreSettings::Postgres(pg) => {
            Arc::new(PgStore::new(Database::new(pg)?, &config.state_dir)?)
        }
    })
}

/// The providers whose accounts get a machine-key wrap.
pub fn machine_wrapped_providers(config: &Config) -> Vec<String> {
    config
        .providers
        .iter()
        .filter(|p| p.machine_key_wrap)
        .map(|p| p.name.clone())
        .collect()
}

impl Store {
    /// The file store in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        Ok(Store::new(Arc::new(FileStore::open(state_dir)?)))
    }

    pub fn new(backend: Arc<dyn TokenStore>) -> Store {
        Store {
            backend,
            kdf: KdfParams::DEFAULT,
            machine_wrap: Arc::new([]),
        }
    }

    /// Opens `config.state_dir`, wrapping data keys with the machine key for
    /// providers that ask for it.
    pub fn for_config(config: &Config) -> Result<Store, StoreError> {
        Ok(Store::new(backend_for(config)?).with_machine_wrap(machine_wrapped_providers(config)))
    }

    pub fn with_machine_wrap(mut self, providers: Vec<String>) -> Store {
        self.machine_wrap = providers.into();
        self
    }

    /// The Argon2id cost for records written from now on (existing ones keep theirs).
    pub fn with_kdf(mut self, kdf: KdfParams) -> Store {
        self.kdf = kdf;
        self
    }

    pub fn kdf(&self) -> KdfParams {
        self.kdf
    }

    pub fn backend(&self) -> &Arc<dyn TokenStore> {
        &self.backend
    }

    /// Create or replace an account (re-running `mailgate login` re-authorises).
    pub fn enrol(&self, e: Enrolment<'_>) -> Result<(), StoreError> {
        let account = e.account.clone();
        if e.tokens.refresh_token.is_none() {
            return Err(StoreError::NoRefreshToken { account });
        }
        let data_key = crypto::random_key()?;
        let salt = crypto::random_bytes::<16>()?;
        let kek = crypto::derive_kek(e.password.expose().as_bytes(), &salt, self.kdf)?;
        let tokens = tokens_from(e.tokens, None);
        let mut rec = Record {
            version: FORMAT_VERSION,
            account,
            provider: e.provider.to_owned(),
            sasl_user: e.sasl_user.to_owned(),
            state: AccountState::Active,
            key_id: base::hex(&crypto::random_bytes::<16>()?),
            access_expires_at: None,
            last_refresh: Some(record::to_unix(SystemTime::now())),
            last_used: None,
            last_error: None,
            kdf: KdfRecord {
                alg: "argon2id".to_owned(),
                params: self.kdf,
                salt: crypto::encode(&salt),
            },
            password_wrap: crypto::Sealed::default(),
            machine_wrap: None,
            tokens: crypto::Sealed::default(),
        };
        rec.password_wrap = crypto::wrap(&kek, &rec.aad(Part::PasswordWrap), &data_key)?;
        rec.seal_tokens(&data_key, &tokens)?;
        if self.wants_machine_wrap(&rec.provider) {
            let mk = self.backend.machine_key()?;
            rec.machine_wrap = Some(crypto::wrap(&mk, &rec.aad(Part::MachineWrap), &data_key)?);
        }
        let lease = self.backend.lease(&rec.account)?;
        self.backend.save(&lease, &rec)
    }

    /// Every account, sorted by name.
    pub fn list(&self) -> Result<Vec<AccountSummary>, StoreError> {
        let mut out: Vec<AccountSummary> = self
            .backend
            .list()?
            .iter()
            .map(AccountSummary::from)
            .collect();
        out.sort_by(|a, b| a.account.cmp(&b.account));
        Ok(out)
    }

    /// Like [`Store::list`], but one unreadable record does not hide the
    /// others: each comes back with its own result.
    pub fn list_each(&self) -> Result<Vec<Result<AccountSummary, StoreError>>, StoreError> {
        let each = self.backend.list_each()?;
        Ok(each
            .into_iter()
            .map(|r| r.map(|rec| AccountSummary::from(&rec)))
            .collect())
    }

    pub fn remove(&self, account: &AccountName) -> Result<bool, StoreError> {
        let lease = self.backend.lease(account)?;
        self.backend.remove(&lease, account)
    }

    /// The account's record, secrets still sealed. A record naming another
    /// account (a file copied over this one's) is refused: its sealed parts
    /// would open, but they are the other account's.
    pub fn load(&self, account: &AccountName) -> Result<Option<Record>, StoreError> {
        match self.backend.load(account)? {
            Some(rec) if rec.account != *account => Err(StoreError::Tampered {
                account: account.clone(),
            }),
            found => Ok(found),
        }
    }

    /// Identifies the record's current version cheaply.
    pub fn stamp(&self, account: &AccountName) -> Result<Option<Stamp>, StoreError> {
        self.backend.stamp(account)
    }

    /// Unlocks with the local password: Argon2id, then the data key, then the
    /// tokens. Slow by design; call from a blocking thread. Never writes.
    pub fn unlock(
        &self,
        account: &AccountName,
        password: &Secret<String>,
    ) -> Result<Unlocked, StoreError> {
        let rec = self.existing(account)?;
        let salt = rec
            .salt()
            .map_err(|_| layout::corrupt(&self.backend.location(&rec.account), "salt"))?;
        let kek = crypto::derive_kek(password.expose().as_bytes(), &salt, rec.kdf_params())?;
        let key = crypto::unwrap(&kek, &rec.aad(Part::PasswordWrap), &rec.password_wrap)
            .map_err(|_| StoreError::BadPassword)?;
        unlocked(rec, key)
    }

    /// Unlocks with the machine key, if the record has a machine wrap.
    pub fn unlock_machine(&self, account: &AccountName) -> Result<Option<Unlocked>, StoreError> {
        let Some(rec) = self.load(account)? else {
            return Ok(None);
        };
        let Some(wrap) = &rec.machine_wrap else {
            return Ok(None);
        };
        let mk = self.backend.machine_key()?;
        let key = crypto::unwrap(&mk, &rec.aad(Part::MachineWrap), wrap).map_err(|_| {
            StoreError::Tampered {
                account: rec.account.clone(),
            }
        })?;
        unlocked(rec, key).map(Some)
    }

    /// Re-reads the record with a data key already held in memory.
    pub fn reopen(
        &self,
        account: &AccountName,
        key: &Key,
        key_id: &str,
    ) -> Result<Unlocked, StoreError> {
        let rec = self.existing(account)?;
        if rec.key_id != key_id {
            return Err(StoreError::Replaced {
                account: rec.account,
            });
        }
        unlocked(rec, key.clone())
    }

    fn existing(&self, account: &AccountName) -> Result<Record, StoreError> {
        self.load(account)?
            .ok_or_else(|| StoreError::UnknownAccount(account.clone()))
    }

    /// Persists a refresh answer (the rotated refresh token first of all),
    /// marks the account active and returns the new tokens.
    pub fn save_refresh(
        &self,
        held: &Unlocked,
        answer: &TokenResponse,
        now: SystemTime,
    ) -> Result<Tokens, StoreError> {
        let lease = self.backend.lease(&held.record.account)?;
        self.save_refresh_under(&lease, held, answer, now)
    }

    /// [`Store::save_refresh`] under a lease the caller already holds (a
    /// refresh on a shared backend holds it across the provider call).
    pub fn save_refresh_under(
        &self,
        lease: &Lease,
        held: &Unlocked,
        answer: &TokenResponse,
        now: SystemTime,
    ) -> Result<Tokens, StoreError> {
        let tokens = tokens_from(answer, Some(&held.tokens.refresh_token));
        self.modify_under(
            lease,
            &held.record.account,
            Some(&held.record.key_id),
            |rec| {
                // Sealing authenticates the routing fields as they are on disk
                // now: first check that they still are what the key sealed.
                rec.open_tokens(&held.key)
                    .map_err(|_| StoreError::Tampered {
                        account: rec.account.clone(),
                    })?;
                rec.seal_tokens(&held.key, &tokens)?;
                rec.state = AccountState::Active;
                rec.last_refresh = Some(record::to_unix(now));
                rec.last_error = None;
                Ok(())
            },
        )?;
        Ok(tokens)
    }

    /// Records a state change and its reason; `key_id` guards against
    /// marking a newer enrolment with an old failure.
    pub fn set_state(
        &self,
        account: &AccountName,
        key_id: Option<&str>,
        state: AccountState,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.modify(account, key_id, |rec| {
            rec.state = state;
            rec.last_error = error.map(record::error_text);
            Ok(())
        })
    }

    pub fn touch(&self, account: &AccountName, when: SystemTime) -> Result<(), StoreError> {
        self.modify(account, None, |rec| {
            rec.last_used = Some(record::to_unix(when));
            Ok(())
        })
    }

    /// Adds or removes the machine wrap to match the provider's setting.
    pub fn sync_machine_wrap(&self, held: &Unlocked) -> Result<(), StoreError> {
        let want = self.wants_machine_wrap(&held.record.provider);
        if want == held.record.machine_wrap.is_some() {
            return Ok(());
        }
        let wrap = if want {
            let mk = self.backend.machine_key()?;
            let aad = held.record.aad(Part::MachineWrap);
            Some(crypto::wrap(&mk, &aad, &held.key)?)
        } else {
            None
        };
        self.modify(&held.record.account, Some(&held.record.key_id), |rec| {
            rec.machine_wrap = wrap;
            Ok(())
        })
    }

    pub fn wants_machine_wrap(&self, provider: &str) -> bool {
        self.machine_wrap.iter().any(|p| p == provider)
    }

    /// One Argon2id run with this store's cost, for unknown accounts, so that
    /// "no such account" costs what "wrong password" costs.
    pub fn dummy_unlock(&self, password: &Secret<String>) {
        let _ = crypto::derive_kek(password.expose().as_bytes(), &[0u8; 16], self.kdf);
    }

    fn modify(
        &self,
        account: &AccountName,
        key_id: Option<&str>,
        change: impl FnOnce(&mut Record) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let lease = self.backend.lease(account)?;
        self.modify_under(&lease, account, key_id, change)
    }

    fn modify_under(
        &self,
        lease: &Lease,
        account: &AccountName,
        key_id: Option<&str>,
        change: impl FnOnce(&mut Record) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut rec = self.existing(account)?;
        if key_id.is_some_and(|id| id != rec.key_id) {
            return Err(StoreError::Replaced {
                account: rec.account,
            });
        }
        change(&mut rec)?;
        self.backend.save(lease, &rec)
    }

    /// The account's lease (see [`TokenStore::lease`]).
    pub fn lease(&self, account: &AccountName) -> Result<Lease, StoreError> {
        self.backend.lease(account)
    }
}

fn unlocked(record: Record, key: Key) -> Result<Unlocked, StoreError> {
    let tokens = record.open_tokens(&key).map_err(|_| StoreError::Tampered {
        account: record.account.clone(),
    })?;
    Ok(Unlocked {
        key,
        record,
        tokens,
    })
}

fn tokens_from(answer: &TokenResponse, old_refresh: Option<&Secret<String>>) -> Tokens {
    let refresh_token = match (&answer.refresh_token, old_refresh) {
        (Some(new), _) => new.clone(),
        (None, Some(old)) => old.clone(),
        (None, None) => Secret::new(String::new()),
    };
    Tokens {
        refresh_token,
        access_token: Some(answer.access_token.clone()),
        access_expires_at: Some(SystemTime::now() + answer.expires_in),
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

#[cfg(test)]
#[path = "binding_tests.rs"]
mod binding_tests;
