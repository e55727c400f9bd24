//! SMTP submission (measure 5): 500 messages of 10 kB, direct to Postfix (STARTTLS,
//! AUTH XOAUTH2), through mailgate (plaintext, AUTH PLAIN) and through socat
//! (a TCP relay: the client's STARTTLS and XOAUTH2 pass through it),
//! interleaved; every run waits until Dovecot has delivered all of them.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinSet;

use crate::report::{self, Report};
use crate::rig::{ALICE, BOB, LOCAL_PASSWORD, Rig};
use crate::wire::{self, Conn};

pub const MESSAGES: usize = 500;
pub const MESSAGE_SIZE: usize = 10 * 1000;
/// Parallel submission sessions per variant.
const SESSIONS: usize = 4;
pub const RUNS: usize = 5;
/// Upper bound for one batch to be accepted, and then delivered.
const BATCH_TIMEOUT: Duration = Duration::from_secs(120);
/// Stop starting runs after this long (at least one run always happens).
const PHASE_BUDGET: Duration = Duration::from_secs(240);

fn body(i: usize) -> Vec<u8> {
    let mut m = format!(
        "From: {ALICE}\r\nTo: {BOB}\r\nSubject: bench submission {i}\r\n\
         Message-ID: <sub-{i}@example.test>\r\n\r\n"
    )
    .into_bytes();
    while m.len() + 80 < MESSAGE_SIZE {
        m.extend_from_slice(format!("{i:08} {}\r\n", "y".repeat(68)).as_bytes());
    }
    m.extend_from_slice(b".\r\n");
    m
}

#[derive(Clone)]
pub enum Route {
    Direct {
        addr: std::net::SocketAddr,
        token: String,
        tls: std::sync::Arc<rustls::ClientConfig>,
    },
    Mailgate(std::net::SocketAddr),
}

async fn session(route: Route, first: usize, count: usize) -> std::io::Result<()> {
    let mut conn = match &route {
        Route::Direct { addr, .. } | Route::Mailgate(addr) => {
            Conn::connect(*addr, None, 16 * 1024).await?
        }
    };
    conn.smtp_reply(b'2').await?;
    conn.send(b"EHLO bench.example.test\r\n").await?;
    conn.smtp_reply(b'2').await?;
    match &route {
        Route::Direct { token, tls, .. } => {
            conn.send(b"STARTTLS\r\n").await?;
            conn.smtp_reply(b'2').await?;
            conn = conn.starttls(tls).await?;
            conn.send(b"EHLO bench.example.test\r\n").await?;
            conn.smtp_reply(b'2').await?;
            let auth = format!("AUTH XOAUTH2 {}\r\n", wire::xoauth2(ALICE, token));
            conn.send(auth.as_bytes()).await?;
        }
        Route::Mailgate(_) => {
            let auth = format!("AUTH PLAIN {}\r\n", wire::plain(ALICE, LOCAL_PASSWORD));
            conn.send(auth.as_bytes()).await?;
        }
    }
    conn.smtp_reply(b'2').await?;
    for i in first..first + count {
        conn.send(format!("MAIL FROM:<{ALICE}>\r\n").as_bytes())
            .await?;
        conn.smtp_reply(b'2').await?;
        conn.send(format!("RCPT TO:<{BOB}>\r\n").as_bytes()).await?;
        conn.smtp_reply(b'2').await?;
        conn.send(b"DATA\r\n").await?;
        conn.smtp_reply(b'3').await?;
        conn.send(&body(i)).await?;
        conn.smtp_reply(b'2').await?;
    }
    conn.send(b"QUIT\r\n").await?;
    let _ = conn.smtp_reply(b'2').await;
    Ok(())
}

pub fn delivered(maildir: &Path) -> usize {
    ["new", "cur"]
        .iter()
        .map(|d| {
            std::fs::read_dir(maildir.join(d))
                .map(|r| r.count())
                .unwrap_or(0)
        })
        .sum()
}

/// Submits one batch; returns (messages per second, accepted, delivered).
pub async fn batch(rig: &Rig, route: Route, run: usize) -> (f64, usize, usize) {
    let maildir = rig.servers.maildir(BOB);
    let before = delivered(&maildir);
    let started = Instant::now();
    let mut set = JoinSet::new();
    let per = MESSAGES / SESSIONS;
    for s in 0..SESSIONS {
        set.spawn(session(route.clone(), run * MESSAGES * 2 + s * per, per));
    }
    let mut accepted = 0;
    let deadline = tokio::time::Instant::now() + BATCH_TIMEOUT;
    while let Ok(Some(done)) = tokio::time::timeout_at(deadline, set.join_next()).await {
        match done {
            Ok(Ok(())) => accepted += per,
            Ok(Err(e)) => eprintln!("submission session failed: {e}"),
            Err(e) => eprintln!("submission task failed: {e}"),
        }
    }
    set.abort_all();
    let rate = accepted as f64 / started.elapsed().as_secs_f64();
    let wait_until = Instant::now() + BATCH_TIMEOUT;
    while delivered(&maildir) < before + accepted && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (rate, accepted, delivered(&maildir) - before)
}

pub async fn run(rig: &Rig, token: &str, report: &mut Report) {
    let direct_to = |addr| Route::Direct {
        addr,
        token: token.to_owned(),
        tls: rig.tls.clone(),
    };
    let direct = direct_to(rig.ports.submission_direct);
    let socat = direct_to(rig.socat.smtp.addr);
    let routes = [direct, Route::Mailgate(rig.ports.smtp_plain), socat];
    let n = routes.len();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut counts: Vec<(usize, usize)> = vec![(0, 0); n];
    let started = Instant::now();
    for run in 0..RUNS {
        if run > 0 && started.elapsed() > PHASE_BUDGET {
            break;
        }
        for k in 0..n {
            let i = (run + k) % n;
            let (rate, accepted, got) = batch(rig, routes[i].clone(), run * n + i).await;
            rates[i].push(rate);
            counts[i].0 += accepted;
            counts[i].1 += got;
        }
    }
    let med: Vec<f64> = rates.iter().map(|r| report::median(r)).collect();
    let runs = rates[0].len();
    report.row(
        format!("SMTP 500 x 10 kB, 4 sessions (msg/s, median of {runs})"),
        format!("{:.0}", med[0]),
        format!("{:.0}", med[1]),
        format!("{:.0}%", med[1] / med[0] * 100.0),
        "-",
        None,
    );
    report.row(
        "same, baseline socat (TCP relay)",
        format!("socat {:.0}", med[2]),
        format!("{:.0}", med[1]),
        format!("{:.0}%", med[1] / med[2] * 100.0),
        "-",
        None,
    );
    report.row(
        "SMTP messages accepted / delivered (direct, socat in its column)",
        format!("{}/{}", counts[0].0, counts[0].1),
        format!("{}/{}", counts[1].0, counts[1].1),
        format!("socat {}/{}", counts[2].0, counts[2].1),
        "all delivered",
        Some(counts.iter().all(|&(a, d)| a == runs * MESSAGES && d == a)),
    );
    report.set(
        "smtp_submission",
        json!({
            "messages_per_run": MESSAGES, "message_bytes": MESSAGE_SIZE, "sessions": SESSIONS,
            "direct": {"msgs_per_s": rates[0], "median": med[0], "accepted": counts[0].0, "delivered": counts[0].1},
            "mailgate_plain": {"msgs_per_s": rates[1], "median": med[1], "accepted": counts[1].0, "delivered": counts[1].1},
            "socat_tcp": {"msgs_per_s": rates[2], "median": med[2], "accepted": counts[2].0, "delivered": counts[2].1},
        }),
    );
}
