//! `serve` raises its open-file soft limit to the hard limit and says how
//! many sessions that allows: started under `ulimit -S -n 256`, the log
//! names 256, the hard limit, and (hard − 24) / 2 sessions.

use std::time::Duration;

use super::imap_config;
use crate::support::mailgate::{Serve, in_shell};
use crate::support::scratch::Scratch;

/// The soft limit the test starts `serve` with.
const LOWERED: u64 = 256;
/// As src/service/limits.rs: 24 descriptors aside, two per session.
const RESERVED: u64 = 24;
/// As src/service/limits.rs: an unlimited hard limit counts as fs.nr_open's default.
const UNLIMITED_AS: u64 = 1 << 20;

/// This process's hard open-file limit, which the child inherits.
fn hard_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let hard = line.split_whitespace().nth(4).unwrap();
    hard.parse().unwrap_or(UNLIMITED_AS).min(UNLIMITED_AS)
}

#[test]
fn serve_raises_the_open_file_limit_and_logs_the_sessions_it_allows() {
    let hard = hard_limit();
    assert!(
        hard > LOWERED,
        "the hard limit {hard} leaves nothing to raise"
    );
    let scratch = Scratch::new("nofile");
    let (config, port) = imap_config(&scratch);
    let serve = Serve::spawn(&config, |cmd| {
        in_shell(&format!("ulimit -S -n {LOWERED}"), cmd)
    })
    .unwrap()
    .listening(&[port])
    .unwrap();
    let log = serve.log_until("open-file limit", Duration::from_secs(5));
    let line = log
        .lines()
        .find(|l| l.contains("open-file limit raised to the hard limit"))
        .unwrap_or_else(|| panic!("no open-file limit line\n{log}"));
    for field in [
        format!("before={LOWERED}"),
        format!("limit={hard}"),
        format!("sessions={}", (hard - RESERVED) / 2),
    ] {
        assert!(line.contains(&field), "{field} missing: {line}");
    }
}
