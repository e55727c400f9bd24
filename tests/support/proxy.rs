//! The one in-process proxy harness: mailgate's library `Server` in front of
//! a fake upstream, configured through TOML from [`ConfigBuilder`] so the
//! config path is exercised too, with a static token source instead of an
//! identity provider. Core tests vary the TLS modes; hardening tests vary
//! `[limits]` and listener keys. The real binary (`support::mailgate`) is
//! used where the token service, signals or the CLI are under test.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use mailgate::serve::Server;

use super::certs::{LOCAL_NAMES, TestCa, server_config, test_ca};
use super::client::{Client, connect_from};
use super::config::{ConfigBuilder, Listener, Upstream};
use super::fake_upstream::{FakeUpstream, Mode, Proto};
use super::scratch::temp_dir;
use super::tokens::StaticTokens;

/// The one local account every in-process proxy knows.
pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse";
pub const MAILBOX: &str = "alice@example.test";
/// The access token the fake upstream accepts; distinctive so a log scan
/// can look for it.
pub const TOKEN: &str = "token-alice-3b8f0e";

/// What a test chooses; [`Setup::new`] gives a plain listener in front of a
/// plain upstream.
pub struct Setup {
    pub proto: Proto,
    /// The listener's local TLS mode: "none", "starttls" or "implicit".
    pub local_tls: &'static str,
    pub upstream_mode: Mode,
    /// Top-level config keys.
    pub top: &'static str,
    /// Lines inside `[limits]`.
    pub limits: &'static str,
    /// Extra keys for the listener table.
    pub listener: &'static str,
    /// Extra keys for the provider table (e.g. `graph_endpoint`).
    pub provider: String,
}

impl Setup {
    pub fn new(proto: Proto) -> Self {
        Self {
            proto,
            local_tls: "none",
            upstream_mode: Mode::Plain,
            top: "",
            limits: "",
            listener: "",
            provider: String::new(),
        }
    }
}

pub struct Proxy {
    pub addr: SocketAddr,
    pub server: Option<Server>,
    pub tokens: Arc<StaticTokens>,
    pub upstream: FakeUpstream,
    pub ca: TestCa,
    pub proto: Proto,
    pub local_tls: &'static str,
    pub dir: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Proxy {
    /// A proxy for `proto` with the given local TLS and upstream modes.
    pub async fn with(proto: Proto, local_tls: &'static str, upstream_mode: Mode) -> Self {
        Self::start(Setup {
            local_tls,
            upstream_mode,
            ..Setup::new(proto)
        })
        .await
    }

    pub async fn start(setup: Setup) -> Self {
        let ca = test_ca();
        let dir = temp_dir("proxy");
        let ca_path = dir.join("test-ca.pem");
        std::fs::write(&ca_path, ca.cert_pem()).expect("write test CA");
        let local = ca
            .write_leaf(&dir, "local", LOCAL_NAMES)
            .expect("local leaf");
        let upstream_tls = server_config(&ca.issue_leaf(LOCAL_NAMES).expect("upstream leaf"));
        let tls = (setup.upstream_mode != Mode::Plain).then_some(upstream_tls);
        let upstream = FakeUpstream::start(setup.proto, setup.upstream_mode, tls).await;
        let up = Upstream::new(upstream.port, mode_name(setup.upstream_mode))
            .server_name("localhost")
            .ca_file(&ca_path);
        let listener = Listener::local(setup.proto.name(), 0, up)
            .name("under-test")
            .tls(setup.local_tls)
            .cert(&local.cert, &local.key)
            .keys_raw(setup.listener);
        let toml = ConfigBuilder::new()
            .state_dir(&dir.join("state"))
            .hostname("mailgate.test")
            .top(setup.top)
            .limits(setup.limits)
            .provider_generic(
                "test",
                "test-client",
                &super::config::IdpUrls::unused(),
                &["mail"],
                &setup.provider,
            )
            .listener(listener)
            .toml();
        let config = mailgate::config::parse(&toml, "test.toml", &dir).expect("test config");
        let tokens = Arc::new(StaticTokens::default());
        tokens.add(USER, PASSWORD, MAILBOX, TOKEN);
        upstream.accept_token(TOKEN);
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
            proto: setup.proto,
            local_tls: setup.local_tls,
            dir,
        }
    }

    pub fn client_tls(&self) -> Arc<rustls::ClientConfig> {
        super::certs::client_config(self.ca.cert_pem())
    }

    pub fn active_connections(&self) -> usize {
        self.server
            .as_ref()
            .map_or(0, |server| server.active_connections())
    }

    pub fn grants(&self) -> usize {
        self.tokens.grants.load(Ordering::SeqCst)
    }

    /// A strict client past the greeting and, on a STARTTLS listener, past
    /// the upgrade (EHLO not yet sent for SMTP).
    pub async fn connect(&self) -> Client {
        let mut c = match self.local_tls {
            "implicit" => Client::connect_tls(self.addr, self.client_tls()).await,
            _ => Client::connect(self.addr).await,
        };
        let greeting = c.line().await;
        assert!(greeting_ok(self.proto, &greeting), "{greeting}");
        if self.local_tls == "starttls" {
            self.starttls(&mut c).await;
        }
        c
    }

    async fn starttls(&self, c: &mut Client) {
        match self.proto {
            Proto::Imap => {
                c.send("s1 STARTTLS\r\n").await;
                assert!(c.line().await.starts_with("s1 OK"));
            }
            Proto::Pop3 => {
                c.send("STLS\r\n").await;
                assert!(c.line().await.starts_with("+OK"));
            }
            Proto::Smtp => {
                c.send("EHLO legacy.client\r\n").await;
                let ehlo = c.until("250 ").await;
                assert!(ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
                c.send("STARTTLS\r\n").await;
                assert!(c.line().await.starts_with("220"));
            }
        }
        c.starttls(self.client_tls()).await;
    }

    /// A tolerant plain client from 127.0.0.1, past the greeting.
    pub async fn client(&self) -> Client {
        let mut c = Client::raw(self.addr).await;
        let greeting = c.line().await;
        assert!(greeting_ok(self.proto, &greeting), "{greeting}");
        c
    }

    /// A tolerant plain client from `source` (another loopback address),
    /// past the greeting.
    pub async fn client_from(&self, source: &str) -> Client {
        let mut c = Client::from_tcp(connect_from(source, self.addr).await);
        let greeting = c.line().await;
        assert!(greeting_ok(self.proto, &greeting), "{greeting}");
        c
    }

    /// A normal login and one command through the relay: the process is healthy.
    pub async fn assert_healthy(&self) {
        let mut c = self.client().await;
        login_ok(self.proto, &mut c).await;
    }
}

pub fn greeting_ok(proto: Proto, line: &str) -> bool {
    match proto {
        Proto::Imap => line.starts_with("* OK"),
        Proto::Pop3 => line.starts_with("+OK"),
        Proto::Smtp => line.starts_with("220"),
    }
}

/// Logs in with the right password and checks the upstream answers through
/// the relay.
pub async fn login_ok(proto: Proto, c: &mut Client) {
    match proto {
        Proto::Imap => {
            c.send(&format!("h LOGIN {USER} \"{PASSWORD}\"\r\n")).await;
            let lines = c.until("h ").await;
            assert!(lines.last().unwrap().starts_with("h OK"), "{lines:?}");
            c.send("n NOOP\r\n").await;
            let lines = c.until("n ").await;
            assert!(lines.last().unwrap().starts_with("n OK"), "{lines:?}");
        }
        Proto::Pop3 => {
            c.send(&format!("USER {USER}\r\n")).await;
            assert!(c.line().await.starts_with("+OK"));
            c.send(&format!("PASS {PASSWORD}\r\n")).await;
            let ok = c.line().await;
            assert!(ok.starts_with("+OK"), "{ok}");
            c.send("NOOP\r\n").await;
            let ok = c.line().await;
            assert!(ok.starts_with("+OK"), "{ok}");
        }
        Proto::Smtp => {
            c.send("EHLO client.test\r\n").await;
            c.until("250 ").await;
            let plain = mailgate::proto::sasl::encode(format!("\0{USER}\0{PASSWORD}").as_bytes());
            c.send(&format!("AUTH PLAIN {plain}\r\n")).await;
            let ok = c.line().await;
            assert!(ok.starts_with("235"), "{ok}");
            c.send("NOOP\r\n").await;
            let ok = c.line().await;
            assert!(ok.starts_with("250"), "{ok}");
        }
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Plain => "none",
        Mode::Implicit => "implicit",
        Mode::StartTls => "starttls",
    }
}
