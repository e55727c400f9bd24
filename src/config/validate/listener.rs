//! `[[listeners]]` and their upstreams: the safe defaults live here (no
//! plaintext passwords from the network unless explicitly allowed, no
//! unencrypted upstream except on loopback).

use std::net::SocketAddr;

use toml::Spanned;

use super::Ctx;
use crate::config::raw::{RawListener, RawUpstream};
use crate::config::validate::ConfigError;
use crate::config::{Listener, LocalTls, Network, Provider, TlsMinVersion, Upstream, UpstreamTls};
use crate::token::Protocol;

pub(super) fn listener(
    cx: &Ctx,
    i: usize,
    sp: &Spanned<RawListener>,
    providers: &[Provider],
) -> Result<Listener, ConfigError> {
    let at = sp.span().start;
    let l = sp.get_ref();
    let key = |k: &str| format!("listeners[{i}].{k}");
    let protocol = match l.protocol.as_str() {
        "imap" => Protocol::Imap,
        "pop3" => Protocol::Pop3,
        "smtp" => Protocol::Smtp,
        other => {
            return Err(cx.err(
                at,
                key("protocol"),
                format!("unknown protocol {other:?}"),
                "use \"imap\", \"pop3\" or \"smtp\"",
            ));
        }
    };
    let bind: SocketAddr = l.bind.parse().map_err(|_| {
        cx.err(
            at,
            key("bind"),
            format!("{:?} is not an address:port", l.bind),
            "write e.g. \"127.0.0.1:1143\" or \"[::1]:1143\"",
        )
    })?;
    let tls = match l.tls.as_deref().unwrap_or("none") {
        "none" => LocalTls::None,
        "starttls" => LocalTls::StartTls,
        "implicit" => LocalTls::Implicit,
        other => {
            return Err(cx.err(
                at,
                key("tls"),
                format!("unknown TLS mode {other:?}"),
                "use \"none\", \"starttls\" or \"implicit\"",
            ));
        }
    };
    let cert = match (&l.cert, &l.key) {
        (Some(c), Some(k)) => Some((cx.path(c), cx.path(k))),
        (None, None) => None,
        _ => {
            return Err(cx.err(
                at,
                key("cert"),
                "cert and key go together",
                "give both PEM files, or neither to have one generated",
            ));
        }
    };
    let provider = match (&l.provider, providers) {
        (Some(p), _) if providers.iter().any(|q| &q.name == p) => p.clone(),
        (Some(p), _) => {
            return Err(cx.err(
                at,
                key("provider"),
                format!("no provider named {p:?}"),
                "name one of the [[providers]] entries",
            ));
        }
        (None, [only]) => only.name.clone(),
        (None, _) => {
            return Err(cx.err(
                at,
                key("provider"),
                "missing",
                "name the [[providers]] entry this listener serves",
            ));
        }
    };
    let allow_plaintext_auth = l.allow_plaintext_auth.unwrap_or(false);
    if tls == LocalTls::None && !bind.ip().is_loopback() && !allow_plaintext_auth {
        return Err(cx.err(at, key("tls"), format!("{bind} is reachable from the network but has no TLS, so passwords would cross it in clear"), "set tls = \"starttls\" or \"implicit\", bind to 127.0.0.1, or set allow_plaintext_auth = true"));
    }
    let allowed_networks = l
        .allowed_networks
        .iter()
        .flatten()
        .map(|n| {
            network(n).ok_or_else(|| {
                cx.err(
                    at,
                    key("allowed_networks"),
                    format!("{n:?} is not a network"),
                    "write CIDR, e.g. \"192.168.1.0/24\" or \"fd00::/8\"",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tls_min_version = tls_min_version(cx, at, i, l.tls_min_version.as_deref(), tls)?;
    let default_cap = if protocol == Protocol::Smtp { 3 } else { 16 };
    Ok(Listener {
        name: l
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", l.protocol, bind.port())),
        protocol,
        bind,
        tls,
        cert,
        provider,
        allow_plaintext_auth,
        allowed_networks,
        max_upstream_per_mailbox: l.max_upstream_per_mailbox.unwrap_or(default_cap),
        tls_min_version,
        tls13_tickets: l.tls13_tickets.unwrap_or(false),
        upstream: upstream(cx, at, i, &l.upstream)?,
    })
}

/// TLS 1.0/1.1 is an explicit opt-in per listener, and only exists in builds
/// with the `legacy-tls` feature (the second TLS stack, OpenSSL).
fn tls_min_version(
    cx: &Ctx,
    at: usize,
    i: usize,
    text: Option<&str>,
    tls: LocalTls,
) -> Result<TlsMinVersion, ConfigError> {
    let key = format!("listeners[{i}].tls_min_version");
    let version = match text.unwrap_or("1.2") {
        "1.2" => TlsMinVersion::Tls12,
        "1.1" => TlsMinVersion::Tls11,
        "1.0" => TlsMinVersion::Tls10,
        other => {
            return Err(cx.err(
                at,
                key,
                format!("unknown TLS version {other:?}"),
                "use \"1.2\" (default), or \"1.1\" / \"1.0\" for legacy clients",
            ));
        }
    };
    if version == TlsMinVersion::Tls12 {
        return Ok(version);
    }
    if tls == LocalTls::None {
        return Err(cx.err(
            at,
            key,
            "this listener has no TLS",
            "set tls = \"starttls\" or \"implicit\", or remove tls_min_version",
        ));
    }
    if !cfg!(feature = "legacy-tls") {
        return Err(cx.err(
            at,
            key,
            "this build of mailgate has no TLS 1.0/1.1 support",
            "build with `cargo build --release --features legacy-tls` (needs libssl-dev and pkg-config), or remove tls_min_version",
        ));
    }
    Ok(version)
}

fn upstream(cx: &Ctx, at: usize, i: usize, u: &RawUpstream) -> Result<Upstream, ConfigError> {
    let key = |k: &str| format!("listeners[{i}].upstream.{k}");
    let tls = match u.tls.as_str() {
        "implicit" => UpstreamTls::Implicit,
        "starttls" => UpstreamTls::StartTls,
        "none" => UpstreamTls::None,
        other => {
            return Err(cx.err(
                at,
                key("tls"),
                format!("unknown upstream TLS mode {other:?}"),
                "use \"implicit\" or \"starttls\"",
            ));
        }
    };
    if tls == UpstreamTls::None && !is_loopback_host(&u.host) {
        return Err(cx.err(
            at,
            key("tls"),
            "tokens would cross the network in clear",
            "use \"implicit\" or \"starttls\"; \"none\" is only for 127.0.0.1 test servers",
        ));
    }
    if u.host.is_empty() || u.port == 0 {
        return Err(cx.err(
            at,
            key("host"),
            "host and port are required",
            "write e.g. host = \"outlook.office365.com\", port = 993",
        ));
    }
    Ok(Upstream {
        host: u.host.clone(),
        port: u.port,
        tls,
        server_name: u.server_name.clone().unwrap_or_else(|| u.host.clone()),
        ca_file: u.ca_file.as_deref().map(|c| cx.path(c)),
    })
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn network(text: &str) -> Option<Network> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a.parse().ok()?, p.parse().ok()?),
        None => {
            let a: std::net::IpAddr = text.parse().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if matches!(addr, std::net::IpAddr::V4(_)) {
        32
    } else {
        128
    };
    (prefix <= max).then_some(Network { addr, prefix })
}

#[cfg(test)]
#[path = "tls_version_tests.rs"]
mod tls_version_tests;
