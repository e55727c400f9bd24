//! Crash safety of the token store. `mailgate serve` is killed with SIGKILL
//! in the middle of a refresh storm, again and again; every time the store
//! must open with the local password and hold the newest refresh token the
//! provider issued, or the one just before it (the kill fell between the
//! provider's answer and the durable write, which is before mailgate used
//! the new access token). A restarted mailgate then refreshes with it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mailgate::base::AccountName;
use mailgate::secret::Secret;
use mailgate::store::Store;

use crate::support::client::Client;
use crate::support::config::{ConfigBuilder, IdpUrls, Listener, Upstream, free_port};
use crate::support::idp::TestIdp;
use crate::support::mailgate::{Serve, login};
use crate::support::scratch::Scratch;

const ALICE: &str = "alice@example.test";
const PASSWORD: &str = "crash test password";
const ROUNDS: usize = 4;
const CLIENTS: usize = 4;
/// Refreshes to wait for before each kill (plus a per-round offset, so the
/// kill lands at different points of the write path).
const REFRESHES_BEFORE_KILL: u64 = 15;
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);

fn config_text(scratch: &Scratch, idp: &TestIdp, port: u16) -> String {
    let dead_upstream = free_port();
    let urls = IdpUrls {
        authorize: idp.authorize_url(),
        token: idp.token_url(),
        device: idp.device_code_url(),
    };
    // A refresh margin longer than the token's life: every login refreshes.
    ConfigBuilder::new()
        .state_dir(&scratch.state())
        .provider_generic(
            "idp",
            "client-1",
            &urls,
            &["mail", "offline_access"],
            "refresh_margin_secs = 100000",
        )
        .listener(Listener::local(
            "imap",
            port,
            Upstream::new(dead_upstream, "none"),
        ))
        .toml()
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
        let mut c = Client::from_tcp(tcp);
        let exchange = async {
            c.line().await;
            if !c.send(&format!("a LOGIN {ALICE} \"{PASSWORD}\"\r\n")).await {
                return None;
            }
            Some(c.line().await)
        };
        if let Ok(Some(answer)) = tokio::time::timeout(Duration::from_secs(5), exchange).await {
            answers.push(answer);
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

/// The enrolled account's config and the port its IMAP listener binds.
struct Setup {
    idp: TestIdp,
    config: PathBuf,
    state: PathBuf,
    port: u16,
}

impl Setup {
    async fn serve(&self) -> Serve {
        let (config, port) = (self.config.clone(), self.port);
        tokio::task::spawn_blocking(move || Serve::start(&config, &[port]))
            .await
            .unwrap()
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_refresh_storm_never_loses_the_refresh_token() {
    let idp = TestIdp::start().await;
    idp.add_user(ALICE);
    idp.set_default_user(ALICE);
    idp.set_keep_redeemed(true);
    let scratch = Scratch::new("crash");
    let port = free_port();
    let config = scratch.write(&config_text(&scratch, &idp, port));
    let cfg = config.clone();
    tokio::task::spawn_blocking(move || login(&cfg, ALICE, PASSWORD))
        .await
        .unwrap()
        .unwrap();
    let setup = Setup {
        idp,
        config,
        state: scratch.state(),
        port,
    };
    let mut kills_after_persist = 0;
    for round in 0..ROUNDS as u64 {
        if kill_during_a_refresh_storm(&setup, round).await == 0 {
            kills_after_persist += 1;
        }
    }
    eprintln!(
        "{ROUNDS} SIGKILLs: {kills_after_persist} after the newest token was on disk, the rest in the write window"
    );
    a_restart_refreshes_with_the_stored_token(&setup).await;
}

/// One round: SIGKILL once the refresh storm is under way; returns the age
/// (in rotations) of the refresh token the store then holds.
async fn kill_during_a_refresh_storm(setup: &Setup, round: u64) -> usize {
    let idp = &setup.idp;
    let mut serve = setup.serve().await;
    let before = idp.token_requests("refresh_token");
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(hammer(setup.port, stop.clone())))
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
    let rt = stored_refresh_token(&setup.state);
    let age = idp
        .refresh_token_age(ALICE, &rt)
        .expect("the stored refresh token was issued by the IdP");
    assert!(
        age <= 1,
        "round {round}: the store holds a refresh token {age} rotations old"
    );
    age
}

/// A restarted mailgate refreshes with what the store holds.
async fn a_restart_refreshes_with_the_stored_token(setup: &Setup) {
    let idp = &setup.idp;
    let serve = setup.serve().await;
    let before = idp.token_requests("refresh_token");
    let stop = Arc::new(AtomicBool::new(false));
    let client = tokio::spawn(hammer(setup.port, stop.clone()));
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
        idp.refresh_token_age(ALICE, &stored_refresh_token(&setup.state)),
        Some(0),
        "the rotated token is persisted"
    );
}
