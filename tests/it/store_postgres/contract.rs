//! The backend contract, run over the file store and the database alike:
//! what one backend guarantees, the other must too.

use std::sync::Arc;

use mailgate::secret::Secret;
use mailgate::store::{FileStore, Store, StoreError, TokenStore};

use super::{Fixture, KDF, answer, enrol, name, now};
use crate::support::scratch::Scratch;

/// Enrol, unlock, refresh, list, stamp, remove: the same answers from both.
fn contract(store: &Store) {
    let (a, b) = ("a@example.test", "b@example.test");
    assert!(store.list().unwrap().is_empty());
    assert_eq!(store.stamp(&name(a)).unwrap(), None);
    enrol(store, a, "pw-a", "RT-a1");
    enrol(store, b, "pw-b", "RT-b1");
    let listed: Vec<String> = store
        .list()
        .unwrap()
        .iter()
        .map(|s| s.account.to_string())
        .collect();
    assert_eq!(listed, [a, b]);

    let held = store.unlock(&name(a), &Secret::from("pw-a")).unwrap();
    assert_eq!(held.tokens.refresh_token.expose(), "RT-a1");
    assert!(matches!(
        store.unlock(&name(a), &Secret::from("wrong")),
        Err(StoreError::BadPassword)
    ));

    let before = store.stamp(&name(a)).unwrap().unwrap();
    store
        .save_refresh(&held, &answer("AT-2", Some("RT-a2")), now())
        .unwrap();
    assert_ne!(store.stamp(&name(a)).unwrap().unwrap(), before);
    let again = store
        .reopen(&name(a), &held.key, &held.record.key_id)
        .unwrap();
    assert_eq!(again.tokens.refresh_token.expose(), "RT-a2");

    // A newer enrolment wins over a refresh that began before it.
    enrol(store, a, "pw-a2", "RT-a3");
    assert!(matches!(
        store.save_refresh(&held, &answer("AT-3", Some("RT-old")), now()),
        Err(StoreError::Replaced { .. })
    ));
    let newest = store.unlock(&name(a), &Secret::from("pw-a2")).unwrap();
    assert_eq!(newest.tokens.refresh_token.expose(), "RT-a3");

    assert!(store.remove(&name(b)).unwrap());
    assert!(!store.remove(&name(b)).unwrap());
    assert_eq!(store.list().unwrap().len(), 1);
    assert!(matches!(
        store.unlock(&name(b), &Secret::from("pw-b")),
        Err(StoreError::UnknownAccount(_))
    ));
}

#[test]
fn file_store_keeps_the_contract() {
    let scratch = Scratch::new("contract-file");
    let file = FileStore::open(&scratch.state()).unwrap();
    contract(&Store::new(Arc::new(file)).with_kdf(KDF));
}

#[test]
fn postgres_store_keeps_the_contract() {
    let f = Fixture::new("contract-pg");
    contract(&f.store());
    assert!(f.pg.shared());
    f.pg.check().unwrap();
}

/// Machine-wrapped records open on every instance that has the same
/// machine key; an instance with another key is told so plainly.
#[test]
fn machine_key_is_shared_by_copy_and_checked() {
    let f = Fixture::new("machine-pg");
    let store = f.store().with_machine_wrap(vec!["ms".to_owned()]);
    enrol(&store, "m@example.test", "pw", "RT-m");
    assert!(
        store
            .unlock_machine(&name("m@example.test"))
            .unwrap()
            .is_some()
    );

    // A second instance with a copy of the key opens the record.
    let second = Fixture::on(
        "machine-pg-2",
        super::settings(
            crate::support::servers::PgCluster::shared()
                .unwrap()
                .url(&f.db_name),
            mailgate::config::PgTls::Disable,
            None,
        ),
        f.db_name.clone(),
    );
    std::fs::copy(
        f.scratch.state().join("machine.key"),
        second.scratch.state().join("machine.key"),
    )
    .unwrap();
    let other = second.store().with_machine_wrap(vec!["ms".to_owned()]);
    assert!(
        other
            .unlock_machine(&name("m@example.test"))
            .unwrap()
            .is_some()
    );

    // A third with a key of its own is refused, not silently broken.
    let third = Fixture::on(
        "machine-pg-3",
        super::settings(
            crate::support::servers::PgCluster::shared()
                .unwrap()
                .url(&f.db_name),
            mailgate::config::PgTls::Disable,
            None,
        ),
        f.db_name.clone(),
    );
    let err = third
        .store()
        .unlock_machine(&name("m@example.test"))
        .unwrap_err();
    assert!(matches!(err, StoreError::MachineKeyMismatch), "{err}");
}
