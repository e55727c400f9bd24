//! The brute-force guard through the real binary: what it counts (the rule a
//! login resolves to, not the typed name) and that its lock-outs survive a
//! restart. Unit tests in `src/guard/` cover the counting itself.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::client::{Client, connect_from};
use crate::support::config::{ConfigBuilder, IdpUrls, Listener, Upstream, free_port};
use crate::support::mailgate::Serve;
use crate::support::scratch::Scratch;

/// The reference config's hash of "example-password-change-me".
const PHC: &str = "$argon2id$v=19$m=65536,t=3,p=1$PxPC3Gwyr2+8sPqXvjKT6g$5Rf6atrE8O/Gpj7F/VmaNpTlJiLsTCAJVQY7b4X/4zA";
const STEP: Duration = Duration::from_secs(30);

fn config(scratch: &Scratch, port: u16) -> std::path::PathBuf {
    let upstream = Upstream::new(free_port(), "none");
    let text = ConfigBuilder::new()
        .state_dir(&scratch.state())
        .provider_generic(
            "test",
            "test-client",
            &IdpUrls::unused(),
            &["mail"],
            "client_secret = \"s\"\n",
        )
        .listener(Listener::local("imap", port, upstream).name("guarded"))
        .account(&[
            ("login", "*@apps.example"),
            ("kind", "app-only"),
            ("password_hash", PHC),
        ])
        .toml();
    scratch.write(&text)
}

/// One IMAP LOGIN with a wrong password from `source`; the tagged answer.
async fn wrong_login(addr: SocketAddr, source: &str, user: impl AsRef<str>) -> String {
    let user = user.as_ref();
    let attempt = async {
        let mut c = Client::from_tcp(connect_from(source, addr).await);
        let greeting = c.line().await;
        assert!(greeting.starts_with("* OK"), "{greeting}");
        c.send(&format!("a LOGIN {user} \"not-the-password\"\r\n"))
            .await;
        c.until("a ").await.pop().unwrap_or_default()
    };
    tokio::time::timeout(STEP, attempt)
        .await
        .expect("login answered in time")
}

fn refused(answer: &str) -> bool {
    answer.starts_with("a NO") && answer.contains("Too many failed logins")
}

#[tokio::test]
async fn invented_names_under_a_wildcard_rule_share_the_rule_count() {
    let scratch = Scratch::new("guard-wildcard");
    let port = free_port();
    let path = config(&scratch, port);
    let mut serve = tokio::task::spawn_blocking(move || Serve::start(&path, &[port]))
        .await
        .unwrap()
        .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut answers = Vec::new();
    for i in 0..8u8 {
        let source = format!("127.0.0.{}", 20 + i);
        answers.push(wrong_login(addr, &source, &format!("a{i}@apps.example")).await);
    }
    serve.stop();
    let checked = answers.iter().take_while(|a| !refused(a)).count();
    assert_eq!(checked, 4, "{answers:#?}\n{}", serve.log());
    assert!(answers[4..].iter().all(|a| refused(a)), "{answers:#?}");
}

#[tokio::test]
async fn a_lockout_survives_a_restart() {
    let scratch = Scratch::new("guard-restart");
    let port = free_port();
    let path = config(&scratch, port);
    let start = |path: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || Serve::start(&path, &[port]))
    };
    let mut serve = start(path.clone()).await.unwrap().unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let source = "127.0.0.60";
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(wrong_login(addr, source, "nobody@example.test").await);
    }
    assert!(refused(&answers[4]), "{answers:#?}");
    serve.stop();
    assert!(
        scratch.state().join("guard.json").exists(),
        "{}",
        serve.log()
    );

    // A fresh guard would allow four more checks; the restored one allows
    // at most one (if the 2 s lock-out has passed meanwhile).
    let mut serve = start(path).await.unwrap().unwrap();
    let first = wrong_login(addr, source, "nobody@example.test").await;
    let second = wrong_login(addr, source, "nobody@example.test").await;
    serve.stop();
    assert!(
        refused(&first) || refused(&second),
        "{first}\n{second}\n{}",
        serve.log()
    );
}

#[tokio::test]
async fn parallel_wrong_guesses_from_one_address_are_each_counted() {
    let scratch = Scratch::new("guard-parallel");
    let port = free_port();
    let path = config(&scratch, port);
    let mut serve = tokio::task::spawn_blocking(move || Serve::start(&path, &[port]))
        .await
        .unwrap()
        .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let guesses: Vec<_> = (0..32)
        .map(|i| {
            tokio::spawn(wrong_login(
                addr,
                "127.0.0.70",
                format!("p{i}@apps.example"),
            ))
        })
        .collect();
    let mut answers = Vec::new();
    for g in guesses {
        answers.push(g.await.unwrap());
    }
    serve.stop();
    let checked = answers.iter().filter(|a| !refused(a)).count();
    assert_eq!(checked, 4, "{answers:#?}\n{}", serve.log());
}
