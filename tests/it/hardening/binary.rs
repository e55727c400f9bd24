//! The real binary: enrolment against the test IdP and `serve` in front of a
//! fake upstream, both at `--log trace`. Used by the redaction scan and the
//! SIGHUP reload test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mailgate::base::AccountName;
use mailgate::secret::Secret;
use mailgate::store::Store;

use super::harness::Raw;
use crate::support::idp::TestIdp;
use crate::support::proxy::temp_dir;

pub const MAILBOX: &str = "alice@example.test";
pub const LOCAL_PASSWORD: &str = "local-secret-pass-93";
const STEP: Duration = Duration::from_secs(30);

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub struct Listener {
    pub name: &'static str,
    pub protocol: &'static str,
    pub port: u16,
    pub upstream_port: u16,
}

pub fn config_text(idp: &TestIdp, state: &Path, hostname: &str, listeners: &[Listener]) -> String {
    let mut text = format!(
        r#"state_dir = "{state}"
hostname = "{hostname}"

[[providers]]
name = "test"
kind = "microsoft"
authority = "{authority}"
tenant = "{tenant}"
client_id = "client-1"
"#,
        state = state.display(),
        authority = idp.authority(),
        tenant = idp.tenant(),
    );
    for l in listeners {
        text.push_str(&format!(
            r#"
[[listeners]]
name = "{}"
protocol = "{}"
bind = "127.0.0.1:{}"
upstream = {{ host = "127.0.0.1", port = {}, tls = "none" }}
"#,
            l.name, l.protocol, l.port, l.upstream_port
        ));
    }
    text
}

pub struct Scratch {
    pub dir: PathBuf,
    pub config: PathBuf,
}

impl Scratch {
    pub fn new(tag: &str) -> Self {
        let dir = temp_dir(tag);
        let config = dir.join("mailgate.toml");
        Self { dir, config }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    pub fn write(&self, text: &str) {
        std::fs::write(&self.config, text).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn mailgate() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailgate"));
    for var in [
        "MAILGATE_STATE_DIR",
        "MAILGATE_LOG",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd.arg("--log").arg("trace");
    cmd
}

/// `mailgate login --device --password-stdin`; returns stdout + stderr.
pub fn enrol(config: &Path) -> String {
    use std::io::Write;
    let mut child = mailgate()
        .args(["login", MAILBOX, "--device", "--password-stdin", "--config"])
        .arg(config)
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
        let child = mailgate()
            .args(["serve", "--config"])
            .arg(&s.config)
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
pub async fn connect(port: u16) -> Raw {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + STEP;
    loop {
        if let Ok(tcp) = tokio::net::TcpStream::connect(addr).await {
            return Raw::new(tcp);
        }
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// IMAP greeting and LOGIN; returns the tagged answer.
pub async fn imap_login(c: &mut Raw, password: &str) -> String {
    imap_login_as(c, MAILBOX, password).await
}

pub async fn imap_login_as(c: &mut Raw, user: &str, password: &str) -> String {
    let greeting = c.line().await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    c.send(&format!("t LOGIN {user} \"{password}\"\r\n")).await;
    c.until("t ").await.pop().unwrap_or_default()
}
