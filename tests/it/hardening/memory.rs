//! Memory stays flat under attack: the process RSS is measured around 2,000
//! hostile connections (unterminated long lines, huge non-synchronising
//! literals, clients that stall and vanish) after a warm-up, and must not
//! grow by more than a generous bound.
//!
//! RSS is a property of the whole process, and the other tests of this
//! binary run in the same process at the same time (some derive 64 MiB
//! Argon2id keys), so the measurement runs alone: the test starts this test
//! binary again with only itself selected.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::client::Client;
use crate::support::fake_upstream::Proto;
use crate::support::proxy::{Proxy, Setup};

const HOSTILE: usize = 2_000;
const BATCH: usize = 100;
/// Slow clients held open together until the pre-auth deadline.
const SLOW: usize = 200;
/// Allowed growth; leaking even 16 KiB per connection would exceed it.
const MAX_GROWTH_KB: u64 = 24 * 1024;

fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

async fn hostile(addr: SocketAddr, kind: usize) {
    let mut c = Client::raw(addr).await;
    match kind % 3 {
        0 => {
            c.send_bytes(&vec![b'Y'; 64 * 1024]).await;
            assert!(c.closed_within(Duration::from_secs(10)).await);
        }
        1 => {
            c.send("a LOGIN alice {4294967296+}\r\n").await;
            c.send_bytes(&[b'z'; 8 * 1024]).await;
            assert!(c.closed_within(Duration::from_secs(10)).await);
        }
        _ => {
            c.send("a LOG").await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn wave(addr: SocketAddr, count: usize) {
    for start in (0..count).step_by(BATCH) {
        let mut set = tokio::task::JoinSet::new();
        for k in start..(start + BATCH).min(count) {
            set.spawn(hostile(addr, k));
        }
        while let Some(done) = set.join_next().await {
            done.expect("hostile client");
        }
    }
}

/// Clients that trickle a byte every half second until the pre-auth
/// deadline drops them, all at once.
async fn slow_wave(addr: SocketAddr, count: usize) {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..count {
        set.spawn(async move {
            let mut c = Client::raw(addr).await;
            for b in b"a LOGIN alice \"correct".iter().cycle().take(20) {
                if !c.send_bytes(&[*b]).await {
                    return;
                }
                if c.closed_within(Duration::from_millis(500)).await {
                    return;
                }
            }
            panic!("a slow client outlived the pre-auth deadline");
        });
    }
    while let Some(done) = set.join_next().await {
        done.expect("slow client");
    }
}

/// Waits for the server to have closed every connection of a wave.
async fn settle(g: &Proxy) {
    for _ in 0..100 {
        if g.active_connections() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} connections still open", g.active_connections());
}

/// Set in the child process that does the measuring.
const CHILD: &str = "MAILGATE_TEST_MEMORY_CHILD";
const NAME: &str = "hardening::memory::rss_stays_flat_under_hostile_connections";

#[test]
fn rss_stays_flat_under_hostile_connections() {
    if std::env::var_os(CHILD).is_some() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(measure());
        return;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let out = std::process::Command::new(exe)
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("run the measurement alone");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("1 passed"),
        "the measurement did not run:\n{text}"
    );
}

async fn measure() {
    let g = Proxy::start(Setup {
        limits: "preauth_timeout_secs = 2",
        ..Setup::new(Proto::Imap)
    })
    .await;
    wave(g.addr, 300).await;
    settle(&g).await;
    let before = rss_kb();
    wave(g.addr, HOSTILE).await;
    slow_wave(g.addr, SLOW).await;
    settle(&g).await;
    let after = rss_kb();
    let growth = after.saturating_sub(before);
    println!(
        "RSS before {before} kB, after {HOSTILE} hostile and {SLOW} slow connections {after} kB, growth {growth} kB"
    );
    assert!(growth < MAX_GROWTH_KB, "RSS grew by {growth} kB");
    g.assert_healthy().await;
}
