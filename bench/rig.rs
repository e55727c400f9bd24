//! The bench rig: the test identity provider, real Dovecot and Postfix (the
//! interop suite's harness), seeded mail, an account enrolled through the
//! `mailgate login` CLI, and the release `mailgate serve` process.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::archiver;
use crate::idp::TestIdp;
use crate::servers::{LOCAL_NAMES, MailServers, StartOptions};
use crate::socat::Socat;
use crate::wire::{self, Conn};

pub const ALICE: &str = "alice@example.test";
pub const BOB: &str = "bob@example.test";
pub const LOCAL_PASSWORD: &str = "bench-local-pass";
/// Sessions Dovecot is configured to hold at once (idle test plus slack).
pub const DOVECOT_SESSIONS: u32 = 10_500;
/// Upper bound for `mailgate login` and for `mailgate serve` to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// mailgate's refresh margin in this bench: a token with less life left is refreshed.
pub const REFRESH_MARGIN_SECS: u64 = 2;

pub struct Ports {
    pub imap_plain: SocketAddr,
    pub imap_tls: SocketAddr,
    /// Like `imap_plain`, with `prewarm = 4`.
    pub imap_prewarm: SocketAddr,
    /// Like `imap_plain`, upstream through the delay relay (distant upstream).
    pub imap_distant: SocketAddr,
    /// Like `imap_distant`, with `prewarm = 4`.
    pub imap_distant_prewarm: SocketAddr,
    pub smtp_plain: SocketAddr,
    /// The `submit = "graph"` listener (plaintext, like `smtp_plain`).
    pub smtp_graph: SocketAddr,
    pub imaps_direct: SocketAddr,
    pub submission_direct: SocketAddr,
}

pub struct Rig {
    pub idp: TestIdp,
    /// Shared with the test Graph, which delivers into its maildirs.
    pub servers: Arc<MailServers>,
    pub ports: Ports,
    pub tls: Arc<rustls::ClientConfig>,
    pub mailgate: Child,
    pub enrolled_at: Instant,
    /// The plain-relay baseline.
    pub socat: Socat,
    /// Delays each direction by half its round trip, in front of Dovecot's IMAPS.
    pub delay: crate::delay::DelayRelay,
}

impl Rig {
    /// Everything up and `ALICE` enrolled; the IdP issues access tokens that
    /// live `access_lifetime`.
    pub async fn start(access_lifetime: Duration) -> Rig {
        let idp = TestIdp::start().await;
        idp.add_user(ALICE);
        idp.add_user(BOB);
        idp.set_device_polls(0, 0);
        idp.set_access_lifetime(access_lifetime);
        let options = StartOptions {
            no_oauthbearer: true,
            max_imap_sessions: Some(DOVECOT_SESSIONS),
            ..StartOptions::default()
        };
        let introspect = idp.introspect_url();
        let mut users = vec![ALICE.to_owned(), BOB.to_owned()];
        users.extend((0..archiver::MAILBOXES).map(archiver::mailbox));
        let users: Vec<&str> = users.iter().map(String::as_str).collect();
        let servers =
            tokio::task::block_in_place(|| MailServers::start_with(&introspect, &users, &options))
                .unwrap_or_else(|e| panic!("mail servers did not start:\n{e}"));
        let servers = Arc::new(servers);
        deliver_graph_mail(&idp, &servers);
        let tls = wire::tls_config(&std::fs::read_to_string(servers.ca_pem_path()).expect("CA"));
        let free = free_ports(10);
        let delay = crate::delay::start(
            SocketAddr::from(([127, 0, 0, 1], servers.imaps_port())),
            crate::delay::rtt(),
        )
        .await;
        let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let ports = Ports {
            imap_plain: loopback(free[0]),
            imap_tls: loopback(free[1]),
            smtp_plain: loopback(free[2]),
            smtp_graph: loopback(free[6]),
            imap_prewarm: loopback(free[7]),
            imap_distant: loopback(free[8]),
            imap_distant_prewarm: loopback(free[9]),
            imaps_direct: loopback(servers.imaps_port()),
            submission_direct: loopback(servers.submission_port()),
        };
        let config = write_config(&idp, &servers, &ports, delay.addr.port());
        tokio::task::block_in_place(|| enrol(&config, ALICE));
        let enrolled_at = Instant::now();
        let mailgate = spawn_mailgate(&config, servers.dir());
        let socat = start_socat(&servers, &free[3..6]);
        let rig = Rig {
            idp,
            servers,
            ports,
            tls,
            mailgate,
            enrolled_at,
            socat,
            delay,
        };
        rig.wait_listening().await;
        rig
    }

    pub fn pid(&self) -> u32 {
        self.mailgate.id()
    }

    /// Replaces `mailgate serve` with a fresh process on the same
    /// configuration, so a memory measure starts from a clean heap.
    pub async fn restart_mailgate(&mut self) {
        let _ = self.mailgate.kill();
        let _ = self.mailgate.wait();
        let dir = self.servers.dir().to_path_buf();
        self.mailgate = spawn_mailgate(&dir.join("mailgate.toml"), &dir);
        self.wait_listening().await;
    }

    async fn wait_listening(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        for addr in [
            self.ports.imap_plain,
            self.ports.imap_tls,
            self.ports.imap_prewarm,
            self.ports.imap_distant,
            self.ports.imap_distant_prewarm,
            self.ports.smtp_plain,
            self.ports.smtp_graph,
        ] {
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                assert!(
                    Instant::now() < deadline,
                    "mailgate is not listening on {addr}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// A logged-in IMAP session: through mailgate with LOGIN, or directly to
    /// Dovecot with AUTHENTICATE XOAUTH2 and `token`.
    pub async fn imap_login(&self, via: Via<'_>, buffer: usize) -> std::io::Result<Conn> {
        let mut conn = match via {
            Via::Direct(_) => Conn::connect(self.ports.imaps_direct, Some(&self.tls), buffer),
            Via::Plain => Conn::connect(self.ports.imap_plain, None, buffer),
            Via::Tls => Conn::connect(self.ports.imap_tls, Some(&self.tls), buffer),
            Via::Prewarm => Conn::connect(self.ports.imap_prewarm, None, buffer),
            Via::DistantDirect(_) => Conn::connect(self.delay.addr, Some(&self.tls), buffer),
            Via::Distant => Conn::connect(self.ports.imap_distant, None, buffer),
            Via::DistantPrewarm => Conn::connect(self.ports.imap_distant_prewarm, None, buffer),
            Via::SocatPlain(_) => Conn::connect(self.socat.imap_plain.addr, None, buffer),
            Via::SocatTls(_) => Conn::connect(self.socat.imap_tls.addr, Some(&self.tls), buffer),
        }
        .await?;
        conn.greeting().await?;
        match via {
            Via::Direct(token)
            | Via::SocatPlain(token)
            | Via::SocatTls(token)
            | Via::DistantDirect(token) => {
                conn.command(&format!(
                    "AUTHENTICATE XOAUTH2 {}",
                    wire::xoauth2(ALICE, token)
                ))
                .await?
            }
            Via::Plain | Via::Tls | Via::Prewarm | Via::Distant | Via::DistantPrewarm => {
                conn.command(&format!("LOGIN {ALICE} {LOCAL_PASSWORD}"))
                    .await?
            }
        };
        Ok(conn)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.mailgate.kill();
        let _ = self.mailgate.wait();
    }
}

#[derive(Clone, Copy)]
pub enum Via<'a> {
    Direct(&'a str),
    Plain,
    Tls,
    /// Plaintext client, listener with `prewarm = 4`.
    Prewarm,
    /// Through socat, client on plaintext; XOAUTH2 with the token, as direct.
    SocatPlain(&'a str),
    /// Through socat, client on TLS; XOAUTH2 with the token, as direct.
    SocatTls(&'a str),
    /// As `Direct`, through the delay relay (distant upstream).
    DistantDirect(&'a str),
    /// Plaintext client, listener whose upstream is the delay relay.
    Distant,
    /// As `Distant`, with `prewarm = 4`.
    DistantPrewarm,
}

impl Via<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Via::Direct(_) => "direct",
            Via::Plain => "mailgate-plain",
            Via::Tls => "mailgate-tls",
            Via::Prewarm => "mailgate-prewarm",
            Via::SocatPlain(_) => "socat-plain",
            Via::SocatTls(_) => "socat-tls",
            Via::DistantDirect(_) => "distant-direct",
            Via::Distant => "mailgate-distant",
            Via::DistantPrewarm => "mailgate-distant-prewarm",
        }
    }
}

/// What the test Graph accepts lands in the recipients' maildirs and the
/// sender's Sent folder, as in `tests/it/graph/`.
fn deliver_graph_mail(idp: &TestIdp, servers: &Arc<MailServers>) {
    let into = servers.clone();
    idp.deliver_graph_mail(Arc::new(move |sent| {
        for r in &sent.recipients {
            into.seed_message(r, &sent.for_recipients)
                .unwrap_or_else(|e| panic!("deliver to {r}: {e}"));
        }
        into.store_in_folder(&sent.mailbox, "Sent", &sent.with_bcc)
            .unwrap_or_else(|e| panic!("Sent copy: {e}"));
    }));
}

/// socat relays to the same servers, with their own certificate (same CA).
fn start_socat(servers: &MailServers, ports: &[u16]) -> Socat {
    let leaf = servers
        .ca()
        .write_leaf(servers.dir(), "socat", LOCAL_NAMES)
        .expect("socat certificate");
    Socat::start(
        ports,
        servers.imaps_port(),
        servers.submission_port(),
        &leaf.cert.display().to_string(),
        &leaf.key.display().to_string(),
    )
}

fn free_ports(n: usize) -> Vec<u16> {
    crate::servers::free_ports(n).expect("free loopback ports")
}

fn write_config(idp: &TestIdp, servers: &MailServers, ports: &Ports, distant: u16) -> PathBuf {
    let dir = servers.dir();
    let leaf = servers
        .ca()
        .write_leaf(dir, "mailgate", LOCAL_NAMES)
        .expect("mailgate certificate");
    let ca = servers.ca_pem_path().display();
    let upstream = |port: u16, tls: &str| {
        format!(
            r#"{{ host = "127.0.0.1", port = {port}, tls = "{tls}", server_name = "localhost", ca_file = "{ca}" }}"#
        )
    };
    let imap_up = upstream(servers.imaps_port(), "implicit");
    let distant_up = upstream(distant, "implicit");
    let smtp_up = upstream(servers.submission_port(), "starttls");
    let text = format!(
        r#"state_dir = "{state}"

[limits]
max_connections = 30000
max_connections_per_ip = 30000

[[providers]]
name = "bench"
kind = "microsoft"
authority = "{authority}"
tenant = "{tenant}"
client_id = "bench-client"
refresh_margin_secs = {REFRESH_MARGIN_SECS}
client_secret = "{secret}"
graph_endpoint = "{graph}"
graph_scopes = ["https://graph.microsoft.com/Mail.Send"]

[[accounts]]
login = "*@{archive}"
kind = "app-only"
provider = "bench"
password_hash = "{hash}"

[[listeners]]
name = "imap-plain"
protocol = "imap"
bind = "{imap_plain}"
max_upstream_per_mailbox = 30000
upstream = {imap_up}

[[listeners]]
name = "imap-prewarm"
protocol = "imap"
bind = "{imap_prewarm}"
max_upstream_per_mailbox = 30000
prewarm = 4
upstream = {imap_up}

[[listeners]]
name = "imap-distant"
protocol = "imap"
bind = "{imap_distant}"
max_upstream_per_mailbox = 30000
upstream = {distant_up}

[[listeners]]
name = "imap-distant-prewarm"
protocol = "imap"
bind = "{imap_distant_prewarm}"
max_upstream_per_mailbox = 30000
prewarm = 4
upstream = {distant_up}

[[listeners]]
name = "imap-tls"
protocol = "imap"
bind = "{imap_tls}"
tls = "implicit"
cert = "{cert}"
key = "{key}"
max_upstream_per_mailbox = 30000
upstream = {imap_up}

[[listeners]]
name = "smtp-plain"
protocol = "smtp"
bind = "{smtp_plain}"
max_upstream_per_mailbox = 64
upstream = {smtp_up}

[[listeners]]
name = "smtp-graph"
protocol = "smtp"
bind = "{smtp_graph}"
submit = "graph"
upstream = {smtp_up}
"#,
        graph = idp.graph_url(),
        smtp_graph = ports.smtp_graph,
        imap_prewarm = ports.imap_prewarm,
        imap_distant = ports.imap_distant,
        imap_distant_prewarm = ports.imap_distant_prewarm,
        state = dir.join("mailgate-state").display(),
        authority = idp.authority(),
        secret = archiver::CLIENT_SECRET,
        archive = archiver::DOMAIN,
        hash = archiver::RULE_HASH,
        tenant = idp.tenant(),
        imap_plain = ports.imap_plain,
        imap_tls = ports.imap_tls,
        smtp_plain = ports.smtp_plain,
        cert = leaf.cert.display(),
        key = leaf.key.display(),
    );
    let path = dir.join("mailgate.toml");
    std::fs::write(&path, text).expect("write mailgate.toml");
    path
}

fn mailgate_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailgate"));
    for var in [
        "MAILGATE_STATE_DIR",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// `mailgate login ACCOUNT --device --password-stdin`, as an administrator would.
pub fn enrol(config: &Path, account: &str) {
    let mut cmd = mailgate_command();
    cmd.args(["login", account, "--device", "--password-stdin", "--config"])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn mailgate login");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{LOCAL_PASSWORD}\n").as_bytes())
        .expect("password");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("output");
            assert!(
                status.success(),
                "mailgate login failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mailgate login did not finish in {START_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn_mailgate(config: &Path, dir: &Path) -> Child {
    let log = std::fs::File::create(dir.join("mailgate.log")).expect("mailgate log");
    let mut cmd = mailgate_command();
    cmd.args(["--log", "warn", "serve", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
    cmd.spawn().expect("spawn mailgate serve")
}
