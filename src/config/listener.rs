//! The sockets mailgate answers on: mail listeners with their local TLS,
//! the networks they admit, PROXY protocol sources and sending mode, and the
//! admin listener. Network matching lives here because both kinds use it.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::base::Protocol;

use super::{SubmitMode, Upstream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalTls {
    None,
    StartTls,
    Implicit,
}

/// The oldest TLS version a listener accepts from its clients. Below 1.2 the
/// listener's local side runs on OpenSSL instead of rustls (feature
/// `legacy-tls`; README "Legacy TLS").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsMinVersion {
    Tls10,
    Tls11,
    Tls12,
}

impl TlsMinVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tls10 => "1.0",
            Self::Tls11 => "1.1",
            Self::Tls12 => "1.2",
        }
    }
}

/// An IPv4 or IPv6 network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub addr: std::net::IpAddr,
    pub prefix: u8,
}

impl Network {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr::{V4, V6};
        let ip = match ip {
            V6(v6) => v6.to_ipv4_mapped().map(V4).unwrap_or(V6(v6)),
            v4 => v4,
        };
        match (self.addr, ip) {
            (V4(net), V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            (V6(net), V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || (a[full] ^ b[full]) >> (8 - rest) == 0
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub protocol: Protocol,
    pub bind: SocketAddr,
    pub tls: LocalTls,
    /// Certificate and key; `None` means "generate one in the state dir".
    pub cert: Option<(PathBuf, PathBuf)>,
    pub provider: String,
    pub allow_plaintext_auth: bool,
    pub allowed_networks: Vec<Network>,
    /// Load balancers whose connections must start with a PROXY protocol
    /// header (v1 or v2); the header's source is then the client for every
    /// check. Empty: PROXY protocol off, and a header is refused.
    pub proxy_protocol_from: Vec<Network>,
    pub max_upstream_per_mailbox: usize,
    pub tls_min_version: TlsMinVersion,
    /// TLS 1.3 NewSessionTicket messages after the handshake. Off by default:
    /// clients with a threaded reader (imaplib2) stall on them, and
    /// resumption buys little on a local hop.
    pub tls13_tickets: bool,
    /// SMTP listeners: how mail is submitted after the local AUTH.
    pub submit: SubmitMode,
    /// Upstream connections kept connected ahead of logins (0: off); see
    /// `upstream::prewarm`.
    pub prewarm: usize,
    pub upstream: Upstream,
}

impl Listener {
    /// Credentials may cross this listener in clear only from loopback peers,
    /// or where the admin explicitly allowed it.
    pub fn plaintext_auth_ok(&self, peer: std::net::IpAddr) -> bool {
        self.allow_plaintext_auth || peer.is_loopback()
    }

    /// Whether clients may negotiate TLS 1.0 or 1.1 on this listener.
    pub fn accepts_legacy_tls(&self) -> bool {
        self.tls != LocalTls::None && self.tls_min_version < TlsMinVersion::Tls12
    }

    pub fn admits(&self, peer: std::net::IpAddr) -> bool {
        self.allowed_networks.is_empty() || self.allowed_networks.iter().any(|n| n.contains(peer))
    }

    /// Whether a connection from `peer` comes through a listed load balancer
    /// and so must start with a PROXY protocol header.
    pub fn expects_proxy_header(&self, peer: std::net::IpAddr) -> bool {
        self.proxy_protocol_from.iter().any(|n| n.contains(peer))
    }
}

/// The admin listener: `/healthz`, `/readyz`, `/metrics`. It answers in
/// clear only on loopback; anywhere else it speaks TLS with the configured
/// certificate or the generated local one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub bind: SocketAddr,
    pub tls: bool,
    /// Certificate and key; `None` means "generate one in the state dir".
    pub cert: Option<(PathBuf, PathBuf)>,
    pub allowed_networks: Vec<Network>,
    /// Whether account names may appear as metric labels.
    pub per_account_metrics: bool,
    /// The console's sign-in password hash (Argon2id PHC); `None` keeps
    /// the console pages closed.
    pub password_hash: Option<String>,
    /// A console session ends after this long without a request...
    pub session_idle: std::time::Duration,
    /// ...and after this long in any case.
    pub session_max: std::time::Duration,
}

impl Admin {
    pub fn admits(&self, peer: std::net::IpAddr) -> bool {
        self.allowed_networks.is_empty() || self.allowed_networks.iter().any(|n| n.contains(peer))
    }
}
