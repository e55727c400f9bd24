//! The real binary: enrolment against the test IdP and `serve` in front of a
//! fake upstream, both at `--log trace`. Used by the redaction scan and the
//! SIGHUP reload test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mailgate::base::AccountName;
use mailgate::secret::Secret;
use mailgate::store::Store;

use crate::support::client::Client;
pub use crate::support::config::free_port;
use crate::support::config::{self, ConfigBuilder, Upstream};
use crate::support::idp::TestIdp;
pub use crate::support::scratch::Scratch;

pub const MAILBOX: &str = "alice@example.test";
pub const LOCAL_PASSWORD: &str = "local-secret-pass-93";
const STEP: Duration = Duration::from_secs(30);

/// A plain listener `name` on 127.0.0.1:`port` in front of a plain upstream.
pub fn listener(name: &str, protocol: &str, port: u16, upstream_port: u16) -> config::Listener {
    config::Listener::local(protocol, port, Upstream::new(upstream_port, "none")).name(name)
}

/// The provider is the test IdP.
pub fn config(
    idp: &TestIdp,
    state: &Path,
    hostname: &str,
    listeners: &[config::Listener],
) -> ConfigBuilder {
    let mut config = ConfigBuilder::new()
        .state_dir(state)
        .hostname(hostname)
        .provider_microsoft("test", &idp.authority(), idp.tenant(), "client-1", "");
    for l in listeners {
        config = config.listener(l.clone());
    }
    config
}

pub fn config_text(
    idp: &TestIdp,
    state: &Path,
    hostname: &str,
    listeners: &[config::Listener],
) -> String {
    config(idp, state, hostname, listeners).toml()
}

/// [`MAILBOX`] enrolled through `mailgate login` against a fresh test IdP,
/// with a config of `listeners` written to a scratch directory.
pub struct Enrolled {
    pub idp: TestIdp,
    pub scratch: Scratch,
    /// What `mailgate login` printed.
    pub output: String,
    pub refresh_token: String,
    pub access_token: String,
}

impl Enrolled {
    pub async fn new(tag: &str, hostname: &str, listeners: &[config::Listener]) -> Self {
        let idp = TestIdp::start().await;
        idp.add_user(MAILBOX);
        let scratch = Scratch::new(tag);
        let path = scratch.write(&config_text(&idp, &scratch.state(), hostname, listeners));
        let output = tokio::task::spawn_blocking(move || enrol(&path))
            .await
            .unwrap();
        let (refresh_token, access_token) = stored_tokens(&scratch);
        let access_token = access_token.expect("an access token was stored");
        Self {
            idp,
            scratch,
            output,
            refresh_token,
            access_token,
        }
    }
}

/// `mailgate --log trace ARGS --config CONFIG`.
fn mailgate(args: &[&str], config: &Path) -> Command {
    let mut all = vec!["--log", "trace"];
    all.extend_from_slice(args);
    crate::support::mailgate::command(&all, config)
}

/// `mailgate login --device --password-stdin`; returns stdout + stderr.
pub fn enrol(config: &Path) -> String {
    use std::io::Write;
    let mut child = mailgate(&["login", MAILBOX, "--device", "--password-stdin"], config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mailgate login");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{LOCAL_PASSWORD}\n").as_bytes())
        .unwrap();
    let deadline = Instant::now() + STEP;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mailgate login did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

/// The stored (refresh, access) tokens.
pub fn stored_tokens(s: &Scratch) -> (String, Option<String>) {
    let store = Store::open(&s.state()).unwrap();
    let unlocked = store
        .unlock(
            &AccountName::parse(MAILBOX).unwrap(),
            &Secret::new(LOCAL_PASSWORD.to_owned()),
        )
        .unwrap();
    (
        unlocked.tokens.refresh_token.expose().clone(),
        unlocked.tokens.access_token.map(|t| t.expose().clone()),
    )
}

/// `mailgate serve` with stderr going to a file the test can read while it runs.
pub struct Serve {
    pub child: Child,
    pub log: PathBuf,
}

impl Serve {
    pub fn start(s: &Scratch) -> Self {
        let log = s.dir.join("serve.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = mailgate(&["serve"], &s.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawn mailgate serve");
        Self { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle` `count` times.
    pub async fn wait_for(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + STEP;
        while self.log().matches(needle).count() < count {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    /// SIGTERM, wait, and return the whole log.
    pub async fn stop(mut self) -> String {
        self.signal("TERM");
        let deadline = Instant::now() + STEP;
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.wait();
        self.log()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects to `port`, retrying until the listener is up.
pub async fn connect(port: u16) -> Client {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + STEP;
    loop {
        if let Ok(tcp) = tokio::net::TcpStream::connect(addr).await {
            return Client::from_tcp(tcp);
        }
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// IMAP greeting and LOGIN; returns the tagged answer.
pub async fn imap_login(c: &mut Client, password: &str) -> String {
    imap_login_as(c, MAILBOX, password).await
}

pub async fn imap_login_as(c: &mut Client, user: &str, password: &str) -> String {
    let greeting = c.line().await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    c.send(&format!("t LOGIN {user} \"{password}\"\r\n")).await;
    c.until("t ").await.pop().unwrap_or_default()
}
