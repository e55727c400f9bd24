//! An in-process mailgate whose `[limits]` and listener keys a test chooses,
//! in front of a fake upstream (plain upstream: these tests are about the
//! client side).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mailgate::serve::Server;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

use crate::support::certs::{LOCAL_NAMES, TestCa, test_ca};
use crate::support::fake_upstream::{FakeUpstream, Mode, Proto};
use crate::support::proxy::{ConfigToml, config_toml, temp_dir};
use crate::support::tokens::StaticTokens;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse";
pub const TOKEN: &str = "token-alice-3b8f0e";

pub struct Opts {
    pub proto: Proto,
    pub local_tls: &'static str,
    /// Lines inside `[limits]`.
    pub limits: &'static str,
    /// Extra keys for the listener table.
    pub listener: &'static str,
}

impl Opts {
    pub fn new(proto: Proto) -> Self {
        Self {
            proto,
            local_tls: "none",
            limits: "",
            listener: "",
        }
    }
}

pub struct Gate {
    pub addr: SocketAddr,
    server: Server,
    pub tokens: Arc<StaticTokens>,
    pub upstream: FakeUpstream,
    pub ca: TestCa,
    pub proto: Proto,
    pub dir: PathBuf,
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Imap => "imap",
        Proto::Pop3 => "pop3",
        Proto::Smtp => "smtp",
    }
}

impl Gate {
    pub async fn start(opts: Opts) -> Self {
        let ca = test_ca();
        let dir = temp_dir("hardening");
        let local = ca
            .write_leaf(&dir, "local", LOCAL_NAMES)
            .expect("local leaf");
        let (cert, key) = (local.cert, local.key);
        let upstream = FakeUpstream::start(opts.proto, Mode::Plain, None).await;
        let upstream_line = format!(
            r#"upstream = {{ host = "127.0.0.1", port = {}, tls = "none" }}"#,
            upstream.port
        );
        let toml = config_toml(&ConfigToml {
            dir: &dir,
            top: "",
            limits: opts.limits,
            protocol: proto_name(opts.proto),
            local_tls: opts.local_tls,
            cert: &cert,
            key: &key,
            listener: opts.listener,
            upstream: &upstream_line,
        });
        let config = mailgate::config::parse(&toml, "test.toml", &dir).expect("test config");
        let tokens = Arc::new(StaticTokens::default());
        tokens.add(USER, PASSWORD, "alice@example.test", TOKEN);
        upstream.accept_token(TOKEN);
        let server = Server::start(&config, tokens.clone())
            .await
            .expect("start mailgate");
        let addr = server.local_addrs()[0].1;
        Self {
            addr,
            server,
            tokens,
            upstream,
            ca,
            proto: opts.proto,
            dir,
        }
    }

    pub fn active_connections(&self) -> usize {
        self.server.active_connections()
    }

    pub fn grants(&self) -> usize {
        self.tokens.grants.load(Ordering::SeqCst)
    }

    /// Connects from 127.0.0.1 and reads the greeting.
    pub async fn client(&self) -> Raw {
        let mut c = Raw::connect(self.addr).await;
        let greeting = c.line().await;
        assert!(greeting_ok(self.proto, &greeting), "{greeting}");
        c
    }

    /// Connects from `source` (another loopback address) and reads the greeting.
    pub async fn client_from(&self, source: &str) -> Raw {
        let mut c = Raw::new(connect_from(source, self.addr).await);
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
pub async fn login_ok(proto: Proto, c: &mut Raw) {
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

/// A TCP connection whose source address is `source` (Linux routes all of
/// 127.0.0.0/8 on loopback).
pub async fn connect_from(source: &str, to: SocketAddr) -> tokio::net::TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{source}:0").parse().unwrap())
        .expect("bind source address");
    socket.connect(to).await.expect("connect to mailgate")
}

pub const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// A plain TCP line client that, unlike the shared one, can be built from a
/// socket bound to a chosen source address and tolerates resets.
pub struct Raw {
    conn: BufReader<TcpStream>,
}

impl Raw {
    pub fn new(tcp: TcpStream) -> Self {
        Self {
            conn: BufReader::new(tcp),
        }
    }

    pub async fn connect(addr: SocketAddr) -> Self {
        Self::new(TcpStream::connect(addr).await.expect("connect to mailgate"))
    }

    /// Writes; false if the peer has gone.
    pub async fn send(&mut self, data: &str) -> bool {
        self.send_bytes(data.as_bytes()).await
    }

    pub async fn send_bytes(&mut self, data: &[u8]) -> bool {
        let c = self.conn.get_mut();
        c.write_all(data).await.is_ok() && c.flush().await.is_ok()
    }

    /// One line without CRLF; empty at EOF or reset.
    pub async fn line(&mut self) -> String {
        let mut buf = Vec::new();
        let read = timeout(READ_TIMEOUT, self.conn.read_until(b'\n', &mut buf))
            .await
            .expect("read timed out");
        if read.is_err() {
            return String::new();
        }
        String::from_utf8_lossy(&buf)
            .trim_end_matches(['\r', '\n'])
            .to_owned()
    }

    /// Lines until one starts with `prefix` (or EOF).
    pub async fn until(&mut self, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        for _ in 0..1000 {
            let l = self.line().await;
            let done = l.starts_with(prefix) || l.is_empty();
            lines.push(l);
            if done {
                return lines;
            }
        }
        panic!("no line starting with {prefix:?}: {lines:?}");
    }

    /// True if the server closes (EOF or reset) within `within`, discarding
    /// whatever it still sends.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let mut buf = [0u8; 1024];
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.conn.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
                Err(_) => return false,
            }
        }
    }
}
