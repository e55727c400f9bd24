//! `mailgate login` end to end: the built binary against the test IdP.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mailgate::base::AccountName;
use mailgate::oauth::{OAuthClient, TokenEndpoint};
use mailgate::secret::Secret;
use mailgate::store::{AccountSummary, Store, StoreError};

use super::browser::act_as_browser;
use super::{ALICE, STEP};
use crate::support::config::{ConfigBuilder, Listener, Upstream};
use crate::support::idp::TestIdp;
pub use crate::support::scratch::Scratch;

pub(super) fn write_config(idp: &TestIdp, dir: &Scratch) -> PathBuf {
    let text = ConfigBuilder::new()
        .state_dir(&dir.state())
        .provider_microsoft("test", &idp.authority(), idp.tenant(), "client-1", "")
        .listener(Listener::local("imap", 11143, Upstream::new(993, "implicit")).name("imap"))
        .toml();
    dir.write(&text)
}

/// `mailgate login ALICE EXTRA --config CONFIG` with piped stdio.
pub(super) fn mailgate(config: &Path, extra: &[&str]) -> Command {
    let mut args = vec!["login", ALICE];
    args.extend_from_slice(extra);
    let mut cmd = crate::support::mailgate::command(&args, config);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Waits for `child` at most [`STEP`], killing it on timeout.
pub(super) fn finish(mut child: Child) -> (bool, String, String) {
    let deadline = Instant::now() + STEP;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let read = |r: Option<&mut dyn std::io::Read>| {
                let mut s = String::new();
                if let Some(r) = r {
                    let _ = r.read_to_string(&mut s);
                }
                s
            };
            let out = read(child.stdout.as_mut().map(|s| s as &mut dyn std::io::Read));
            let err = read(child.stderr.as_mut().map(|s| s as &mut dyn std::io::Read));
            return (status.success(), out, err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mailgate login did not finish in {STEP:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(super) fn store(dir: &Scratch) -> Store {
    Store::open(&dir.state()).expect("store")
}

/// The one enrolled account, and its refresh token opened with `password`.
fn enrolled(dir: &Scratch, password: &str) -> (AccountSummary, Secret<String>) {
    let store = store(dir);
    let list = store.list().expect("list");
    assert_eq!(list.len(), 1, "{list:?}");
    let unlocked = store
        .unlock(&AccountName::parse(ALICE).unwrap(), &Secret::from(password))
        .expect("unlock with the local password");
    (list[0].clone(), unlocked.tokens.refresh_token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_device_login_with_password_on_stdin_and_again() {
    let idp = TestIdp::start().await;
    idp.add_user(ALICE);
    let dir = Scratch::new("device");
    let config = write_config(&idp, &dir);
    let cfg = config.clone();
    let out = tokio::task::spawn_blocking(move || device_login_blocking(&cfg, b"local-pass\n"))
        .await
        .expect("join");
    assert!(out.contains("Code:"), "{out}");
    assert!(out.contains("IMAP  server 127.0.0.1  port 11143"), "{out}");
    assert!(out.contains(&format!("user name: {ALICE}")), "{out}");
    assert!(
        !out.contains("local-pass"),
        "a password from stdin is never echoed"
    );
    assert_eq!(
        idp.token_requests_for(ALICE),
        2,
        "one pending poll, then success"
    );
    let (summary, rt) = enrolled(&dir, "local-pass");
    assert_eq!(
        (
            summary.account.as_str(),
            summary.sasl_user.as_str(),
            summary.provider.as_str()
        ),
        (ALICE, ALICE, "test")
    );
    let client = OAuthClient::new(&super::provider(&idp)).expect("client");
    let fresh = client
        .refresh(&rt)
        .await
        .expect("the stored refresh token is the issued one");
    assert!(fresh.refresh_token.is_some());

    let accounts = Command::new(env!("CARGO_BIN_EXE_mailgate"))
        .arg("accounts")
        .arg("--config")
        .arg(&config)
        .env_remove("MAILGATE_STATE_DIR")
        .output()
        .expect("mailgate accounts");
    let listing = String::from_utf8_lossy(&accounts.stdout);
    assert!(
        accounts.status.success() && listing.contains(ALICE),
        "{listing}"
    );

    let cfg = config.clone();
    tokio::task::spawn_blocking(move || device_login_blocking(&cfg, b"second-pass\r\n"))
        .await
        .expect("join");
    assert!(
        enrolled_fails(&dir, "local-pass"),
        "re-enrolment replaced the password"
    );
    enrolled(&dir, "second-pass");
}

/// `mailgate login --device --password-stdin` with `password` written to it.
pub(super) fn device_login(config: &Path, password: &[u8]) -> Child {
    let mut child = mailgate(config, &["--device", "--password-stdin"])
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(password)
        .expect("password");
    child
}

fn device_login_blocking(config: &Path, password: &[u8]) -> String {
    let (ok, out, err) = finish(device_login(config, password));
    assert!(ok, "stdout:\n{out}\nstderr:\n{err}");
    out
}

fn enrolled_fails(dir: &Scratch, password: &str) -> bool {
    matches!(
        store(dir).unlock(&AccountName::parse(ALICE).unwrap(), &Secret::from(password)),
        Err(StoreError::BadPassword)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_refuses_an_empty_password_before_signing_in() {
    let idp = TestIdp::start().await;
    idp.add_user(ALICE);
    let dir = Scratch::new("empty");
    let config = write_config(&idp, &dir);
    let child = device_login(&config, b"\n");
    let (ok, _, err) = tokio::task::spawn_blocking(move || finish(child))
        .await
        .expect("join");
    assert!(!ok);
    assert!(err.contains("empty password"), "{err}");
    assert!(
        idp.token_requests_by_grant().is_empty(),
        "no sign-in was started"
    );
    assert!(store(&dir).list().expect("list").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_browser_login_generates_a_password() {
    let idp = TestIdp::start().await;
    idp.add_user(ALICE);
    let dir = Scratch::new("browser");
    let config = write_config(&idp, &dir);
    let (ok, out, err) = browser_login(&idp, &config).await;
    assert!(ok, "stdout:\n{out:?}\nstderr:\n{err}");
    assert!(
        !err.contains("could not check"),
        "the id token named the signed-in user: {err}"
    );
    let password = out
        .iter()
        .find_map(|l| l.trim().strip_prefix("password:"))
        .map(str::trim)
        .expect("password line");
    assert_eq!(password.len(), 24, "{password}");
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(idp.token_requests_for(ALICE), 1);
    let (summary, _) = enrolled(&dir, password);
    assert_eq!(summary.account, ALICE);
}

/// `mailgate login --browser --no-open` with the test as the browser:
/// success, the stdout lines after the URL, and stderr.
pub(super) async fn browser_login(idp: &TestIdp, config: &Path) -> (bool, Vec<String>, String) {
    let mut child = mailgate(config, &["--browser", "--no-open"])
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let authority = idp.authority();
    let (url, rest) = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + STEP;
        let url = loop {
            assert!(Instant::now() < deadline, "no URL in time");
            let line = lines.next().expect("a URL line").expect("utf-8");
            if line.starts_with(&authority) {
                break line;
            }
        };
        (url, lines)
    })
    .await
    .expect("join");
    assert_eq!(act_as_browser(&url, |l| l).await, 200);
    let (ok, _, err) = tokio::task::spawn_blocking(move || finish(child))
        .await
        .expect("join");
    let out: Vec<String> =
        tokio::task::spawn_blocking(move || rest.map_while(Result::ok).collect())
            .await
            .expect("join");
    (ok, out, err)
}
