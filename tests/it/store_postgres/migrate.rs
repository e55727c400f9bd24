//! `mailgate store migrate` through the real binary, with a real login
//! through the proxy after each step, and `/readyz` following the
//! database: not ready while it is stopped, ready again once it is back.

use std::time::{Duration, Instant};

use crate::hardening::binary::{self, Enrolled, LOCAL_PASSWORD, Serve};
use crate::support::config::free_port;
use crate::support::fake_upstream::{FakeUpstream, Mode, Proto};
use crate::support::servers::PgCluster;

const WAIT: Duration = Duration::from_secs(20);

fn migrate(enrolled: &Enrolled, args: &[&str]) -> String {
    let mut all = vec!["store", "migrate"];
    all.extend_from_slice(args);
    let out = crate::support::mailgate::command(&all, &enrolled.scratch.config)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

async fn login_works(port: u16, serve: &Serve) {
    let mut session = binary::connect(port).await;
    let ok = binary::imap_login(&mut session, LOCAL_PASSWORD).await;
    assert!(ok.starts_with("t OK"), "{ok}\n{}", serve.log());
}

async fn readyz(port: u16) -> (u16, String) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    match client
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
    {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// Polls `/readyz` until `done` holds (at most [`WAIT`]).
async fn readyz_until(port: u16, done: impl Fn(&(u16, String)) -> bool) -> (u16, String) {
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = readyz(port).await;
        if done(&answer) || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_both_ways_with_logins_and_readyz_follows_the_database() {
    let mut cluster = PgCluster::start(false).unwrap();
    let db = cluster.database().unwrap();
    let up = FakeUpstream::start(Proto::Imap, Mode::Plain, None).await;
    let port = free_port();
    let imap = binary::listener("imap", "imap", port, up.port);
    let enrolled = Enrolled::new("pg-migrate", "pg.test", std::slice::from_ref(&imap)).await;
    up.accept_token(&enrolled.access_token);
    let state = enrolled.scratch.state();
    let admin_port = free_port();
    let base = binary::config(
        &enrolled.idp,
        &state,
        "pg.test",
        std::slice::from_ref(&imap),
    )
    .admin(&format!("bind = \"127.0.0.1:{admin_port}\""))
    .toml();
    let with_store = format!(
        "{base}\n[store]\nkind = \"postgres\"\nurl = \"{}\"\ntls = \"disable\"\ntimeout_secs = 2\n",
        cluster.url(&db)
    );
    enrolled.scratch.write(&with_store);

    let dry = migrate(
        &enrolled,
        &["--from", "file", "--to", "postgres", "--dry-run"],
    );
    assert!(dry.contains("would copy 1 of 1 records"), "{dry}");
    assert_eq!(
        cluster
            .sql(&db, "SELECT count(*) FROM mailgate_accounts")
            .unwrap(),
        "0"
    );
    let first = migrate(&enrolled, &["--from", "file", "--to", "postgres"]);
    assert!(
        first.contains("copy alice@example.test") && first.contains("copied 1 of 1"),
        "{first}"
    );
    let again = migrate(&enrolled, &["--from", "file", "--to", "postgres"]);
    assert!(
        again.contains("same alice@example.test") && again.contains("copied 0 of 1"),
        "{again}"
    );

    // The file record goes: logins now come from the database alone.
    for entry in std::fs::read_dir(state.join("accounts")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let serve = Serve::start(&enrolled.scratch);
    serve.wait_for("admin listener listening", 1).await;
    login_works(port, &serve).await;
    let ready = readyz_until(admin_port, |(status, _)| *status == 200).await;
    assert_eq!(ready.0, 200, "{ready:?}\n{}", serve.log());

    cluster.stop();
    let down = readyz_until(admin_port, |(status, _)| *status == 503).await;
    assert_eq!(down.0, 503, "{down:?}");
    assert!(down.1.contains("store: unreachable"), "{down:?}");
    cluster.start_again().unwrap();
    let back = readyz_until(admin_port, |(status, _)| *status == 200).await;
    assert_eq!(back.0, 200, "{back:?}\n{}", serve.log());
    login_works(port, &serve).await;
    serve.stop().await;

    // And back to the file store.
    let home = migrate(&enrolled, &["--from", "postgres", "--to", "file"]);
    assert!(home.contains("copied 1 of 1"), "{home}");
    enrolled.scratch.write(&base);
    let serve = Serve::start(&enrolled.scratch);
    serve.wait_for("admin listener listening", 1).await;
    login_works(port, &serve).await;
    serve.stop().await;
}
