use super::*;
use crate::store::AccountState;
use crate::store::testutil::{TEST_KDF, TempDir, config, enrol, test_store};

#[tokio::test]
async fn hash_password_gives_a_verifiable_phc_string() {
    let phc = Admin::hash_password(Secret::new("s3cret pass".to_owned()))
        .await
        .unwrap();
    let phc = phc.expose();
    assert!(phc.starts_with("$argon2id$v=19$m=65536,t=3,p=1$"), "{phc}");
    assert!(!phc.contains("s3cret"));
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let parsed = PasswordHash::new(phc).unwrap();
    let argon = argon2::Argon2::default();
    assert!(argon.verify_password(b"s3cret pass", &parsed).is_ok());
    assert!(argon.verify_password(b"s3cret pass\r", &parsed).is_err());
}

#[test]
fn hash_password_salts_and_rejects_bad_input() {
    let a = password::hash("pw", TEST_KDF).unwrap();
    let b = password::hash("pw", TEST_KDF).unwrap();
    assert_ne!(a.expose(), b.expose());
    assert!(matches!(
        password::hash("", TEST_KDF),
        Err(AdminError::EmptyPassword)
    ));
    let long = "x".repeat(MAX_PASSWORD_LEN + 2);
    assert!(matches!(
        password::hash(&long, TEST_KDF),
        Err(AdminError::PasswordTooLong)
    ));
}

#[tokio::test]
async fn accounts_are_listed_as_data_and_signed_out() {
    let dir = TempDir::new("admin-service");
    let admin = Admin::new(Arc::new(config(dir.path(), "")));
    assert!(admin.accounts().await.unwrap().is_empty());
    enrol(
        &test_store(dir.path()),
        "carol@example.com",
        "ms",
        "pw",
        "RT-carol",
    );
    let list = admin.accounts().await.unwrap();
    let [carol] = list.as_slice() else {
        panic!("{list:?}")
    };
    assert_eq!(
        (carol.account.as_str(), carol.provider.as_str()),
        ("carol@example.com", "ms")
    );
    assert_eq!(carol.state, AccountState::Active);
    assert!(matches!(
        admin.logout("dave@example.com").await,
        Err(AdminError::UnknownAccount(a)) if a == "dave@example.com"
    ));
    admin.logout("CAROL@example.com").await.unwrap();
    assert!(admin.accounts().await.unwrap().is_empty());
}

#[test]
fn a_server_can_call_the_service_from_any_task() {
    fn send<T: Send + 'static>(_: &T) {}
    let calls = |admin: &'static Admin, request: crate::enrol::EnrolRequest| {
        send(&admin.accounts());
        send(&admin.logout("someone@example.com"));
        send(&admin.start_enrolment(request));
        send(&Admin::hash_password(Secret::new(String::new())));
    };
    let _ = calls;
}
