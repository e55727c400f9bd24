//! Configuration loads in two stages: [`raw`] mirrors the TOML file with
//! serde, `validate` turns it into the types here and in `listener` and
//! `provider`, refusing anything inconsistent with a message naming the key,
//! the line and the fix.

mod listener;
mod provider;
pub mod raw;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::base::AccountName;
use crate::proto::ClientLimits;

pub use listener::{Admin, Listener, LocalTls, Network, TlsMinVersion};
pub use provider::{
    Cloud, DEFAULT_GRAPH_MAX_MESSAGE, DEFAULT_GRAPH_UPLOAD_PER_5MIN, GraphSettings, Provider,
    SubmitMode, Upstream, UpstreamTls,
};
pub use validate::{ConfigError, PLACEHOLDER_CLIENT_ID, parse};

/// Environment variable that overrides the state directory.
pub const STATE_DIR_ENV: &str = "MAILGATE_STATE_DIR";

#[derive(Debug, Clone)]
pub struct Config {
    pub state_dir: PathBuf,
    pub hostname: String,
    pub limits: Limits,
    pub providers: Vec<Provider>,
    pub listeners: Vec<Listener>,
    pub accounts: Vec<AccountRule>,
    /// The admin listener; `None` when the file has no `[admin]` table.
    pub admin: Option<Admin>,
    /// Where token records live (`[store]`; the file store by default).
    pub store: StoreSettings,
}

/// `[store]`, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreSettings {
    /// One JSON file per account under `state_dir` (one host).
    #[default]
    File,
    /// A PostgreSQL database shared by several instances.
    Postgres(Postgres),
}

/// How to reach the shared database (`docs/design.md`, "Shared token store").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postgres {
    /// The connection URL as written (it holds no password).
    pub url: String,
    pub password: Option<PasswordSource>,
    pub tls: PgTls,
    pub ca_file: Option<PathBuf>,
    /// Bound on every wait: a connection, a lock, a query.
    pub timeout: Duration,
    pub max_connections: usize,
}

/// Where the database password comes from: never the config file itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    File(PathBuf),
    Env(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgTls {
    Disable,
    /// Encrypted, the server's certificate not checked (libpq's `require`).
    Require,
    /// Encrypted, certificate and host name checked.
    VerifyFull,
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_owned(),
            source: e,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        parse(&text, &path.display().to_string(), base)
    }

    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// Settings that are valid but weaken security or cannot work yet (the
    /// placeholder `client_id`), one sentence each, for
    /// `check-config` and the startup log.
    pub fn warnings(&self) -> Vec<String> {
        let unregistered = self.providers.iter().filter_map(Provider::unregistered_app);
        unregistered
            .chain(self.listeners.iter()
            .filter(|l| l.accepts_legacy_tls())
            .map(|l| {
                format!(
                    "listener {}: accepts legacy TLS {} (CBC suites, security level 0) from its clients; \
                     keep it on loopback or a trusted LAN (README \"Legacy TLS\")",
                    l.name,
                    l.tls_min_version.as_str()
                )
            }))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// IPv6 clients are counted per prefix of this length (the guard and
    /// the per-address cap); see `base::source_of`.
    pub ipv6_prefix: u8,
    /// Share the login guard's verdicts with the other instances using the
    /// same store (`guard::ledger`); several instances behind a balancer.
    pub share_guard: bool,
    pub client: ClientLimits,
    pub tls_handshake_timeout: Duration,
    pub preauth_timeout: Duration,
    pub upstream_connect_timeout: Duration,
    pub upstream_login_timeout: Duration,
    pub relay_idle_timeout: Duration,
    /// How long a login waits for a free per-mailbox upstream slot.
    pub upstream_queue_timeout: Duration,
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_ip: 256,
            ipv6_prefix: crate::base::DEFAULT_IPV6_PREFIX,
            share_guard: false,
            client: ClientLimits::default(),
            tls_handshake_timeout: Duration::from_secs(15),
            preauth_timeout: Duration::from_secs(120),
            upstream_connect_timeout: Duration::from_secs(20),
            upstream_login_timeout: Duration::from_secs(60),
            relay_idle_timeout: Duration::from_secs(35 * 60),
            upstream_queue_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// Upper bounds on every configured size, count and duration, refused at
/// load (`validate/limits.rs` says why; `config/reference.toml` lists them).
pub mod bounds {
    use std::time::Duration;

    /// `max_connections`, `max_connections_per_ip`.
    pub const MAX_CONNECTIONS: usize = 1_000_000;
    /// A provider's `graph_max_message_size`: Graph's 150 MB upload limit.
    pub const GRAPH_MAX_MESSAGE: usize = 150 * 1024 * 1024;
    /// A provider's `graph_upload_per_5min`: 10 GB, far above Graph's
    /// 150 MB, for a tenant whose limit Microsoft raised.
    pub const GRAPH_UPLOAD_PER_5MIN: usize = 10 * 1024 * 1024 * 1024;
    /// `max_line`: 1 MiB, a hundred times any real login line.
    pub const MAX_LINE: usize = 1024 * 1024;
    /// `max_literal`: 1 MiB.
    pub const MAX_LITERAL: usize = 1024 * 1024;
    pub const MAX_COMMANDS: usize = 10_000;
    pub const MAX_AUTH_FAILURES: usize = 100;
    /// Every `[limits]` timeout except the relay's: one day.
    pub const LIMIT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
    /// `relay_idle_timeout_secs`: one week.
    pub const RELAY_IDLE_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);
    /// A listener's `max_upstream_per_mailbox` (the benchmark rig uses 30000).
    pub const MAX_UPSTREAM_PER_MAILBOX: usize = 100_000;
    /// A listener's `prewarm`: a handful of spare connections is the point;
    /// more only spends the provider's per-IP connection allowance.
    pub const MAX_PREWARM: usize = 64;
    /// A provider's `refresh_margin_secs`: 30 days. Access tokens live about
    /// an hour; a margin beyond a token's life means "refresh at every use".
    pub const REFRESH_MARGIN: Duration = Duration::from_secs(30 * 24 * 3600);
    /// A provider's `keep_warm_interval_secs`: 30 days, well inside the
    /// provider's 90-day idle limit for refresh tokens.
    pub const KEEP_WARM_INTERVAL: Duration = Duration::from_secs(30 * 24 * 3600);
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountKind {
    /// Client-credentials token; local password checked against `password_hash`.
    AppOnly {
        password_hash: String,
        mailbox: Option<String>,
    },
    /// A shared mailbox reached with `delegate`'s token.
    Shared { delegate: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRule {
    /// A login name, or `*@domain`.
    pub login: String,
    pub provider: Option<String>,
    pub kind: AccountKind,
}

impl AccountRule {
    /// Whether `login` is this rule's account or in its `*@domain`, comparing
    /// names as [`AccountName`] folds them.
    pub fn matches(&self, login: &AccountName) -> bool {
        match self.login.strip_prefix("*@") {
            Some(domain) => AccountName::parse(domain).is_ok_and(|domain| {
                login
                    .as_str()
                    .rsplit_once('@')
                    .is_some_and(|(_, d)| d == domain.as_str())
            }),
            None => AccountName::parse(&self.login).is_ok_and(|rule| rule == *login),
        }
    }
}

/// The per-platform default state directory.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(STATE_DIR_ENV) {
        return PathBuf::from(dir);
    }
    if cfg!(windows) {
        if let Some(d) = std::env::var_os("ProgramData") {
            return PathBuf::from(d).join("mailgate");
        }
    } else if cfg!(target_os = "macos") {
        if let Some(h) = std::env::var_os("HOME") {
            return PathBuf::from(h).join("Library/Application Support/mailgate");
        }
    } else if let Some(d) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(d).join("mailgate");
    } else if let Some(h) = std::env::var_os("HOME") {
        return PathBuf::from(h).join(".local/state/mailgate");
    }
    PathBuf::from("mailgate-state")
}
