//! `cargo bench --bench mailgate`: mailgate against a direct XOAUTH2
//! connection to the same Dovecot and Postfix, on loopback. See
//! BENCHMARKS.md for what each figure means and what limits it.
//!
//! Needs root and the packages of `scripts/install-test-deps.sh`, like the
//! interoperability suite whose server harness it reuses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark stops loudly on the first broken assumption"
)]

#[path = "../tests/support/idp/mod.rs"]
mod idp;
#[path = "../tests/support/servers/mod.rs"]
mod servers;

mod archiver;
mod cluster;
mod delay;
mod graph;
mod idle;
mod logins;
mod report;
mod rig;
mod socat;
mod submit;
mod throughput;
mod wire;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use report::Report;
use rig::{ALICE, Rig};

/// Comma-separated phases to run (burst, latency, throughput, smtp, graph, idle,
/// idle-active, archiver, cluster);
/// all when unset. For working on one phase; published figures use all.
const ONLY_ENV: &str = "MAILGATE_BENCH_ONLY";
/// Access token lifetime once the bursts are done (warm token from then on).
const WARM_LIFETIME: Duration = Duration::from_secs(3600);

fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "mem_total_mib": mem_kib / 1024,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` (or --all-targets)
    // does not and must not start a two-minute benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("the benchmark runs with: cargo bench --bench mailgate");
        return;
    }
    let started = Instant::now();
    let mut report = Report::new();
    let load_before = report::loadavg();
    eprintln!("bench: starting IdP, Dovecot, Postfix, enrolling {ALICE}, starting mailgate");
    let only = std::env::var(ONLY_ENV).unwrap_or_default();
    // The load average as each phase starts: other work on the machine
    // changes absolute figures, so every phase says what it ran beside.
    let phase_loads = std::cell::RefCell::new(Vec::<(String, String)>::new());
    let phase = |name: &str| {
        let on = only.is_empty() || only.split(',').any(|p| p == name);
        if on {
            let load = report::loadavg();
            eprintln!(
                "bench: {name} ({:.0} s, load {load})",
                started.elapsed().as_secs_f64()
            );
            phase_loads.borrow_mut().push((name.to_owned(), load));
        }
        on
    };
    let mut rig = Rig::start(logins::BURST_TOKEN_LIFETIME).await;
    if phase("burst") {
        logins::bursts(&rig, WARM_LIFETIME, &mut report).await;
    }
    rig.idp.set_access_lifetime(WARM_LIFETIME);
    let token = rig.idp.mint(ALICE).access_token;
    if phase("latency") {
        logins::latency(&rig, &token, &mut report).await;
    }
    if phase("throughput") {
        tokio::task::block_in_place(|| throughput::seed(&rig));
        throughput::run(&rig, &token, &mut report).await;
    }
    if phase("smtp") {
        submit::run(&rig, &token, &mut report).await;
    }
    if phase("graph") {
        graph::run(&rig, &mut report).await;
    }
    for (name, kind) in [
        ("idle", idle::Kind::Noop),
        ("idle-active", idle::Kind::Idle),
    ] {
        if phase(name) {
            rig.restart_mailgate().await;
            idle::run(&rig, kind, &mut report).await;
        }
    }
    if phase("archiver") {
        tokio::task::block_in_place(|| archiver::seed(&rig));
        archiver::run(&rig, &mut report).await;
    }
    // Last: it adds Bob and three more processes (bench/cluster.rs).
    if phase("cluster") {
        cluster::run(&rig, WARM_LIFETIME, &mut report).await;
    }
    let load_after = report::loadavg();

    let table = report.table();
    println!("\n{table}");
    println!("load before: {load_before}\nload after:  {load_after}");
    let phase_loads = phase_loads.into_inner();
    for (name, load) in &phase_loads {
        println!("load before phase {name}: {load}");
    }
    println!("total: {:.0} s", started.elapsed().as_secs_f64());
    report.set("machine", machine());
    report.set(
        "load",
        json!({
            "before": load_before,
            "after": load_after,
            "before_phase": phase_loads
                .iter()
                .map(|(name, load)| json!({"phase": name, "load": load}))
                .collect::<Vec<_>>(),
        }),
    );
    report.set(
        "unix_time",
        json!(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        ),
    );
    report.set("total_s", json!(started.elapsed().as_secs_f64()));
    report.set(
        "mailgate_log_tail",
        json!(log_tail(&rig.servers.dir().join("mailgate.log"), |_| true)),
    );
    report.set(
        "dovecot_log_problems",
        json!(log_tail(&rig.servers.dir().join("dovecot.log"), |l| {
            l.contains("Warning") || l.contains("Error") || l.contains("Fatal")
        })),
    );
    // Only a run of every phase replaces the published results.
    let file = if only.is_empty() {
        "bench/results.json"
    } else {
        "target/bench-results-partial.json"
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = serde_json::to_string_pretty(&report.to_json()).expect("json");
    std::fs::write(&path, text + "\n").expect("write results.json");
    println!("wrote {}", path.display());
}

/// The last 20 lines of a log that `keep` accepts.
fn log_tail(path: &std::path::Path, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| keep(l)).collect();
    lines[lines.len().saturating_sub(20)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}
