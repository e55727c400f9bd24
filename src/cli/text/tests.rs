use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::admin::{Admin, AdminError};
use crate::cli::run::hash_password;
use crate::enrol::{EnrolError, local_password};
use crate::store::AccountState;
use crate::store::testutil::{TempDir, config, enrol, name, test_store};

#[test]
fn stdin_password_is_trimmed_and_never_empty() {
    let read = |s: &[u8]| {
        local_password(
            password_line(&mut io::Cursor::new(s.to_vec()))
                .unwrap()
                .expose(),
        )
    };
    assert_eq!(read(b"s3cret\n").unwrap().expose(), "s3cret");
    assert_eq!(read(b"s3cret\r\nnext").unwrap().expose(), "s3cret");
    assert_eq!(read(b"no newline").unwrap().expose(), "no newline");
    assert_eq!(read(b" spaced \n").unwrap().expose(), " spaced ");
    assert!(matches!(read(b"\n"), Err(EnrolError::Password(_))));
    assert!(matches!(read(b""), Err(EnrolError::Password(_))));
    assert!(matches!(read(&[b'x'; 2000]), Err(EnrolError::Password(_))));
    assert!(matches!(read(b"\xff\xfe\n"), Err(EnrolError::Password(_))));
}

#[tokio::test]
async fn hash_password_prints_a_verifiable_phc_string() {
    let mut out = Vec::new();
    hash_password(&mut &b"s3cret pass\r\n"[..], &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let phc = text.trim_end();
    assert!(phc.starts_with("$argon2id$v=19$m=65536,t=3,p=1$"), "{phc}");
    assert!(text.ends_with('\n') && !phc.contains("s3cret"));
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let parsed = PasswordHash::new(phc).unwrap();
    let argon = argon2::Argon2::default();
    assert!(argon.verify_password(b"s3cret pass", &parsed).is_ok());
    assert!(argon.verify_password(b"s3cret pass\r", &parsed).is_err());
}

#[tokio::test]
async fn hash_password_rejects_bad_input() {
    let mut out = Vec::new();
    assert!(matches!(
        hash_password(&mut &b"\n"[..], &mut out).await,
        Err(CliError::Admin(AdminError::EmptyPassword))
    ));
    let long = vec![b'x'; MAX_PASSWORD_LEN + 5];
    assert!(matches!(
        hash_password(&mut &long[..], &mut out).await,
        Err(CliError::Admin(AdminError::PasswordTooLong))
    ));
    assert!(matches!(
        hash_password(&mut &b"\xff\n"[..], &mut out).await,
        Err(CliError::NotUtf8)
    ));
    assert!(out.is_empty());
}

async fn table(admin: &Admin) -> String {
    let mut out = Vec::new();
    let list = admin.accounts().await.unwrap();
    write_table(&list, SystemTime::now(), &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn accounts_table_and_logout() {
    let dir = TempDir::new("admin");
    let admin = Admin::new(Arc::new(config(dir.path(), "")));
    assert!(table(&admin).await.starts_with("no accounts enrolled"));
    let store = test_store(dir.path());
    enrol(&store, "alice@example.com", "ms", "pw", "RT-alice-secret");
    enrol(&store, "bob@example.com", "ms", "pw", "RT-bob-secret");
    store
        .set_state(
            &name("bob@example.com"),
            None,
            AccountState::NeedsLogin,
            Some("invalid_grant (AADSTS700082): idle"),
        )
        .unwrap();
    let text = table(&admin).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("ACCOUNT") && lines[0].contains("LAST ERROR"));
    assert!(lines[1].starts_with("alice@example.com") && lines[1].contains(" active "));
    assert!(lines[1].contains("never"));
    assert!(lines[2].contains("needs-login") && lines[2].ends_with("AADSTS700082): idle"));
    assert!(!text.contains("RT-"));
    admin.logout("Bob@example.com").await.unwrap();
    assert!(matches!(
        admin.logout("bob@example.com").await,
        Err(AdminError::UnknownAccount(_))
    ));
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn utc_formatting() {
    assert_eq!(utc(SystemTime::UNIX_EPOCH), "1970-01-01 00:00Z");
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_834_620);
    assert_eq!(utc(t), "2026-11-28 02:57Z");
    let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
    assert_eq!(utc(leap), "2000-02-29 00:00Z");
}

#[test]
fn switched_mailboxes_are_listed_with_their_expiry() {
    let dir = TempDir::new("switched");
    let switched = crate::submit::switched::Switched::in_dir(dir.path());
    switched.insert(&name("alice@example.com"));
    let now = SystemTime::now();
    let list = crate::submit::switched::read(dir.path(), now).unwrap();
    let mut out = Vec::new();
    write_switched(&list, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let until = utc(now + crate::submit::switched::REMEMBER);
    assert!(
        text.starts_with("alice@example.com: smtp auth disabled \u{2192} graph until "),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with(&until) || text.contains(&until[..13]),
        "{text} vs {until}"
    );
}
