//! Crash safety of the token store. `mailgate serve` is killed with SIGKILL
//! in the middle of a refresh storm, again and again; every time the store
//! must open with the local password and hold the newest refresh token the
//! provider issued, or the one just before it (the kill fell between the
//! provider's answer and the durable write, which is before mailgate used
//! the new access token). A restarted mailgate then refreshes with it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mailgate::base::AccountName;
use mailgate::secret::Secret;
use mailgate::store::Store;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::idp::TestIdp;
use crate::support::mailgate::{Serve, login};
use crate::support::proxy::temp_dir;

const ALICE: &str = "alice@example.test";
const PASSWORD: &str = "crash test password";
const ROUNDS: usize = 4;
const CLIENTS: usize = 4;
/// Refreshes to wait for before each kill (plus a per-round offset, so the
/// kill lands at different points of the write path).
const REFRESHES_BEFORE_KILL: u64 = 15;
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(dir: &Path, idp: &TestIdp, port: u16) -> std::path::PathBuf {
    let dead_upstream = free_port();
    let config = dir.join("mailgate.toml");
    // A refresh margin longer than the token's life: every login refreshes.
    let text = format!(
        r#"state_dir = "{state}"
[[providers]]
name = "idp"
kind = "generic"
client_id = "client-1"
authorize_url = "{authorize}"
token_url = "{token}"
device_code_url = "{device}"
scopes = ["mail", "offline_access"]
refresh_margin_secs = 100000

[[listeners]]
protocol = "imap"
bind = "127.0.0.1:{port}"
upstream = {{ host = "127.0.0.1", port = {dead_upstream}, tls = "none" }}
"#,
        state = dir.join("state").display(),
        authorize = idp.authorize_url(),
        token = idp.token_url(),
        device = idp.device_code_url(),
    );
    std::fs::write(&config, text).unwrap();
    config
}

/// Logs in over and over until `stop`; each login makes mailgate refresh.
async fn hammer(port: u16, stop: Arc<AtomicBool>) -> Vec<String> {
    let mut answers = Vec::new();
    for _ in 0..10_000 {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(tcp) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let mut conn = BufReader::new(tcp);
        let mut line = String::new();
        let exchange = async {
            conn.read_line(&mut line).await?;
            conn.get_mut()
                .write_all(format!("a LOGIN {ALICE} \"{PASSWORD}\"\r\n").as_bytes())
                .await?;
            line.clear();
            conn.read_line(&mut line).await
        };
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(5), exchange).await {
            answers.push(line.trim_end().to_owned());
        }
    }
    answers
}

fn stored_refresh_token(state: &Path) -> String {
    let store = Store::open(state).expect("store opens after SIGKILL");
    let unlocked = store
        .unlock(
            &AccountName::parse(ALICE).unwrap(),
            &Secret::new(PASSWORD.to_owned()),
        )
        .expect("the record unlocks with the password after SIGKILL");
    unlocked.tokens.refresh_token.expose().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_refresh_storm_never_loses_the_refresh_token() {
    let idp = TestIdp::start().await;
    idp.add_user(ALICE);
    idp.set_default_user(ALICE);
    idp.set_keep_redeemed(true);
    let dir = temp_dir("crash");
    let port = free_port();
    let config = write_config(&dir, &idp, port);
    let cfg = config.clone();
    tokio::task::spawn_blocking(move || login(&cfg, ALICE, PASSWORD))
        .await
        .unwrap()
        .unwrap();
    let state = dir.join("state");
    let mut kills_after_persist = 0;
    for round in 0..ROUNDS as u64 {
        let cfg = config.clone();
        let mut serve = tokio::task::spawn_blocking(move || Serve::start(&cfg, &[port]))
            .await
            .unwrap()
            .unwrap();
        let before = idp.token_requests("refresh_token");
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| tokio::spawn(hammer(port, stop.clone())))
            .collect();
        let deadline = Instant::now() + ROUND_TIMEOUT;
        while idp.token_requests("refresh_token") < before + REFRESHES_BEFORE_KILL + round * 3 {
            assert!(
                Instant::now() < deadline,
                "no refresh storm in round {round}:\n{}",
                serve.log()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        serve.kill_hard();
        stop.store(true, Ordering::SeqCst);
        for c in clients {
            let answers = c.await.unwrap();
            assert!(
                answers.iter().all(|a| !a.contains("AUTHENTICATIONFAILED")),
                "a refresh storm must not turn into authentication failures: {answers:?}"
            );
        }
        let rt = stored_refresh_token(&state);
        let age = idp
            .refresh_token_age(ALICE, &rt)
            .expect("the stored refresh token was issued by the IdP");
        assert!(
            age <= 1,
            "round {round}: the store holds a refresh token {age} rotations old"
        );
        if age == 0 {
            kills_after_persist += 1;
        }
    }
    eprintln!(
        "{ROUNDS} SIGKILLs: {kills_after_persist} after the newest token was on disk, the rest in the write window"
    );
    // A restarted mailgate refreshes with what the store holds.
    let cfg = config.clone();
    let serve = tokio::task::spawn_blocking(move || Serve::start(&cfg, &[port]))
        .await
        .unwrap()
        .unwrap();
    let before = idp.token_requests("refresh_token");
    let stop = Arc::new(AtomicBool::new(false));
    let client = tokio::spawn(hammer(port, stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let answers = client.await.unwrap();
    assert!(
        idp.token_requests("refresh_token") > before,
        "no refresh after restart:\n{}",
        serve.log()
    );
    assert!(
        !answers.is_empty() && answers.iter().all(|a| a.contains("[UNAVAILABLE]")),
        "refresh works, only the (absent) upstream is unavailable: {answers:?}"
    );
    assert_eq!(
        idp.refresh_token_age(ALICE, &stored_refresh_token(&state)),
        Some(0),
        "the rotated token is persisted"
    );
}
