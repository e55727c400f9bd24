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
