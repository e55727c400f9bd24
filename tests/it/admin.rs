//! The admin listener through the real binary: `/metrics` counts real
//! logins, sessions, relayed bytes and token requests, account names appear
//! only with `per_account_metrics`; `/readyz` turns 503 with the reason when
//! the provider refuses mailgate's configuration or the token store cannot
//! be read, or the shipped placeholder `client_id` is still configured; the
//! allow-list drops other sources; TLS off loopback.

use std::time::{Duration, Instant};

use crate::hardening::binary::{self, Enrolled, LOCAL_PASSWORD, MAILBOX, Serve};
use crate::support::config::{ConfigBuilder, IdpUrls, Listener, Upstream, free_port};
use crate::support::fake_upstream::{FakeUpstream, Mode, Proto};
use crate::support::idp::OAuthFault;
use crate::support::scratch::Scratch;

const WAIT: Duration = Duration::from_secs(20);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Status and body of `GET http://127.0.0.1:port/path`.
async fn get(port: u16, path: &str) -> (u16, String) {
    let r = client()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The value of one series (`name{labels}`) in a scrape, if present.
fn value(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `/readyz` once the listeners count as bound (at most [`WAIT`]):
/// `Serve::start` returns as soon as the ports accept connections, a moment
/// before `serve` marks its listeners bound.
async fn readyz_once_bound(fetch: impl AsyncFn() -> (u16, String)) -> (u16, String) {
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = fetch().await;
        if !answer.1.contains("listeners: not bound yet") || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Scrapes until `done` holds for the scrape (at most [`WAIT`]).
async fn scrape_until(port: u16, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, text) = get(port, "/metrics").await;
        if done(&text) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An enrolled account, `serve` with an IMAP listener in front of `upstream`
/// and the admin listener with `admin` keys (plus its `bind`).
async fn start(tag: &str, upstream: &FakeUpstream, admin: &str) -> (Enrolled, Serve, u16, u16) {
    let port = free_port();
    let imap = binary::listener("imap", "imap", port, upstream.port);
    let enrolled = Enrolled::new(tag, "admin.test", std::slice::from_ref(&imap)).await;
    let admin_port = free_port();
    write_config(&enrolled, &imap, admin_port, admin);
    let serve = Serve::start(&enrolled.scratch);
    serve.wait_for("admin listener listening", 1).await;
    let _ = binary::connect(port).await;
    (enrolled, serve, port, admin_port)
}

fn write_config(enrolled: &Enrolled, imap: &Listener, admin_port: u16, admin: &str) {
    let state = enrolled.scratch.state();
    let text = binary::config(
        &enrolled.idp,
        &state,
        "admin.test",
        std::slice::from_ref(imap),
    )
    .admin(&format!("bind = \"127.0.0.1:{admin_port}\"\n{admin}"))
    .toml();
    enrolled.scratch.write(&text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_logins_sessions_bytes_and_name_accounts_only_when_allowed() {
    let up = FakeUpstream::start(Proto::Imap, Mode::Plain, None).await;
    let (enrolled, serve, port, admin) = start("admin-metrics", &up, "").await;
    up.accept_token(&enrolled.access_token);
    assert_eq!(get(admin, "/healthz").await, (200, "ok\n".to_owned()));
    refuses_what_it_does_not_serve(admin).await;

    let mut wrong = binary::connect(port).await;
    let no = binary::imap_login(&mut wrong, "not the password").await;
    assert!(no.starts_with("t NO"), "{no}");
    drop(wrong);
    let mut session = binary::connect(port).await;
    let ok = binary::imap_login(&mut session, LOCAL_PASSWORD).await;
    assert!(ok.starts_with("t OK"), "{ok}\n{}", serve.log());

    let during = scrape_until(admin, |t| {
        value(t, "mailgate_sessions_active{listener=\"imap\"}") == Some(1.0)
    })
    .await;
    let logins = |outcome: &str| {
        value(
            &during,
            &format!("mailgate_logins_total{{protocol=\"imap\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(logins("ok"), Some(1.0), "{during}");
    assert_eq!(logins("wrong_password"), Some(1.0), "{during}");
    assert_eq!(
        value(&during, "mailgate_sessions_active{listener=\"imap\"}"),
        Some(1.0),
        "{during}"
    );
    assert!(during.contains("mailgate_upstream_login_seconds_count{protocol=\"imap\"} 1"));
    assert!(
        value(&during, "mailgate_token_expires_in_seconds").is_some_and(|s| s > 0.0),
        "aggregate token gauge: {during}"
    );

    session.send("n1 NOOP\r\n").await;
    let lines = session.until("n1 ").await;
    assert!(lines.last().unwrap().starts_with("n1 OK"), "{lines:?}");
    // Counted as they pass, while the session still runs.
    let noop = "n1 NOOP\r\n".len() as f64;
    let sent = "mailgate_relayed_bytes_total{direction=\"client_to_upstream\"}";
    let received = "mailgate_relayed_bytes_total{direction=\"upstream_to_client\"}";
    let relayed = scrape_until(admin, |t| value(t, sent).is_some_and(|n| n >= noop)).await;
    assert!(
        value(&relayed, sent).is_some_and(|n| n >= noop),
        "{relayed}"
    );
    assert!(
        value(&relayed, received).is_some_and(|n| n > 0.0),
        "{relayed}"
    );
    drop(session);
    let active = "mailgate_sessions_active{listener=\"imap\"}";
    let after = scrape_until(admin, |t| value(t, active) == Some(0.0)).await;
    assert_eq!(value(&after, active), Some(0.0), "{after}");
    for secret in [MAILBOX, LOCAL_PASSWORD, enrolled.access_token.as_str()] {
        assert!(!after.contains(secret), "{secret:?} in:\n{after}");
    }

    let imap = binary::listener("imap", "imap", port, up.port);
    write_config(&enrolled, &imap, admin, "per_account_metrics = true");
    serve.signal("HUP");
    serve.wait_for("configuration reloaded", 1).await;
    let named = format!("mailgate_token_expires_in_seconds{{account=\"{MAILBOX}\"}}");
    let text = scrape_until(admin, |t| value(t, &named).is_some()).await;
    assert!(value(&text, &named).is_some_and(|s| s > 0.0), "{text}");
    assert!(!text.contains(&enrolled.access_token), "{text}");
    let _ = serve.stop().await;
}

/// Unknown paths, other methods and request bodies.
async fn refuses_what_it_does_not_serve(admin: u16) {
    let url = |path: &str| format!("http://127.0.0.1:{admin}{path}");
    let status = |r: reqwest::Response| r.status().as_u16();
    let c = client();
    assert_eq!(status(c.get(url("/nope")).send().await.unwrap()), 404);
    let post = c.post(url("/metrics")).send().await.unwrap();
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    assert_eq!(status(post), 405);
    let body = c.get(url("/healthz")).body("x=1").send().await.unwrap();
    assert_eq!(status(body), 413);
    let head = c.head(url("/metrics")).send().await.unwrap();
    assert_eq!(status(head), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_a_provider_configuration_fault_and_an_unreadable_store() {
    // The upstream refuses the stored token, so a login refreshes.
    let up = FakeUpstream::start(Proto::Imap, Mode::Plain, None).await;
    let (enrolled, serve, port, admin) = start("admin-ready", &up, "").await;
    let ready = readyz_once_bound(async || get(admin, "/readyz").await).await;
    assert_eq!(ready, (200, "ready\n".to_owned()));

    enrolled
        .idp
        .fail_refreshes_with(Some(OAuthFault::invalid_client(
            7000215,
            "Invalid client secret provided.",
        )));
    let mut c = binary::connect(port).await;
    let no = binary::imap_login(&mut c, LOCAL_PASSWORD).await;
    assert!(no.starts_with("t NO"), "{no}\n{}", serve.log());
    let (status, body) = get(admin, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with("provider test: configuration fault: "),
        "{body}"
    );
    let text = scrape_until(admin, |_| true).await;
    assert_eq!(
        value(
            &text,
            "mailgate_token_requests_total{grant=\"refresh_token\",outcome=\"config_fault\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "mailgate_logins_total{protocol=\"imap\",outcome=\"temporary\"}"
        ),
        Some(1.0),
        "{text}"
    );

    let accounts = enrolled.scratch.state().join("accounts");
    std::fs::rename(&accounts, accounts.with_extension("moved")).unwrap();
    std::fs::write(&accounts, "not a directory").unwrap();
    let (status, body) = get(admin, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.lines().any(|l| l.starts_with("store: unreadable: ")),
        "{body}"
    );
    let _ = serve.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_admin_listener_serves_allowed_networks_only() {
    let scratch = Scratch::new("admin-tls");
    let (port, admin) = (free_port(), free_port());
    let text = ConfigBuilder::new()
        .state_dir(&scratch.state())
        .provider_generic(
            "test",
            mailgate::config::PLACEHOLDER_CLIENT_ID,
            &IdpUrls::unused(),
            &["mail"],
            "",
        )
        .listener(Listener::local(
            "imap",
            port,
            Upstream::new(free_port(), "none"),
        ))
        .admin(&format!(
            "bind = \"127.0.0.1:{admin}\"\ntls = \"tls\"\nallowed_networks = [\"127.0.0.1/32\"]"
        ))
        .toml();
    let config = scratch.write(&text);
    let serve = tokio::task::spawn_blocking(move || {
        crate::support::mailgate::Serve::start(&config, &[port, admin]).unwrap()
    })
    .await
    .unwrap();
    let pem = std::fs::read(scratch.state().join("tls/cert.pem")).unwrap();
    let tls = |source: &str| {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
            .local_address(Some(source.parse().unwrap()))
            .build()
            .unwrap()
    };
    let url = format!("https://127.0.0.1:{admin}/healthz");
    let r = tls("127.0.0.1").get(&url).send().await;
    let r = r.unwrap_or_else(|e| panic!("{e:?}\n{}", serve.log()));
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "ok\n");
    let (status, body) = readyz_once_bound(async || {
        let r = tls("127.0.0.1")
            .get(format!("https://127.0.0.1:{admin}/readyz"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
    .await;
    assert_eq!(status, 503);
    assert!(
        body.starts_with(
            "provider test: configuration fault: client_id is the shipped placeholder"
        ),
        "{body}"
    );
    let refused = tls("127.0.0.2").get(&url).send().await;
    assert!(
        refused.is_err(),
        "a source outside allowed_networks: {refused:?}"
    );
    let plain = client()
        .get(format!("http://127.0.0.1:{admin}/healthz"))
        .send()
        .await;
    assert!(
        plain.is_err() || plain.is_ok_and(|r| r.status().as_u16() != 200),
        "plain HTTP on the TLS listener"
    );
}
