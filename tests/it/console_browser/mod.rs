//! The web console in a real browser (headless Chromium over WebDriver,
//! `support/browser.rs`), against the real binary set up as the HTTP-level
//! console tests set it up (`console::Gateway`): sign in and out, every
//! page, the accounts table, enrolment by device flow, a self-service link
//! in a second browser that holds no admin session, a lock-out and its
//! unlock, signing an account out, a forged CSRF token and a form posted
//! without a session. Every page visited is screenshotted under
//! `target/console-screenshots/<test>/`.
//!
//! Elements are found by the ids and classes the console promises (see
//! `docs/design.md`, web console), never by layout.

mod accounts;
mod enrol;
mod harness;
mod pages;

use std::time::{Duration, Instant};

use crate::console::{ADMIN_PASSWORD, Gateway};
use crate::support::browser::{Browser, STEP};

/// A fresh browser (no cookies) for `test` at `gw`'s console.
pub async fn open(gw: &Gateway, test: &str) -> Browser {
    Browser::open(test, &format!("http://127.0.0.1:{}", gw.admin)).await
}

/// Signs in with the admin password; ends on the accounts page.
pub async fn sign_in(b: &Browser) {
    b.goto("/login").await;
    b.fill("#sign-in input[name=password]", ADMIN_PASSWORD)
        .await;
    b.click("#sign-in-submit").await;
    b.wait_for_path("/accounts").await;
}

/// A CSS selector for `within` inside `account`'s row of the accounts table.
pub fn row(account: &str, within: &str) -> String {
    format!("#accounts tr[data-account=\"{account}\"] {within}")
}

/// The `state` cell of `account`'s row.
pub async fn state_of(b: &Browser, account: &str) -> String {
    b.text(&row(account, "td.state")).await
}

/// Waits (at most `3 * STEP`: the device flow polls the identity provider)
/// until the page, which refreshes itself, shows `#enrolled` or `#error`.
pub async fn until_enrolled(b: &Browser) {
    let deadline = Instant::now() + 3 * STEP;
    while !b.exists("#enrolled").await {
        assert!(!b.exists("#error").await, "{}", b.body().await);
        assert!(
            Instant::now() < deadline,
            "not enrolled: {}",
            b.body().await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
