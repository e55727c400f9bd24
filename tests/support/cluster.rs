//! TEST-ONLY: several `mailgate serve` processes (the real binary) behind a
//! private HAProxy in TCP mode that balances round-robin and sends the PROXY
//! protocol v2 header, sharing one token store and the login guard's
//! verdicts (`[limits] share_guard`), in front of the private Dovecot that
//! checks tokens against the test identity provider.
//!
//! The store kind is a parameter ([`StoreKind`]): with the file store the
//! instances share one state directory; with PostgreSQL they share a fresh
//! database of the test binary's private cluster. Each instance has its own config
//! file and log (`<dir>/i<n>/`), one plain IMAP listener on 127.0.0.1 that
//! accepts the header from HAProxy (`proxy_protocol_from = ["127.0.0.1"]`).
//! Alice is enrolled once, through instance 0's config, before any starts.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::client::{Client, connect_from};
use crate::support::config::{ConfigBuilder, Listener, Upstream, free_ports};
use crate::support::idp::BlockingIdp;
use crate::support::mailgate::{self, Serve};
use crate::support::servers::{Haproxy, MailServers, PgCluster, SendProxy, StartOptions};

pub const ALICE: &str = "alice@example.test";
/// Alice's local password, set at enrolment.
pub const PASSWORD: &str = "alice-local-pw";
/// Access token lifetime the IdP issues after enrolment.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// Upper bound for one client step (connect, greeting, one command).
pub const STEP: Duration = Duration::from_secs(60);

/// Where the instances keep their shared state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// One state directory for all instances.
    File,
    /// One database of the test binary's private PostgreSQL cluster (the
    /// state directory still holds the machine key, the same for all).
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub instances: usize,
    pub store: StoreKind,
    /// Lifetime of the access token issued at enrolment.
    pub enrol_lifetime: Option<Duration>,
    pub refresh_margin_secs: u64,
    /// Simultaneous sessions of Alice the servers must hold.
    pub sessions: u32,
    /// With [`StoreKind::Postgres`]: this database URL instead of a fresh
    /// database on the shared cluster (a test that restarts its own).
    pub database_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            instances: 3,
            store: StoreKind::File,
            enrol_lifetime: None,
            refresh_margin_secs: 60,
            sessions: 32,
            database_url: None,
        }
    }
}

pub struct Cluster {
    /// `None` once a test killed the instance.
    pub instances: Vec<Option<Serve>>,
    pub haproxy: Haproxy,
    pub idp: BlockingIdp,
    pub servers: MailServers,
    pub dir: PathBuf,
    /// Each instance's IMAP port.
    pub ports: Vec<u16>,
    /// Each instance's config file.
    pub configs: Vec<PathBuf>,
    options: Options,
}

impl Cluster {
    pub fn start(options: Options) -> Cluster {
        let idp = BlockingIdp::start();
        idp.add_user(ALICE);
        idp.set_device_polls(0, 0);
        let start = StartOptions {
            no_oauthbearer: true,
            max_sessions: Some(options.sessions),
            ..StartOptions::default()
        };
        let servers = MailServers::start_with(&idp.introspect_url(), &[ALICE], &start)
            .unwrap_or_else(|e| panic!("mail servers did not start:\n{e}"));
        let dir = servers.dir().join("cluster");
        let ports = free_ports(options.instances);
        let database = match options.store {
            StoreKind::File => None,
            StoreKind::Postgres if options.database_url.is_some() => options.database_url.clone(),
            StoreKind::Postgres => {
                let cluster = PgCluster::shared().unwrap_or_else(|e| panic!("postgres: {e}"));
                let db = cluster
                    .database()
                    .unwrap_or_else(|e| panic!("postgres: {e}"));
                Some(cluster.url(&db))
            }
        };
        let configs: Vec<PathBuf> = (0..options.instances)
            .map(|i| {
                let own = dir.join(format!("i{i}"));
                std::fs::create_dir_all(&own).expect("instance dir");
                let config = own.join("mailgate.toml");
                // One machine key for all (with the database it is a
                // per-host file that must match the database's).
                let state = dir.join("state");
                let text = config_text(
                    &options,
                    &state,
                    database.as_deref(),
                    &idp,
                    &servers,
                    ports[i],
                );
                std::fs::write(&config, text).expect("config");
                config
            })
            .collect();
        if let Some(lifetime) = options.enrol_lifetime {
            idp.set_access_lifetime(lifetime);
        }
        mailgate::login(&configs[0], ALICE, PASSWORD)
            .unwrap_or_else(|e| panic!("enrolment failed:\n{e}\n{}", servers.logs()));
        idp.set_access_lifetime(DEFAULT_LIFETIME);
        let instances = configs
            .iter()
            .zip(&ports)
            .map(|(config, port)| {
                Some(
                    Serve::start(config, &[*port])
                        .unwrap_or_else(|e| panic!("{e}\n{}", servers.logs())),
                )
            })
            .collect();
        let backends: Vec<_> = ports
            .iter()
            .map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], *p)))
            .collect();
        let haproxy = Haproxy::start_many(&backends, SendProxy::V2)
            .unwrap_or_else(|e| panic!("haproxy did not start: {e}"));
        Cluster {
            instances,
            haproxy,
            idp,
            servers,
            dir,
            ports,
            configs,
            options,
        }
    }

    /// Stops every instance (SIGTERM, bounded) and points their configs at
    /// `database` (`None`: the file store in the shared state directory),
    /// without starting them: a test runs `mailgate store migrate` now.
    pub fn stop_and_switch(&mut self, database: Option<&str>) {
        for serve in self.instances.iter_mut().filter_map(Option::as_mut) {
            serve.stop();
        }
        self.options.store = match database {
            None => StoreKind::File,
            Some(_) => StoreKind::Postgres,
        };
        let state = self.dir.join("state");
        for (config, port) in self.configs.iter().zip(&self.ports) {
            let text = config_text(
                &self.options,
                &state,
                database,
                &self.idp,
                &self.servers,
                *port,
            );
            std::fs::write(config, text).expect("config");
        }
    }

    /// Starts every instance again on its (possibly rewritten) config and
    /// port; HAProxy keeps balancing over the same ports.
    pub fn start_again(&mut self) {
        for (i, (config, port)) in self.configs.iter().zip(&self.ports).enumerate() {
            let serve = Serve::start(config, &[*port])
                .unwrap_or_else(|e| panic!("{e}\n{}", self.servers.logs()));
            self.instances[i] = Some(serve);
        }
    }

    /// SIGKILL instance `i` (no shutdown code runs); its log stays readable
    /// through [`Cluster::log_of`] until the cluster is dropped.
    pub fn kill(&mut self, i: usize) {
        if let Some(serve) = self.instances.get_mut(i).and_then(Option::as_mut) {
            serve.kill_hard();
        }
    }

    /// Instance `i`'s log so far.
    pub fn log_of(&self, i: usize) -> String {
        self.instances
            .get(i)
            .and_then(Option::as_ref)
            .map(Serve::log)
            .unwrap_or_default()
    }

    pub fn refreshes(&self) -> u64 {
        self.idp.token_requests("refresh_token")
    }

    /// Every running instance's log, HAProxy's and the mail servers'.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for (i, serve) in self.instances.iter().enumerate() {
            if let Some(serve) = serve {
                text.push_str(&format!("=== instance {i} ===\n{}", serve.log()));
            }
        }
        format!(
            "{text}\n--- haproxy ---\n{}\n{}",
            self.haproxy.log(),
            self.servers.logs()
        )
    }

    /// An IMAP client through HAProxy from `source` (a 127.0.0.0/8
    /// address), greeting read.
    pub async fn client(&self, source: &str) -> Client {
        let mut c = Client::from_tcp(connect_from(source, self.haproxy.addr).await);
        let greeting = c.line().await;
        assert!(greeting.starts_with("* OK"), "{greeting:?}");
        c
    }

    /// LOGIN through HAProxy from `source`; the tagged answer. When it is
    /// OK, INBOX is selected too (the upstream session works) and the
    /// answer is that of SELECT.
    pub async fn login(&self, source: &str, password: &str) -> String {
        let attempt = async {
            let mut c = self.client(source).await;
            c.send(&format!("a LOGIN {ALICE} \"{password}\"\r\n")).await;
            let answer = c.until("a ").await.pop().unwrap_or_default();
            if !answer.starts_with("a OK") {
                return answer;
            }
            c.send("b SELECT INBOX\r\n").await;
            let selected = c.until("b ").await.pop().unwrap_or_default();
            c.send("c LOGOUT\r\n").await;
            selected.replacen("b OK", "a OK", 1)
        };
        tokio::time::timeout(STEP, attempt)
            .await
            .unwrap_or_else(|_| format!("no answer within {STEP:?}"))
    }
}

fn config_text(
    o: &Options,
    state: &std::path::Path,
    database: Option<&str>,
    idp: &BlockingIdp,
    servers: &MailServers,
    port: u16,
) -> String {
    let builder = ConfigBuilder::new()
        .limit("max_connections_per_ip", 2048)
        .limit("max_connections", 4096)
        .limit("upstream_login_timeout_secs", 30)
        .limit("share_guard", true)
        .provider_microsoft(
            "test",
            &idp.authority(),
            idp.tenant(),
            "client-1",
            &format!("refresh_margin_secs = {}", o.refresh_margin_secs),
        );
    let builder = match database {
        None => builder.state_dir(state),
        Some(url) => builder.state_dir(state).store(&format!(
            "kind = \"postgres\"\nurl = \"{url}\"\ntls = \"disable\""
        )),
    };
    let upstream = Upstream::new(servers.imaps_port(), "implicit").ca_file(servers.ca_pem_path());
    let listener = Listener::local("imap", port, upstream)
        .name("imap")
        .tls("none")
        .keys_raw("proxy_protocol_from = [\"127.0.0.1\"]")
        .keys_raw(&format!("max_upstream_per_mailbox = {}", o.sessions));
    builder.listener(listener).toml()
}
