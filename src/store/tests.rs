use std::sync::mpsc;
use std::time::Duration;

use super::*;
use crate::store::Lease;
use crate::store::testutil::{TempDir, answer, enrol, name, record_path, test_store};

const RT: &str = "RT-0123456789-refresh-secret";

fn pw(s: &str) -> Secret<String> {
    Secret::from(s)
}

fn dir_names(state_dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(state_dir.join("accounts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn round_trip_and_list_without_secrets() {
    let t = TempDir::new("store-rt");
    let store = test_store(t.path());
    enrol(&store, "Alice@Example.com", "ms", "local-pw", RT);
    let u = store
        .unlock(&name("alice@example.com"), &pw("local-pw"))
        .unwrap();
    assert_eq!(u.tokens.refresh_token.expose(), RT);
    assert_eq!(u.tokens.access_token.as_ref().unwrap().expose(), "AT-enrol");
    assert_eq!(u.record.kdf.params, store.kdf());
    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].account, "alice@example.com");
    assert_eq!(list[0].provider, "ms");
    assert_eq!(list[0].state, AccountState::Active);
    assert!(list[0].access_expires_at.is_some());
    assert!(!format!("{list:?}").contains("RT-"));
}

#[test]
fn file_is_useless_without_the_password() {
    let t = TempDir::new("store-pw");
    let store = test_store(t.path());
    enrol(&store, "bob@example.com", "ms", "right", RT);
    let path = record_path(t.path(), "bob@example.com");
    let before = std::fs::read(&path).unwrap();
    let text = String::from_utf8_lossy(&before);
    for needle in [RT, "AT-enrol", &crypto::encode(RT.as_bytes())[..20]] {
        assert!(!text.contains(needle), "{needle} in clear");
    }
    assert!(matches!(
        store.unlock(&name("bob@example.com"), &pw("wrong")),
        Err(StoreError::BadPassword)
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(matches!(
        store.unlock(&name("nobody@example.com"), &pw("right")),
        Err(StoreError::UnknownAccount(_))
    ));
}

#[cfg(unix)]
#[test]
fn directory_and_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let t = TempDir::new("store-perm");
    let store = test_store(t.path()).with_machine_wrap(vec!["ms".into()]);
    enrol(&store, "c@example.com", "ms", "pw", RT);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&t.path().join("accounts")), 0o700);
    assert_eq!(mode(&record_path(t.path(), "c@example.com")), 0o600);
    assert_eq!(mode(&t.path().join("machine.key")), 0o600);
}

#[test]
fn tampering_is_detected() {
    let t = TempDir::new("store-tamper");
    let store = test_store(t.path());
    enrol(&store, "d@example.com", "ms", "pw", RT);
    enrol(&store, "e@example.com", "ms", "pw", "RT-other");
    let path = record_path(t.path(), "d@example.com");
    let original = store.load(&name("d@example.com")).unwrap().unwrap();

    let mut rec = original.clone();
    let mut ct = crypto::decode(&rec.tokens.ct).unwrap();
    ct[3] ^= 1;
    rec.tokens.ct = crypto::encode(&ct);
    std::fs::write(&path, serde_json::to_vec(&rec).unwrap()).unwrap();
    assert!(matches!(
        store.unlock(&name("d@example.com"), &pw("pw")),
        Err(StoreError::Tampered { .. })
    ));

    let mut rec = original.clone();
    rec.tokens = store.load(&name("e@example.com")).unwrap().unwrap().tokens;
    std::fs::write(&path, serde_json::to_vec(&rec).unwrap()).unwrap();
    assert!(matches!(
        store.unlock(&name("d@example.com"), &pw("pw")),
        Err(StoreError::Tampered { .. })
    ));

    let mut rec = original;
    rec.provider = "evil".into();
    std::fs::write(&path, serde_json::to_vec(&rec).unwrap()).unwrap();
    assert!(matches!(
        store.unlock(&name("d@example.com"), &pw("pw")),
        Err(StoreError::BadPassword)
    ));
}

#[test]
fn rotated_refresh_token_is_persisted() {
    let t = TempDir::new("store-rot");
    let store = test_store(t.path());
    enrol(&store, "f@example.com", "ms", "pw", RT);
    let held = store.unlock(&name("f@example.com"), &pw("pw")).unwrap();
    store
        .set_state(
            &name("f@example.com"),
            None,
            AccountState::RefreshFailing,
            Some("x"),
        )
        .unwrap();
    let ans = answer("AT-2", Some("RT-rotated"), Duration::from_secs(3600));
    store.save_refresh(&held, &ans, SystemTime::now()).unwrap();

    let again = test_store(t.path());
    let u = again.unlock(&name("f@example.com"), &pw("pw")).unwrap();
    assert_eq!(u.tokens.refresh_token.expose(), "RT-rotated");
    assert_eq!(u.tokens.access_token.unwrap().expose(), "AT-2");
    assert_eq!(u.record.state, AccountState::Active);
    assert_eq!(u.record.last_error, None);

    let keep = answer("AT-3", None, Duration::from_secs(3600));
    store
        .save_refresh(&u_from(&again, "pw"), &keep, SystemTime::now())
        .unwrap();
    let u = again.unlock(&name("f@example.com"), &pw("pw")).unwrap();
    assert_eq!(u.tokens.refresh_token.expose(), "RT-rotated");
}

fn u_from(store: &Store, password: &str) -> Unlocked {
    store.unlock(&name("f@example.com"), &pw(password)).unwrap()
}

#[test]
fn writes_leave_no_temporary_files() {
    let t = TempDir::new("store-tmp");
    let store = test_store(t.path());
    enrol(&store, "g@example.com", "ms", "pw", RT);
    for i in 0..5 {
        store
            .touch(&name("g@example.com"), SystemTime::now())
            .unwrap();
        let held = store.unlock(&name("g@example.com"), &pw("pw")).unwrap();
        let ans = answer(&format!("AT-{i}"), Some("RT-n"), Duration::from_secs(60));
        store.save_refresh(&held, &ans, SystemTime::now()).unwrap();
    }
    let names = dir_names(t.path());
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with("g@example.com-") && names[0].ends_with(".json"));
}

#[test]
fn re_enrolment_wins_over_an_old_key() {
    let t = TempDir::new("store-replace");
    let store = test_store(t.path());
    enrol(&store, "h@example.com", "ms", "old", RT);
    let held = store.unlock(&name("h@example.com"), &pw("old")).unwrap();
    enrol(&store, "h@example.com", "ms", "new", "RT-new");
    let ans = answer("AT-x", Some("RT-stale"), Duration::from_secs(60));
    assert!(matches!(
        store.save_refresh(&held, &ans, SystemTime::now()),
        Err(StoreError::Replaced { .. })
    ));
    let id = held.record.key_id.as_str();
    assert!(matches!(
        store.set_state(
            &name("h@example.com"),
            Some(id),
            AccountState::NeedsLogin,
            None
        ),
        Err(StoreError::Replaced { .. })
    ));
    let u = store.unlock(&name("h@example.com"), &pw("new")).unwrap();
    assert_eq!(u.tokens.refresh_token.expose(), "RT-new");
    assert_eq!(u.record.state, AccountState::Active);
}

#[test]
fn lock_excludes_a_second_handle() {
    let t = TempDir::new("store-lock");
    let a = test_store(t.path());
    let b = test_store(t.path());
    enrol(&a, "i@example.com", "ms", "pw", RT);
    let guard = FileStore::open(t.path()).unwrap().lock().unwrap();
    let (tx, rx) = mpsc::channel();
    let writer = std::thread::spawn(move || {
        let r = b.set_state(
            &name("i@example.com"),
            None,
            AccountState::NeedsLogin,
            Some("e"),
        );
        tx.send(r.is_ok()).unwrap();
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "write went through while the lock was held"
    );
    drop(guard);
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(true));
    writer.join().unwrap();
    let rec = a.load(&name("i@example.com")).unwrap().unwrap();
    assert_eq!(rec.state, AccountState::NeedsLogin);
}

#[test]
fn unknown_version_and_garbage_are_clear_errors() {
    let t = TempDir::new("store-ver");
    let store = test_store(t.path());
    enrol(&store, "j@example.com", "ms", "pw", RT);
    let path = record_path(t.path(), "j@example.com");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["version"] = 99.into();
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let err = store.unlock(&name("j@example.com"), &pw("pw")).unwrap_err();
    assert!(
        matches!(err, StoreError::Version { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("version 99"));
    std::fs::write(&path, b"not json").unwrap();
    assert!(matches!(store.list(), Err(StoreError::Corrupt { .. })));
}

#[test]
fn remove_and_machine_wrap() {
    let t = TempDir::new("store-rm");
    let store = test_store(t.path()).with_machine_wrap(vec!["ms".into()]);
    enrol(&store, "k@example.com", "ms", "pw", RT);
    enrol(&store, "l@example.com", "other", "pw", RT);
    let u = store
        .unlock_machine(&name("k@example.com"))
        .unwrap()
        .unwrap();
    assert_eq!(u.tokens.refresh_token.expose(), RT);
    assert!(
        store
            .unlock_machine(&name("l@example.com"))
            .unwrap()
            .is_none()
    );
    let plain = test_store(t.path());
    let held = plain.unlock(&name("k@example.com"), &pw("pw")).unwrap();
    plain.sync_machine_wrap(&held).unwrap();
    assert!(
        plain
            .unlock_machine(&name("k@example.com"))
            .unwrap()
            .is_none()
    );
    assert!(store.remove(&name("K@example.com")).unwrap());
    assert!(!store.remove(&name("k@example.com")).unwrap());
    assert_eq!(store.list().unwrap().len(), 1);
    assert!(matches!(
        AccountName::parse("bad name").map_err(StoreError::from),
        Err(StoreError::InvalidAccount(_))
    ));
}

#[test]
fn file_names_are_what_earlier_releases_wrote() {
    let t = TempDir::new("store-names");
    let path = record_path(t.path(), "Alice@Example.com");
    assert_eq!(
        path.file_name().unwrap(),
        "alice@example.com-ff8d9819fc0e12bf.json"
    );
    assert_eq!(
        record_path(t.path(), "\u{212A}im@example.com"),
        record_path(t.path(), "kim@example.com"),
        "KELVIN SIGN folds to k"
    );
}

/// A second backend, in memory: the cryptography above the seam works the
/// same without any file.
#[derive(Debug, Default)]
struct MemoryStore {
    records: std::sync::Mutex<std::collections::HashMap<AccountName, (Record, u64)>>,
    machine_key: std::sync::Mutex<Option<[u8; 32]>>,
}

impl TokenStore for MemoryStore {
    fn load(&self, account: &AccountName) -> Result<Option<Record>, StoreError> {
        let records = self.records.lock().unwrap();
        Ok(records.get(account).map(|(r, _)| r.clone()))
    }

    fn stamp(&self, account: &AccountName) -> Result<Option<Stamp>, StoreError> {
        let records = self.records.lock().unwrap();
        Ok(records.get(account).map(|(_, v)| Stamp::from_version(*v)))
    }

    fn list(&self) -> Result<Vec<Record>, StoreError> {
        let records = self.records.lock().unwrap();
        Ok(records.values().map(|(r, _)| r.clone()).collect())
    }

    fn lease(&self, _account: &AccountName) -> Result<Lease, StoreError> {
        Ok(Lease::new(()))
    }

    fn save(&self, _lease: &Lease, record: &Record) -> Result<(), StoreError> {
        let mut records = self.records.lock().unwrap();
        let version = records.get(&record.account).map_or(0, |(_, v)| v + 1);
        records.insert(record.account.clone(), (record.clone(), version));
        Ok(())
    }

    fn remove(&self, _lease: &Lease, account: &AccountName) -> Result<bool, StoreError> {
        Ok(self.records.lock().unwrap().remove(account).is_some())
    }

    fn machine_key(&self) -> Result<Key, StoreError> {
        let mut key = self.machine_key.lock().unwrap();
        Ok(Secret::new(*key.get_or_insert_with(|| {
            *crypto::random_key().unwrap().expose()
        })))
    }

    fn location(&self, account: &AccountName) -> std::path::PathBuf {
        format!("memory:{account}").into()
    }
}

#[test]
fn the_cryptography_works_over_any_backend() {
    let backend = std::sync::Arc::new(MemoryStore::default());
    let store = Store::new(backend.clone())
        .with_kdf(crate::store::testutil::TEST_KDF)
        .with_machine_wrap(vec!["ms".into()]);
    enrol(&store, "Mem@example.com", "ms", "pw", RT);
    let who = name("mem@example.com");
    let before = store.stamp(&who).unwrap();
    let held = store.unlock(&who, &pw("pw")).unwrap();
    assert_eq!(held.tokens.refresh_token.expose(), RT);
    assert!(matches!(
        store.unlock(&who, &pw("wrong")),
        Err(StoreError::BadPassword)
    ));
    let ans = answer("AT-m", Some("RT-m"), Duration::from_secs(60));
    store.save_refresh(&held, &ans, SystemTime::now()).unwrap();
    assert_ne!(store.stamp(&who).unwrap(), before);
    let again = store.unlock_machine(&who).unwrap().unwrap();
    assert_eq!(again.tokens.refresh_token.expose(), "RT-m");
    let sealed = format!("{:?}", backend.records.lock().unwrap());
    assert!(!sealed.contains("RT-m") && !sealed.contains(RT));
    enrol(&store, "mem@example.com", "ms", "new", "RT-new");
    assert!(matches!(
        store.save_refresh(&held, &ans, SystemTime::now()),
        Err(StoreError::Replaced { .. })
    ));
    assert_eq!(store.list().unwrap()[0].account, "mem@example.com");
    assert!(store.remove(&who).unwrap());
    assert!(store.list().unwrap().is_empty());
}
