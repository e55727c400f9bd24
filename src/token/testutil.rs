//! Helpers shared by the token layer's unit tests.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::crypto::KdfParams;
use super::store::{Enrolment, Store};
use crate::oauth::TokenResponse;
use crate::secret::Secret;

/// Cheap Argon2id cost so unit tests run quickly; the format records it.
pub const TEST_KDF: KdfParams = KdfParams {
    m_kib: 256,
    t: 1,
    p: 1,
};

/// A unique directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "mailgate-test-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn answer(access: &str, refresh: Option<&str>, life: Duration) -> TokenResponse {
    TokenResponse {
        access_token: Secret::from(access),
        refresh_token: refresh.map(Secret::from),
        expires_in: life,
    }
}

pub fn test_store(dir: &Path) -> Store {
    Store::open(dir).unwrap().with_kdf(TEST_KDF)
}

pub fn enrol(store: &Store, account: &str, provider: &str, password: &str, refresh: &str) {
    store
        .enrol(Enrolment {
            account,
            provider,
            sasl_user: account,
            password: &Secret::from(password),
            tokens: &answer("AT-enrol", Some(refresh), Duration::from_secs(3600)),
        })
        .unwrap();
}
