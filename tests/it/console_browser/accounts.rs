//! Actions on the accounts page: an account locked out by wrong passwords
//! from a mail client and unlocked from the page, a forged CSRF token
//! refused, an account signed out, and a form posted by a browser that
//! holds no session refused.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{open, row, sign_in, state_of};
use crate::console::Gateway;
use crate::hardening::binary::{self, LOCAL_PASSWORD, MAILBOX};
use crate::support::browser::{Browser, STEP};
use crate::support::client::{Client, connect_from};

/// Where the wrong passwords come from: not the browser's address, which
/// the guard would lock out of the console too.
const MAIL_CLIENT: &str = "127.0.0.81";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_is_locked_out_unlocked_and_signed_out_from_the_page() {
    let gw = Gateway::start("browser-accounts", "").await;
    let b = open(&gw, "accounts").await;
    sign_in(&b).await;
    let imap: SocketAddr = ([127, 0, 0, 1], gw.imap).into();

    lock_out(&b, imap).await;
    b.screenshot("accounts-locked-out").await;
    b.click(&row(MAILBOX, "form.unlock button")).await;
    b.wait_for_path("/accounts").await;
    assert!(!b.text("#flash").await.is_empty());
    assert_ne!(state_of(&b, MAILBOX).await, "locked out");
    b.screenshot("accounts-unlocked").await;
    let deadline = Instant::now() + STEP;
    loop {
        let answer = imap_login(imap, LOCAL_PASSWORD).await;
        if answer.starts_with("t OK") {
            break;
        }
        // The mail client's own address stays in back-off a moment longer.
        assert!(Instant::now() < deadline, "{answer}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // A forged token in the page's own form: refused, nothing changes.
    let form = row(MAILBOX, "form.sign-out-account");
    b.find(&form).await;
    b.execute(
        "document.querySelector(arguments[0] + ' input[name=csrf]').value = 'forged';",
        vec![json!(form)],
    )
    .await;
    b.click(&format!("{form} button")).await;
    assert!(!b.text("#error").await.is_empty());
    b.screenshot("csrf-refused").await;
    b.goto("/accounts").await;
    assert_eq!(state_of(&b, MAILBOX).await, "active");

    b.click(&format!("{form} button")).await;
    b.wait_for_path("/accounts").await;
    assert!(!b.text("#flash").await.is_empty());
    b.screenshot("accounts-signed-out").await;
    assert!(
        !b.exists(&row(MAILBOX, "td.state")).await || state_of(&b, MAILBOX).await == "needs login",
        "{}",
        b.body().await
    );

    without_a_session_a_form_is_refused(&gw).await;
    b.close().await;
}

/// Wrong IMAP passwords until the accounts page shows the account locked
/// out (the lock-out lasts seconds: the page is checked after each one).
async fn lock_out(b: &Browser, imap: SocketAddr) {
    for _ in 0..12 {
        let answer = imap_login(imap, "not the password").await;
        assert!(answer.starts_with("t NO"), "{answer}");
        b.goto("/accounts").await;
        if state_of(b, MAILBOX).await == "locked out" {
            b.find(&row(MAILBOX, "form.unlock button")).await;
            return;
        }
    }
    panic!("never shown locked out: {}", b.body().await);
}

async fn imap_login(imap: SocketAddr, password: &str) -> String {
    let mut c = Client::from_tcp(connect_from(MAIL_CLIENT, imap).await);
    tokio::time::timeout(STEP, binary::imap_login(&mut c, password))
        .await
        .expect("IMAP answered in time")
}

/// A browser that never signed in posts a form (with the login page's own
/// token) to an account action: refused, the login page not left behind.
async fn without_a_session_a_form_is_refused(gw: &Gateway) {
    let stranger = open(gw, "no-session").await;
    stranger.goto("/login").await;
    stranger
        .execute(
            "const f = document.querySelector('#sign-in');\
             f.action = arguments[0];\
             f.querySelector('input[name=password]').removeAttribute('required');\
             f.submit();",
            vec![json!("/accounts/alice%40example.test/unlock")],
        )
        .await;
    assert!(!stranger.text("#error").await.is_empty());
    assert!(!stranger.body().await.contains(MAILBOX));
    stranger.screenshot("no-session-refused").await;
    stranger.close().await;
}
