use std::time::Instant;

use super::*;
use crate::config::AccountKind;
use crate::store::KdfParams;
use crate::store::testutil::{TEST_KDF, TempDir, config, enrol, name};

fn rules() -> Vec<AccountRule> {
    let dir = TempDir::new("acct-rules");
    let mut c = config(dir.path(), "");
    c.accounts.push(AccountRule {
        login: "special@apps.example".into(),
        provider: None,
        kind: AccountKind::AppOnly {
            password_hash: "$argon2id$special".into(),
            mailbox: Some("target@example.com".into()),
        },
    });
    c.accounts
}

fn delegated(account: &str, mailbox: Option<&str>) -> Result<Resolved, AccountError> {
    Ok(Resolved::Delegated {
        account: name(account),
        mailbox: mailbox.map(Into::into),
    })
}

type Case = (
    &'static str,
    Option<&'static str>,
    Protocol,
    Result<Resolved, AccountError>,
);

#[test]
fn resolution_table() {
    let r = rules();
    let app = |rule: &str, mailbox: &str| match resolve(&r, &name(rule), None, Protocol::Imap) {
        Ok(Resolved::AppOnly {
            rule: got,
            mailbox: m,
            ..
        }) => (got, m) == (rule.into(), mailbox.into()),
        _ => false,
    };
    assert!(app("archiver", "archive@example.com"));
    let wild = resolve(&r, &name("Eve@APPS.example"), None, Protocol::Pop3);
    assert!(
        matches!(wild, Ok(Resolved::AppOnly { ref rule, ref mailbox, .. })
        if rule == "*@apps.example" && mailbox == "Eve@APPS.example"),
        "{wild:?}"
    );
    let exact = resolve(&r, &name("special@apps.example"), None, Protocol::Imap);
    assert!(
        matches!(exact, Ok(Resolved::AppOnly { ref rule, ref mailbox, .. })
        if rule == "special@apps.example" && mailbox == "target@example.com"),
        "{exact:?}"
    );

    let cases: [Case; 8] = [
        (
            "alice@example.com",
            None,
            Protocol::Imap,
            delegated("alice@example.com", None),
        ),
        (
            "shared@example.com",
            None,
            Protocol::Imap,
            delegated("alice@example.com", Some("shared@example.com")),
        ),
        (
            "shared@example.com",
            None,
            Protocol::Pop3,
            delegated("alice@example.com", Some("shared@example.com")),
        ),
        (
            "shared@example.com",
            None,
            Protocol::Smtp,
            delegated("alice@example.com", None),
        ),
        (
            "alice@example.com",
            Some("shared@example.com"),
            Protocol::Imap,
            delegated("alice@example.com", Some("shared@example.com")),
        ),
        (
            "alice@example.com",
            Some("SHARED@example.com"),
            Protocol::Smtp,
            delegated("alice@example.com", None),
        ),
        (
            "bob@example.com",
            Some("shared@example.com"),
            Protocol::Imap,
            Err(AccountError::BadCredentials),
        ),
        (
            "alice@example.com",
            Some("archiver"),
            Protocol::Imap,
            Err(AccountError::BadCredentials),
        ),
    ];
    for (user, z, proto, want) in cases {
        let got = resolve(&r, &name(user), z, proto);
        assert_eq!(got, want, "{user} {z:?} {proto:?}");
    }
    assert_eq!(
        resolve(
            &r,
            &name("alice@example.com"),
            Some("alice@example.com"),
            Protocol::Imap
        ),
        delegated("alice@example.com", None)
    );
    assert_eq!(
        resolve(&r, &name("x@y"), Some(""), Protocol::Imap),
        delegated("x@y", None)
    );
}

#[test]
fn rules_match_every_spelling_of_a_name() {
    let mut r = rules();
    r.push(AccountRule {
        login: "*@kelvin.example".into(),
        provider: None,
        kind: AccountKind::Shared {
            delegate: "Alice@Example.com".into(),
        },
    });
    let got = resolve(&r, &name("bob@\u{212A}ELVIN.example"), None, Protocol::Smtp);
    assert_eq!(got, delegated("alice@example.com", None));
    let got = resolve(&r, &name("SHARED@Example.COM"), None, Protocol::Imap);
    assert_eq!(
        got,
        delegated("alice@example.com", Some("SHARED@Example.COM"))
    );
}

/// The XOAUTH2 `user=` a rule sends stays within the rule: a `*@domain`
/// rule's inside the domain, a shared rule's exactly the shared address
/// (ASCII case aside). A name that only folds into the rule, such as one
/// spelled with U+212A KELVIN SIGN where the rule has `k`, would otherwise be
/// sent upstream as spelled: another address to the provider.
#[test]
fn the_user_sent_upstream_stays_within_the_rule() {
    let mut r = rules();
    let app_only = |login: &str, mailbox: Option<&str>| AccountRule {
        login: login.into(),
        provider: None,
        kind: AccountKind::AppOnly {
            password_hash: "$argon2id$x".into(),
            mailbox: mailbox.map(Into::into),
        },
    };
    r.push(app_only("*@kelvin.example", None));
    r.push(app_only("*@wild.example", Some("boss@elsewhere.example")));
    r.push(app_only("kate@apps.example", None));
    r.push(AccountRule {
        login: "kate@example.com".into(),
        provider: None,
        kind: AccountKind::Shared {
            delegate: "alice@example.com".into(),
        },
    });
    r.push(AccountRule {
        login: "*@team.example".into(),
        provider: None,
        kind: AccountKind::Shared {
            delegate: "alice@example.com".into(),
        },
    });
    let mailbox = |login: &str, z: Option<&str>, p: Protocol| match resolve(&r, &name(login), z, p)
    {
        Ok(Resolved::AppOnly { mailbox, .. }) => Ok(Some(mailbox)),
        Ok(Resolved::Delegated { mailbox, .. }) => Ok(mailbox),
        Err(e) => Err(e),
    };
    let some = |m: &str| Ok(Some(m.to_owned()));
    let refused = Err(AccountError::BadCredentials);
    for (login, z, protocol, want) in [
        (
            "Eve@KELVIN.example",
            None,
            Protocol::Imap,
            some("Eve@KELVIN.example"),
        ),
        (
            "eve@\u{212A}elvin.example",
            None,
            Protocol::Imap,
            refused.clone(),
        ),
        ("x@wild.example", None, Protocol::Imap, refused.clone()),
        (
            "KATE@apps.example",
            None,
            Protocol::Pop3,
            some("KATE@apps.example"),
        ),
        (
            "\u{212A}ate@apps.example",
            None,
            Protocol::Pop3,
            refused.clone(),
        ),
        (
            "KATE@example.com",
            None,
            Protocol::Imap,
            some("KATE@example.com"),
        ),
        (
            "\u{212A}ate@example.com",
            None,
            Protocol::Imap,
            refused.clone(),
        ),
        ("\u{212A}ate@example.com", None, Protocol::Smtp, Ok(None)),
        (
            "alice@example.com",
            Some("Kate@example.com"),
            Protocol::Imap,
            some("Kate@example.com"),
        ),
        (
            "alice@example.com",
            Some("\u{212A}ate@example.com"),
            Protocol::Pop3,
            refused.clone(),
        ),
        (
            "Bo@Team.Example",
            None,
            Protocol::Imap,
            some("Bo@Team.Example"),
        ),
        (
            "bo@team.example",
            Some("\u{212A}@team.example"),
            Protocol::Imap,
            refused.clone(),
        ),
        // Any local part is inside the domain, however it is spelled.
        (
            "alice@example.com",
            Some("\u{212A}@team.example"),
            Protocol::Imap,
            some("\u{212A}@team.example"),
        ),
        (
            "alice@example.com",
            Some("k@\u{212A}team.example"),
            Protocol::Imap,
            refused.clone(),
        ),
        (
            "alice@example.com",
            Some("k@team.example"),
            Protocol::Imap,
            some("k@team.example"),
        ),
    ] {
        assert_eq!(
            mailbox(login, z, protocol),
            want,
            "{login} {z:?} {protocol:?}"
        );
    }
}

#[tokio::test]
async fn warm_login_skips_argon2_and_still_checks_the_password() {
    let kdf = if cfg!(debug_assertions) {
        TEST_KDF
    } else {
        KdfParams::DEFAULT
    };
    let dir = TempDir::new("acct-warm");
    let store = Store::open(dir.path()).unwrap().with_kdf(kdf);
    enrol(&store, "alice@example.com", "ms", "pw", "RT-1");
    let accounts = Accounts::new(&config(dir.path(), ""), store.clone()).unwrap();
    let (pw, wrong) = (Secret::from("pw"), Secret::from("wrong"));

    let t = Instant::now();
    let (alice, nobody) = (name("alice@example.com"), name("nobody@example.com"));
    let first = accounts.unlock(&alice, &pw).await.unwrap();
    let first_cost = t.elapsed();
    let t = Instant::now();
    let warm = accounts.unlock(&alice, &pw).await.unwrap();
    let warm_cost = t.elapsed();
    let t = Instant::now();
    let bad = accounts.unlock(&alice, &wrong).await;
    let wrong_cost = t.elapsed();
    let t = Instant::now();
    let unknown = accounts.unlock(&nobody, &pw).await;
    let unknown_cost = t.elapsed();
    println!(
        "argon2id m={} KiB t={} p={}: first login {first_cost:?}, warm login {warm_cost:?}, \
         wrong password {wrong_cost:?}, unknown account {unknown_cost:?}",
        kdf.m_kib, kdf.t, kdf.p
    );
    assert_eq!(first.tokens.refresh_token.expose(), "RT-1");
    assert_eq!(warm.record.key_id, first.record.key_id);
    assert_eq!(bad.unwrap_err(), AccountError::BadCredentials);
    assert_eq!(unknown.unwrap_err(), AccountError::BadCredentials);
    assert_eq!(
        accounts.entries.lock().unwrap().len(),
        1,
        "unknown names must not fill memory"
    );
    assert!(accounts.unlock(&alice, &pw).await.is_ok());
}

#[tokio::test]
async fn app_password_is_checked_against_the_phc_string() {
    let dir = TempDir::new("acct-app");
    let accounts =
        Accounts::new(&config(dir.path(), ""), Store::open(dir.path()).unwrap()).unwrap();
    let Ok(Resolved::AppOnly {
        rule,
        password_hash,
        ..
    }) = accounts.resolve(&name("archiver"), None, Protocol::Imap)
    else {
        panic!("archiver is app-only");
    };
    let ok = Secret::from("app-pw");
    for _ in 0..2 {
        accounts
            .check_app_password(&rule, &password_hash, &ok)
            .await
            .unwrap();
    }
    let e = accounts
        .check_app_password(&rule, &password_hash, &Secret::from("x"))
        .await;
    assert_eq!(e, Err(AccountError::BadCredentials));
    let e = accounts
        .check_app_password(&rule, "$argon2id$garbage", &ok)
        .await;
    assert_eq!(e, Err(AccountError::BadCredentials));
}

/// A stand-in derivation that records how many run at once.
fn counted(
    running: &Arc<std::sync::atomic::AtomicUsize>,
    peak: &Arc<std::sync::atomic::AtomicUsize>,
    cost: std::time::Duration,
) -> impl FnOnce() + Send + 'static {
    use std::sync::atomic::Ordering::SeqCst;
    let (running, peak) = (running.clone(), peak.clone());
    move || {
        let now = running.fetch_add(1, SeqCst) + 1;
        peak.fetch_max(now, SeqCst);
        std::thread::sleep(cost);
        running.fetch_sub(1, SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_checks_never_exceed_the_derivation_cap() {
    let dir = TempDir::new("acct-kdf-cap");
    let accounts =
        Arc::new(Accounts::new(&config(dir.path(), ""), Store::open(dir.path()).unwrap()).unwrap());
    let (running, peak) = (Arc::default(), Arc::default());
    let cost = std::time::Duration::from_millis(300);
    for _round in 0..3 {
        let mut tasks = Vec::new();
        for _ in 0..2 * MAX_CONCURRENT_KDF {
            let (a, f) = (accounts.clone(), counted(&running, &peak, cost));
            tasks.push(tokio::spawn(async move {
                let _ = tokio::time::timeout(
                    std::time::Duration::from_millis(20),
                    a.blocking_kdf(Lane::Known, f),
                )
                .await;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    tokio::time::sleep(cost * 8).await;
    let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
    assert!(peak <= MAX_CONCURRENT_KDF, "{peak} derivations ran at once");
    assert!(
        accounts.kdf_peak() <= KNOWN_KDF,
        "the pool's own count agrees"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_names_and_guesses_does_not_starve_a_known_account() {
    let dir = TempDir::new("acct-kdf-fair");
    let accounts =
        Arc::new(Accounts::new(&config(dir.path(), ""), Store::open(dir.path()).unwrap()).unwrap());
    let (running, peak) = (Arc::default(), Arc::default());
    let cost = std::time::Duration::from_millis(50);
    let flood: Vec<_> = (0..40)
        .map(|i| {
            let (a, f) = (accounts.clone(), counted(&running, &peak, cost));
            let lane = if i % 2 == 0 {
                Lane::Unknown
            } else {
                Lane::Suspect
            };
            tokio::spawn(async move { a.blocking_kdf(lane, f).await })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    let t = Instant::now();
    accounts
        .blocking_kdf(Lane::Known, counted(&running, &peak, cost))
        .await
        .unwrap();
    let waited = t.elapsed();
    assert!(
        waited < cost * 4,
        "a known account's check waited {waited:?} behind the flood"
    );
    for f in flood {
        f.await.unwrap().unwrap();
    }
    let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
    assert!(peak <= MAX_CONCURRENT_KDF, "{peak} derivations ran at once");
}

#[test]
fn a_recent_failure_sends_checks_to_the_suspect_lane() {
    let now = std::time::Instant::now();
    assert_eq!(lane_after(None), Lane::Known);
    assert_eq!(lane_after(Some(now)), Lane::Suspect);
    if let Some(long_ago) = now.checked_sub(SUSPECT_WINDOW * 2) {
        assert_eq!(lane_after(Some(long_ago)), Lane::Known);
    }
}

/// A file store that can be made unreachable, like a stopped database:
/// `down` fails every read; `moved` reports a newer stamp than the file's
/// (another instance saved the record) while `load` still fails.
#[derive(Debug)]
struct Outage {
    inner: crate::store::FileStore,
    down: std::sync::atomic::AtomicBool,
    moved: std::sync::atomic::AtomicBool,
}

impl Outage {
    fn unreachable<T>(&self) -> Result<T, StoreError> {
        Err(StoreError::Unavailable {
            reason: "the database did not answer in time".to_owned(),
        })
    }

    fn is(&self, flag: &std::sync::atomic::AtomicBool) -> bool {
        flag.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl crate::store::TokenStore for Outage {
    fn load(&self, account: &AccountName) -> Result<Option<crate::store::Record>, StoreError> {
        if self.is(&self.down) || self.is(&self.moved) {
            return self.unreachable();
        }
        self.inner.load(account)
    }
    fn stamp(&self, account: &AccountName) -> Result<Option<Stamp>, StoreError> {
        if self.is(&self.down) {
            return self.unreachable();
        }
        if self.is(&self.moved) {
            return Ok(Some(Stamp::from_version(u64::MAX)));
        }
        self.inner.stamp(account)
    }
    fn list(&self) -> Result<Vec<crate::store::Record>, StoreError> {
        self.inner.list()
    }
    fn lease(&self, account: &AccountName) -> Result<crate::store::Lease, StoreError> {
        self.inner.lease(account)
    }
    fn save(
        &self,
        lease: &crate::store::Lease,
        record: &crate::store::Record,
    ) -> Result<(), StoreError> {
        self.inner.save(lease, record)
    }
    fn remove(
        &self,
        lease: &crate::store::Lease,
        account: &AccountName,
    ) -> Result<bool, StoreError> {
        self.inner.remove(lease, account)
    }
    fn machine_key(&self) -> Result<crate::store::Key, StoreError> {
        self.inner.machine_key()
    }
    fn location(&self, account: &AccountName) -> std::path::PathBuf {
        self.inner.location(account)
    }
}

/// docs/design.md, "Shared token store": an account unlocked here with this
/// very password keeps logging in while the store cannot be reached; any
/// other login gets the temporary answer, never "wrong password".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_account_logs_in_while_the_store_is_unreachable_and_nobody_else_does() {
    use std::sync::atomic::Ordering::SeqCst;
    let dir = TempDir::new("acct-outage");
    let outage = Arc::new(Outage {
        inner: crate::store::FileStore::open(dir.path()).unwrap(),
        down: Default::default(),
        moved: Default::default(),
    });
    let store = Store::new(outage.clone()).with_kdf(TEST_KDF);
    enrol(&store, "alice@example.com", "ms", "pw", "RT-1");
    enrol(&store, "bob@example.com", "ms", "pw", "RT-2");
    let accounts = Accounts::new(&config(dir.path(), ""), store).unwrap();
    let (alice, bob) = (name("alice@example.com"), name("bob@example.com"));
    let (pw, wrong) = (Secret::from("pw"), Secret::from("wrong"));
    let first = accounts.unlock(&alice, &pw).await.unwrap();

    outage.down.store(true, SeqCst);
    let warm = accounts.unlock(&alice, &pw).await.unwrap();
    assert_eq!(warm.record.key_id, first.record.key_id);
    for (who, password) in [(&alice, &wrong), (&bob, &pw)] {
        let refused = accounts.unlock(who, password).await.unwrap_err();
        assert!(
            matches!(refused, AccountError::Temporary(_)),
            "{who}: {refused:?}"
        );
    }

    outage.down.store(false, SeqCst);
    outage.moved.store(true, SeqCst);
    let moved = accounts.unlock(&alice, &pw).await.unwrap();
    assert_eq!(moved.record.key_id, first.record.key_id);

    outage.moved.store(false, SeqCst);
    assert!(accounts.unlock(&bob, &pw).await.is_ok());
    assert_eq!(
        accounts.unlock(&alice, &wrong).await.unwrap_err(),
        AccountError::BadCredentials
    );
}
