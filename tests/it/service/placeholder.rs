//! The shipped placeholder `client_id`: `check-config` warns with the fix
//! and succeeds, `mailgate login` refuses before any request, and `serve`
//! starts, logs the fix, and answers logins with it as a temporary failure.
//! The provider's endpoints point at a socket the test holds, which must
//! never see a connection.

use std::net::TcpListener;
use std::process::Stdio;

use super::{placeholder_config, repo};
use crate::support::client::Client;
use crate::support::mailgate::{Serve, command, login};
use crate::support::scratch::Scratch;

/// A phrase of the fix every refusal carries.
const FIX: &str = "App registrations > New registration";

/// The provider's address: listening, so that a request would connect.
fn provider_socket() -> TcpListener {
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    socket.set_nonblocking(true).unwrap();
    socket
}

fn assert_never_contacted(provider: &TcpListener) {
    match provider.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the provider was contacted: {other:?}"),
    }
}

#[test]
fn check_config_warns_about_the_shipped_placeholder_and_succeeds() {
    let out = command(&["check-config"], &repo().join("config/mailgate.toml"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning: provider"), "{stderr}");
    for part in [
        FIX,
        "IMAP.AccessAsUser.All",
        "http://localhost",
        "client_id",
    ] {
        assert!(stderr.contains(part), "{part} missing: {stderr}");
    }
}

#[test]
fn login_refuses_the_placeholder_before_any_request() {
    let provider = provider_socket();
    let scratch = Scratch::new("placeholder-login");
    let (config, _) = placeholder_config(&scratch, provider.local_addr().unwrap().port());
    let output = login(&config, "alice@example.com", "a local password").unwrap_err();
    assert!(output.contains(FIX), "{output}");
    assert!(output.contains("SMTP.Send"), "{output}");
    assert_never_contacted(&provider);
}

#[tokio::test]
async fn serve_starts_and_answers_logins_with_the_fix() {
    let provider = provider_socket();
    let scratch = Scratch::new("placeholder-serve");
    let (config, port) = placeholder_config(&scratch, provider.local_addr().unwrap().port());
    let serve = tokio::task::spawn_blocking(move || Serve::start(&config, &[port]).unwrap())
        .await
        .unwrap();
    assert!(serve.log().contains(FIX), "{}", serve.log());

    let mut client = Client::connect(([127, 0, 0, 1], port).into()).await;
    client.line().await;
    client
        .send("a LOGIN alice@example.com \"a local password\"\r\n")
        .await;
    let answer = client.line().await;
    assert!(answer.starts_with("a NO"), "{answer}");
    assert!(answer.contains(FIX), "{answer}");
    assert!(!answer.contains("AUTHENTICATIONFAILED"), "{answer}");
    drop(client);
    tokio::task::spawn_blocking(move || drop(serve))
        .await
        .unwrap();
    assert_never_contacted(&provider);
}
