//! Relay throughput (measure 1): `FETCH 1:* BODY.PEEK[]` of the whole seeded INBOX,
//! direct to Dovecot over TLS, and through mailgate and through socat (the
//! plain-relay baseline) with the client side in plaintext and over TLS,
//! interleaved (the order rotates every run).

use std::time::Instant;

use serde_json::json;

use crate::report::{self, Report};
use crate::rig::{Rig, Via};

/// Seeded messages and their size: 200 x 1 MiB.
pub const MESSAGES: usize = 200;
pub const MESSAGE_SIZE: usize = 1024 * 1024;
pub const RUNS: usize = 7;
/// Read buffer of the fetching client.
const BUFFER: usize = 256 * 1024;

/// One 1 MiB message of 78-byte CRLF lines.
pub fn message(i: usize) -> Vec<u8> {
    let mut m = format!(
        "From: carol@example.test\r\nTo: alice@example.test\r\n\
         Subject: bench message {i}\r\nMessage-ID: <bench-{i}@example.test>\r\n\r\n"
    )
    .into_bytes();
    let mut n = 0u64;
    while m.len() + 80 < MESSAGE_SIZE {
        n += 1;
        m.extend_from_slice(format!("{i:06} {n:010} {}\r\n", "x".repeat(59)).as_bytes());
    }
    m
}

pub fn seed(rig: &Rig) {
    for i in 0..MESSAGES {
        rig.servers
            .seed_message(crate::rig::ALICE, &message(i))
            .expect("seed");
    }
}

struct Sample {
    mb_per_s: f64,
    bytes: u64,
    cpu_s_per_gb: Option<f64>,
    /// The bench client's own CPU per GB.
    client_s_per_gb: f64,
    /// Cores busy machine-wide during the FETCH, and cores stolen by the hypervisor.
    cores_busy: f64,
    cores_stolen: f64,
}

async fn fetch_all(rig: &Rig, via: Via<'_>, ticks: f64) -> Sample {
    let mut conn = rig.imap_login(via, BUFFER).await.expect("login");
    conn.command("SELECT INBOX").await.expect("select");
    // The relay's process: mailgate, or the socat child serving this session.
    let relay_pid = match via {
        Via::Direct(_) | Via::DistantDirect(_) => None,
        Via::Plain | Via::Tls | Via::Prewarm | Via::Distant | Via::DistantPrewarm => {
            Some(rig.pid())
        }
        Via::SocatPlain(_) => rig.socat.imap_plain.session_pid(),
        Via::SocatTls(_) => rig.socat.imap_tls.session_pid(),
    };
    let relay_cpu = |pid: Option<u32>| pid.map(|p| report::cpu_seconds(p, ticks));
    let cpu = relay_cpu(relay_pid);
    let own = report::cpu_seconds(std::process::id(), ticks);
    let machine = report::machine_ticks();
    let started = Instant::now();
    let bytes = conn.command("FETCH 1:* BODY.PEEK[]").await.expect("fetch");
    let secs = started.elapsed().as_secs_f64();
    let cpu_used = relay_cpu(relay_pid)
        .zip(cpu)
        .map(|(after, before)| after - before);
    let own_used = report::cpu_seconds(std::process::id(), ticks) - own;
    let machine_after = report::machine_ticks();
    let gb = bytes as f64 / 1e9;
    let _ = conn.command("LOGOUT").await;
    assert!(
        bytes >= (MESSAGES * (MESSAGE_SIZE - 100)) as u64,
        "{} fetched only {bytes} bytes",
        via.name()
    );
    Sample {
        mb_per_s: bytes as f64 / secs / 1e6,
        bytes,
        cpu_s_per_gb: cpu_used.map(|c| c / gb),
        client_s_per_gb: own_used / gb,
        cores_busy: (machine_after.0 - machine.0) / ticks / secs,
        cores_stolen: (machine_after.1 - machine.1) / ticks / secs,
    }
}

pub async fn run(rig: &Rig, token: &str, report: &mut Report) {
    let ticks = report::clock_ticks();
    let variants = [
        Via::Direct(token),
        Via::Plain,
        Via::Tls,
        Via::SocatPlain(token),
        Via::SocatTls(token),
    ];
    fetch_all(rig, variants[0], ticks).await;
    let mut samples: Vec<Vec<Sample>> = variants.iter().map(|_| Vec::new()).collect();
    for run in 0..RUNS {
        for k in 0..variants.len() {
            let i = (run + k) % variants.len();
            let s = fetch_all(rig, variants[i], ticks).await;
            samples[i].push(s);
        }
    }
    let rate =
        |i: usize| report::median(&samples[i].iter().map(|s| s.mb_per_s).collect::<Vec<_>>());
    let cpu = |i: usize| {
        report::median(
            &samples[i]
                .iter()
                .filter_map(|s| s.cpu_s_per_gb)
                .collect::<Vec<_>>(),
        )
    };
    let med = |i: usize, f: fn(&Sample) -> f64| {
        report::median(&samples[i].iter().map(f).collect::<Vec<_>>())
    };
    for (i, v) in variants.iter().enumerate() {
        report.row(
            format!("during FETCH {}: cores busy / stolen, client CPU", v.name()),
            "-",
            format!(
                "{:.2} / {:.2} of {}, client {:.2} s/GB",
                med(i, |s| s.cores_busy),
                med(i, |s| s.cores_stolen),
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(0),
                med(i, |s| s.client_s_per_gb),
            ),
            "-",
            "-",
            None,
        );
    }
    let direct = rate(0);
    for (i, socat, label) in [(1, 3, "plaintext"), (2, 4, "TLS")] {
        let ratio = rate(i) / direct;
        report.row(
            format!("IMAP FETCH 200 MiB, client {label} (MB/s, median of {RUNS})"),
            format!("{direct:.0}"),
            format!("{:.0}", rate(i)),
            format!("{:.0}%", ratio * 100.0),
            ">= 90%",
            Some(ratio >= 0.9),
        );
        let vs_socat = rate(i) / rate(socat);
        report.row(
            "same, baseline socat instead of direct (MB/s)",
            format!("socat {:.0}", rate(socat)),
            format!("{:.0}", rate(i)),
            format!("{:.0}%", vs_socat * 100.0),
            ">= 100%",
            Some(vs_socat >= 1.0),
        );
        let cpu_ratio = cpu(i) / cpu(socat);
        report.row(
            format!("relay CPU per GB (utime+stime), client {label}"),
            format!("socat {:.2} s/GB", cpu(socat)),
            format!("{:.2} s/GB", cpu(i)),
            format!("{:.0}%", cpu_ratio * 100.0),
            "<= 50%",
            Some(cpu_ratio <= 0.5),
        );
    }
    let per_variant: Vec<_> = variants
        .iter()
        .zip(&samples)
        .map(|(v, s)| {
            json!({
                "variant": v.name(),
                "bytes": s.first().map(|x| x.bytes),
                "mb_per_s": s.iter().map(|x| x.mb_per_s).collect::<Vec<_>>(),
                "median_mb_per_s": report::median(&s.iter().map(|x| x.mb_per_s).collect::<Vec<_>>()),
                "relay_cpu_s_per_gb": s.iter().filter_map(|x| x.cpu_s_per_gb).collect::<Vec<_>>(),
                "client_cpu_s_per_gb": s.iter().map(|x| x.client_s_per_gb).collect::<Vec<_>>(),
                "machine_cores_busy": s.iter().map(|x| x.cores_busy).collect::<Vec<_>>(),
                "machine_cores_stolen": s.iter().map(|x| x.cores_stolen).collect::<Vec<_>>(),
            })
        })
        .collect();
    report.set("throughput", json!({"runs": RUNS, "variants": per_variant}));
}
