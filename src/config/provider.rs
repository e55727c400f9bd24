//! What mailgate needs to know about an identity provider and the mail
//! servers behind it: its OAuth endpoints and scopes, its Graph host and
//! limits, and how to reach and verify its IMAP, POP3 and SMTP servers.

use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Secret;

use super::validate;

/// Which national cloud a Microsoft provider lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    Global,
    UsGovernment,
    China,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub name: String,
    pub client_id: String,
    pub client_secret: Option<Secret<String>>,
    pub client_certificate: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub authorize_url: String,
    pub token_url: String,
    pub device_code_url: String,
    /// Delegated scopes requested at enrolment (includes `offline_access`).
    pub scopes: Vec<String>,
    /// Client-credentials scopes for app-only accounts.
    pub app_scopes: Vec<String>,
    pub redirect_port: u16,
    pub refresh_margin: Duration,
    pub keep_warm_interval: Duration,
    pub machine_key_wrap: bool,
    /// Microsoft Graph, for listeners that submit through it.
    pub graph: GraphSettings,
}

/// Where and how mail is sent through Microsoft Graph (`docs/design.md`,
/// "Sending through Graph").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphSettings {
    /// `https://graph.microsoft.com` or a national cloud's host, no slash.
    pub endpoint: String,
    /// Delegated scopes for a Graph token (`Mail.Send`).
    pub scopes: Vec<String>,
    /// Client-credentials scopes for app-only accounts (`.default`).
    pub app_scopes: Vec<String>,
    /// Largest message, in bytes: what EHLO advertises as SIZE.
    pub max_message_size: usize,
    /// Bytes a mailbox may send in any 5 minutes (Graph's upload volume
    /// limit); never below `max_message_size`.
    pub upload_per_5min: usize,
}

impl GraphSettings {
    /// The settings for the Graph host `endpoint`.
    pub fn for_endpoint(endpoint: &str) -> Self {
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        Self {
            scopes: vec![format!("{endpoint}/Mail.Send")],
            app_scopes: vec![format!("{endpoint}/.default")],
            endpoint,
            max_message_size: DEFAULT_GRAPH_MAX_MESSAGE,
            upload_per_5min: DEFAULT_GRAPH_UPLOAD_PER_5MIN,
        }
    }
}

/// Exchange Online's default send limit.
pub const DEFAULT_GRAPH_MAX_MESSAGE: usize = 35 * 1024 * 1024;
/// Graph's upload volume per mailbox in 5 minutes.
pub const DEFAULT_GRAPH_UPLOAD_PER_5MIN: usize = 150 * 1024 * 1024;

/// How an SMTP listener submits mail after the local AUTH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubmitMode {
    /// Log in to the provider's SMTP with XOAUTH2 and relay (today's path).
    #[default]
    Smtp,
    /// Always submit through Microsoft Graph.
    Graph,
    /// SMTP, switching to Graph for mailboxes whose SMTP AUTH is disabled.
    Auto,
}

impl Provider {
    /// The fix, when `client_id` is still the shipped placeholder: enrolment
    /// refuses to start and `serve` answers logins with it.
    pub fn unregistered_app(&self) -> Option<String> {
        validate::unregistered_app(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamTls {
    Implicit,
    StartTls,
    /// Plain TCP; only for tests against loopback servers.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
    pub tls: UpstreamTls,
    pub server_name: String,
    pub ca_file: Option<PathBuf>,
}
