//! `mailgate login` when a listener sends through Microsoft Graph: the new
//! grant is tried on Graph right away, a missing consent (AADSTS65001) is
//! explained without failing the enrolment, and the browser flow consents
//! to Graph in the same sign-in.

use std::path::PathBuf;

use mailgate::base::AccountName;
use mailgate::oauth::{OAuthClient, TokenEndpoint};
use mailgate::secret::Secret;

use super::cli::{browser_login, device_login, finish, store};
use super::{ALICE, provider};
use crate::support::config::{ConfigBuilder, Listener, Upstream};
use crate::support::idp::TestIdp;
use crate::support::scratch::Scratch;

const GRAPH_SCOPE: &str = "https://graph.microsoft.com/Mail.Send";

/// An IMAP listener and a `submit = "graph"` SMTP listener.
fn graph_config(idp: &TestIdp, dir: &Scratch) -> PathBuf {
    let text = ConfigBuilder::new()
        .state_dir(&dir.state())
        .provider_microsoft("test", &idp.authority(), idp.tenant(), "client-1", "")
        .listener(Listener::local("imap", 11143, Upstream::new(993, "implicit")).name("imap"))
        .listener(
            Listener::local("smtp", 11587, Upstream::new(587, "starttls"))
                .name("send")
                .keys_raw("submit = \"graph\""),
        )
        .toml();
    dir.write(&text)
}

async fn device(config: PathBuf) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || finish(device_login(&config, b"local-pass\n")))
        .await
        .expect("join")
}

/// The stored refresh token still works for mail: the consent check's
/// rotation was saved.
async fn stored_token_works(idp: &TestIdp, dir: &Scratch) {
    let unlocked = store(dir)
        .unlock(
            &AccountName::parse(ALICE).unwrap(),
            &Secret::from("local-pass"),
        )
        .expect("unlock");
    let client = OAuthClient::new(&provider(idp)).expect("client");
    client
        .refresh(&unlocked.tokens.refresh_token)
        .await
        .expect("the stored refresh token is the newest one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_checks_graph_consent_and_keeps_the_rotated_token() {
    let idp = TestIdp::start().await;
    idp.add_user(ALICE);
    let dir = Scratch::new("graph-consent-ok");
    let (ok, out, err) = device(graph_config(&idp, &dir)).await;
    assert!(ok, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("Microsoft Graph: consent for sending is in place."),
        "{out}"
    );
    assert_eq!(idp.token_requests("refresh_token"), 1, "one Graph check");
    stored_token_works(&idp, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_graph_consent_is_explained_and_the_mail_enrolment_stays() {
    let idp = TestIdp::start().await;
    idp.add_user(ALICE);
    idp.refuse_graph_consent(ALICE);
    let dir = Scratch::new("graph-consent-missing");
    let (ok, out, err) = device(graph_config(&idp, &dir)).await;
    assert!(ok, "stdout:\n{out}\nstderr:\n{err}");
    for part in [
        "listener send sends through Microsoft Graph",
        "AADSTS65001",
        "delegated permission Mail.Send (https://graph.microsoft.com/Mail.Send)",
        "Mail.ReadWrite",
        "grant admin consent",
    ] {
        assert!(out.contains(part), "{part:?} in:\n{out}");
    }
    stored_token_works(&idp, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_sign_in_consents_to_graph_and_redeems_a_mail_token() {
    let idp = TestIdp::start().await;
    idp.add_user(ALICE);
    let dir = Scratch::new("graph-consent-browser");
    let config = graph_config(&idp, &dir);
    let (ok, out, err) = browser_login(&idp, &config).await;
    assert!(ok, "stdout:\n{out:?}\nstderr:\n{err}");
    let scopes = idp.authorize_scopes();
    assert_eq!(scopes.len(), 1, "{scopes:?}");
    assert!(scopes[0].contains(GRAPH_SCOPE), "{scopes:?}");
    assert!(
        out.iter()
            .any(|l| l.contains("consent for sending is in place")),
        "{out:?}"
    );
}
