//! The cryptography of the token store, kept small so it can be reviewed on
//! its own: Argon2id turns a local password into a key-encryption key, and
//! AES-256-GCM (aws-lc-rs) wraps the data key and seals the token blob.
//!
//! Every seal uses a fresh random 96-bit nonce. A data key seals only a few
//! thousand blobs over its life (one per refresh), far below the 2^32 random
//! nonce limit for GCM (NIST SP 800-38D §8.3).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::secret::Secret;

/// A 256-bit symmetric key.
pub type Key = Secret<[u8; 32]>;

/// Argon2id cost, recorded in every file so that it can be raised later
/// without breaking files written with the old cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes over the memory.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// 64 MiB, 3 passes, 1 lane: RFC 9106 §4's second recommended option is
    /// 64 MiB with t=3; one lane because a gateway verifies many accounts in
    /// parallel and lanes would only steal cores from other logins. Costs
    /// roughly 0.1-0.2 s on a current CPU, once per account per process.
    pub const DEFAULT: KdfParams = KdfParams {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };

    /// Files are untrusted input: refuse costs that would exhaust the machine.
    pub const MAX_M_KIB: u32 = 1024 * 1024;
    pub const MAX_T: u32 = 16;
    pub const MAX_P: u32 = 8;

    pub fn within_bounds(&self) -> bool {
        (8 * self.p..=Self::MAX_M_KIB).contains(&self.m_kib)
            && (1..=Self::MAX_T).contains(&self.t)
            && (1..=Self::MAX_P).contains(&self.p)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// Wrong key, or the ciphertext, nonce or bound data was altered.
    #[error("authentication failed: wrong key or altered data")]
    Open,
    #[error("Argon2id parameters out of bounds")]
    Params,
    #[error("system random number generator failed")]
    Random,
    #[error("malformed base64 field")]
    Encoding,
}

/// AES-256-GCM output as stored in JSON: base64 nonce and ciphertext+tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub nonce: String,
    pub ct: String,
}

pub fn random_key() -> Result<Key, CryptoError> {
    let mut k = [0u8; 32];
    aws_lc_rs::rand::fill(&mut k).map_err(|_| CryptoError::Random)?;
    Ok(Secret::new(k))
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    crate::base::random_bytes().map_err(|_| CryptoError::Random)
}

/// Argon2id(password, salt) → 256-bit key-encryption key. Slow by design:
/// call it from a blocking thread.
pub fn derive_kek(password: &[u8], salt: &[u8], params: KdfParams) -> Result<Key, CryptoError> {
    if !params.within_bounds() {
        return Err(CryptoError::Params);
    }
    let p = argon2::Params::new(params.m_kib, params.t, params.p, Some(32))
        .map_err(|_| CryptoError::Params)?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut out = [0u8; 32];
    argon
        .hash_password_into(password, salt, &mut out)
        .map_err(|_| CryptoError::Params)?;
    let key = Secret::new(out);
    zeroize::Zeroize::zeroize(&mut out);
    Ok(key)
}

pub fn seal(key: &Key, aad: &[u8], plaintext: &[u8]) -> Result<Sealed, CryptoError> {
    let nonce = random_bytes::<NONCE_LEN>()?;
    let mut buf = plaintext.to_vec();
    less_safe(key)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| CryptoError::Open)?;
    Ok(Sealed {
        nonce: B64.encode(nonce),
        ct: B64.encode(&buf),
    })
}

pub fn open(key: &Key, aad: &[u8], sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let nonce: [u8; NONCE_LEN] = decode(&sealed.nonce)?
        .try_into()
        .map_err(|_| CryptoError::Encoding)?;
    let mut buf = Zeroizing::new(decode(&sealed.ct)?);
    let len = less_safe(key)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| CryptoError::Open)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// Wraps a data key under a key-encryption key.
pub fn wrap(kek: &Key, aad: &[u8], data_key: &Key) -> Result<Sealed, CryptoError> {
    seal(kek, aad, data_key.expose())
}

pub fn unwrap(kek: &Key, aad: &[u8], sealed: &Sealed) -> Result<Key, CryptoError> {
    let plain = open(kek, aad, sealed)?;
    let k: [u8; 32] = plain.as_slice().try_into().map_err(|_| CryptoError::Open)?;
    Ok(Secret::new(k))
}

pub fn encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

pub fn decode(text: &str) -> Result<Vec<u8>, CryptoError> {
    B64.decode(text).map_err(|_| CryptoError::Encoding)
}

fn less_safe(key: &Key) -> Result<LessSafeKey, CryptoError> {
    UnboundKey::new(&AES_256_GCM, key.expose())
        .map(LessSafeKey::new)
        .map_err(|_| CryptoError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_aad_binding() {
        let k = random_key().unwrap();
        let s = seal(&k, b"aad-1", b"secret bytes").unwrap();
        assert_eq!(open(&k, b"aad-1", &s).unwrap().as_slice(), b"secret bytes");
        assert_eq!(open(&k, b"aad-2", &s), Err(CryptoError::Open));
        let other = random_key().unwrap();
        assert_eq!(open(&other, b"aad-1", &s), Err(CryptoError::Open));
    }

    /// Argon2id's working memory holds values derived from the password;
    /// the crate wipes it (and its initial hash) only with its `zeroize`
    /// feature, which nothing else would notice missing.
    #[test]
    fn argon2_is_built_to_zeroise_its_memory() {
        let manifest: toml::Table = toml::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/Cargo.toml"
        )))
        .unwrap();
        let features = manifest["dependencies"]["argon2"]["features"]
            .as_array()
            .unwrap();
        assert!(
            features.iter().any(|f| f.as_str() == Some("zeroize")),
            "argon2 features: {features:?}"
        );
    }

    #[test]
    fn kdf_is_deterministic_and_bounded() {
        let p = KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        };
        let a = derive_kek(b"pw", b"saltsaltsaltsalt", p).unwrap();
        let b = derive_kek(b"pw", b"saltsaltsaltsalt", p).unwrap();
        let c = derive_kek(b"pX", b"saltsaltsaltsalt", p).unwrap();
        assert_eq!(a.expose(), b.expose());
        assert_ne!(a.expose(), c.expose());
        let huge = KdfParams {
            m_kib: KdfParams::MAX_M_KIB + 1,
            ..p
        };
        assert_eq!(
            derive_kek(b"pw", b"saltsaltsaltsalt", huge).err(),
            Some(CryptoError::Params)
        );
    }
}
