//! The OAuth grants and `mailgate login` against the in-test identity
//! provider: rotation, Microsoft's response quirks, fault mapping, the device
//! and browser flows, and the CLI end to end.

mod browser;
mod cli;
mod graph_consent;
mod identity;
mod providers;

use std::time::{Duration, Instant};

use crate::support::idp::{Failure, TestIdp};
use mailgate::config::Provider;
use mailgate::oauth::{OAuthClient, OAuthError, TokenEndpoint};
use mailgate::secret::Secret;

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Upper bound for any single test step that waits on the network.
const STEP: Duration = Duration::from_secs(30);

fn provider(idp: &TestIdp) -> Provider {
    Provider {
        name: "test".into(),
        client_id: "client-1".into(),
        client_secret: None,
        client_certificate: None,
        client_key: None,
        authorize_url: idp.authorize_url(),
        token_url: idp.token_url(),
        device_code_url: idp.device_code_url(),
        scopes: vec![
            "https://outlook.office.com/IMAP.AccessAsUser.All".into(),
            "offline_access".into(),
        ],
        app_scopes: vec!["https://outlook.office365.com/.default".into()],
        redirect_port: 0,
        refresh_margin: Duration::from_secs(900),
        keep_warm_interval: Duration::from_secs(86400),
        machine_key_wrap: false,
        graph: mailgate::config::GraphSettings::for_endpoint(&idp.graph_url()),
    }
}

async fn started() -> (TestIdp, OAuthClient) {
    let idp = TestIdp::start().await;
    idp.add_user(ALICE);
    let client = OAuthClient::new(&provider(&idp)).expect("client");
    (idp, client)
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(STEP, f)
        .await
        .expect("step finished in time")
}

fn rejected_with(
    r: Result<mailgate::oauth::TokenResponse, OAuthError>,
    error: &str,
    aadsts: Option<&str>,
) {
    match r {
        Err(OAuthError::Rejected {
            error: e,
            aadsts: a,
            ..
        }) => {
            assert_eq!(e, error);
            assert_eq!(a.as_deref(), aadsts);
        }
        other => panic!("expected Rejected({error}), got {other:?}"),
    }
}

#[tokio::test]
async fn refresh_rotates_and_the_old_token_dies() {
    let (idp, client) = started().await;
    let minted = idp.mint(ALICE);
    let old = Secret::new(minted.refresh_token.clone());
    let fresh = bounded(client.refresh(&old)).await.expect("refresh");
    assert_eq!(
        fresh.expires_in,
        Duration::from_secs(3600),
        "string expires_in parsed"
    );
    let new_rt = fresh.refresh_token.clone().expect("rotated refresh token");
    assert_ne!(new_rt.expose(), old.expose());
    assert_ne!(fresh.access_token.expose(), &minted.access_token);
    rejected_with(
        bounded(client.refresh(&old)).await,
        "invalid_grant",
        Some("70000"),
    );
    bounded(client.refresh(&new_rt))
        .await
        .expect("the rotated token works");
    assert_eq!(idp.token_requests_for(ALICE), 3);
    assert_eq!(idp.token_requests("refresh_token"), 3);
}

#[tokio::test]
async fn access_token_lifetime_comes_from_the_string_expires_in() {
    let (idp, client) = started().await;
    idp.set_access_lifetime(Duration::from_secs(4242));
    let rt = Secret::new(idp.mint(ALICE).refresh_token);
    let t = bounded(client.refresh(&rt)).await.expect("refresh");
    assert_eq!(t.expires_in, Duration::from_secs(4242));
}

#[tokio::test]
async fn server_errors_and_dropped_connections_are_temporary() {
    let (idp, client) = started().await;
    let rt = Secret::new(idp.mint(ALICE).refresh_token);
    idp.fail_next(Failure::ServerError, 1);
    match bounded(client.refresh(&rt)).await {
        Err(OAuthError::Temporary {
            retry_after: None,
            reason,
        }) => assert!(reason.contains("500"), "{reason}"),
        other => panic!("expected Temporary, got {other:?}"),
    }
    idp.fail_next(Failure::Drop, 1);
    assert!(matches!(
        bounded(client.refresh(&rt)).await,
        Err(OAuthError::Temporary { .. })
    ));
    bounded(client.refresh(&rt))
        .await
        .expect("the token survived the faults");
}

#[tokio::test]
async fn a_slow_identity_provider_is_temporary() {
    let (idp, client) = started().await;
    let client = client
        .with_request_timeout(Duration::from_millis(300))
        .expect("client");
    let rt = Secret::new(idp.mint(ALICE).refresh_token);
    idp.set_latency(Duration::from_secs(2));
    match bounded(client.refresh(&rt)).await {
        Err(OAuthError::Temporary { reason, .. }) => {
            assert!(reason.contains("in time"), "{reason}")
        }
        other => panic!("expected Temporary, got {other:?}"),
    }
    idp.set_latency(Duration::ZERO);
}

#[tokio::test]
async fn throttling_is_temporary_with_retry_after() {
    let (idp, client) = started().await;
    let rt = Secret::new(idp.mint(ALICE).refresh_token);
    idp.fail_next(
        Failure::TooManyRequests {
            retry_after_secs: 7,
        },
        1,
    );
    match bounded(client.refresh(&rt)).await {
        Err(OAuthError::Temporary { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)))
        }
        other => panic!("expected Temporary, got {other:?}"),
    }
}

#[tokio::test]
async fn revoked_grant_is_rejected_with_its_aadsts_code() {
    let (idp, client) = started().await;
    let rt = Secret::new(idp.mint(ALICE).refresh_token);
    idp.revoke(ALICE);
    let r = bounded(client.refresh(&rt)).await;
    rejected_with(r.clone(), "invalid_grant", Some("50173"));
    assert!(r.unwrap_err().to_string().contains("(AADSTS50173)"));
}

#[tokio::test]
async fn token_endpoint_redirects_are_not_followed() {
    let (idp, client) = started().await;
    let rt = Secret::new(idp.mint(ALICE).refresh_token);
    idp.fail_next(Failure::Redirect, 1);
    let started = Instant::now();
    match bounded(client.refresh(&rt)).await {
        Err(OAuthError::Config(m)) => assert!(m.contains("redirect"), "{m}"),
        other => panic!("expected a redirect error, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    bounded(client.refresh(&rt))
        .await
        .expect("the refresh token was not spent");
}

#[tokio::test]
async fn client_credentials_need_the_right_secret() {
    let idp = TestIdp::start().await;
    idp.set_client_secret("s3cret");
    idp.set_app_mailbox("archive@example.test");
    let mut p = provider(&idp);
    let none = OAuthClient::new(&p).expect("client");
    assert!(matches!(
        bounded(none.client_credentials()).await,
        Err(OAuthError::Config(_))
    ));
    p.client_secret = Some("wrong".into());
    let wrong = OAuthClient::new(&p).expect("client");
    rejected_with(
        bounded(wrong.client_credentials()).await,
        "invalid_client",
        Some("7000215"),
    );
    p.client_secret = Some("s3cret".into());
    let right = OAuthClient::new(&p).expect("client");
    let t = bounded(right.client_credentials())
        .await
        .expect("app-only token");
    assert!(t.refresh_token.is_none());
    assert_eq!(idp.token_requests("client_credentials"), 2);
}

fn app_certificate(
    dir: &std::path::Path,
    tag: &str,
) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>, String) {
    use base64::Engine;
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .expect("key");
    let cert = rcgen::CertificateParams::new(vec!["app.example.test".into()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let (cert_path, key_path) = (
        dir.join(format!("{tag}.crt")),
        dir.join(format!("{tag}.key")),
    );
    std::fs::write(&cert_path, cert.pem()).expect("cert file");
    std::fs::write(&key_path, key.serialize_pem()).expect("key file");
    let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.der());
    let x5t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha1);
    (cert_path, key_path, key.public_key_raw().to_vec(), x5t)
}

#[tokio::test]
async fn certificate_credentials_sign_a_client_assertion() {
    let idp = TestIdp::start().await;
    let dir = cli::Scratch::new("cert");
    let (cert, key, public, x5t) = app_certificate(&dir.dir, "app");
    let (_, other_key, _, _) = app_certificate(&dir.dir, "other");
    idp.set_client_certificate(&public, &x5t);
    let mut p = provider(&idp);
    p.client_certificate = Some(cert.clone());
    p.client_key = Some(key);
    let client = OAuthClient::new(&p).expect("client");
    let t = bounded(client.client_credentials())
        .await
        .expect("app-only token");
    assert!(t.refresh_token.is_none());

    p.client_key = Some(other_key);
    let wrong = OAuthClient::new(&p).expect("client");
    rejected_with(
        bounded(wrong.client_credentials()).await,
        "invalid_client",
        Some("7000215"),
    );

    p.client_key = Some(dir.dir.join("missing.key"));
    let missing = OAuthClient::new(&p).expect("client");
    match bounded(missing.client_credentials()).await {
        Err(OAuthError::Config(m)) => assert!(m.contains("missing.key"), "{m}"),
        other => panic!("expected Config, got {other:?}"),
    }
    assert_eq!(idp.token_requests("client_credentials"), 2);
}

#[tokio::test]
async fn device_flow_waits_through_pending_and_slow_down() {
    let (idp, client) = started().await;
    idp.set_device_polls(1, 1);
    let prompt = bounded(client.device_start()).await.expect("device code");
    assert!(
        prompt
            .message()
            .expect("message")
            .contains(prompt.user_code())
    );
    let started = Instant::now();
    let t = bounded(client.device_finish(&prompt))
        .await
        .expect("approved");
    assert!(t.tokens.refresh_token.is_some());
    assert_eq!(
        t.user().as_deref(),
        Some(ALICE),
        "the id token names who approved the code"
    );
    assert_eq!(idp.token_requests(DEVICE_GRANT), 3);
    assert_eq!(idp.token_requests_for(ALICE), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "slow_down added 5 s: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn device_flow_stops_when_the_code_expires() {
    let (idp, client) = started().await;
    idp.set_device_polls(1000, 0);
    idp.set_device_expires_in(2);
    let prompt = bounded(client.device_start()).await.expect("device code");
    let r = bounded(client.device_finish(&prompt)).await;
    assert!(matches!(r, Err(OAuthError::Rejected { .. })), "{r:?}");
    assert!(idp.token_requests(DEVICE_GRANT) <= 4);
}

async fn introspect(idp: &TestIdp, token: &str) -> serde_json::Value {
    let r = reqwest::Client::new()
        .post(idp.introspect_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}&token_type_hint=access_token"))
        .timeout(STEP)
        .send()
        .await
        .expect("introspect");
    serde_json::from_slice(&r.bytes().await.expect("body")).expect("json")
}

#[tokio::test]
async fn introspection_maps_access_tokens_to_their_mailbox() {
    let (idp, client) = started().await;
    idp.add_user(BOB);
    let rt = Secret::new(idp.mint(BOB).refresh_token);
    let t = bounded(client.refresh(&rt)).await.expect("refresh");
    let at = t.access_token.expose();
    let answer = introspect(&idp, at).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["email"], BOB);
    assert!(answer["exp"].as_u64().is_some());
    assert_eq!(
        introspect(&idp, "at-unknown").await,
        serde_json::json!({"active": false})
    );
    assert!(idp.invalidate_access_token(at));
    assert_eq!(introspect(&idp, at).await["active"], false);
    idp.set_access_lifetime(Duration::ZERO);
    let expired = idp.mint(ALICE).access_token;
    assert_eq!(introspect(&idp, &expired).await["active"], false);
    assert_eq!(idp.introspections(), 4);
}

/// Longest the standalone runner keeps the IdP up.
const RUNNER_MAX: Duration = Duration::from_secs(3600);

/// The test IdP for harnesses outside Rust (e.g. a Dovecot container):
/// `MAILGATE_IDP_USER=alice@example.test MAILGATE_IDP_SECS=600 cargo test
/// --test oauth_flows run_test_idp -- --ignored --nocapture` prints the
/// endpoints and a minted token pair, then serves until the time is up.
#[tokio::test]
#[ignore = "a runner for external harnesses, not a test"]
async fn run_test_idp() {
    let idp = TestIdp::start().await;
    let user = std::env::var("MAILGATE_IDP_USER").unwrap_or_else(|_| ALICE.to_owned());
    idp.add_user(&user);
    let secs = std::env::var("MAILGATE_IDP_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(300), Duration::from_secs)
        .min(RUNNER_MAX);
    let minted = idp.mint(&user);
    println!("authority={}", idp.authority());
    println!("tenant={}", idp.tenant());
    println!("token_url={}", idp.token_url());
    println!("introspect_url={}", idp.introspect_url());
    println!("user={user}");
    println!("access_token={}", minted.access_token);
    println!("refresh_token={}", minted.refresh_token);
    tokio::time::sleep(secs).await;
}
