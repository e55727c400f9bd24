//! Token lifecycle (issue 10): what each identity-provider error does to an
//! account, how often an upstream refusal may cost a refresh, and that a
//! refresh the provider completed is never lost.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::tests::{ALICE, Rig, enrol_expired, grant, rig, state_of};
use super::*;
use crate::oauth::{OAuthError, TokenEndpoint};
use crate::secret::Secret;
use crate::store::testutil::{FakeEndpoint, TEST_KDF, TempDir, answer, config, name, record_path};
use crate::store::{FileStore, Key, Lease, Record, Stamp, TokenStore};
use crate::token::ProviderHealth;
use crate::token::TokenSource;
use crate::token::cache::{BACKOFF_MAX, REFUSAL_BACKOFF_START};

fn rejected(error: &str, aadsts: Option<&str>, description: &str) -> OAuthError {
    OAuthError::Rejected {
        error: error.into(),
        aadsts: aadsts.map(str::to_owned),
        description: description.into(),
    }
}

#[tokio::test(start_paused = true)]
async fn expired_client_secret_is_a_provider_fault_not_a_dead_account() {
    let r = rig("life-secret", Duration::ZERO, "");
    enrol_expired(&r.store, ALICE, "pw");
    r.fake.push(Err(rejected(
        "invalid_client",
        Some("7000222"),
        "AADSTS7000222: The provided client secret keys are expired.",
    )));
    let e = grant(&r.svc, ALICE, "pw").await.unwrap_err();
    assert!(matches!(e, TokenError::Temporary { .. }), "{e:?}");
    assert_ne!(state_of(&r.store, ALICE).0, AccountState::NeedsLogin);
    match r.svc.provider_health().as_slice() {
        [(p, ProviderHealth::ConfigFault { fix, .. })] => {
            assert_eq!(p, "ms");
            assert!(fix.contains("client secret"), "{fix}");
        }
        other => panic!("{other:?}"),
    }
    tokio::time::advance(BACKOFF_MAX).await;
    let g = grant(&r.svc, ALICE, "pw").await.unwrap();
    assert_eq!(g.access_token.expose(), "AT-2");
    assert_eq!(
        r.svc.provider_health(),
        vec![("ms".to_owned(), ProviderHealth::Ok)]
    );
}

#[tokio::test(start_paused = true)]
async fn every_client_or_config_error_leaves_the_account_alone() {
    let cases = [
        ("invalid_client", Some("7000215")),
        ("unauthorized_client", Some("700016")),
        ("invalid_scope", Some("70011")),
        ("invalid_request", Some("90002")),
        ("invalid_client", Some("700027")),
        ("invalid_grant", Some("7000222")),
        ("invalid_resource", Some("500011")),
    ];
    for (i, (error, code)) in cases.into_iter().enumerate() {
        let r = rig(&format!("life-cfg-{i}"), Duration::ZERO, "");
        enrol_expired(&r.store, ALICE, "pw");
        r.fake
            .push(Err(rejected(error, code, "AADSTS: configuration")));
        let e = grant(&r.svc, ALICE, "pw").await.unwrap_err();
        assert!(matches!(e, TokenError::Temporary { .. }), "{error}: {e:?}");
        assert_ne!(
            state_of(&r.store, ALICE).0,
            AccountState::NeedsLogin,
            "{error} {code:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn dead_grants_need_login_and_temporary_answers_back_off() {
    for (i, error, code) in [
        (0, "invalid_grant", Some("50173")),
        (1, "invalid_grant", Some("54005")),
        (2, "interaction_required", Some("50076")),
        (3, "invalid_grant", None),
    ] {
        let r = rig(&format!("life-dead-{i}"), Duration::ZERO, "");
        enrol_expired(&r.store, ALICE, "pw");
        r.fake.push(Err(rejected(error, code, "dead")));
        let e = grant(&r.svc, ALICE, "pw").await.unwrap_err();
        assert!(matches!(e, TokenError::NeedsAuthorisation { .. }), "{e:?}");
        assert_eq!(state_of(&r.store, ALICE).0, AccountState::NeedsLogin);
    }
    let r = rig("life-tempunavail", Duration::ZERO, "");
    enrol_expired(&r.store, ALICE, "pw");
    r.fake
        .push(Err(rejected("temporarily_unavailable", None, "busy")));
    let e = grant(&r.svc, ALICE, "pw").await.unwrap_err();
    assert!(matches!(e, TokenError::Temporary { .. }), "{e:?}");
    assert_ne!(state_of(&r.store, ALICE).0, AccountState::NeedsLogin);
}

#[tokio::test(start_paused = true)]
async fn request_loop_backs_off_hard() {
    let r = rig("life-loop", Duration::ZERO, "");
    enrol_expired(&r.store, ALICE, "pw");
    r.fake.push(Err(rejected(
        "invalid_request",
        Some("50196"),
        "AADSTS50196: The server terminated an operation because it encountered a client request loop.",
    )));
    let e = grant(&r.svc, ALICE, "pw").await.unwrap_err();
    match e {
        TokenError::Temporary {
            retry_after: Some(d),
            ..
        } => assert!(d >= Duration::from_secs(5 * 60), "{d:?}"),
        other => panic!("{other:?}"),
    }
    assert_ne!(state_of(&r.store, ALICE).0, AccountState::NeedsLogin);
    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(grant(&r.svc, ALICE, "pw").await.is_err());
    assert_eq!(r.fake.refresh_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn needs_login_caused_by_a_config_fault_recovers_once_fixed() {
    let r = rig("life-recover", Duration::ZERO, "");
    enrol_expired(&r.store, ALICE, "pw");
    let key_id = r.store.load(&name(ALICE)).unwrap().unwrap().key_id;
    let old = "invalid_client (AADSTS7000215): AADSTS7000215: Invalid client secret provided.";
    r.store
        .set_state(
            &name(ALICE),
            Some(&key_id),
            AccountState::NeedsLogin,
            Some(old),
        )
        .unwrap();
    let g = grant(&r.svc, ALICE, "pw").await.unwrap();
    assert_eq!(g.access_token.expose(), "AT-1");
    assert_eq!(state_of(&r.store, ALICE), (AccountState::Active, None));
}

#[tokio::test(start_paused = true)]
async fn refused_tokens_cost_at_most_one_refresh_per_interval() {
    let r = rig("life-refused", Duration::ZERO, "");
    enrol_expired(&r.store, ALICE, "pw");
    let mut refreshed = 0;
    for _ in 0..20 {
        let g = grant(&r.svc, ALICE, "pw").await.unwrap();
        if r.svc.rejected(&g).await {
            refreshed += 1;
        }
    }
    assert_eq!(refreshed, 1);
    assert_eq!(
        r.fake.refresh_count(),
        2,
        "one grant, one refresh after refusal"
    );
    tokio::time::advance(REFUSAL_BACKOFF_START + Duration::from_secs(1)).await;
    let g = grant(&r.svc, ALICE, "pw").await.unwrap();
    assert!(r.svc.rejected(&g).await, "allowed again after the interval");
    grant(&r.svc, ALICE, "pw").await.unwrap();
    assert_eq!(r.fake.refresh_count(), 3);
    tokio::time::advance(REFUSAL_BACKOFF_START + Duration::from_secs(1)).await;
    let g = grant(&r.svc, ALICE, "pw").await.unwrap();
    assert!(
        !r.svc.rejected(&g).await,
        "repeated refusals back off longer"
    );
    r.svc.accepted(&g);
    assert!(r.svc.rejected(&g).await, "an accepted login starts over");
    grant(&r.svc, ALICE, "pw").await.unwrap();
    assert_eq!(r.fake.refresh_count(), 4);
}

#[tokio::test(start_paused = true)]
async fn missing_expires_in_does_not_refresh_on_every_login() {
    let r = rig("life-noexp", Duration::ZERO, "");
    enrol_expired(&r.store, ALICE, "pw");
    r.fake.push(Ok(crate::oauth::TokenResponse {
        expires_in_assumed: true,
        ..answer(
            "AT-short",
            Some("RT-short"),
            crate::oauth::DEFAULT_EXPIRES_IN,
        )
    }));
    for _ in 0..5 {
        let g = grant(&r.svc, ALICE, "pw").await.unwrap();
        assert_eq!(g.access_token.expose(), "AT-short");
    }
    assert_eq!(r.fake.refresh_count(), 1);
}

/// Writes `edit` into `account`'s record file.
fn edit_record(r: &Rig, account: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = record_path(r.dir.path(), account);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn keep_warm_skips_an_unreadable_record_and_a_corrupt_timestamp() {
    let r = rig(
        "life-warm",
        Duration::ZERO,
        "machine_key_wrap = true\nkeep_warm_interval_secs = 600",
    );
    let wrapping = r.store.clone().with_machine_wrap(vec!["ms".into()]);
    enrol_expired(&wrapping, ALICE, "pw");
    let two_hours_ago = crate::store::record::to_unix(SystemTime::now()) - 7200;
    edit_record(&r, ALICE, |v| v["last_refresh"] = two_hours_ago.into());
    enrol_expired(&wrapping, "carol@example.com", "pw");
    edit_record(&r, "carol@example.com", |v| {
        v["last_refresh"] = u64::MAX.into()
    });
    enrol_expired(&wrapping, "bob@example.com", "pw");
    std::fs::write(record_path(r.dir.path(), "bob@example.com"), b"{ not json").unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = r.svc.spawn_keep_warm(rx);
    tokio::time::sleep(Duration::from_secs(11 * 60)).await;
    assert_eq!(r.fake.refresh_count(), 2, "alice and carol, not bob");
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn unreadable_records_never_show_their_path_to_clients() {
    for (i, edit) in [
        (
            0,
            Box::new(|v: &mut serde_json::Value| v["version"] = 99.into()) as Box<dyn Fn(&mut _)>,
        ),
        (
            1,
            Box::new(|v: &mut serde_json::Value| v["kdf"] = "x".into()),
        ),
    ] {
        let r = rig(&format!("life-path-{i}"), Duration::ZERO, "");
        enrol_expired(&r.store, ALICE, "pw");
        edit_record(&r, ALICE, edit);
        let e = grant(&r.svc, ALICE, "pw").await.unwrap_err();
        let text = format!("{e}");
        let dir = r.dir.path().display().to_string();
        assert!(!text.contains(&dir), "{text}");
        assert!(!text.contains(".json"), "{text}");
        assert!(!matches!(e, TokenError::BadCredentials), "{e:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_caller_does_not_cancel_the_refresh() {
    let r = rig("life-cancel", Duration::from_secs(1), "");
    enrol_expired(&r.store, ALICE, "pw");
    let cut = tokio::time::timeout(Duration::from_millis(100), grant(&r.svc, ALICE, "pw")).await;
    assert!(cut.is_err(), "the caller gave up");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let u = r.store.unlock(&name(ALICE), &Secret::from("pw")).unwrap();
    assert_eq!(u.tokens.refresh_token.expose(), "RT-1");
    let g = grant(&r.svc, ALICE, "pw").await.unwrap();
    assert_eq!(g.access_token.expose(), "AT-1");
    assert_eq!(r.fake.refresh_count(), 1);
}

/// A file store whose next `fail_saves` saves fail like a full disk.
#[derive(Debug)]
struct Flaky {
    inner: FileStore,
    fail_saves: AtomicUsize,
}

impl TokenStore for Flaky {
    fn load(&self, account: &AccountName) -> Result<Option<Record>, StoreError> {
        self.inner.load(account)
    }
    fn stamp(&self, account: &AccountName) -> Result<Option<Stamp>, StoreError> {
        self.inner.stamp(account)
    }
    fn list(&self) -> Result<Vec<Record>, StoreError> {
        self.inner.list()
    }
    fn lease(&self, account: &AccountName) -> Result<Lease, StoreError> {
        self.inner.lease(account)
    }
    fn save(&self, lease: &Lease, record: &Record) -> Result<(), StoreError> {
        let left = self.fail_saves.load(Ordering::SeqCst);
        if left > 0 {
            self.fail_saves.store(left - 1, Ordering::SeqCst);
            return Err(StoreError::Io {
                action: "write",
                path: PathBuf::from("flaky"),
                source: std::io::Error::other("no space left on device"),
            });
        }
        self.inner.save(lease, record)
    }
    fn remove(&self, lease: &Lease, account: &AccountName) -> Result<bool, StoreError> {
        self.inner.remove(lease, account)
    }
    fn machine_key(&self) -> Result<Key, StoreError> {
        self.inner.machine_key()
    }
    fn location(&self, account: &AccountName) -> PathBuf {
        self.inner.location(account)
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_save_is_retried_before_the_tokens_are_dropped() {
    let dir = TempDir::new("life-flaky");
    let flaky = Arc::new(Flaky {
        inner: FileStore::open(dir.path()).unwrap(),
        fail_saves: AtomicUsize::new(0),
    });
    let store = Store::new(flaky.clone()).with_kdf(TEST_KDF);
    let fake = Arc::new(FakeEndpoint::with_delay(Duration::ZERO));
    let endpoints: HashMap<String, Arc<dyn TokenEndpoint>> =
        HashMap::from([("ms".to_owned(), fake.clone() as Arc<dyn TokenEndpoint>)]);
    let svc = TokenService::new(&config(dir.path(), ""), store.clone(), endpoints).unwrap();
    enrol_expired(&store, ALICE, "pw");
    flaky.fail_saves.store(2, Ordering::SeqCst);
    let g = grant(&svc, ALICE, "pw").await.unwrap();
    assert_eq!(g.access_token.expose(), "AT-1");
    let u = store.unlock(&name(ALICE), &Secret::from("pw")).unwrap();
    assert_eq!(u.tokens.refresh_token.expose(), "RT-1");
    assert_eq!(fake.refresh_count(), 1);
}

/// Client credentials refused (or not) as `refuse` says; refreshes unused.
struct AppEndpoint {
    refuse: std::sync::atomic::AtomicBool,
}

impl TokenEndpoint for AppEndpoint {
    fn refresh<'a>(&'a self, _: &'a Secret<String>) -> crate::oauth::TokenFuture<'a> {
        Box::pin(async { Err(OAuthError::Config("unused".into())) })
    }

    fn client_credentials(&self) -> crate::oauth::TokenFuture<'_> {
        Box::pin(async {
            if self.refuse.load(Ordering::SeqCst) {
                Err(rejected(
                    "invalid_client",
                    Some("7000215"),
                    "AADSTS7000215: Invalid client secret provided.",
                ))
            } else {
                Ok(answer("APP", None, Duration::from_secs(3600)))
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn refused_app_credentials_are_a_provider_fault() {
    let dir = TempDir::new("life-app");
    let store = crate::store::testutil::test_store(dir.path());
    let app = Arc::new(AppEndpoint {
        refuse: true.into(),
    });
    let endpoints: HashMap<String, Arc<dyn TokenEndpoint>> =
        HashMap::from([("ms".to_owned(), app.clone() as Arc<dyn TokenEndpoint>)]);
    let svc = TokenService::new(&config(dir.path(), ""), store, endpoints).unwrap();
    let e = grant(&svc, "archiver", "app-pw").await.unwrap_err();
    assert!(matches!(e, TokenError::Temporary { .. }), "{e:?}");
    assert!(matches!(
        svc.provider_health().as_slice(),
        [(_, ProviderHealth::ConfigFault { .. })]
    ));
    app.refuse.store(false, Ordering::SeqCst);
    tokio::time::advance(BACKOFF_MAX).await;
    let g = grant(&svc, "archiver", "app-pw").await.unwrap();
    assert_eq!(g.access_token.expose(), "APP");
    assert_eq!(svc.provider_health()[0].1, ProviderHealth::Ok);
}

#[tokio::test(start_paused = true)]
async fn a_config_fault_is_logged_once_though_each_answer_differs() {
    let r = rig("life-once", Duration::ZERO, "");
    let fault = |trace: &str| {
        rejected(
            "invalid_client",
            Some("7000222"),
            &format!(
                "AADSTS7000222: The provided client secret keys are expired. Trace ID: {trace}"
            ),
        )
    };
    let fix = "renew the secret";
    assert!(r.svc.config_fault("ms", &fault("1"), fix));
    assert!(!r.svc.config_fault("ms", &fault("2"), fix));
    assert!(r.svc.config_fault("ms", &fault("3"), "another fix"));
    r.svc.provider_ok("ms");
    assert!(r.svc.config_fault("ms", &fault("4"), "another fix"));
}
