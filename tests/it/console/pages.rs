//! The health and events pages, and a console without a password.

use super::{ADMIN_PASSWORD, Browser, Gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_events_pages_have_their_sections() {
    let gw = Gateway::start("console-health", "").await;
    let mut b = gw.browser();
    assert_eq!(b.sign_in(ADMIN_PASSWORD).await.status, 303);
    let health = b.get("/health").await;
    assert_eq!(health.status, 200);
    for id in ["listeners", "providers", "certificates", "upstreams"] {
        assert!(
            health.body.contains(&format!("<section id=\"{id}\">")),
            "{id}"
        );
    }
    assert!(health.body.contains(&format!("127.0.0.1:{}", gw.imap)));
    assert!(
        health
            .body
            .contains(&format!("127.0.0.1:{}</th><td>reachable", gw.upstream.port)),
        "{}",
        health.body
    );
    let events = b.get("/events").await;
    assert!(events.body.contains("<table id=\"events\">"));
    assert!(events.body.contains("signed in to the console"));
    // The probes still answer.
    assert_eq!(b.get("/healthz").await.body, "ok\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_password_hash_only_the_probes_answer() {
    let gw = Gateway::start("console-off", "").await;
    let config = gw.enrolled.scratch.config.clone();
    let text = std::fs::read_to_string(&config).unwrap();
    let off: String = text
        .lines()
        .filter(|l| !l.starts_with("password_hash"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&config, off).unwrap();
    gw.serve.signal("HUP");
    gw.serve.wait_for("configuration reloaded", 1).await;
    let mut b = Browser::new(gw.admin);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let page = b.get("/login").await;
        if page.status == 404 || std::time::Instant::now() > deadline {
            assert_eq!(page.status, 404);
            assert!(page.body.contains("password_hash"), "{}", page.body);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(b.get("/healthz").await.status, 200);
}
