//! Login latency with a warm token (measure 2) and login bursts on an expired token (measure 3).

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinSet;

use crate::report::{self, Report, ms};
use crate::rig::{REFRESH_MARGIN_SECS, Rig, Via};

pub const LATENCY_RUNS: usize = 5;
/// Logins per variant per run, alternating direct / mailgate.
pub const LATENCY_PER_RUN: usize = 60;
pub const BURSTS: [usize; 3] = [50, 200, 500];
/// Access token lifetime during the bursts: each burst's refresh issues a
/// token that goes stale again (lifetime minus refresh margin) before the next.
pub const BURST_TOKEN_LIFETIME: Duration = Duration::from_secs(REFRESH_MARGIN_SECS + 10);
/// Longest one burst may take.
const BURST_TIMEOUT: Duration = Duration::from_secs(90);
const SMALL_BUFFER: usize = 8 * 1024;

async fn one_login(rig: &Rig, via: Via<'_>) -> Duration {
    let started = Instant::now();
    let mut conn = rig.imap_login(via, SMALL_BUFFER).await.expect("login");
    conn.command("SELECT INBOX").await.expect("select");
    conn.command("LOGOUT").await.expect("logout");
    started.elapsed()
}

pub async fn latency(rig: &Rig, token: &str, report: &mut Report) {
    let variants = [
        Via::Direct(token),
        Via::Plain,
        Via::SocatPlain(token),
        Via::Prewarm,
        Via::DistantDirect(token),
        Via::Distant,
        Via::DistantPrewarm,
    ];
    let n = variants.len();
    for v in variants {
        one_login(rig, v).await;
    }
    let mut all: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut run_p50: Vec<Vec<f64>> = vec![Vec::new(); n];
    for run in 0..LATENCY_RUNS {
        let mut this: Vec<Vec<f64>> = vec![Vec::new(); n];
        for i in 0..LATENCY_PER_RUN * n {
            let k = (i + run) % n;
            this[k].push(ms(one_login(rig, variants[k]).await));
        }
        for k in 0..n {
            run_p50[k].push(report::median(&this[k]));
            all[k].extend_from_slice(&this[k]);
        }
    }
    let p = |k: usize, q: f64| report::percentile(&all[k], q);
    let p50: Vec<f64> = run_p50.iter().map(|r| report::median(r)).collect();
    let delta = p50[1] - p50[0];
    report.row(
        "login+SELECT+LOGOUT p50 (ms, median of 5 runs)",
        format!("{:.2}", p50[0]),
        format!("{:.2}", p50[1]),
        format!("{delta:+.2} ms"),
        "<= +0.1 ms",
        Some(delta <= 0.1),
    );
    report.row(
        "same, baseline socat (plaintext client, XOAUTH2 through it)",
        format!("socat {:.2}", p50[2]),
        format!("{:.2}", p50[1]),
        format!("{:+.2} ms", p50[1] - p50[2]),
        "-",
        None,
    );
    report.row(
        "same, mailgate with prewarm = 4 (issue 14)",
        format!("{:.2}", p50[0]),
        format!("prewarm {:.2}", p50[3]),
        format!("{:+.2} ms", p50[3] - p50[0]),
        "< direct",
        Some(p50[3] < p50[0]),
    );
    let rtt = ms(rig.delay.rtt);
    report.row(
        format!("distant upstream ({rtt:.0} ms RTT relay) p50 (ms, median of 5 runs)"),
        format!("{:.2}", p50[4]),
        format!("{:.2}", p50[5]),
        format!("{:+.2} ms", p50[5] - p50[4]),
        "-",
        None,
    );
    report.row(
        format!("same, distant upstream ({rtt:.0} ms RTT), prewarm = 4 (issue 14)"),
        format!("{:.2}", p50[4]),
        format!("prewarm {:.2}", p50[6]),
        format!("{:+.2} ms", p50[6] - p50[4]),
        "< direct",
        Some(p50[6] < p50[4]),
    );
    report.row(
        format!("distant upstream ({rtt:.0} ms RTT) p95 (direct; mailgate / prewarm)"),
        format!("{:.2}", p(4, 95.0)),
        format!("{:.2} / prewarm {:.2}", p(5, 95.0), p(6, 95.0)),
        format!(
            "{:+.2} / {:+.2} ms",
            p(5, 95.0) - p(4, 95.0),
            p(6, 95.0) - p(4, 95.0)
        ),
        "-",
        None,
    );
    for q in [95.0, 99.0] {
        report.row(
            format!("login+SELECT+LOGOUT p{q:.0} (ms, all samples)"),
            format!("{:.2}", p(0, q)),
            format!("{:.2}", p(1, q)),
            format!("{:+.2} ms", p(1, q) - p(0, q)),
            "-",
            None,
        );
    }
    let summary = |k: usize| {
        json!({
            "p50_per_run_ms": run_p50[k], "p50_ms": p50[k],
            "p95_ms": p(k, 95.0), "p99_ms": p(k, 99.0), "samples": all[k].len(),
        })
    };
    report.set(
        "login_latency",
        json!({
            "direct": summary(0), "mailgate_plain": summary(1), "socat_plain": summary(2),
            "mailgate_prewarm": summary(3),
            "distant": {
                "rtt_ms": rtt, "direct": summary(4), "mailgate_plain": summary(5),
                "mailgate_prewarm": summary(6),
            },
        }),
    );
}

/// Waits until the token mailgate holds (issued at `issued`) is inside the
/// refresh margin, so the next login must refresh it.
async fn wait_stale(issued: Instant, lifetime: Duration) {
    let stale_at =
        issued + lifetime - Duration::from_secs(REFRESH_MARGIN_SECS) + Duration::from_millis(500);
    tokio::time::sleep_until(stale_at.into()).await;
}

/// Runs the bursts; the caller made the IdP issue [`BURST_TOKEN_LIFETIME`]
/// tokens since enrolment. The last burst's refresh gets `final_lifetime`.
pub async fn bursts(rig: &Rig, final_lifetime: Duration, report: &mut Report) {
    let mut issued = rig.enrolled_at;
    let mut results = Vec::new();
    for (b, &n) in BURSTS.iter().enumerate() {
        wait_stale(issued, BURST_TOKEN_LIFETIME).await;
        if b + 1 == BURSTS.len() {
            rig.idp.set_access_lifetime(final_lifetime);
        }
        let before = rig.idp.token_requests("refresh_token");
        let started = Instant::now();
        let mut set = JoinSet::new();
        for _ in 0..n {
            set.spawn(burst_login(rig.ports.imap_plain));
        }
        let mut ok = 0usize;
        let mut errors = Vec::new();
        let deadline = tokio::time::Instant::now() + BURST_TIMEOUT;
        while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, set.join_next()).await {
            match joined {
                Ok(Ok(())) => ok += 1,
                Ok(Err(e)) => errors.push(e.to_string()),
                Err(e) => errors.push(e.to_string()),
            }
        }
        set.abort_all();
        let wall = started.elapsed();
        issued = Instant::now();
        let refreshes = rig.idp.token_requests("refresh_token") - before;
        errors.sort();
        errors.dedup();
        report.row(
            format!("burst of {n} logins on an expired token"),
            "-",
            format!("{ok}/{n} ok in {:.0} ms", ms(wall)),
            format!("{refreshes} refresh(es)"),
            "all ok, 1 refresh",
            Some(ok == n && refreshes == 1),
        );
        results.push(json!({
            "logins": n, "succeeded": ok, "wall_ms": ms(wall),
            "refreshes_at_idp": refreshes, "errors": errors.iter().take(5).collect::<Vec<_>>(),
        }));
    }
    report.set("login_burst", json!(results));
}

async fn burst_login(addr: std::net::SocketAddr) -> std::io::Result<()> {
    let mut conn = crate::wire::Conn::connect(addr, None, SMALL_BUFFER).await?;
    conn.greeting().await?;
    conn.command(&format!(
        "LOGIN {} {}",
        crate::rig::ALICE,
        crate::rig::LOCAL_PASSWORD
    ))
    .await?;
    conn.command("LOGOUT").await?;
    Ok(())
}
