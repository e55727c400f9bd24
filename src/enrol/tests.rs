use super::*;

fn config(providers: &[&str]) -> Config {
    let mut text = String::new();
    for p in providers {
        text.push_str(&format!(
            "[[providers]]\nname = \"{p}\"\nkind = \"microsoft\"\nclient_id = \"c\"\n\n"
        ));
    }
    text.push_str(
        "[[accounts]]\nlogin = \"app@example.test\"\nkind = \"app-only\"\n\
         password_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\"\n\n\
         [[accounts]]\nlogin = \"shared@example.test\"\nkind = \"shared\"\ndelegate = \"boss@example.test\"\n",
    );
    crate::config::parse(&text, "test.toml", std::path::Path::new(".")).expect("test config")
}

#[test]
fn provider_is_the_named_or_the_only_one() {
    let one = config(&["ms"]);
    assert_eq!(
        choose_provider(&one, "a@example.test", None).unwrap().name,
        "ms"
    );
    assert!(matches!(
        choose_provider(&one, "a@example.test", Some("nope")),
        Err(EnrolError::UnknownProvider(p)) if p == "nope"
    ));
    let two = config(&["ms", "gov"]);
    assert!(matches!(
        choose_provider(&two, "a@example.test", None),
        Err(EnrolError::AmbiguousProvider(l)) if l == "ms, gov"
    ));
    assert_eq!(
        choose_provider(&two, "a@example.test", Some("gov"))
            .unwrap()
            .name,
        "gov"
    );
    assert!(matches!(
        choose_provider(&config(&[]), "a@example.test", None),
        Err(EnrolError::NoProvider)
    ));
}

#[test]
fn app_only_and_shared_accounts_are_sent_elsewhere() {
    let c = config(&["ms"]);
    assert!(matches!(
        choose_provider(&c, "app@example.test", None),
        Err(EnrolError::AppOnly(_))
    ));
    let err = choose_provider(&c, "shared@example.test", None).unwrap_err();
    assert!(
        err.to_string().contains("mailgate login boss@example.test"),
        "{err}"
    );
}

#[test]
fn explicit_flags_choose_the_flow() {
    assert_eq!(choose_flow(true, false), Flow::Browser);
    assert_eq!(choose_flow(false, true), Flow::Device);
}

#[test]
fn given_passwords_are_checked() {
    assert_eq!(local_password(b"s3cret").unwrap().expose(), "s3cret");
    assert_eq!(local_password(b" spaced ").unwrap().expose(), " spaced ");
    assert!(matches!(local_password(b""), Err(EnrolError::Password(_))));
    assert!(matches!(
        local_password(&[b'x'; MAX_PASSWORD_LEN + 1]),
        Err(EnrolError::Password(_))
    ));
    assert!(matches!(
        local_password(b"\xff\xfe"),
        Err(EnrolError::Password(_))
    ));
}

#[test]
fn a_pending_enrolment_can_be_finished_on_another_task() {
    fn send<T: Send + 'static>(_: &T) {}
    let finish = |p: PendingEnrolment| send(&p.finish());
    let begin = |c: &'static Config, r: EnrolRequest| send(&start(c, r));
    let _ = (finish, begin);
}

fn signed_in(id_claims: Option<serde_json::Value>, access_token: &str) -> SignedIn {
    use base64::Engine;
    let jwt = |claims: serde_json::Value| {
        let part = |v: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.sig",
            part(&serde_json::json!({"alg": "none"})),
            part(&claims)
        )
    };
    SignedIn {
        tokens: crate::oauth::TokenResponse {
            access_token: Secret::from(access_token),
            refresh_token: Some(Secret::from("rt")),
            expires_in: std::time::Duration::from_secs(3600),
            expires_in_assumed: false,
        },
        id_token: id_claims.map(|c| Secret::new(jwt(c))),
    }
}

#[test]
fn the_signed_in_user_must_be_the_account_or_its_mailbox() {
    let as_user = |u: &str| signed_in(Some(serde_json::json!({"preferred_username": u})), "at");
    let ok =
        |s: &SignedIn, account: &str, mailbox: &str| identity::check(s, account, mailbox).unwrap();
    assert_eq!(
        ok(
            &as_user("Alice@Example.TEST"),
            "alice@example.test",
            "alice@example.test"
        )
        .as_deref(),
        Some("Alice@Example.TEST")
    );
    assert_eq!(
        ok(
            &as_user("alice@example.test"),
            "alice",
            "alice@example.test"
        )
        .as_deref(),
        Some("alice@example.test"),
        "a short login name enrols the mailbox given with --mailbox"
    );
    let err = identity::check(
        &as_user("bob@example.test"),
        "alice@example.test",
        "alice@example.test",
    )
    .unwrap_err();
    assert!(matches!(err, EnrolError::WrongUser { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("you signed in as bob@example.test while enrolling alice@example.test")
            && text.contains("nothing was stored")
            && text.contains("private window")
            && text.contains("mailgate login alice@example.test"),
        "{text}"
    );
}

#[test]
fn an_unreadable_identity_is_not_a_refusal() {
    let opaque = signed_in(None, "at-opaque");
    assert_eq!(identity::check(&opaque, "a@x", "a@x").unwrap(), None);
    let no_user = signed_in(Some(serde_json::json!({"sub": "1"})), "at-opaque");
    assert_eq!(identity::check(&no_user, "a@x", "a@x").unwrap(), None);
}
