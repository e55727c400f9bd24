use std::sync::atomic::Ordering;

use super::*;
use crate::oauth::{OAuthError, TokenEndpoint};
use crate::secret::Secret;
use crate::store::Enrolment;
use crate::store::testutil::{
    FakeEndpoint, TempDir, answer, config, name, record_path, test_store,
};
use crate::token::{Protocol, TokenSource};

pub(super) const ALICE: &str = "alice@example.com";

pub(super) struct Rig {
    pub(super) dir: TempDir,
    pub(super) svc: Arc<TokenService>,
    pub(super) fake: Arc<FakeEndpoint>,
    pub(super) store: Store,
}

pub(super) fn rig(tag: &str, delay: Duration, provider_extra: &str) -> Rig {
    let dir = TempDir::new(tag);
    let cfg = config(dir.path(), provider_extra);
    let store = test_store(dir.path());
    let fake = Arc::new(FakeEndpoint::with_delay(delay));
    let endpoints: HashMap<String, Arc<dyn TokenEndpoint>> =
        HashMap::from([("ms".to_owned(), fake.clone() as Arc<dyn TokenEndpoint>)]);
    let svc = TokenService::new(&cfg, store.clone(), endpoints).unwrap();
    svc.set_config_path(Path::new("/etc/mailgate.toml"));
    Rig {
        dir,
        svc,
        fake,
        store,
    }
}

/// Enrols with an access token that is already too old to use.
pub(super) fn enrol_expired(store: &Store, account: &str, password: &str) {
    store
        .enrol(Enrolment {
            account: &name(account),
            provider: "ms",
            sasl_user: account,
            password: &Secret::from(password),
            tokens: &answer("AT-enrol", Some("RT-enrol"), Duration::ZERO),
        })
        .unwrap();
}

pub(super) async fn grant(svc: &TokenService, user: &str, pw: &str) -> Result<Grant, TokenError> {
    grant_as(svc, user, None, pw, Protocol::Imap).await
}

async fn grant_as(
    svc: &TokenService,
    user: &str,
    authzid: Option<&str>,
    pw: &str,
    protocol: Protocol,
) -> Result<Grant, TokenError> {
    let password = Secret::from(pw);
    svc.grant(TokenRequest {
        username: &name(user),
        authzid,
        password: &password,
        protocol,
        provider: "ms",
    })
    .await
}

pub(super) fn state_of(store: &Store, account: &str) -> (AccountState, Option<String>) {
    let s = store.list().unwrap();
    let a = s.iter().find(|a| a.account == account).unwrap();
    (a.state, a.last_error.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_grants_refresh_once() {
    let r = rig("svc-flight", Duration::from_millis(200), "");
    enrol_expired(&r.store, ALICE, "pw");
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            let svc = r.svc.clone();
            tokio::spawn(async move { grant(&svc, ALICE, "pw").await })
        })
        .collect();
    for t in tasks {
        let g = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(g.access_token.expose(), "AT-1");
        assert_eq!(g.sasl_user, ALICE);
    }
    assert_eq!(r.fake.refresh_count(), 1);
    assert_eq!(*r.fake.seen.lock().unwrap(), vec!["RT-enrol".to_owned()]);
    let u = r.store.unlock(&name(ALICE), &Secret::from("pw")).unwrap();
    assert_eq!(u.tokens.refresh_token.expose(), "RT-1");
}

#[tokio::test(start_paused = true)]
async fn cached_until_the_refresh_margin() {
    let r = rig("svc-margin", Duration::ZERO, "");
    enrol_expired(&r.store, ALICE, "pw");
    assert_eq!(
        grant(&r.svc, ALICE, "pw")
            .await
            .unwrap()
            .access_token
            .expose(),
        "AT-1"
    );
    tokio::time::advance(Duration::from_secs(44 * 60)).await;
    assert_eq!(
        grant(&r.svc, ALICE, "pw")
            .await
            .unwrap()
            .access_token
            .expose(),
        "AT-1"
    );
    assert_eq!(r.fake.refresh_count(), 1);
    tokio::time::advance(Duration::from_secs(2 * 60)).await;
    assert_eq!(
        grant(&r.svc, ALICE, "pw")
            .await
            .unwrap()
            .access_token
            .expose(),
        "AT-2"
    );
    assert_eq!(*r.fake.seen.lock().unwrap(), vec!["RT-enrol", "RT-1"]);
}

#[tokio::test(start_paused = true)]
async fn fresh_token_from_disk_is_used_without_refresh() {
    let r = rig("svc-disk", Duration::ZERO, "");
    crate::store::testutil::enrol(&r.store, ALICE, "ms", "pw", "RT-enrol");
    assert_eq!(
        grant(&r.svc, ALICE, "pw")
            .await
            .unwrap()
            .access_token
            .expose(),
        "AT-enrol"
    );
    assert_eq!(r.fake.refresh_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn temporary_failure_backs_off_then_recovers() {
    let r = rig("svc-temp", Duration::ZERO, "");
    let audit = Arc::new(crate::audit::AuditLog::new(r.dir.path()));
    r.svc.record_in(audit.clone());
    enrol_expired(&r.store, ALICE, "pw");
    r.fake.push(Err(OAuthError::Temporary {
        reason: "HTTP 503".into(),
        retry_after: Some(Duration::from_secs(5)),
    }));
    let e = grant(&r.svc, ALICE, "pw").await.unwrap_err();
    assert!(
        matches!(e, TokenError::Temporary { retry_after: Some(d), .. } if d == Duration::from_secs(5)),
        "{e:?}"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (state, err) = state_of(&r.store, ALICE);
    assert_eq!(state, AccountState::RefreshFailing);
    assert!(err.unwrap().contains("HTTP 503"));
    let events = audit.recent(10);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].what.starts_with("token refresh failing")
            && events[0].account.as_deref() == Some(ALICE)
    );
    let e = grant(&r.svc, ALICE, "pw").await.unwrap_err();
    assert!(matches!(e, TokenError::Temporary { .. }));
    assert_eq!(
        r.fake.refresh_count(),
        1,
        "hit the provider while backing off"
    );
    tokio::time::advance(Duration::from_secs(6)).await;
    let g = grant(&r.svc, ALICE, "pw").await.unwrap();
    assert_eq!(g.access_token.expose(), "AT-2");
    assert_eq!(state_of(&r.store, ALICE), (AccountState::Active, None));
}

#[tokio::test(start_paused = true)]
async fn rejected_grant_needs_login_until_re_enrolled() {
    let r = rig("svc-rejected", Duration::ZERO, "");
    let audit = Arc::new(crate::audit::AuditLog::new(r.dir.path()));
    r.svc.record_in(audit.clone());
    enrol_expired(&r.store, ALICE, "pw");
    r.fake.push(Err(OAuthError::Rejected {
        error: "invalid_grant".into(),
        aadsts: Some("700082".into()),
        description: "expired due to inactivity".into(),
    }));
    match grant(&r.svc, ALICE, "pw").await.unwrap_err() {
        TokenError::NeedsAuthorisation { account, hint } => {
            assert_eq!(account, ALICE);
            assert!(
                hint.contains("mailgate login alice@example.com --config /etc/mailgate.toml"),
                "{hint}"
            );
        }
        other => panic!("{other:?}"),
    }
    let (state, err) = state_of(&r.store, ALICE);
    assert_eq!(state, AccountState::NeedsLogin);
    assert!(err.unwrap().contains("AADSTS700082"));
    let events = audit.recent(10);
    assert!(
        events[0].what.starts_with("needs login") && events[0].account.as_deref() == Some(ALICE),
        "{events:?}"
    );
    assert!(matches!(
        grant(&r.svc, ALICE, "pw").await,
        Err(TokenError::NeedsAuthorisation { .. })
    ));
    assert_eq!(r.fake.refresh_count(), 1);
    enrol_expired(&r.store, ALICE, "pw");
    assert_eq!(
        grant(&r.svc, ALICE, "pw")
            .await
            .unwrap()
            .access_token
            .expose(),
        "AT-2"
    );
}

#[tokio::test(start_paused = true)]
async fn rejected_drops_only_the_same_token() {
    let r = rig("svc-drop", Duration::ZERO, "");
    enrol_expired(&r.store, ALICE, "pw");
    let g1 = grant(&r.svc, ALICE, "pw").await.unwrap();
    r.svc.rejected(&g1).await;
    let g2 = grant(&r.svc, ALICE, "pw").await.unwrap();
    assert_eq!(g2.access_token.expose(), "AT-2");
    r.svc.rejected(&g1).await;
    let g3 = grant(&r.svc, ALICE, "pw").await.unwrap();
    assert_eq!(g3.access_token.expose(), "AT-2");
    assert_eq!(r.fake.refresh_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn bad_passwords_never_reach_the_provider() {
    let r = rig("svc-badpw", Duration::ZERO, "");
    enrol_expired(&r.store, ALICE, "pw");
    let before = std::fs::read(record_path(r.dir.path(), ALICE)).unwrap();
    assert_eq!(
        grant(&r.svc, ALICE, "nope").await.unwrap_err(),
        TokenError::BadCredentials
    );
    assert_eq!(
        grant(&r.svc, "who@example.com", "pw").await.unwrap_err(),
        TokenError::BadCredentials
    );
    grant(&r.svc, ALICE, "pw").await.unwrap();
    assert_eq!(
        grant(&r.svc, ALICE, "nope").await.unwrap_err(),
        TokenError::BadCredentials
    );
    assert_eq!(r.fake.refresh_count(), 1);
    assert_ne!(
        std::fs::read(record_path(r.dir.path(), ALICE)).unwrap(),
        before
    );
}

#[tokio::test(start_paused = true)]
async fn re_login_changes_the_password() {
    let r = rig("svc-relogin", Duration::ZERO, "");
    enrol_expired(&r.store, ALICE, "old");
    grant(&r.svc, ALICE, "old").await.unwrap();
    enrol_expired(&r.store, ALICE, "new");
    assert_eq!(
        grant(&r.svc, ALICE, "old").await.unwrap_err(),
        TokenError::BadCredentials
    );
    let g = grant(&r.svc, ALICE, "new").await.unwrap();
    assert_eq!(g.access_token.expose(), "AT-2");
    assert_eq!(r.fake.seen.lock().unwrap()[1], "RT-enrol");
}

#[tokio::test(start_paused = true)]
async fn token_is_not_handed_out_unless_saved() {
    let r = rig("svc-save", Duration::ZERO, "");
    enrol_expired(&r.store, ALICE, "pw");
    let store = r.store.clone();
    *r.fake.during_refresh.lock().unwrap() = Some(Box::new(move || {
        crate::store::testutil::enrol(&store, ALICE, "ms", "pw", "RT-relogin");
    }));
    let e = grant(&r.svc, ALICE, "pw").await.unwrap_err();
    assert!(matches!(e, TokenError::Temporary { .. }), "{e:?}");
    let u = r.store.unlock(&name(ALICE), &Secret::from("pw")).unwrap();
    assert_eq!(u.tokens.refresh_token.expose(), "RT-relogin");
}

#[tokio::test(start_paused = true)]
async fn app_only_rules_share_one_client_credentials_token() {
    let r = rig("svc-app", Duration::ZERO, "");
    let g = grant(&r.svc, "archiver", "app-pw").await.unwrap();
    assert_eq!(
        (g.sasl_user.as_str(), g.access_token.expose().as_str()),
        ("archive@example.com", "APP-1")
    );
    assert_eq!(
        grant(&r.svc, "archiver", "wrong").await.unwrap_err(),
        TokenError::BadCredentials
    );
    let g = grant(&r.svc, "Bob@apps.example", "domain-pw")
        .await
        .unwrap();
    assert_eq!(g.sasl_user, "Bob@apps.example");
    assert_eq!(g.access_token.expose(), "APP-1");
    assert_eq!(
        grant(&r.svc, "bob@apps.example", "app-pw")
            .await
            .unwrap_err(),
        TokenError::BadCredentials
    );
    assert_eq!(r.fake.client_credentials.load(Ordering::SeqCst), 1);
    assert_eq!(r.fake.refresh_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn shared_mailbox_uses_the_delegates_token() {
    let r = rig("svc-shared", Duration::ZERO, "");
    enrol_expired(&r.store, ALICE, "pw");
    crate::store::testutil::enrol(&r.store, "bob@example.com", "ms", "bobpw", "RT-bob");
    let g = grant(&r.svc, "shared@example.com", "pw").await.unwrap();
    assert_eq!(
        (g.account.as_str(), g.sasl_user.as_str()),
        (ALICE, "shared@example.com")
    );
    let g = grant_as(&r.svc, "shared@example.com", None, "pw", Protocol::Smtp)
        .await
        .unwrap();
    assert_eq!(g.sasl_user, ALICE);
    assert_eq!(
        grant(&r.svc, "shared@example.com", "bobpw")
            .await
            .unwrap_err(),
        TokenError::BadCredentials
    );
    let g = grant_as(
        &r.svc,
        ALICE,
        Some("shared@example.com"),
        "pw",
        Protocol::Pop3,
    )
    .await
    .unwrap();
    assert_eq!(g.sasl_user, "shared@example.com");
    for (user, z) in [
        (ALICE, "other@example.com"),
        ("bob@example.com", "shared@example.com"),
    ] {
        let pw = if user == ALICE { "pw" } else { "bobpw" };
        let e = grant_as(&r.svc, user, Some(z), pw, Protocol::Imap)
            .await
            .unwrap_err();
        assert_eq!(e, TokenError::BadCredentials, "{user} as {z}");
    }
    assert_eq!(r.fake.refresh_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn keep_warm_refreshes_idle_unlocked_accounts() {
    let r = rig("svc-warm", Duration::ZERO, "keep_warm_interval_secs = 3600");
    enrol_expired(&r.store, ALICE, "pw");
    grant(&r.svc, ALICE, "pw").await.unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = r.svc.spawn_keep_warm(rx);
    tokio::time::sleep(Duration::from_secs(30 * 60)).await;
    assert_eq!(r.fake.refresh_count(), 1);
    tokio::time::sleep(Duration::from_secs(35 * 60)).await;
    assert_eq!(r.fake.refresh_count(), 2);
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    let u = r.store.unlock(&name(ALICE), &Secret::from("pw")).unwrap();
    assert_eq!(u.tokens.refresh_token.expose(), "RT-2");
}

#[tokio::test(start_paused = true)]
async fn machine_wrap_refreshes_after_a_restart_without_logins() {
    let r = rig(
        "svc-machine",
        Duration::ZERO,
        "machine_key_wrap = true\nkeep_warm_interval_secs = 600",
    );
    let wrapping = r.store.clone().with_machine_wrap(vec!["ms".into()]);
    enrol_expired(&wrapping, ALICE, "pw");
    let path = record_path(r.dir.path(), ALICE);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let two_hours_ago = crate::store::record::to_unix(SystemTime::now()) - 7200;
    v["last_refresh"] = two_hours_ago.into();
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = r.svc.spawn_keep_warm(rx);
    tokio::time::sleep(Duration::from_secs(11 * 60)).await;
    assert_eq!(r.fake.refresh_count(), 1);
    assert_eq!(r.svc.unlocked_count().await, 1);
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        grant(&r.svc, ALICE, "nope").await.unwrap_err(),
        TokenError::BadCredentials
    );
    assert_eq!(
        grant(&r.svc, ALICE, "pw")
            .await
            .unwrap()
            .access_token
            .expose(),
        "AT-1"
    );
}
