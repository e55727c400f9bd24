//! Graph submission (issue 12): the SMTP phase's 500 messages of 10 kB over
//! 4 sessions, through the `smtp` listener (XOAUTH2 relay to Postfix) and
//! the `submit = "graph"` listener (mailgate is the SMTP server and posts
//! each message to the test Graph, which writes it into Dovecot's
//! maildirs), interleaved, with mailgate's CPU per message; then one 10 MB
//! message through each (a multipart with a base64 attachment: through
//! Graph that is a draft plus an upload session).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::report::{self, Report};
use crate::rig::{ALICE, BOB, LOCAL_PASSWORD, Rig};
use crate::submit::{self, MESSAGES, Route};
use crate::wire::{self, Conn};

/// Interleaved runs per listener. Each graph run uploads about 5 MB, well
/// inside Graph's 150 MB per mailbox and 5 minutes that mailgate counts.
const RUNS: usize = 3;
/// The large message, in bytes on the wire.
pub const LARGE: usize = 10 * 1000 * 1000;
/// Upper bound for the large message to be accepted and delivered.
const LARGE_TIMEOUT: Duration = Duration::from_secs(180);
/// Message numbers apart from the SMTP phase's (unique Message-IDs).
const FIRST_RUN: usize = 1000;

/// A multipart message of about `LARGE` bytes whose attachment is base64.
fn large_message(tag: &str) -> Vec<u8> {
    let mut m = format!(
        "From: {ALICE}\r\nTo: {BOB}\r\nSubject: bench large {tag}\r\n\
         Message-ID: <large-{tag}@example.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"BENCH\"\r\n\r\n\
         --BENCH\r\nContent-Type: text/plain\r\n\r\nThe attachment is 10 MB.\r\n\
         --BENCH\r\nContent-Type: application/octet-stream; name=\"large.bin\"\r\n\
         Content-Disposition: attachment; filename=\"large.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    let line = format!("{}\r\n", "QUJD".repeat(19));
    while m.len() + line.len() + 16 < LARGE {
        m.extend_from_slice(line.as_bytes());
    }
    m.extend_from_slice(b"--BENCH--\r\n.\r\n");
    m
}

/// Seconds from MAIL FROM to the `250` of one large message.
async fn send_large(addr: std::net::SocketAddr, tag: &str) -> std::io::Result<f64> {
    let message = large_message(tag);
    let mut conn = Conn::connect(addr, None, 16 * 1024).await?;
    conn.smtp_reply(b'2').await?;
    conn.send(b"EHLO bench.example.test\r\n").await?;
    conn.smtp_reply(b'2').await?;
    let auth = format!("AUTH PLAIN {}\r\n", wire::plain(ALICE, LOCAL_PASSWORD));
    conn.send(auth.as_bytes()).await?;
    conn.smtp_reply(b'2').await?;
    let started = Instant::now();
    conn.send(format!("MAIL FROM:<{ALICE}>\r\n").as_bytes())
        .await?;
    conn.smtp_reply(b'2').await?;
    conn.send(format!("RCPT TO:<{BOB}>\r\n").as_bytes()).await?;
    conn.smtp_reply(b'2').await?;
    conn.send(b"DATA\r\n").await?;
    conn.smtp_reply(b'3').await?;
    conn.send(&message).await?;
    conn.smtp_reply(b'2').await?;
    let took = started.elapsed().as_secs_f64();
    conn.send(b"QUIT\r\n").await?;
    let _ = conn.smtp_reply(b'2').await;
    Ok(took)
}

/// Seconds for the large message, or NaN (logged) when it failed; waits
/// for its delivery.
async fn large(rig: &Rig, addr: std::net::SocketAddr, tag: &str) -> (f64, bool) {
    let maildir = rig.servers.maildir(BOB);
    let before = submit::delivered(&maildir);
    let took = match tokio::time::timeout(LARGE_TIMEOUT, send_large(addr, tag)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            eprintln!("large message via {tag} failed: {e}");
            return (f64::NAN, false);
        }
        Err(_) => {
            eprintln!("large message via {tag} timed out");
            return (f64::NAN, false);
        }
    };
    let until = Instant::now() + LARGE_TIMEOUT;
    while submit::delivered(&maildir) <= before && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (took, submit::delivered(&maildir) > before)
}

pub async fn run(rig: &Rig, report: &mut Report) {
    let ticks = report::clock_ticks();
    let routes = [
        ("smtp", Route::Mailgate(rig.ports.smtp_plain)),
        ("graph", Route::Mailgate(rig.ports.smtp_graph)),
    ];
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut cpu_ms: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut counts = [(0usize, 0usize); 2];
    for run in 0..RUNS {
        for k in 0..2 {
            let i = (run + k) % 2;
            let cpu = report::cpu_seconds(rig.pid(), ticks);
            let number = FIRST_RUN + run * 2 + i;
            let (rate, accepted, got) = submit::batch(rig, routes[i].1.clone(), number).await;
            let used = report::cpu_seconds(rig.pid(), ticks) - cpu;
            rates[i].push(rate);
            cpu_ms[i].push(used * 1000.0 / accepted.max(1) as f64);
            counts[i].0 += accepted;
            counts[i].1 += got;
        }
    }
    let med = |v: &[f64]| report::median(v);
    let (smtp_large, smtp_ok) = large(rig, rig.ports.smtp_plain, "smtp").await;
    let (graph_large, graph_ok) = large(rig, rig.ports.smtp_graph, "graph").await;
    report.row(
        format!("Graph 500 x 10 kB, 4 sessions (msg/s, median of {RUNS}; smtp | graph)"),
        format!("smtp {:.0}", med(&rates[0])),
        format!("{:.0}", med(&rates[1])),
        format!("{:.0}%", med(&rates[1]) / med(&rates[0]) * 100.0),
        "-",
        None,
    );
    report.row(
        "same, mailgate CPU per message (ms; smtp | graph)",
        format!("smtp {:.2}", med(&cpu_ms[0])),
        format!("{:.2}", med(&cpu_ms[1])),
        "-",
        "-",
        None,
    );
    report.row(
        "one 10 MB message, MAIL FROM to 250 (s; smtp | graph)",
        format!("smtp {smtp_large:.2}"),
        format!("{graph_large:.2}"),
        "-",
        "delivered",
        Some(smtp_ok && graph_ok),
    );
    report.row(
        "Graph phase messages accepted / delivered (smtp | graph)",
        format!("smtp {}/{}", counts[0].0, counts[0].1),
        format!("{}/{}", counts[1].0, counts[1].1),
        "-",
        "all delivered",
        Some(counts.iter().all(|&(a, d)| a == RUNS * MESSAGES && d == a)),
    );
    report.set(
        "graph_submission",
        json!({
            "messages_per_run": MESSAGES, "message_bytes": submit::MESSAGE_SIZE, "runs": RUNS,
            "smtp": {"msgs_per_s": rates[0], "cpu_ms_per_msg": cpu_ms[0], "accepted": counts[0].0, "delivered": counts[0].1},
            "graph": {"msgs_per_s": rates[1], "cpu_ms_per_msg": cpu_ms[1], "accepted": counts[1].0, "delivered": counts[1].1},
            "large_bytes": LARGE, "large_s": {"smtp": smtp_large, "graph": graph_large},
        }),
    );
}
