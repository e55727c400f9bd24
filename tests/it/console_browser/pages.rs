//! Sign-in (wrong, then right), every page through the navigation, the
//! accounts table at desktop and phone width, sign-out and a page that is
//! then out of reach.

use super::{open, row, sign_in, state_of};
use crate::console::Gateway;
use crate::hardening::binary::MAILBOX;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_signs_in_visits_every_page_and_signs_out() {
    let gw = Gateway::start("browser-pages", "").await;
    let b = open(&gw, "pages").await;

    b.goto("/").await;
    b.wait_for_path("/login").await;
    b.screenshot("login").await;
    b.fill("#sign-in input[name=password]", "not the admin password")
        .await;
    b.click("#sign-in-submit").await;
    let error = b.text("#error").await;
    assert!(!error.is_empty());
    assert_eq!(b.path().await, "/login");
    b.screenshot("login-wrong-password").await;

    sign_in(&b).await;
    assert_eq!(state_of(&b, MAILBOX).await, "active");
    assert_eq!(b.text(&row(MAILBOX, "td.mailbox")).await, MAILBOX);
    assert!(b.exists(&row(MAILBOX, "a.reauthorise")).await);
    assert!(
        b.exists(&row(MAILBOX, "form.sign-out-account button"))
            .await
    );
    assert!(!b.exists(&row(MAILBOX, "form.unlock")).await);
    assert!(!b.text("h1").await.is_empty());
    b.screenshot("accounts").await;
    b.phone_screenshot("accounts-phone").await;

    let pages = [
        ("#nav-enrol", "/enrol", "#enrol"),
        ("#nav-links", "/links", "#new-link"),
        ("#nav-health", "/health", "#listeners"),
        ("#nav-events", "/events", "#events"),
        ("#nav-accounts", "/accounts", "#accounts"),
    ];
    for (link, path, content) in pages {
        b.click(link).await;
        b.wait_for_path(path).await;
        b.find(content).await;
        assert!(!b.text("h1").await.is_empty(), "{path}: no title");
        b.screenshot(path.trim_start_matches('/')).await;
    }
    for section in ["#providers", "#certificates", "#upstreams"] {
        b.goto("/health").await;
        b.find(section).await;
    }

    b.click("#sign-out-submit").await;
    b.wait_for_path("/login").await;
    b.goto("/accounts").await;
    b.wait_for_path("/login").await;
    assert!(!b.exists("#accounts").await);
    assert!(!b.body().await.contains(MAILBOX));
    b.screenshot("signed-out").await;
    b.close().await;
}
