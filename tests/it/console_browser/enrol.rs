//! Enrolment in the browser: an admin enrols a new mailbox through the
//! device flow against the test identity provider (which approves it), the
//! generated password is shown once; a self-service link is then used by
//! its owner in a second browser without an admin session, shows no other
//! account, and works only once.

use super::{open, row, sign_in, until_enrolled};
use crate::console::Gateway;
use crate::hardening::binary::MAILBOX;

const CAROL: &str = "carol@example.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_enrols_a_mailbox_and_its_owner_uses_a_link_once() {
    let gw = Gateway::start("browser-enrol", "").await;
    let admin = open(&gw, "enrol").await;
    sign_in(&admin).await;

    // The identity provider approves device codes as CAROL from now on.
    gw.enrolled.idp.add_user(CAROL);
    gw.enrolled.idp.set_default_user(CAROL);
    admin.click("#nav-enrol").await;
    admin.fill("#enrol input[name=account]", CAROL).await;
    admin.click("#enrol-submit").await;
    admin.wait_for_path("/enrol/").await;
    assert!(!admin.text("#user-code").await.is_empty());
    assert!(
        admin
            .find("#verification-uri")
            .await
            .attr("href")
            .await
            .unwrap()
            .is_some()
    );
    admin.find("svg#qr").await;
    admin.screenshot("enrol-waiting").await;
    until_enrolled(&admin).await;
    let password = admin.text("#local-password").await;
    assert!(password.len() >= 12, "{password:?}");
    admin.screenshot("enrol-done").await;
    let flow = admin.path().await;
    admin.goto(&flow).await;
    admin.find("#enrolled").await;
    assert!(!admin.exists("#local-password").await, "shown twice");
    assert!(!admin.body().await.contains(&password));
    admin.goto("/accounts").await;
    admin.find(&row(CAROL, "td.state")).await;

    // A one-time link for CAROL, opened by its owner in another browser.
    admin.click("#nav-links").await;
    admin.fill("#new-link input[name=account]", CAROL).await;
    admin.click("#new-link-submit").await;
    let link = admin.text("#link").await;
    assert!(link.starts_with(&admin.url("/self/")), "{link}");
    admin.find("#links").await;
    admin.screenshot("links").await;
    let path = link.trim_start_matches(&admin.url("")).to_owned();

    let owner = open(&gw, "self-service").await;
    owner.goto(&path).await;
    owner.find("#self-enrol").await;
    shows_nothing_else(&owner).await;
    owner.screenshot("self").await;
    owner.click("#self-enrol-submit").await;
    owner.wait_for_path(&format!("{path}/flow")).await;
    assert!(!owner.text("#user-code").await.is_empty());
    owner.find("svg#qr").await;
    shows_nothing_else(&owner).await;
    owner.screenshot("self-waiting").await;
    until_enrolled(&owner).await;
    assert!(!owner.text("#local-password").await.is_empty());
    shows_nothing_else(&owner).await;
    owner.screenshot("self-done").await;

    owner.goto(&path).await;
    assert!(!owner.text("#error").await.is_empty());
    assert!(!owner.exists("#self-enrol").await);
    owner.screenshot("self-used").await;
    // The link is no admin session.
    owner.goto("/accounts").await;
    owner.wait_for_path("/login").await;
    owner.close().await;
    admin.close().await;
}

/// An owner's page names no other account and offers no admin navigation.
async fn shows_nothing_else(owner: &crate::support::browser::Browser) {
    let body = owner.body().await;
    assert!(!body.contains(MAILBOX), "{body}");
    for admin_only in ["#accounts", "#nav-accounts", "#sign-out", "#links"] {
        assert!(!owner.exists(admin_only).await, "{admin_only}: {body}");
    }
}
