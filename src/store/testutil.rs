//! Helpers shared by the unit tests of the store and the layers above it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::crypto::KdfParams;
use super::{Enrolment, FileStore, Store};
use crate::base::AccountName;
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
        expires_in_assumed: false,
    }
}

pub fn test_store(dir: &Path) -> Store {
    Store::open(dir).unwrap().with_kdf(TEST_KDF)
}

pub fn name(account: &str) -> AccountName {
    AccountName::parse(account).unwrap()
}

/// Where the file store in `state_dir` keeps `account`.
pub fn record_path(state_dir: &Path, account: &str) -> PathBuf {
    FileStore::open(state_dir).unwrap().path(&name(account))
}

pub fn enrol(store: &Store, account: &str, provider: &str, password: &str, refresh: &str) {
    store
        .enrol(Enrolment {
            account: &name(account),
            provider,
            sasl_user: account,
            password: &Secret::from(password),
            tokens: &answer("AT-enrol", Some(refresh), Duration::from_secs(3600)),
        })
        .unwrap();
}

/// A cheap Argon2id PHC string for app-only rules in tests.
pub fn phc(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let params = argon2::Params::new(TEST_KDF.m_kib, TEST_KDF.t, TEST_KDF.p, None).unwrap();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

/// A config with one provider `ms`, app-only and shared rules, and `extra`
/// appended to the provider table.
pub fn config(state_dir: &Path, provider_extra: &str) -> crate::config::Config {
    let text = format!(
        r#"
[[providers]]
name = "ms"
kind = "microsoft"
client_id = "test-client"
{provider_extra}

[[accounts]]
login = "archiver"
kind = "app-only"
password_hash = "{archiver}"
mailbox = "archive@example.com"

[[accounts]]
login = "*@apps.example"
kind = "app-only"
password_hash = "{domain}"

[[accounts]]
login = "shared@example.com"
kind = "shared"
delegate = "alice@example.com"
"#,
        archiver = phc("app-pw"),
        domain = phc("domain-pw"),
    );
    let mut c = crate::config::parse(&text, "test.toml", state_dir).unwrap();
    c.state_dir = state_dir.to_owned();
    c
}

type Scripted = Result<TokenResponse, crate::oauth::OAuthError>;

/// An in-process token endpoint: counts calls, sleeps to widen races, and
/// answers from a script (then with numbered tokens).
#[derive(Default)]
pub struct FakeEndpoint {
    pub refreshes: std::sync::atomic::AtomicUsize,
    pub client_credentials: std::sync::atomic::AtomicUsize,
    pub delay: Duration,
    pub script: std::sync::Mutex<std::collections::VecDeque<Scripted>>,
    pub seen: std::sync::Mutex<Vec<String>>,
    pub during_refresh: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl FakeEndpoint {
    pub fn with_delay(delay: Duration) -> FakeEndpoint {
        FakeEndpoint {
            delay,
            ..Default::default()
        }
    }

    pub fn push(&self, r: Scripted) {
        self.script.lock().unwrap().push_back(r);
    }

    pub fn refresh_count(&self) -> usize {
        self.refreshes.load(Ordering::SeqCst)
    }
}

impl crate::oauth::TokenEndpoint for FakeEndpoint {
    fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret<String>,
    ) -> crate::base::BoxFuture<'a, Scripted> {
        Box::pin(async move {
            let n = self.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
            self.seen
                .lock()
                .unwrap()
                .push(refresh_token.expose().clone());
            tokio::time::sleep(self.delay).await;
            if let Some(hook) = self.during_refresh.lock().unwrap().take() {
                hook();
            }
            let scripted = self.script.lock().unwrap().pop_front();
            scripted.unwrap_or_else(|| {
                Ok(answer(
                    &format!("AT-{n}"),
                    Some(&format!("RT-{n}")),
                    Duration::from_secs(3600),
                ))
            })
        })
    }

    fn client_credentials(&self) -> crate::base::BoxFuture<'_, Scripted> {
        Box::pin(async move {
            let n = self.client_credentials.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(self.delay).await;
            Ok(answer(&format!("APP-{n}"), None, Duration::from_secs(3600)))
        })
    }
}
