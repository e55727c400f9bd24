//! [`FileStore`]: sealed records as files, one JSON file per account in
//! `<state_dir>/accounts/` (format in [`super::record`]).
//!
//! Concurrency: a lease is `<state_dir>/store.lock`, held across every
//! read-modify-write, so `mailgate login` and `mailgate serve` never clobber
//! each other; writes are atomic (write temp, fsync, rename, fsync dir).

use std::path::{Path, PathBuf};

use super::crypto::{self, Key};
use super::layout::{Stamp, corrupt, file_name, io, read_record};
use super::{Lease, Record, StoreError, TokenStore};
use crate::base::AccountName;
use crate::fsutil::{self, LockGuard};
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct FileStore {
    state_dir: PathBuf,
    accounts_dir: PathBuf,
}

impl FileStore {
    /// Creates `<state_dir>/accounts/` (owner-only) if missing, and removes
    /// the temporary files a crash left there and beside `machine.key`.
    /// Every write to those directories holds the store lock, so under it
    /// no temporary file belongs to a live writer.
    pub fn open(state_dir: &Path) -> Result<FileStore, StoreError> {
        let accounts_dir = state_dir.join("accounts");
        fsutil::private_dir(&accounts_dir).map_err(io("create", &accounts_dir))?;
        let store = FileStore {
            state_dir: state_dir.to_owned(),
            accounts_dir,
        };
        let _lock = store.lock()?;
        for dir in [&store.accounts_dir, &store.state_dir] {
            let removed = fsutil::remove_leftovers(dir).map_err(io("clean up", dir))?;
            if removed > 0 {
                tracing::info!(dir = %dir.display(), removed, "removed temporary files left by a crash");
            }
        }
        Ok(store)
    }

    /// The account's file; the name depends only on the folded account name.
    pub fn path(&self, account: &AccountName) -> PathBuf {
        self.accounts_dir.join(file_name(account))
    }

    pub fn accounts_dir(&self) -> &Path {
        &self.accounts_dir
    }

    /// The store-wide lock every lease takes.
    pub fn lock(&self) -> Result<LockGuard, StoreError> {
        let path = self.state_dir.join("store.lock");
        fsutil::lock(&path).map_err(io("lock", &path))
    }

    fn read_machine_key(&self, path: &Path) -> Result<Option<Key>, StoreError> {
        let Some(text) = fsutil::read_bounded(path, 1024).map_err(io("read", path))? else {
            return Ok(None);
        };
        let bytes = crypto::decode(String::from_utf8_lossy(&text).trim())
            .map_err(|_| corrupt(path, "not base64"))?;
        let k: [u8; 32] = bytes
            .try_into()
            .map_err(|_| corrupt(path, "not a 256-bit key"))?;
        Ok(Some(Secret::new(k)))
    }
}

impl TokenStore for FileStore {
    fn load(&self, account: &AccountName) -> Result<Option<Record>, StoreError> {
        read_record(&self.path(account))
    }

    fn stamp(&self, account: &AccountName) -> Result<Option<Stamp>, StoreError> {
        let path = self.path(account);
        match std::fs::metadata(&path) {
            Ok(m) => Ok(Some(Stamp::of(&m))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    fn list(&self) -> Result<Vec<Record>, StoreError> {
        self.list_each()?.into_iter().collect()
    }

    fn list_each(&self) -> Result<Vec<Result<Record, StoreError>>, StoreError> {
        let dir = &self.accounts_dir;
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io("read", dir))? {
            let path = entry.map_err(io("read", dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.ends_with(".json") || name.starts_with(fsutil::TEMP_PREFIX) {
                continue;
            }
            if let Some(rec) = read_record(&path).transpose() {
                let rec = rec.and_then(|rec| {
                    if file_name(&rec.account) == name {
                        Ok(rec)
                    } else {
                        Err(corrupt(&path, "holds the record of another account"))
                    }
                });
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// One lock for the whole directory: holders keep it for one small write.
    fn lease(&self, _account: &AccountName) -> Result<Lease, StoreError> {
        Ok(Lease::new(self.lock()?))
    }

    fn save(&self, _lease: &Lease, rec: &Record) -> Result<(), StoreError> {
        let path = self.path(&rec.account);
        let bytes = serde_json::to_vec_pretty(rec).map_err(|e| corrupt(&path, &e.to_string()))?;
        fsutil::write_atomic(&path, &bytes).map_err(io("write", &path))
    }

    fn remove(&self, _lease: &Lease, account: &AccountName) -> Result<bool, StoreError> {
        let path = self.path(account);
        fsutil::remove(&path).map_err(io("remove", &path))
    }

    /// `<state_dir>/machine.key` (0600), base64. Created under the store
    /// lock, and published whole ([`fsutil::create_new`]): processes racing
    /// at first start all get the one key. The caller must not hold a lease
    /// (the lock is not re-entrant).
    fn machine_key(&self) -> Result<Key, StoreError> {
        let path = self.state_dir.join("machine.key");
        if let Some(key) = self.read_machine_key(&path)? {
            return Ok(key);
        }
        let _lock = self.lock()?;
        if let Some(key) = self.read_machine_key(&path)? {
            return Ok(key);
        }
        let key = crypto::random_key()?;
        let text = Secret::new(crypto::encode(key.expose()) + "\n");
        fsutil::create_new(&path, text.expose().as_bytes()).map_err(io("create", &path))?;
        self.read_machine_key(&path)?
            .ok_or_else(|| corrupt(&path, "vanished after creation"))
    }

    fn location(&self, account: &AccountName) -> PathBuf {
        self.path(account)
    }
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
