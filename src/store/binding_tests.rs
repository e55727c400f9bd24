//! A record belongs to the account it is opened for, and the fields that
//! route a token (`sasl_user`, `key_id`) are authenticated; records of
//! format version 1 still open and are upgraded on the next token write.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::*;
use crate::store::testutil::{TempDir, answer, enrol, name, record_path, test_store};

fn pw(s: &str) -> Secret<String> {
    Secret::from(s)
}

fn edit(path: &Path, key: &str, value: serde_json::Value) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v[key] = value;
    std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

fn version_on_disk(path: &Path) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["version"].as_u64().unwrap()
}

fn is_tampered<T>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Tampered { .. }))
}

#[test]
fn a_record_copied_over_another_accounts_file_is_refused() {
    let t = TempDir::new("store-copy");
    let store = test_store(t.path()).with_machine_wrap(vec!["ms".into()]);
    enrol(&store, "mallory@example.com", "ms", "pw-m", "RT-mallory");
    enrol(&store, "boss@example.com", "ms", "pw-b", "RT-boss");
    let (m, b) = (
        record_path(t.path(), "mallory@example.com"),
        record_path(t.path(), "boss@example.com"),
    );
    std::fs::copy(&m, &b).unwrap();
    let boss = name("boss@example.com");
    let r = store.unlock(&boss, &pw("pw-m"));
    assert!(is_tampered(&r), "{:?}", r.map(|u| u.record.account));
    assert!(is_tampered(&store.unlock_machine(&boss)));
    assert!(is_tampered(&store.load(&boss)));
    assert!(matches!(store.list(), Err(StoreError::Corrupt { .. })));
}

#[test]
fn editing_a_routing_field_makes_the_record_fail_to_open() {
    let t = TempDir::new("store-route");
    let store = test_store(t.path()).with_machine_wrap(vec!["ms".into()]);
    let alice = name("alice@example.com");
    enrol(&store, "alice@example.com", "ms", "pw", "RT-a");
    let path = record_path(t.path(), "alice@example.com");
    let original = std::fs::read(&path).unwrap();
    for (key, value) in [
        ("sasl_user", "ceo@example.com"),
        ("key_id", "00000000000000000000000000000000"),
    ] {
        std::fs::write(&path, &original).unwrap();
        edit(&path, key, value.into());
        assert!(is_tampered(&store.unlock(&alice, &pw("pw"))), "{key}");
        assert!(is_tampered(&store.unlock_machine(&alice)), "{key}");
    }
    std::fs::write(&path, &original).unwrap();
    assert!(store.unlock(&alice, &pw("pw")).is_ok());
}

/// A process holding the data key must not bless an edit made on disk
/// since it opened the record by sealing new tokens over it.
#[test]
fn a_refresh_does_not_authenticate_an_edit_made_meanwhile() {
    let t = TempDir::new("store-bless");
    let store = test_store(t.path());
    let alice = name("alice@example.com");
    enrol(&store, "alice@example.com", "ms", "pw", "RT-a");
    let held = store.unlock(&alice, &pw("pw")).unwrap();
    let path = record_path(t.path(), "alice@example.com");
    edit(&path, "sasl_user", "ceo@example.com".into());
    let before = std::fs::read(&path).unwrap();
    let ans = answer("AT-2", Some("RT-2"), Duration::from_secs(60));
    let r = store.save_refresh(&held, &ans, SystemTime::now());
    assert!(is_tampered(&r), "{:?}", r.map(|_| ()));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(is_tampered(&store.unlock(&alice, &pw("pw"))));
}

/// `fixtures/record-v1.json` was written by the release before format 2
/// (password `fixture-pw`, refresh token `RT-fixture-v1`, machine-wrapped
/// with `fixtures/machine-v1.key`; test keys, nothing else).
#[test]
fn a_version_1_record_opens_and_is_upgraded_on_the_next_token_write() {
    let t = TempDir::new("store-v1");
    let store = test_store(t.path()).with_machine_wrap(vec!["ms".into()]);
    let account = name("fixture@example.com");
    let path = record_path(t.path(), "fixture@example.com");
    std::fs::write(&path, include_bytes!("fixtures/record-v1.json")).unwrap();
    std::fs::write(
        t.path().join("machine.key"),
        include_bytes!("fixtures/machine-v1.key"),
    )
    .unwrap();
    let held = store.unlock(&account, &pw("fixture-pw")).unwrap();
    assert_eq!(held.tokens.refresh_token.expose(), "RT-fixture-v1");
    assert_eq!(held.record.version, 1);
    assert!(store.unlock_machine(&account).unwrap().is_some());
    store.touch(&account, SystemTime::now()).unwrap();
    assert_eq!(version_on_disk(&path), 1, "no data key, no upgrade");
    let held = store.unlock(&account, &pw("fixture-pw")).unwrap();
    let ans = answer("AT-2", Some("RT-2"), Duration::from_secs(60));
    store.save_refresh(&held, &ans, SystemTime::now()).unwrap();
    assert_eq!(version_on_disk(&path), u64::from(record::FORMAT_VERSION));
    let u = store.unlock(&account, &pw("fixture-pw")).unwrap();
    assert_eq!(u.tokens.refresh_token.expose(), "RT-2");
    let m = store.unlock_machine(&account).unwrap().unwrap();
    assert_eq!(m.tokens.refresh_token.expose(), "RT-2");
    edit(&path, "sasl_user", "ceo@example.com".into());
    assert!(is_tampered(&store.unlock(&account, &pw("fixture-pw"))));
}
