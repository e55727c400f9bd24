//! One account's token file, format version 2. Metadata an admin needs
//! (`mailgate accounts`) is in clear; the tokens are sealed.
//!
//! ```text
//! { "version": 2, "account", "provider", "sasl_user", "state", "key_id",
//!   "access_expires_at", "last_refresh", "last_used", "last_error",   (unix seconds)
//!   "kdf": { "alg": "argon2id", "m_kib", "t", "p", "salt" },
//!   "password_wrap": { "nonce", "ct" },   data key under Argon2id(password)
//!   "machine_wrap":  { "nonce", "ct" } | null,   data key under machine.key
//!   "tokens":        { "nonce", "ct" } }   {refresh, access, expiry} under data key
//! ```
//! Every AEAD call binds the purpose, the account and the provider as
//! associated data, so a sealed part cannot be moved to another account's
//! file or reinterpreted as another part. The tokens are also bound to the
//! fields that route them: `sasl_user` (whose mailbox the token opens) and
//! `key_id`, so editing either in the file makes the tokens fail to open.
//! `key_id` changes at every enrolment: a process holding an old data key
//! can tell that the file was replaced and must not write over it.
//!
//! Version 1 bound only purpose, account and provider. Its records still
//! open; the next write that seals tokens (a refresh) upgrades them to 2.
//! The wraps keep their version 1 associated data in both versions, because
//! rewrapping the data key would need the local password.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::crypto::{self, CryptoError, KdfParams, Key, Sealed};
use crate::base::AccountName;
use crate::secret::Secret;

/// The version this release writes.
pub const FORMAT_VERSION: u32 = 2;

/// The oldest version this release still reads (and upgrades).
pub const OLDEST_VERSION: u32 = 1;

/// Bound on a token file read from disk (tokens are a few KiB).
pub const MAX_FILE_BYTES: u64 = 256 * 1024;

/// Bound on the stored `last_error` text.
pub const MAX_ERROR_CHARS: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccountState {
    Active,
    /// The refresh token is dead: someone must run `mailgate login` again.
    NeedsLogin,
    /// The last refresh failed temporarily; the next one may succeed.
    RefreshFailing,
}

impl AccountState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::NeedsLogin => "needs-login",
            Self::RefreshFailing => "refresh-failing",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfRecord {
    pub alg: String,
    #[serde(flatten)]
    pub params: KdfParams,
    pub salt: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    pub account: AccountName,
    pub provider: String,
    pub sasl_user: String,
    pub state: AccountState,
    pub key_id: String,
    pub access_expires_at: Option<u64>,
    pub last_refresh: Option<u64>,
    pub last_used: Option<u64>,
    pub last_error: Option<String>,
    pub kdf: KdfRecord,
    pub password_wrap: Sealed,
    pub machine_wrap: Option<Sealed>,
    pub tokens: Sealed,
}

/// The decrypted token blob.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub refresh_token: Secret<String>,
    pub access_token: Option<Secret<String>>,
    pub access_expires_at: Option<SystemTime>,
}

#[derive(Serialize, Deserialize)]
struct Blob {
    refresh_token: String,
    access_token: Option<String>,
    access_expires_at: Option<u64>,
}

impl Drop for Blob {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.refresh_token);
        zeroize::Zeroize::zeroize(&mut self.access_token);
    }
}

/// What an AEAD seal in this file is for.
#[derive(Debug, Clone, Copy)]
pub enum Part {
    PasswordWrap,
    MachineWrap,
    Tokens,
}

impl Record {
    /// The associated data of `part` in a record of this record's version.
    pub fn aad(&self, part: Part) -> Vec<u8> {
        let mut aad = aad(part, &self.account, &self.provider);
        if matches!(part, Part::Tokens) && self.version >= 2 {
            aad = b"mailgate-store/v2/tokens".to_vec();
            for field in [
                self.account.as_str(),
                &self.provider,
                &self.sasl_user,
                &self.key_id,
            ] {
                aad.extend_from_slice(format!("\0{}:", field.len()).as_bytes());
                aad.extend_from_slice(field.as_bytes());
            }
        }
        aad
    }

    pub fn kdf_params(&self) -> KdfParams {
        self.kdf.params
    }

    pub fn salt(&self) -> Result<Vec<u8>, CryptoError> {
        crypto::decode(&self.kdf.salt)
    }

    pub fn open_tokens(&self, data_key: &Key) -> Result<Tokens, CryptoError> {
        let plain = crypto::open(data_key, &self.aad(Part::Tokens), &self.tokens)?;
        let blob: Blob = serde_json::from_slice(&plain).map_err(|_| CryptoError::Open)?;
        Ok(Tokens {
            refresh_token: Secret::new(blob.refresh_token.clone()),
            access_token: blob.access_token.clone().map(Secret::new),
            access_expires_at: blob.access_expires_at.map(from_unix),
        })
    }

    /// Seals `tokens` in the current format, upgrading an older record.
    pub fn seal_tokens(&mut self, data_key: &Key, tokens: &Tokens) -> Result<(), CryptoError> {
        let blob = Blob {
            refresh_token: tokens.refresh_token.expose().clone(),
            access_token: tokens.access_token.as_ref().map(|t| t.expose().clone()),
            access_expires_at: tokens.access_expires_at.map(to_unix),
        };
        let mut plain = Zeroizing::new(Vec::with_capacity(16 * 1024));
        serde_json::to_writer(&mut *plain, &blob).map_err(|_| CryptoError::Encoding)?;
        self.version = FORMAT_VERSION;
        self.tokens = crypto::seal(data_key, &self.aad(Part::Tokens), &plain)?;
        self.access_expires_at = blob.access_expires_at;
        Ok(())
    }
}

/// Version 1 associated data: still that of both wraps, and of the tokens
/// in version 1 records.
pub fn aad(part: Part, account: &AccountName, provider: &str) -> Vec<u8> {
    let purpose = match part {
        Part::PasswordWrap => "password-wrap",
        Part::MachineWrap => "machine-wrap",
        Part::Tokens => "tokens",
    };
    format!("mailgate-store/v1/{purpose}\0{account}\0{provider}").into_bytes()
}

pub fn to_unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A stored time; one too large to represent (a corrupt record) reads as
/// the epoch, "long ago", which makes callers refresh rather than panic.
pub fn from_unix(secs: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .unwrap_or(UNIX_EPOCH)
}

/// An error text fit to store: bounded, single line.
pub fn error_text(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_ERROR_CHARS)
        .collect()
}
