//! Serde mirror of the TOML file. Nothing here is trusted or interpreted:
//! `deny_unknown_fields` catches typos, and `validate` turns this into domain
//! types with messages that name the key and the fix.

use serde::Deserialize;
use toml::Spanned;

use crate::secret::Secret;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub state_dir: Option<String>,
    pub hostname: Option<String>,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub providers: Vec<Spanned<RawProvider>>,
    #[serde(default)]
    pub listeners: Vec<Spanned<RawListener>>,
    #[serde(default)]
    pub accounts: Vec<Spanned<RawAccount>>,
    pub admin: Option<Spanned<RawAdmin>>,
    pub store: Option<Spanned<RawStore>>,
}

/// `[store]`: where sealed token records live.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// `file` (default) or `postgres`.
    pub kind: String,
    /// `postgres://user@host:port/db`, without a password.
    pub url: Option<String>,
    pub password_file: Option<String>,
    pub password_env: Option<String>,
    /// `disable`, `require` or `verify-full`.
    pub tls: Option<String>,
    pub ca_file: Option<String>,
    /// Longest wait for a database connection, a lock or a query.
    pub timeout_secs: Option<u64>,
    /// Most connections this instance opens.
    pub max_connections: Option<usize>,
}

/// `[admin]`: the HTTP listener for health, readiness and metrics.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub bind: String,
    /// `none` (loopback only) or `tls`; default `none` on loopback, `tls` elsewhere.
    pub tls: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    /// Client networks allowed to connect (CIDR); empty means everyone who can reach the port.
    pub allowed_networks: Option<Vec<String>>,
    /// Label the token gauges with account names (default false: aggregates only).
    pub per_account_metrics: Option<bool>,
    /// The console's sign-in password, as an Argon2id PHC string
    /// (`mailgate hash-password`); without it the console pages stay closed.
    pub password_hash: Option<String>,
    /// A file holding `password_hash` (one line), instead of the key.
    pub password_hash_file: Option<String>,
    /// Seconds a console session lives without a request (default 1800).
    pub session_idle_secs: Option<u64>,
    /// Seconds a console session lives at most (default 43200).
    pub session_max_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub ipv6_prefix: Option<u8>,
    pub share_guard: Option<bool>,
    pub max_line: Option<usize>,
    pub max_literal: Option<usize>,
    pub max_commands: Option<usize>,
    pub max_auth_failures: Option<usize>,
    pub tls_handshake_timeout_secs: Option<u64>,
    pub preauth_timeout_secs: Option<u64>,
    pub upstream_connect_timeout_secs: Option<u64>,
    pub upstream_login_timeout_secs: Option<u64>,
    pub relay_idle_timeout_secs: Option<u64>,
    pub upstream_queue_timeout_secs: Option<u64>,
    pub shutdown_grace_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: String,
    /// `microsoft` (identity platform v2.0 presets) or `generic` (every URL given).
    pub kind: String,
    /// Microsoft: `organizations`, `common`, `consumers`, a tenant id or domain.
    pub tenant: Option<String>,
    /// Microsoft: `global`, `us-government`, `china`.
    pub cloud: Option<String>,
    pub client_id: String,
    pub client_secret: Option<Secret<String>>,
    /// App-only: path to a PEM certificate + key used for a client assertion.
    pub client_certificate: Option<String>,
    pub client_key: Option<String>,
    pub authority: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub device_code_url: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub app_scopes: Option<Vec<String>>,
    pub redirect_port: Option<u16>,
    pub refresh_margin_secs: Option<u64>,
    pub keep_warm_interval_secs: Option<u64>,
    /// Wrap data keys with a machine key as well, so idle accounts refresh across restarts.
    pub machine_key_wrap: Option<bool>,
    /// Microsoft Graph root for `submit = "graph"`/`"auto"` listeners
    /// (default: the cloud's Graph host).
    pub graph_endpoint: Option<String>,
    /// Delegated Graph scopes (default `{graph}/Mail.Send`).
    pub graph_scopes: Option<Vec<String>>,
    /// App-only Graph scopes (default `{graph}/.default`).
    pub graph_app_scopes: Option<Vec<String>>,
    /// Largest message sent through Graph, in bytes (default 35 MB).
    pub graph_max_message_size: Option<usize>,
    /// Bytes a mailbox may send through Graph in any 5 minutes (default 150 MB).
    pub graph_upload_per_5min: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    pub name: Option<String>,
    pub protocol: String,
    pub bind: String,
    #[serde(default)]
    pub tls: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub provider: Option<String>,
    /// Accept credentials over plaintext from non-loopback clients (not recommended).
    pub allow_plaintext_auth: Option<bool>,
    /// Client networks allowed to connect (CIDR); empty means everyone who can reach the port.
    pub allowed_networks: Option<Vec<String>>,
    /// Load balancers (CIDR) whose connections start with a PROXY protocol
    /// header naming the real client; empty means PROXY protocol off.
    pub proxy_protocol_from: Option<Vec<String>>,
    pub max_upstream_per_mailbox: Option<usize>,
    /// Oldest TLS version accepted from clients: "1.2" (default), "1.1" or "1.0".
    pub tls_min_version: Option<String>,
    /// Send TLS 1.3 session tickets after the handshake (default false).
    pub tls13_tickets: Option<bool>,
    /// SMTP listeners: "smtp" (default), "graph" or "auto".
    pub submit: Option<String>,
    /// Upstream connections kept ready ahead of logins (default 0: off).
    pub prewarm: Option<usize>,
    pub upstream: RawUpstream,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub host: String,
    pub port: u16,
    pub tls: String,
    /// Name to verify the certificate against, when it differs from `host`.
    pub server_name: Option<String>,
    /// Extra PEM CA certificates to trust (TLS inspection proxies, tests).
    pub ca_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    /// A login name, or `*@domain` to cover every mailbox of a domain.
    pub login: String,
    /// `app-only` (client credentials) or `shared` (delegate's token).
    pub kind: String,
    pub provider: Option<String>,
    /// App-only: Argon2id PHC string of the local password.
    pub password_hash: Option<String>,
    /// App-only: the mailbox (`user=`); defaults to the login name.
    pub mailbox: Option<String>,
    /// Shared: the delegate account whose token is used.
    pub delegate: Option<String>,
}
