//! Who may use the console: the sign-in (right, wrong, the guard's
//! back-off, the sign-in cookie kept only when the console minted it, the
//! favicon that never redirects), the session cookie's attributes and expiry, sign-out, and
//! every form refused without a session or with a wrong CSRF token.

use std::time::Duration;

use super::{ADMIN_PASSWORD, Browser, Gateway};

/// Every form the console has, as (path, fields besides `csrf`).
const FORMS: &[(&str, &[(&str, &str)])] = &[
    ("/logout", &[]),
    (
        "/enrol",
        &[("account", "bob@example.test"), ("password", "")],
    ),
    (
        "/links",
        &[("account", "bob@example.test"), ("expires_minutes", "60")],
    ),
    ("/accounts/alice%40example.test/signout", &[]),
    ("/accounts/alice%40example.test/unlock", &[]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sets_a_strict_cookie_and_wrong_passwords_meet_the_guard() {
    let gw = Gateway::start("console-signin", "").await;
    let mut b = gw.browser();
    let root = b.get("/").await;
    assert_eq!((root.status, root.location.as_str()), (303, "/login"));
    let icon = b.get("/favicon.ico").await;
    assert_eq!((icon.status, icon.location.as_str()), (204, ""));
    assert!(icon.set_cookies.is_empty(), "{:?}", icon.set_cookies);
    // A sign-in cookie the console did not mint is replaced; its own is kept.
    let planted = "z".repeat(40);
    b.cookies
        .insert("mailgate_login".to_owned(), planted.clone());
    let first = b.get("/login").await;
    let minted = b.cookies["mailgate_login"].clone();
    assert!(minted.len() == 64 && minted != planted, "{minted}");
    assert_eq!(super::csrf_of(&first.body), minted);
    let login = b.get("/login").await;
    assert_eq!(b.cookies["mailgate_login"], minted, "reused");
    assert!(
        login
            .body
            .contains("<form id=\"sign-in\" method=\"post\" action=\"/login\">")
    );
    assert!(login.body.contains("id=\"sign-in-submit\""));

    let wrong = b.sign_in("not the password").await;
    assert!(
        wrong
            .body
            .contains("<p class=\"error\" id=\"error\">Wrong password."),
        "{}",
        wrong.body
    );
    let ok = b.sign_in(ADMIN_PASSWORD).await;
    assert_eq!((ok.status, ok.location.as_str()), (303, "/accounts"));
    let cookie = ok
        .set_cookies
        .iter()
        .find(|c| c.starts_with("mailgate_session="))
        .unwrap();
    let id = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("mailgate_session=");
    assert_eq!(id.len(), 64, "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP on loopback: {cookie}"
    );
    let accounts = b.get("/accounts").await;
    assert_eq!(accounts.status, 200);
    for id in [
        "sign-out",
        "nav-accounts",
        "nav-enrol",
        "nav-links",
        "nav-health",
        "nav-events",
    ] {
        assert!(accounts.body.contains(&format!("id=\"{id}\"")), "{id}");
    }
    let out = b.submit("/accounts", "/logout", &[]).await;
    assert_eq!((out.status, out.location.as_str()), (303, "/login"));
    assert_eq!(b.get("/accounts").await.status, 303, "signed out");

    // A second client guessing: past the free failures, the back-off.
    let mut guesser = gw.browser();
    let mut refused = None;
    for n in 0..8 {
        let page = guesser.sign_in(&format!("guess-{n}")).await;
        if page.body.contains("Too many wrong passwords") {
            refused = Some(n);
            break;
        }
    }
    assert!(refused.is_some_and(|n| n >= 3), "{refused:?}");
    let events = std::fs::read_to_string(gw.enrolled.scratch.state().join("events.jsonl")).unwrap();
    assert!(events.contains("console sign-in refused"), "{events}");
    assert!(
        !events.contains(ADMIN_PASSWORD) && !events.contains("guess-"),
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_form_is_refused_without_a_session_or_with_a_wrong_csrf_token() {
    let gw = Gateway::start("console-csrf", "").await;
    let mut anonymous = gw.browser();
    for (path, fields) in FORMS {
        let page = anonymous
            .post(path, &[&[("csrf", "x")], *fields].concat())
            .await;
        assert_eq!(page.status, 403, "{path}");
        assert!(page.body.contains("id=\"error\""), "{path}");
    }
    let mut b = gw.browser();
    assert_eq!(b.sign_in(ADMIN_PASSWORD).await.status, 303);
    for (path, fields) in FORMS {
        for csrf in [&[("csrf", "0000")][..], &[][..]] {
            let page = b.post(path, &[csrf, *fields].concat()).await;
            assert_eq!(page.status, 403, "{path} {csrf:?}");
            assert!(
                page.body.contains("<p class=\"error\" id=\"error\">"),
                "{path}"
            );
        }
    }
    // The sign-in form's own token: without it, refused.
    let page = anonymous
        .post("/login", &[("password", ADMIN_PASSWORD)])
        .await;
    assert_eq!(page.status, 403);
    // A right token from another site's page is refused too.
    let csrf = super::csrf_of(&b.get("/accounts").await.body);
    let page = b
        .post(
            "/links",
            &[("csrf", &csrf), ("account", "bob@example.test")],
        )
        .await;
    assert_eq!(page.status, 200, "the same form with its token works");
    assert!(b.get("/accounts").await.status == 200, "still signed in");
    let mut b2 = Browser::new(gw.admin);
    b2.cookies = b.cookies.clone();
    let foreign = b2
        .http
        .post(b2.url("/links"))
        .header("origin", "http://evil.test")
        .header(
            "cookie",
            format!("mailgate_session={}", b.cookies["mailgate_session"]),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&account=bob%40example.test"))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_when_idle() {
    let gw = Gateway::start("console-expiry", "session_idle_secs = 2\n").await;
    let mut b = gw.browser();
    assert_eq!(b.sign_in(ADMIN_PASSWORD).await.status, 303);
    assert_eq!(b.get("/accounts").await.status, 200);
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let page = b.get("/accounts").await;
    assert_eq!((page.status, page.location.as_str()), (303, "/login"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_tls_the_cookies_are_secure() {
    let gw = Gateway::start("console-tls", "tls = \"tls\"\n").await;
    let pem = std::fs::read(gw.enrolled.scratch.state().join("tls/cert.pem")).unwrap();
    let mut b = Browser::tls(gw.admin, &pem);
    let login = b.get("/login").await;
    assert!(
        login.set_cookies.iter().all(|c| c.contains("; Secure")),
        "{:?}",
        login.set_cookies
    );
    let ok = b.sign_in(ADMIN_PASSWORD).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let cookie = ok
        .set_cookies
        .iter()
        .find(|c| c.starts_with("mailgate_session="))
        .unwrap();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    assert_eq!(b.get("/accounts").await.status, 200);
    let health = b.get("/health").await.body;
    assert!(health.contains("tls/cert.pem: expires "), "{health}");
}
