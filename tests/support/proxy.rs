//! Starts mailgate in-process (the library's `Server`) in front of a fake
//! upstream, with a config written as TOML so the config path is exercised
//! too. Used by the core tests; the real binary is used where the token
//! service, signals or the CLI are under test.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use mailgate::serve::Server;

use super::certs::{LOCAL_NAMES, TestCa, server_config, test_ca};
use super::fake_upstream::{FakeUpstream, Mode, Proto};
use super::tokens::StaticTokens;

pub struct Setup {
    pub proto: Proto,
    pub local_tls: &'static str,
    pub upstream_mode: Mode,
    pub extra: &'static str,
}

pub struct Proxy {
    pub addr: SocketAddr,
    pub server: Option<Server>,
    pub tokens: Arc<StaticTokens>,
    pub upstream: FakeUpstream,
    pub ca: TestCa,
    pub dir: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("mailgate-test-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The pieces of a one-listener test config in front of a fake upstream.
pub struct ConfigToml<'a> {
    pub dir: &'a std::path::Path,
    /// Top-level keys.
    pub top: &'a str,
    /// Lines inside `[limits]`.
    pub limits: &'a str,
    pub protocol: &'a str,
    pub local_tls: &'a str,
    pub cert: &'a std::path::Path,
    pub key: &'a std::path::Path,
    /// Extra keys of the listener.
    pub listener: &'a str,
    /// The listener's `upstream = {...}` line.
    pub upstream: &'a str,
}

/// A config with a generic provider (never contacted: the tests use a static
/// token source) and one listener on 127.0.0.1 port 0.
pub fn config_toml(c: &ConfigToml) -> String {
    format!(
        r#"
state_dir = "{state}"
hostname = "mailgate.test"
{top}
[limits]
{limits}

[[providers]]
name = "test"
kind = "generic"
client_id = "test-client"
authorize_url = "http://127.0.0.1:9/authorize"
token_url = "http://127.0.0.1:9/token"
device_code_url = "http://127.0.0.1:9/devicecode"
scopes = ["mail"]

[[listeners]]
name = "under-test"
protocol = "{protocol}"
bind = "127.0.0.1:0"
tls = "{local_tls}"
cert = "{cert}"
key = "{key}"
{listener}
{upstream}
"#,
        state = c.dir.join("state").display(),
        top = c.top,
        limits = c.limits,
        protocol = c.protocol,
        local_tls = c.local_tls,
        cert = c.cert.display(),
        key = c.key.display(),
        listener = c.listener,
        upstream = c.upstream,
    )
}

impl Proxy {
    pub async fn start(setup: Setup) -> Self {
        let ca = test_ca();
        let dir = temp_dir("core");
        let ca_path = dir.join("test-ca.pem");
        std::fs::write(&ca_path, ca.cert_pem()).expect("write test CA");
        let local = ca
            .write_leaf(&dir, "local", LOCAL_NAMES)
            .expect("local leaf");
        let (cert, key) = (local.cert, local.key);
        let upstream_tls = server_config(&ca.issue_leaf(LOCAL_NAMES).expect("upstream leaf"));
        let tls = (setup.upstream_mode != Mode::Plain).then_some(upstream_tls);
        let upstream = FakeUpstream::start(setup.proto, setup.upstream_mode, tls).await;
        let (protocol, up_tls) = match (setup.proto, setup.upstream_mode) {
            (Proto::Imap, m) => ("imap", mode_name(m)),
            (Proto::Pop3, m) => ("pop3", mode_name(m)),
            (Proto::Smtp, m) => ("smtp", mode_name(m)),
        };
        let upstream_line = format!(
            r#"upstream = {{ host = "127.0.0.1", port = {port}, tls = "{up_tls}", server_name = "localhost", ca_file = "{ca}" }}"#,
            port = upstream.port,
            ca = ca_path.display(),
        );
        let toml = config_toml(&ConfigToml {
            dir: &dir,
            top: setup.extra,
            limits: "",
            protocol,
            local_tls: setup.local_tls,
            cert: &cert,
            key: &key,
            listener: "",
            upstream: &upstream_line,
        });
        let config = mailgate::config::parse(&toml, "test.toml", &dir).expect("test config");
        let tokens = Arc::new(StaticTokens::default());
        tokens.add(
            "alice",
            "correct horse",
            "alice@example.test",
            "token-alice",
        );
        upstream.accept_token("token-alice");
        let server = Server::start(&config, tokens.clone())
            .await
            .expect("start mailgate");
        let addr = server.local_addrs()[0].1;
        Self {
            addr,
            server: Some(server),
            tokens,
            upstream,
            ca,
            dir,
        }
    }

    pub fn client_tls(&self) -> Arc<rustls::ClientConfig> {
        super::certs::client_config(self.ca.cert_pem())
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Plain => "none",
        Mode::Implicit => "implicit",
        Mode::StartTls => "starttls",
    }
}
