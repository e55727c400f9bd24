//! Argon2id hashing for app-only accounts' `password_hash` (the same
//! algorithm and parameters the token store derives keys with).

use argon2::password_hash::{PasswordHasher, SaltString};

use super::AdminError;
use crate::secret::Secret;
use crate::store::crypto::{self, KdfParams};

/// Longest password `hash-password` accepts.
pub const MAX_PASSWORD_LEN: usize = 1024;

pub(super) fn hash(password: &str, kdf: KdfParams) -> Result<Secret<String>, AdminError> {
    if password.len() > MAX_PASSWORD_LEN {
        return Err(AdminError::PasswordTooLong);
    }
    if password.is_empty() {
        return Err(AdminError::EmptyPassword);
    }
    let hash_err = |e: &dyn std::fmt::Display| AdminError::Hash(e.to_string());
    let salt = crypto::random_bytes::<16>().map_err(|e| hash_err(&e))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| hash_err(&e))?;
    let params = argon2::Params::new(kdf.m_kib, kdf.t, kdf.p, None).map_err(|e| hash_err(&e))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let phc = argon
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| hash_err(&e))?;
    Ok(Secret::new(phc.to_string()))
}
