//! `prewarm = 2` in front of real Dovecot: sequential logins work, they are
//! served from the pool (the hit counter moves), the pool refills, and once
//! Dovecot is gone its closed connections leave the pool and are not handed
//! to the next login (a miss). That a connection the upstream spoke on is
//! never handed over is checked in the unit tests of `upstream::prewarm`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::attempt::{attempt, succeeded};
use super::harness::{ALICE, Env, Options, PASSWORD, free_ports};

/// How long the pool gets to fill between logins.
const FILL: Duration = Duration::from_secs(20);

/// `GET /metrics` on the admin listener.
fn scrape(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("admin listener");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text
}

/// The value of one series (`name{labels}`) in a scrape; 0 when absent.
fn value(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Scrapes until `series` reaches `target` (at most [`FILL`], 10 per second).
fn wait_for(port: u16, series: &str, target: f64) -> f64 {
    let deadline = Instant::now() + FILL;
    loop {
        let v = value(&scrape(port), series);
        if v == target || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sequential_logins_are_served_from_the_pool() {
    let admin = free_ports(1)[0];
    let mut env = Env::start_with(Options {
        listener_settings: vec![("imap-none", "prewarm = 2")],
        admin_port: Some(admin),
        ..Options::default()
    });
    let pooled = "mailgate_prewarm_pooled{listener=\"imap-none\"}";
    let hits = "mailgate_prewarm_takes_total{listener=\"imap-none\",outcome=\"hit\"}";
    let misses = "mailgate_prewarm_takes_total{listener=\"imap-none\",outcome=\"miss\"}";
    for login in 1..=5 {
        assert_eq!(wait_for(admin, pooled, 2.0), 2.0, "{}", env.logs());
        let answer = attempt(&env, "imap", ALICE, PASSWORD);
        assert!(
            succeeded(&answer),
            "login {login}: {answer}\n{}",
            env.logs()
        );
    }
    let text = scrape(admin);
    assert_eq!(value(&text, hits), 5.0, "{text}");
    assert_eq!(value(&text, misses), 0.0, "{text}");
    assert_eq!(wait_for(admin, pooled, 2.0), 2.0);

    std::sync::Arc::get_mut(&mut env.servers)
        .expect("no Graph delivery holds the servers here")
        .stop();
    assert_eq!(wait_for(admin, pooled, 0.0), 0.0, "{}", env.logs());
    let answer = attempt(&env, "imap", ALICE, PASSWORD);
    assert!(!succeeded(&answer), "{answer}");
    let text = scrape(admin);
    assert_eq!(value(&text, hits), 5.0, "{text}");
    assert_eq!(value(&text, misses), 1.0, "{text}");
}
