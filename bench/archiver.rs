//! An archiver's load (issue 14): 200 distinct mailboxes behind one app-only
//! wildcard rule (`*@archive.test`), all at once, each logging in, selecting
//! INBOX and fetching its 20 messages. Every session must succeed with one
//! client-credentials token request in total; wall time and mailgate's CPU
//! are set next to the same work done directly (XOAUTH2 to Dovecot with the
//! app's token), each variant once, after an uncounted direct pass.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinSet;

use crate::report::{self, Report};
use crate::rig::Rig;
use crate::wire::{self, Conn};

pub const DOMAIN: &str = "archive.test";
/// Mailboxes read at once.
pub const MAILBOXES: usize = 200;
/// Messages seeded in, and fetched from, each mailbox.
pub const MESSAGES: usize = 20;
/// The app-only rule's local password.
pub const RULE_PASSWORD: &str = "archiver-local-pw";
/// Its Argon2id hash with small costs (1 MiB, one pass), as in the
/// interop suite's archiver test: the phase measures the relay and the
/// token service, not 200 password hashes on two cores.
pub const RULE_HASH: &str = "$argon2id$v=19$m=1024,t=1,p=1$YXJjaGl2ZXItdGVzdC1zYWx0$3sZFny82Ie8LCLVFGIPafzBx/EV4eydsSC7Y4khSYH0";
/// The app's client secret at the IdP.
pub const CLIENT_SECRET: &str = "bench-archiver-secret";
/// Upper bound for the whole load of one variant.
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);
const BUFFER: usize = 16 * 1024;

pub fn mailbox(n: usize) -> String {
    format!("a{n:03}@{DOMAIN}")
}

fn message(n: usize, box_: &str) -> Vec<u8> {
    let body = "archived line of text for the bench\r\n".repeat(100);
    format!("From: journal@example.test\r\nTo: {box_}\r\nSubject: archive {n}\r\n\r\n{body}")
        .into_bytes()
}

/// Seeds every mailbox and grants the app the whole domain at the IdP.
pub fn seed(rig: &Rig) {
    rig.idp.grant_app(&format!("*@{DOMAIN}"));
    for b in 0..MAILBOXES {
        let box_ = mailbox(b);
        for n in 0..MESSAGES {
            rig.servers
                .seed_message(&box_, &message(n, &box_))
                .expect("seed archive");
        }
    }
}

#[derive(Clone)]
enum Via {
    Mailgate,
    Direct(String),
}

/// One mailbox's session; returns the literal bytes fetched.
async fn read_one(
    (mailgate, direct): (SocketAddr, SocketAddr),
    tls: Arc<rustls::ClientConfig>,
    box_: String,
    via: Via,
) -> std::io::Result<u64> {
    let mut conn = match &via {
        Via::Mailgate => Conn::connect(mailgate, None, BUFFER).await?,
        Via::Direct(_) => Conn::connect(direct, Some(&tls), BUFFER).await?,
    };
    conn.greeting().await?;
    match &via {
        Via::Mailgate => {
            conn.command(&format!("LOGIN {box_} {RULE_PASSWORD}"))
                .await?
        }
        Via::Direct(token) => {
            conn.command(&format!(
                "AUTHENTICATE XOAUTH2 {}",
                wire::xoauth2(&box_, token)
            ))
            .await?
        }
    };
    conn.command("SELECT INBOX").await?;
    let bytes = conn
        .command(&format!("FETCH 1:{MESSAGES} BODY.PEEK[]"))
        .await?;
    conn.command("LOGOUT").await?;
    if bytes == 0 {
        return Err(std::io::Error::other("FETCH returned no literal"));
    }
    Ok(bytes)
}

struct Outcome {
    ok: usize,
    bytes: u64,
    wall: Duration,
    mailgate_cpu: f64,
    errors: Vec<String>,
}

async fn load(rig: &Rig, via: Via) -> Outcome {
    let ticks = report::clock_ticks();
    let pid = rig.pid();
    let cpu_before = report::cpu_seconds(pid, ticks);
    let started = Instant::now();
    let mut set = JoinSet::new();
    for b in 0..MAILBOXES {
        set.spawn(read_one(
            (rig.ports.imap_plain, rig.ports.imaps_direct),
            rig.tls.clone(),
            mailbox(b),
            via.clone(),
        ));
    }
    let (mut ok, mut bytes, mut errors) = (0, 0, Vec::new());
    let deadline = tokio::time::Instant::now() + LOAD_TIMEOUT;
    while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, set.join_next()).await {
        match joined {
            Ok(Ok(n)) => {
                ok += 1;
                bytes += n;
            }
            Ok(Err(e)) => errors.push(e.to_string()),
            Err(e) => errors.push(e.to_string()),
        }
    }
    set.abort_all();
    let wall = started.elapsed();
    errors.sort();
    errors.dedup();
    Outcome {
        ok,
        bytes,
        wall,
        mailgate_cpu: report::cpu_seconds(pid, ticks) - cpu_before,
        errors,
    }
}

/// The app's token, as the direct archiver gets it: one client-credentials
/// request to the IdP.
async fn app_token(rig: &Rig) -> String {
    let body = format!(
        "grant_type=client_credentials&client_id=bench-client&client_secret={CLIENT_SECRET}&scope=https%3A%2F%2Foutlook.office365.com%2F.default"
    );
    let text = reqwest::Client::new()
        .post(rig.idp.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("token request")
        .text()
        .await
        .expect("token response");
    let value: serde_json::Value = serde_json::from_str(&text).expect("token JSON");
    value["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token in {text}"))
        .to_owned()
}

pub async fn run(rig: &Rig, report: &mut Report) {
    let requests = || rig.idp.token_requests("client_credentials");
    let token = app_token(rig).await;
    // Dovecot builds each mailbox's index on its first SELECT; an
    // uncounted direct pass pays for that, so neither variant does.
    let _ = load(rig, Via::Direct(token.clone())).await;
    let before = requests();
    let through = load(rig, Via::Mailgate).await;
    let by_mailgate = requests() - before;
    let direct = load(rig, Via::Direct(token)).await;
    let all = MAILBOXES;
    report.row(
        format!("archiver: {all} mailboxes x {MESSAGES} messages at once, one app-only rule"),
        format!(
            "{}/{all} ok in {:.0} ms",
            direct.ok,
            report::ms(direct.wall)
        ),
        format!(
            "{}/{all} ok in {:.0} ms",
            through.ok,
            report::ms(through.wall)
        ),
        format!("{by_mailgate} client-credentials request(s)"),
        "all ok, 1 request",
        Some(through.ok == all && direct.ok == all && by_mailgate == 1),
    );
    report.row(
        "archiver: mailgate CPU (utime+stime) over the load",
        "-",
        format!(
            "{:.2} s for {:.1} MB",
            through.mailgate_cpu,
            through.bytes as f64 / 1e6
        ),
        format!(
            "wall {:.0}%",
            100.0 * through.wall.as_secs_f64() / direct.wall.as_secs_f64().max(1e-9)
        ),
        "-",
        None,
    );
    report.set(
        "archiver",
        json!({
            "mailboxes": all, "messages_each": MESSAGES,
            "mailgate": {"ok": through.ok, "bytes": through.bytes, "wall_ms": report::ms(through.wall),
                "cpu_s": through.mailgate_cpu, "errors": through.errors.iter().take(5).collect::<Vec<_>>()},
            "direct": {"ok": direct.ok, "bytes": direct.bytes, "wall_ms": report::ms(direct.wall),
                "errors": direct.errors.iter().take(5).collect::<Vec<_>>()},
            "client_credentials_requests_by_mailgate": by_mailgate,
        }),
    );
}
