//! Enrolment checks who signed in: `mailgate login alice` with a browser
//! (or a device code) signed in as bob must store nothing and say so, since a
//! browser already signed in to another account is the most common
//! enrolment mistake.

use super::cli::{browser_login, device_login, finish, store, write_config};
use super::{ALICE, BOB};
use crate::support::idp::TestIdp;
use crate::support::scratch::Scratch;

/// The refusal the user sees, and that nothing was stored.
fn assert_refused(dir: &Scratch, ok: bool, err: &str) {
    assert!(!ok, "a mismatched sign-in must fail: {err}");
    assert!(
        err.contains(&format!("you signed in as {BOB} while enrolling {ALICE}")),
        "{err}"
    );
    assert!(
        err.contains("sign out") && err.contains("private window"),
        "the message says how to fix it: {err}"
    );
    assert!(
        store(dir).list().expect("list").is_empty(),
        "nothing was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_login_as_another_user_stores_nothing() {
    let idp = TestIdp::start().await;
    idp.add_user(BOB);
    let dir = Scratch::new("id-device-other");
    let config = write_config(&idp, &dir);
    let child = device_login(&config, b"local-pass\n");
    let (ok, _, err) = tokio::task::spawn_blocking(move || finish(child))
        .await
        .expect("join");
    assert_refused(&dir, ok, &err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_login_as_another_user_stores_nothing() {
    let idp = TestIdp::start().await;
    // ALICE is unknown to the IdP, so the login_hint is ignored and the
    // browser's signed-in user (BOB) is who signs in.
    idp.add_user(BOB);
    let dir = Scratch::new("id-browser-other");
    let config = write_config(&idp, &dir);
    let (ok, _, err) = browser_login(&idp, &config).await;
    assert_refused(&dir, ok, &err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_match_case_insensitively() {
    let idp = TestIdp::start().await;
    idp.add_user(&ALICE.to_uppercase());
    let dir = Scratch::new("id-device-case");
    let config = write_config(&idp, &dir);
    let child = device_login(&config, b"local-pass\n");
    let (ok, out, err) = tokio::task::spawn_blocking(move || finish(child))
        .await
        .expect("join");
    assert!(ok, "stdout:\n{out}\nstderr:\n{err}");
    assert!(!err.contains("could not check"), "{err}");
    assert_eq!(store(&dir).list().expect("list").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_identity_enrols_with_a_warning() {
    let idp = TestIdp::start().await;
    idp.add_user(BOB);
    idp.set_id_tokens(false);
    let dir = Scratch::new("id-browser-none");
    let config = write_config(&idp, &dir);
    let (ok, out, err) = browser_login(&idp, &config).await;
    assert!(ok, "stdout:\n{out:?}\nstderr:\n{err}");
    assert!(
        err.contains("could not check who signed in"),
        "the admin is told the identity was not checked: {err}"
    );
    assert_eq!(store(&dir).list().expect("list").len(), 1);
}
