//! The encrypted, durable token store: the bottom of the account layers.
//! `accounts` sits on it and `token` on accounts; nothing here knows about
//! either.
//!
//! Two halves with a seam between them (`docs/design.md`, "Local password
//! and token store"):
//! - [`Store`] owns the cryptography: Argon2id derivation, wrapping the data
//!   key, sealing and opening the tokens. It never touches a disk itself.
//! - a [`TokenStore`] backend keeps sealed [`Record`]s and nothing else: load,
//!   list, save and remove under a per-account [`Lease`]. [`FileStore`] (one
//!   JSON file per account under `<state_dir>/accounts/`) is the first; a
//!   database shared by several gateways can be the next without the
//!   cryptography changing, because a backend only ever sees sealed bytes.
//!
//! The backend is synchronous: every caller already runs store work on a
//! blocking thread, because Argon2id is slow by design.

pub mod crypto;
mod file;
mod layout;
pub mod migrate;
pub mod postgres;
pub mod record;
mod sealed;
#[cfg(test)]
pub(crate) mod testutil;
mod types;

use std::any::Any;
use std::fmt;
use std::path::PathBuf;

use crate::base::AccountName;

pub use crypto::{CryptoError, KdfParams, Key};
pub use file::FileStore;
pub use layout::Stamp;
pub use postgres::{Database, PgStore};
pub use record::{AccountState, Record, Tokens};
pub use sealed::{Store, backend_for, machine_wrapped_providers};
pub use types::{AccountSummary, Enrolment, StoreError, Unlocked};

/// Where sealed records live: the seam a second backend plugs into.
///
/// A read-modify-write holds the account's [`Lease`] from the read to the
/// save, so two processes sharing the backend never lose each other's
/// writes (a rotated refresh token above all). Implementations must make a
/// save atomic: a reader sees the old record or the new one, never a mix.
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// The account's sealed record, if it is enrolled.
    fn load(&self, account: &AccountName) -> Result<Option<Record>, StoreError>;

    /// A cheap marker of the record's current version; it changes whenever
    /// the record is saved again, so a running `serve` notices that
    /// `mailgate login` replaced it.
    fn stamp(&self, account: &AccountName) -> Result<Option<Stamp>, StoreError>;

    /// Every enrolled record, in no particular order.
    fn list(&self) -> Result<Vec<Record>, StoreError>;

    /// Every enrolled record, each read on its own, so that background work
    /// can skip an unreadable one and go on with the rest.
    fn list_each(&self) -> Result<Vec<Result<Record, StoreError>>, StoreError> {
        Ok(self.list()?.into_iter().map(Ok).collect())
    }

    /// Exclusive right to change `account`'s record until the lease drops.
    fn lease(&self, account: &AccountName) -> Result<Lease, StoreError>;

    /// Creates or replaces the record of `record.account`.
    fn save(&self, lease: &Lease, record: &Record) -> Result<(), StoreError>;

    /// Deletes the record; `Ok(false)` if there was none.
    fn remove(&self, lease: &Lease, account: &AccountName) -> Result<bool, StoreError>;

    /// The machine key (`machine_key_wrap`), created on first use, once even
    /// when several processes race for it. It stays on this host: whoever
    /// holds it and the records holds the tokens. Never called while holding
    /// a [`Lease`]: creating the key may take the same lock.
    fn machine_key(&self) -> Result<Key, StoreError>;

    /// Where `account`'s record lives, for error messages.
    fn location(&self, account: &AccountName) -> PathBuf;

    /// Other processes on other hosts share this backend: a refresh then
    /// holds the account's lease from its re-read to its save, so that one
    /// instance refreshes and the others pick up its tokens.
    fn shared(&self) -> bool {
        false
    }

    /// Whether the backend can serve requests now, for `/readyz`; the error
    /// says why not.
    fn check(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Proof of a held [`TokenStore::lease`]; the lease ends when this drops.
pub struct Lease {
    held: Box<dyn Any + Send>,
}

impl Lease {
    pub fn new(held: impl Send + 'static) -> Lease {
        Lease {
            held: Box::new(held),
        }
    }

    /// What the backend put in, for a backend that keeps state in its
    /// leases (the record version a compare-and-swap expects).
    pub fn held<T: 'static>(&self) -> Option<&T> {
        self.held.downcast_ref()
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lease")
    }
}
