//! The encrypted, durable token store in `<state_dir>/accounts/`: one JSON
//! file per account (format in [`super::record`]).
//!
//! Security model (DESIGN.md, "Local password and token store"): a refresh
//! token is as good as the mailbox password, so it is only ever written
//! sealed under a random data key, and the data key is only ever written
//! wrapped under Argon2id(local password). A stolen file is useless without
//! the password; a wrong password fails on the local unwrap, never reaches
//! the provider and never changes the file.
//!
//! Machine-key wrap (provider `machine_key_wrap`, off by default): the data key
//! is also wrapped under a random key kept in `<state_dir>/machine.key`
//! (0600). An unattended gateway can then refresh idle accounts after a
//! restart, before anyone logs in, which keeps refresh tokens inside
//! Microsoft's 90-day idle limit. The price: whoever can read both the state
//! directory and `machine.key` (root, a backup of the whole directory) gets
//! the refresh tokens without any password. Without it, an account is only
//! refreshed in the background once a client has logged in since the start.
//!
//! Concurrency: every read-modify-write holds `<state_dir>/store.lock`, so
//! `mailgate login` and `mailgate serve` never clobber each other; writes
//! are atomic (write temp, fsync, rename, fsync dir). A write carrying
//! tokens checks the file's `key_id` first and refuses to overwrite a newer
//! enrolment.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::crypto::{self, CryptoError, KdfParams, Key};
use super::record::{self, AccountState, FORMAT_VERSION, KdfRecord, Part, Record, Tokens};
use crate::config::Config;
use crate::fsutil::{self, LockGuard};
use crate::oauth::TokenResponse;
use crate::secret::Secret;

pub use super::layout::{FileStamp, MAX_ACCOUNT_LEN, normalise};
use super::layout::{corrupt, file_name, io, read_record};
pub use super::store_types::{AccountSummary, Enrolment, StoreError, Unlocked};

#[derive(Debug, Clone)]
pub struct Store {
    state_dir: PathBuf,
    accounts_dir: PathBuf,
    kdf: KdfParams,
    machine_wrap: Arc<[String]>,
}

impl Store {
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        let accounts_dir = state_dir.join("accounts");
        fsutil::private_dir(&accounts_dir).map_err(io("create", &accounts_dir))?;
        Ok(Store {
            state_dir: state_dir.to_owned(),
            accounts_dir,
            kdf: KdfParams::DEFAULT,
            machine_wrap: Arc::new([]),
        })
    }

    /// Opens `config.state_dir`, wrapping data keys with the machine key for
    /// providers that ask for it.
    pub fn for_config(config: &Config) -> Result<Store, StoreError> {
        let providers: Vec<String> = config
            .providers
            .iter()
            .filter(|p| p.machine_key_wrap)
            .map(|p| p.name.clone())
            .collect();
        Ok(Store::open(&config.state_dir)?.with_machine_wrap(providers))
    }

    pub fn with_machine_wrap(mut self, providers: Vec<String>) -> Store {
        self.machine_wrap = providers.into();
        self
    }

    /// The Argon2id cost for files written from now on (existing files keep theirs).
    pub fn with_kdf(mut self, kdf: KdfParams) -> Store {
        self.kdf = kdf;
        self
    }

    pub fn kdf(&self) -> KdfParams {
        self.kdf
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Create or replace an account (re-running `mailgate login` re-authorises).
    pub fn enrol(&self, e: Enrolment<'_>) -> Result<(), StoreError> {
        let account = normalise(e.account)?;
        if e.tokens.refresh_token.is_none() {
            return Err(StoreError::NoRefreshToken { account });
        }
        let data_key = crypto::random_key()?;
        let salt = crypto::random_bytes::<16>()?;
        let kek = crypto::derive_kek(e.password.expose().as_bytes(), &salt, self.kdf)?;
        let tokens = tokens_from(e.tokens, None);
        let now = record::to_unix(SystemTime::now());
        let mut rec = Record {
            version: FORMAT_VERSION,
            account: account.clone(),
            provider: e.provider.to_owned(),
            sasl_user: e.sasl_user.to_owned(),
            state: AccountState::Active,
            key_id: crate::base::hex(&crypto::random_bytes::<16>()?),
            access_expires_at: None,
            last_refresh: Some(now),
            last_used: None,
            last_error: None,
            kdf: KdfRecord {
                alg: "argon2id".to_owned(),
                params: self.kdf,
                salt: crypto::encode(&salt),
            },
            password_wrap: crypto::Sealed {
                nonce: String::new(),
                ct: String::new(),
            },
            machine_wrap: None,
            tokens: crypto::Sealed {
                nonce: String::new(),
                ct: String::new(),
            },
        };
        rec.password_wrap = crypto::wrap(&kek, &rec.aad(Part::PasswordWrap), &data_key)?;
        rec.seal_tokens(&data_key, &tokens)?;
        let _lock = self.lock()?;
        if self.wants_machine_wrap(&rec.provider) {
            let mk = self.machine_key()?;
            rec.machine_wrap = Some(crypto::wrap(&mk, &rec.aad(Part::MachineWrap), &data_key)?);
        }
        self.write(&rec)
    }

    pub fn list(&self) -> Result<Vec<AccountSummary>, StoreError> {
        let dir = &self.accounts_dir;
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io("read", dir))? {
            let path = entry.map_err(io("read", dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.ends_with(".json") || name.starts_with(fsutil::TEMP_PREFIX) {
                continue;
            }
            if let Some(rec) = read_record(&path)? {
                out.push(AccountSummary::from(&rec));
            }
        }
        out.sort_by(|a, b| a.account.cmp(&b.account));
        Ok(out)
    }

    pub fn remove(&self, account: &str) -> Result<bool, StoreError> {
        let path = self.path(&normalise(account)?);
        let _lock = self.lock()?;
        fsutil::remove(&path).map_err(io("remove", &path))
    }

    /// The account's record, secrets still sealed.
    pub fn load(&self, account: &str) -> Result<Option<Record>, StoreError> {
        read_record(&self.path(&normalise(account)?))
    }

    /// Identifies the file's current version cheaply (one `stat`), so a
    /// running `serve` notices that `mailgate login` replaced it.
    pub fn stamp(&self, account: &str) -> Result<Option<FileStamp>, StoreError> {
        let path = self.path(&normalise(account)?);
        match std::fs::metadata(&path) {
            Ok(m) => Ok(Some(FileStamp::of(&m))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    /// Unlocks with the local password: Argon2id, then the data key, then the
    /// tokens. Slow by design; call from a blocking thread. Never writes.
    pub fn unlock(&self, account: &str, password: &Secret<String>) -> Result<Unlocked, StoreError> {
        let rec = self
            .load(account)?
            .ok_or_else(|| StoreError::UnknownAccount(account.to_owned()))?;
        let salt = rec
            .salt()
            .map_err(|_| corrupt(&self.path(&rec.account), "salt"))?;
        let kek = crypto::derive_kek(password.expose().as_bytes(), &salt, rec.kdf_params())?;
        let key = crypto::unwrap(&kek, &rec.aad(Part::PasswordWrap), &rec.password_wrap)
            .map_err(|_| StoreError::BadPassword)?;
        self.unlocked(rec, key)
    }

    /// Unlocks with the machine key, if the record has a machine wrap.
    pub fn unlock_machine(&self, account: &str) -> Result<Option<Unlocked>, StoreError> {
        let Some(rec) = self.load(account)? else {
            return Ok(None);
        };
        let Some(wrap) = &rec.machine_wrap else {
            return Ok(None);
        };
        let mk = self.machine_key()?;
        let key = crypto::unwrap(&mk, &rec.aad(Part::MachineWrap), wrap).map_err(|_| {
            StoreError::Tampered {
                account: rec.account.clone(),
            }
        })?;
        self.unlocked(rec, key).map(Some)
    }

    /// Re-reads the file with a data key already held in memory.
    pub fn reopen(&self, account: &str, key: &Key, key_id: &str) -> Result<Unlocked, StoreError> {
        let rec = self
            .load(account)?
            .ok_or_else(|| StoreError::UnknownAccount(account.to_owned()))?;
        if rec.key_id != key_id {
            return Err(StoreError::Replaced {
                account: rec.account,
            });
        }
        self.unlocked(rec, key.clone())
    }

    fn unlocked(&self, record: Record, key: Key) -> Result<Unlocked, StoreError> {
        let tokens = record.open_tokens(&key).map_err(|_| StoreError::Tampered {
            account: record.account.clone(),
        })?;
        Ok(Unlocked {
            key,
            record,
            tokens,
        })
    }

    /// Persists a refresh answer (the rotated refresh token first of all),
    /// marks the account active and returns the new tokens.
    pub fn save_refresh(
        &self,
        held: &Unlocked,
        answer: &TokenResponse,
        now: SystemTime,
    ) -> Result<Tokens, StoreError> {
        let tokens = tokens_from(answer, Some(&held.tokens.refresh_token));
        self.modify(&held.record.account, Some(&held.record.key_id), |rec| {
            rec.seal_tokens(&held.key, &tokens)?;
            rec.state = AccountState::Active;
            rec.last_refresh = Some(record::to_unix(now));
            rec.last_error = None;
            Ok(())
        })?;
        Ok(tokens)
    }

    /// Records a state change and its reason; `key_id` guards against
    /// marking a newer enrolment with an old failure.
    pub fn set_state(
        &self,
        account: &str,
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

    pub fn touch(&self, account: &str, when: SystemTime) -> Result<(), StoreError> {
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
            let mk = self.machine_key()?;
            Some(crypto::wrap(
                &mk,
                &held.record.aad(Part::MachineWrap),
                &held.key,
            )?)
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
        account: &str,
        key_id: Option<&str>,
        change: impl FnOnce(&mut Record) -> Result<(), CryptoError>,
    ) -> Result<(), StoreError> {
        let path = self.path(&normalise(account)?);
        let _lock = self.lock()?;
        let mut rec =
            read_record(&path)?.ok_or_else(|| StoreError::UnknownAccount(account.to_owned()))?;
        if key_id.is_some_and(|id| id != rec.key_id) {
            return Err(StoreError::Replaced {
                account: rec.account,
            });
        }
        change(&mut rec)?;
        self.write(&rec)
    }

    fn write(&self, rec: &Record) -> Result<(), StoreError> {
        let path = self.path(&rec.account);
        let bytes = serde_json::to_vec_pretty(rec).map_err(|e| corrupt(&path, &e.to_string()))?;
        fsutil::write_atomic(&path, &bytes).map_err(io("write", &path))
    }

    pub(super) fn lock(&self) -> Result<LockGuard, StoreError> {
        let path = self.state_dir.join("store.lock");
        fsutil::lock(&path).map_err(io("lock", &path))
    }

    /// The machine key, created on first use. Call with the store lock held.
    fn machine_key(&self) -> Result<Key, StoreError> {
        let path = self.state_dir.join("machine.key");
        if let Some(text) = fsutil::read_bounded(&path, 1024).map_err(io("read", &path))? {
            let bytes = crypto::decode(String::from_utf8_lossy(&text).trim())
                .map_err(|_| corrupt(&path, "not base64"))?;
            let k: [u8; 32] = bytes
                .try_into()
                .map_err(|_| corrupt(&path, "not a 256-bit key"))?;
            return Ok(Secret::new(k));
        }
        let key = crypto::random_key()?;
        let text = Secret::new(crypto::encode(key.expose()) + "\n");
        fsutil::create_new(&path, text.expose().as_bytes()).map_err(io("create", &path))?;
        self.machine_key()
    }

    pub(super) fn path(&self, account: &str) -> PathBuf {
        self.accounts_dir.join(file_name(account))
    }
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
#[path = "store_tests.rs"]
mod tests;
