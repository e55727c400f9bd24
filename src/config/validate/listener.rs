//! `[[listeners]]` and their upstreams: the safe defaults live here (no
//! plaintext passwords from the network unless explicitly allowed, no
//! unencrypted upstream except on loopback).

use std::net::SocketAddr;

use super::{Entry, Keywords};
use crate::base::Protocol;
use crate::config::raw::{RawListener, RawUpstream};
use crate::config::validate::ConfigError;
use crate::config::{
    Listener, LocalTls, Network, Provider, SubmitMode, TlsMinVersion, Upstream, UpstreamTls,
};

const PROTOCOLS: Keywords<Protocol> = Keywords {
    what: "protocol",
    fix: "use \"imap\", \"pop3\" or \"smtp\"",
    choices: &[
        ("imap", Protocol::Imap),
        ("pop3", Protocol::Pop3),
        ("smtp", Protocol::Smtp),
    ],
};

const SUBMIT: Keywords<SubmitMode> = Keywords {
    what: "submission mode",
    fix: "use \"smtp\", \"graph\" or \"auto\"",
    choices: &[
        ("smtp", SubmitMode::Smtp),
        ("graph", SubmitMode::Graph),
        ("auto", SubmitMode::Auto),
    ],
};

const LOCAL_TLS: Keywords<LocalTls> = Keywords {
    what: "TLS mode",
    fix: "use \"none\", \"starttls\" or \"implicit\"",
    choices: &[
        ("none", LocalTls::None),
        ("starttls", LocalTls::StartTls),
        ("implicit", LocalTls::Implicit),
    ],
};

/// `none` is accepted for loopback test servers but never recommended.
const UPSTREAM_TLS: Keywords<UpstreamTls> = Keywords {
    what: "upstream TLS mode",
    fix: "use \"implicit\" or \"starttls\"",
    choices: &[
        ("implicit", UpstreamTls::Implicit),
        ("starttls", UpstreamTls::StartTls),
        ("none", UpstreamTls::None),
    ],
};

pub(super) fn listener(
    e: &Entry<'_>,
    l: &RawListener,
    providers: &[Provider],
) -> Result<Listener, ConfigError> {
    let protocol = e.keyword("protocol", &l.protocol, &PROTOCOLS)?;
    let bind: SocketAddr = l.bind.parse().map_err(|_| {
        e.err(
            "bind",
            format!("{:?} is not an address:port", l.bind),
            "write e.g. \"127.0.0.1:1143\" or \"[::1]:1143\"",
        )
    })?;
    let tls = e.keyword("tls", l.tls.as_deref().unwrap_or("none"), &LOCAL_TLS)?;
    let cert = e.cert_pair(l.cert.as_deref(), l.key.as_deref())?;
    let provider = served_provider(e, l.provider.as_deref(), providers)?;
    let allow_plaintext_auth = l.allow_plaintext_auth.unwrap_or(false);
    if tls == LocalTls::None && !bind.ip().is_loopback() && !allow_plaintext_auth {
        return Err(e.err("tls", format!("{bind} is reachable from the network but has no TLS, so passwords would cross it in clear"), "set tls = \"starttls\" or \"implicit\", bind to 127.0.0.1, or set allow_plaintext_auth = true"));
    }
    let tls_min_version = tls_min_version(e, l.tls_min_version.as_deref(), tls)?;
    let default_cap = if protocol == Protocol::Smtp { 3 } else { 16 };
    let submit = e.keyword("submit", l.submit.as_deref().unwrap_or("smtp"), &SUBMIT)?;
    if submit != SubmitMode::Smtp && protocol != Protocol::Smtp {
        return Err(e.err(
            "submit",
            "only SMTP listeners submit mail",
            "remove submit from this listener",
        ));
    }
    let upstream = upstream(&e.table("upstream"), &l.upstream)?;
    let prewarm = prewarm(e, l.prewarm, submit, &upstream)?;
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
        allowed_networks: networks(
            e,
            "allowed_networks",
            l.allowed_networks.as_deref().unwrap_or_default(),
        )?,
        proxy_protocol_from: networks(
            e,
            "proxy_protocol_from",
            l.proxy_protocol_from.as_deref().unwrap_or_default(),
        )?,
        max_upstream_per_mailbox: super::limits::count(
            e,
            "max_upstream_per_mailbox",
            l.max_upstream_per_mailbox,
            crate::config::bounds::MAX_UPSTREAM_PER_MAILBOX,
            default_cap,
        )?,
        tls_min_version,
        tls13_tickets: l.tls13_tickets.unwrap_or(false),
        submit,
        prewarm,
        upstream,
    })
}

/// `prewarm`: bounded, and only where a connection made ahead of time is the
/// one the login would use (not for Graph, which has no upstream socket; not
/// for plain test upstreams, where there is no handshake to save).
fn prewarm(
    e: &Entry<'_>,
    value: Option<usize>,
    submit: SubmitMode,
    upstream: &Upstream,
) -> Result<usize, ConfigError> {
    let n = super::limits::count(e, "prewarm", value, crate::config::bounds::MAX_PREWARM, 0)?;
    if n > 0 && submit == SubmitMode::Graph {
        return Err(e.err(
            "prewarm",
            "a listener with submit = \"graph\" sends mail over HTTPS and keeps no upstream connection to prewarm",
            "remove prewarm from this listener",
        ));
    }
    if n > 0 && upstream.tls == UpstreamTls::None {
        return Err(e.err(
            "prewarm",
            "prewarm saves the upstream's TLS handshake and greeting, but this upstream has tls = \"none\"",
            "remove prewarm, or use an upstream with tls = \"implicit\" or \"starttls\"",
        ));
    }
    Ok(n)
}

/// The named provider, or the only one there is.
fn served_provider(
    e: &Entry<'_>,
    named: Option<&str>,
    providers: &[Provider],
) -> Result<String, ConfigError> {
    match (named, providers) {
        (Some(p), _) => e.known_provider(p, providers).map(|()| p.to_owned()),
        (None, [only]) => Ok(only.name.clone()),
        (None, _) => Err(e.err(
            "provider",
            "missing",
            "name the [[providers]] entry this listener serves",
        )),
    }
}

pub(super) fn networks(
    e: &Entry<'_>,
    key: &str,
    given: &[String],
) -> Result<Vec<Network>, ConfigError> {
    given
        .iter()
        .map(|n| {
            network(n).ok_or_else(|| {
                e.err(
                    key,
                    format!("{n:?} is not a network"),
                    "write CIDR, e.g. \"192.168.1.0/24\" or \"fd00::/8\"",
                )
            })
        })
        .collect()
}

fn upstream(e: &Entry<'_>, u: &RawUpstream) -> Result<Upstream, ConfigError> {
    let tls = e.keyword("tls", &u.tls, &UPSTREAM_TLS)?;
    if tls == UpstreamTls::None && !is_loopback_host(&u.host) {
        return Err(e.err(
            "tls",
            "tokens would cross the network in clear",
            "use \"implicit\" or \"starttls\"; \"none\" is only for 127.0.0.1 test servers",
        ));
    }
    if u.host.is_empty() || u.port == 0 {
        return Err(e.err(
            "host",
            "host and port are required",
            "write e.g. host = \"outlook.office365.com\", port = 993",
        ));
    }
    Ok(Upstream {
        host: u.host.clone(),
        port: u.port,
        tls,
        server_name: u.server_name.clone().unwrap_or_else(|| u.host.clone()),
        ca_file: u.ca_file.as_deref().map(|c| e.path(c)),
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

const TLS_VERSIONS: Keywords<TlsMinVersion> = Keywords {
    what: "TLS version",
    fix: "use \"1.2\" (default), or \"1.1\" / \"1.0\" for legacy clients",
    choices: &[
        ("1.2", TlsMinVersion::Tls12),
        ("1.1", TlsMinVersion::Tls11),
        ("1.0", TlsMinVersion::Tls10),
    ],
};

/// TLS 1.0/1.1 is an explicit opt-in per listener, and only exists in builds
/// with the `legacy-tls` feature (the second TLS stack, OpenSSL).
fn tls_min_version(
    e: &Entry<'_>,
    text: Option<&str>,
    tls: LocalTls,
) -> Result<TlsMinVersion, ConfigError> {
    const KEY: &str = "tls_min_version";
    let version = e.keyword(KEY, text.unwrap_or("1.2"), &TLS_VERSIONS)?;
    if version == TlsMinVersion::Tls12 {
        return Ok(version);
    }
    if tls == LocalTls::None {
        return Err(e.err(
            KEY,
            "this listener has no TLS",
            "set tls = \"starttls\" or \"implicit\", or remove tls_min_version",
        ));
    }
    if !cfg!(feature = "legacy-tls") {
        return Err(e.err(
            KEY,
            "this build of mailgate has no TLS 1.0/1.1 support",
            "build with `cargo build --release --features legacy-tls` (needs libssl-dev and pkg-config), or remove tls_min_version",
        ));
    }
    Ok(version)
}

#[cfg(test)]
#[path = "prewarm_tests.rs"]
mod prewarm_tests;
