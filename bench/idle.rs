//! Idle sessions (measure 4): as many logged-in IMAP sessions through mailgate as the
//! file descriptor limit allows (up to 10,000), mailgate's RSS per session,
//! and whether they still answer. Two kinds, each on a freshly started
//! mailgate: sessions that sit after LOGIN (a sample answers NOOP), and
//! sessions with IDLE in flight (`SELECT INBOX`, `IDLE`, the upstream's
//! `+ idling`; every one must answer DONE with its tagged OK).

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinSet;

use crate::report::{self, Report};
use crate::rig::{ALICE, LOCAL_PASSWORD, Rig};
use crate::wire::Conn;

pub const TARGET: usize = 10_000;
/// Logins in flight while ramping up.
const CONCURRENCY: usize = 64;
/// Longest the ramp may take.
const RAMP_TIMEOUT: Duration = Duration::from_secs(240);
/// Sessions asked for NOOP afterwards, spread over all of them.
const SAMPLE: usize = 100;
/// File descriptors mailgate keeps besides two per session (listeners, logs, epoll, IdP).
const FD_SLACK: usize = 64;
const BUFFER: usize = 1024;
const CHECKPOINTS: [usize; 3] = [1_000, 5_000, TARGET];
/// Caps the sessions opened (for a quick measure; published figures use the
/// full ramp).
const SESSIONS_ENV: &str = "MAILGATE_BENCH_IDLE_SESSIONS";
/// Seconds to wait, with mailgate's pid printed, before the ramp and again
/// with every session held: time to attach a heap profiler or read
/// `/proc/<pid>/smaps_rollup` from outside.
const PAUSE_ENV: &str = "MAILGATE_BENCH_IDLE_PAUSE";

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

/// Waits `PAUSE_ENV` seconds, if set, saying why.
async fn pause(pid: u32, moment: &str) {
    if let Some(secs) = env_number(PAUSE_ENV) {
        eprintln!("bench: idle: mailgate pid {pid}, {moment}; pausing {secs} s");
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }
}

/// What an idle session is doing while it is held.
#[derive(Clone, Copy)]
pub enum Kind {
    /// Logged in, nothing in flight.
    Noop,
    /// `IDLE` sent and acknowledged with a continuation.
    Idle,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Noop => "after LOGIN",
            Kind::Idle => "in IDLE",
        }
    }
}

/// A held session and, in IDLE, the tag of its IDLE command.
type Held = (Conn, Option<String>);

fn soft_nofile(pid: &str) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(1024)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

async fn open_one(rig_addr: std::net::SocketAddr, kind: Kind) -> std::io::Result<Held> {
    let mut conn = Conn::connect(rig_addr, None, BUFFER).await?;
    conn.greeting().await?;
    conn.command(&format!("LOGIN {ALICE} {LOCAL_PASSWORD}"))
        .await?;
    let tag = match kind {
        Kind::Noop => None,
        Kind::Idle => {
            conn.command("SELECT INBOX").await?;
            Some(conn.idle_start().await?)
        }
    };
    Ok((conn, tag))
}

/// Asks held sessions to answer: NOOP on a sample of `Noop` sessions, DONE
/// on every `Idle` one. Returns (asked, answered).
async fn check(sessions: &mut [Held], kind: Kind) -> (usize, usize) {
    let step = match kind {
        Kind::Noop => (sessions.len() / SAMPLE).max(1),
        Kind::Idle => 1,
    };
    let (mut asked, mut answered) = (0, 0);
    for (conn, tag) in sessions.iter_mut().step_by(step) {
        if matches!(kind, Kind::Noop) && asked == SAMPLE {
            break;
        }
        asked += 1;
        let ok = match tag {
            Some(tag) => conn.idle_done(tag).await.is_ok(),
            None => conn.command("NOOP").await.is_ok(),
        };
        answered += usize::from(ok);
    }
    (asked, answered)
}

/// The session target as the limits allow it, and which limit set it: the
/// issue asks for as many sessions as the descriptor limits allow, up to
/// `TARGET`, so a run is judged against that goal, with the limit named.
fn goal_text(goal: usize, cap: usize, mailgate_limit: usize, own_limit: usize) -> String {
    let why = if goal >= TARGET {
        String::new()
    } else if goal == cap {
        format!(" ({SESSIONS_ENV}={cap})")
    } else {
        format!(" (of {TARGET}; nofile limit mailgate {mailgate_limit}, bench {own_limit})")
    };
    format!("{goal}{why}, all answer")
}

pub async fn run(rig: &Rig, kind: Kind, report: &mut Report) {
    let pid = rig.pid();
    let mailgate_limit = soft_nofile(&pid.to_string());
    let own_limit = soft_nofile("self");
    let by_mailgate = mailgate_limit.saturating_sub(open_fds(pid) + FD_SLACK) / 2;
    let by_bench = own_limit.saturating_sub(open_fds(std::process::id()) + FD_SLACK);
    let cap = env_number(SESSIONS_ENV).map_or(TARGET, |n| n as usize);
    let goal = TARGET.min(by_mailgate).min(by_bench).min(cap);
    pause(pid, "before the ramp").await;
    let rss_before = report::rss_kib(pid);
    let mut sessions: Vec<Held> = Vec::with_capacity(goal);
    let mut checkpoints = Vec::new();
    let mut errors = Vec::new();
    let started = Instant::now();
    let mut set = JoinSet::new();
    let mut launched = 0;
    while sessions.len() < goal && started.elapsed() < RAMP_TIMEOUT && errors.len() < 20 {
        while launched < goal && set.len() < CONCURRENCY {
            set.spawn(open_one(rig.ports.imap_plain, kind));
            launched += 1;
        }
        match tokio::time::timeout(Duration::from_secs(30), set.join_next()).await {
            Ok(Some(Ok(Ok(conn)))) => {
                sessions.push(conn);
                let n = sessions.len();
                if CHECKPOINTS.contains(&n) || n == goal {
                    let rss = report::rss_kib(pid);
                    checkpoints.push(json!({
                        "sessions": n, "rss_kib": rss,
                        "kib_per_session": (rss.saturating_sub(rss_before)) as f64 / n as f64,
                        "elapsed_s": started.elapsed().as_secs_f64(),
                    }));
                }
            }
            Ok(Some(Ok(Err(e)))) => errors.push(e.to_string()),
            Ok(Some(Err(e))) => errors.push(e.to_string()),
            Ok(None) | Err(_) => break,
        }
    }
    set.abort_all();
    let held = sessions.len();
    let ramp = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_held = report::rss_kib(pid);
    pause(pid, "all sessions held").await;
    let per_session = rss_held.saturating_sub(rss_before) as f64 / held.max(1) as f64;
    let (asked, answered) = check(&mut sessions, kind).await;
    let answer = match kind {
        Kind::Noop => "NOOP",
        Kind::Idle => "DONE",
    };
    errors.sort();
    errors.dedup();
    report.row(
        format!(
            "IMAP sessions {} held via mailgate (plaintext)",
            kind.label()
        ),
        "-",
        format!("{held} (goal {goal}); {answer} {answered}/{asked}"),
        "-",
        goal_text(goal, cap, mailgate_limit, own_limit),
        Some(held >= goal && answered == asked),
    );
    report.row(
        format!("mailgate RSS per plaintext session {}", kind.label()),
        "-",
        format!("{per_session:.1} KiB"),
        "-",
        "<= 24 KiB",
        Some(per_session <= 24.0),
    );
    drop(sessions);
    let key = match kind {
        Kind::Noop => "idle_sessions",
        Kind::Idle => "idle_sessions_in_idle",
    };
    report.set(
        key,
        json!({
            "goal": goal, "held": held, "ramp_s": ramp.as_secs_f64(),
            "mailgate_nofile_limit": mailgate_limit, "bench_nofile_limit": own_limit,
            "rss_before_kib": rss_before, "rss_held_kib": rss_held,
            "kib_per_session": per_session, "noop_asked": asked, "noop_answered": answered,
            "checkpoints": checkpoints, "errors": errors.iter().take(5).collect::<Vec<_>>(),
        }),
    );
}
