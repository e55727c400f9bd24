//! The token store's public values and errors.

use std::path::PathBuf;
use std::time::SystemTime;

use super::crypto::{CryptoError, Key};
use super::record::{self, AccountState, Record, Tokens};
use crate::base::{AccountName, InvalidName};
use crate::oauth::TokenResponse;
use crate::secret::Secret;

/// What `mailgate login` hands to [`Store::enrol`](super::Store::enrol).
#[derive(Debug)]
pub struct Enrolment<'a> {
    pub account: &'a AccountName,
    pub provider: &'a str,
    /// The XOAUTH2 `user=` value (usually the account name).
    pub sasl_user: &'a str,
    pub password: &'a Secret<String>,
    pub tokens: &'a TokenResponse,
}

/// One account as `mailgate accounts` shows it. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    pub account: AccountName,
    pub provider: String,
    pub sasl_user: String,
    pub state: AccountState,
    pub access_expires_at: Option<SystemTime>,
    pub last_refresh: Option<SystemTime>,
    pub last_used: Option<SystemTime>,
    pub last_error: Option<String>,
    pub machine_wrapped: bool,
}

impl From<&Record> for AccountSummary {
    fn from(r: &Record) -> Self {
        Self {
            account: r.account.clone(),
            provider: r.provider.clone(),
            sasl_user: r.sasl_user.clone(),
            state: r.state,
            access_expires_at: r.access_expires_at.map(record::from_unix),
            last_refresh: r.last_refresh.map(record::from_unix),
            last_used: r.last_used.map(record::from_unix),
            last_error: r.last_error.clone(),
            machine_wrapped: r.machine_wrap.is_some(),
        }
    }
}

/// An account opened in memory: its data key, record and tokens.
#[derive(Debug, Clone)]
pub struct Unlocked {
    pub key: Key,
    pub record: Record,
    pub tokens: Tokens,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valid mailgate token file ({reason})")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{path}: token file format version {found} is not supported (this mailgate reads versions {} to {}); use the mailgate release that wrote it, or run `mailgate login` again",
        record::OLDEST_VERSION,
        record::FORMAT_VERSION
    )]
    Version { path: PathBuf, found: u32 },
    #[error("wrong local password")]
    BadPassword,
    #[error("account {0:?} is not enrolled; run `mailgate login {0}`")]
    UnknownAccount(AccountName),
    #[error(transparent)]
    InvalidAccount(#[from] InvalidName),
    #[error(
        "the token data of {account} failed authentication: the file was altered or damaged; run `mailgate login {account}` again"
    )]
    Tampered { account: AccountName },
    #[error("{account} was enrolled again meanwhile; the newer enrolment wins")]
    Replaced { account: AccountName },
    #[error(
        "the provider gave no refresh token for {account}; add the offline_access scope and run `mailgate login {account}` again"
    )]
    NoRefreshToken { account: AccountName },
    /// The shared database cannot be reached, or a wait on it timed out.
    #[error("the token database is unavailable: {reason}")]
    Unavailable { reason: String },
    /// A save expected a record version that another writer replaced.
    #[error("{account} was saved by another instance meanwhile")]
    Conflict { account: AccountName },
    #[error(
        "this host's machine key is not the one the shared store's records were wrapped with; copy machine.key from the first instance (docs/design.md, \"Shared token store\")"
    )]
    MachineKeyMismatch,
    #[error("token store cryptography: {0}")]
    Crypto(#[from] CryptoError),
}
