use std::time::Instant;

use super::*;
use crate::token::crypto::KdfParams;
use crate::token::testutil::{TEST_KDF, TempDir, config, enrol};

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

fn delegated(account: &str, mailbox: Option<&str>) -> Result<Target, TokenError> {
    Ok(Target::Delegated {
        account: account.into(),
        mailbox: mailbox.map(Into::into),
    })
}

type Case = (
    &'static str,
    Option<&'static str>,
    Protocol,
    Result<Target, TokenError>,
);

#[test]
fn resolution_table() {
    let r = rules();
    let app = |rule: &str, mailbox: &str| match resolve(&r, rule, None, Protocol::Imap) {
        Ok(Target::AppOnly {
            rule: got,
            mailbox: m,
            ..
        }) => (got, m) == (rule.into(), mailbox.into()),
        _ => false,
    };
    assert!(app("archiver", "archive@example.com"));
    let wild = resolve(&r, "Eve@APPS.example", None, Protocol::Pop3);
    assert!(
        matches!(wild, Ok(Target::AppOnly { ref rule, ref mailbox, .. })
        if rule == "*@apps.example" && mailbox == "Eve@APPS.example"),
        "{wild:?}"
    );
    let exact = resolve(&r, "special@apps.example", None, Protocol::Imap);
    assert!(
        matches!(exact, Ok(Target::AppOnly { ref rule, ref mailbox, .. })
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
            Err(TokenError::BadCredentials),
        ),
        (
            "alice@example.com",
            Some("archiver"),
            Protocol::Imap,
            Err(TokenError::BadCredentials),
        ),
    ];
    for (user, z, proto, want) in cases {
        assert_eq!(resolve(&r, user, z, proto), want, "{user} {z:?} {proto:?}");
    }
    assert_eq!(
        resolve(
            &r,
            "alice@example.com",
            Some("alice@example.com"),
            Protocol::Imap
        ),
        delegated("alice@example.com", None)
    );
    assert_eq!(
        resolve(&r, "x@y", Some(""), Protocol::Imap),
        delegated("x@y", None)
    );
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
    let first = accounts.unlock("alice@example.com", &pw).await.unwrap();
    let first_cost = t.elapsed();
    let t = Instant::now();
    let warm = accounts.unlock("alice@example.com", &pw).await.unwrap();
    let warm_cost = t.elapsed();
    let t = Instant::now();
    let bad = accounts.unlock("alice@example.com", &wrong).await;
    let wrong_cost = t.elapsed();
    let t = Instant::now();
    let unknown = accounts.unlock("nobody@example.com", &pw).await;
    let unknown_cost = t.elapsed();
    println!(
        "argon2id m={} KiB t={} p={}: first login {first_cost:?}, warm login {warm_cost:?}, \
         wrong password {wrong_cost:?}, unknown account {unknown_cost:?}",
        kdf.m_kib, kdf.t, kdf.p
    );
    assert_eq!(first.tokens.refresh_token.expose(), "RT-1");
    assert_eq!(warm.record.key_id, first.record.key_id);
    assert_eq!(bad.unwrap_err(), TokenError::BadCredentials);
    assert_eq!(unknown.unwrap_err(), TokenError::BadCredentials);
    assert_eq!(
        accounts.slots.lock().unwrap().len(),
        1,
        "unknown names must not fill memory"
    );
    assert!(accounts.unlock("alice@example.com", &pw).await.is_ok());
}

#[tokio::test]
async fn app_password_is_checked_against_the_phc_string() {
    let dir = TempDir::new("acct-app");
    let accounts =
        Accounts::new(&config(dir.path(), ""), Store::open(dir.path()).unwrap()).unwrap();
    let Ok(Target::AppOnly {
        rule,
        password_hash,
        ..
    }) = accounts.resolve("archiver", None, Protocol::Imap)
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
    assert_eq!(e, Err(TokenError::BadCredentials));
    let e = accounts
        .check_app_password(&rule, "$argon2id$garbage", &ok)
        .await;
    assert_eq!(e, Err(TokenError::BadCredentials));
}
