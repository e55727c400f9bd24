//! `[limits]` and every other size or duration in the file, checked against
//! an upper bound before anything is built from it.
//!
//! Without bounds a typo becomes a crash far from the config: a huge
//! `max_line` asks the allocator for exabytes and aborts, a huge timeout
//! overflows `Instant + Duration` and panics on the first connection, a huge
//! connection cap overflows the semaphore that enforces it. The bounds are
//! generous (no sane setting comes near them) and listed in
//! `config/reference.toml`; the error names the key and the bound.

use std::time::Duration;

use super::super::raw::RawLimits;
use super::super::{Limits, bounds};
use super::{ConfigError, Ctx, Entry};
use crate::proto::ClientLimits;

/// A count or size key: its value (default if unset), or an error past `max`.
pub(super) fn count(
    e: &Entry<'_>,
    key: &str,
    value: Option<usize>,
    max: usize,
    default: usize,
) -> Result<usize, ConfigError> {
    match value {
        Some(v) if v > max => Err(too_big(e, key, &v.to_string(), &max.to_string())),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

/// A `*_secs` key: its duration (default if unset), or an error past `max`.
pub(super) fn secs(
    e: &Entry<'_>,
    key: &str,
    value: Option<u64>,
    max: Duration,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value {
        Some(v) if v > max.as_secs() => {
            Err(too_big(e, key, &v.to_string(), &max.as_secs().to_string()))
        }
        Some(v) => Ok(Duration::from_secs(v)),
        None => Ok(default),
    }
}

fn too_big(e: &Entry<'_>, key: &str, value: &str, max: &str) -> ConfigError {
    e.err(
        key,
        format!("{value} is above the maximum {max}"),
        &format!("set {key} to at most {max} (config/reference.toml lists every bound)"),
    )
}

/// The `[limits]` table; errors point at its header line.
pub(super) fn limits(cx: &Ctx<'_>, raw: &RawLimits) -> Result<Limits, ConfigError> {
    let at = cx
        .text
        .find("[limits]")
        .or_else(|| cx.text.find("limits"))
        .unwrap_or(0);
    let e = Entry {
        cx,
        at,
        prefix: "limits".to_owned(),
    };
    let d = Limits::default();
    let b = bounds::LIMIT_TIMEOUT;
    Ok(Limits {
        max_connections: count(
            &e,
            "max_connections",
            raw.max_connections,
            bounds::MAX_CONNECTIONS,
            d.max_connections,
        )?,
        max_connections_per_ip: count(
            &e,
            "max_connections_per_ip",
            raw.max_connections_per_ip,
            bounds::MAX_CONNECTIONS,
            d.max_connections_per_ip,
        )?,
        ipv6_prefix: ipv6_prefix(&e, raw.ipv6_prefix.unwrap_or(d.ipv6_prefix))?,
        share_guard: raw.share_guard.unwrap_or(d.share_guard),
        client: client(&e, raw, d.client)?,
        tls_handshake_timeout: secs(
            &e,
            "tls_handshake_timeout_secs",
            raw.tls_handshake_timeout_secs,
            b,
            d.tls_handshake_timeout,
        )?,
        preauth_timeout: secs(
            &e,
            "preauth_timeout_secs",
            raw.preauth_timeout_secs,
            b,
            d.preauth_timeout,
        )?,
        upstream_connect_timeout: secs(
            &e,
            "upstream_connect_timeout_secs",
            raw.upstream_connect_timeout_secs,
            b,
            d.upstream_connect_timeout,
        )?,
        upstream_login_timeout: secs(
            &e,
            "upstream_login_timeout_secs",
            raw.upstream_login_timeout_secs,
            b,
            d.upstream_login_timeout,
        )?,
        relay_idle_timeout: secs(
            &e,
            "relay_idle_timeout_secs",
            raw.relay_idle_timeout_secs,
            bounds::RELAY_IDLE_TIMEOUT,
            d.relay_idle_timeout,
        )?,
        upstream_queue_timeout: secs(
            &e,
            "upstream_queue_timeout_secs",
            raw.upstream_queue_timeout_secs,
            b,
            d.upstream_queue_timeout,
        )?,
        shutdown_grace: secs(
            &e,
            "shutdown_grace_secs",
            raw.shutdown_grace_secs,
            b,
            d.shutdown_grace,
        )?,
    })
}

/// Shortest IPv6 prefix a source may be grouped by: a /16 would put most of
/// the Internet behind one guard entry and one connection count.
const MIN_IPV6_PREFIX: u8 = 16;

fn ipv6_prefix(e: &Entry<'_>, prefix: u8) -> Result<u8, ConfigError> {
    if (MIN_IPV6_PREFIX..=128).contains(&prefix) {
        return Ok(prefix);
    }
    // Point at the key's own line: the value is not a size, and the header
    // line alone would not show which of them is wrong.
    let at = e.cx.text.find("ipv6_prefix").unwrap_or(e.at);
    let e = Entry {
        cx: e.cx,
        at,
        prefix: e.prefix.clone(),
    };
    Err(e.err(
        "ipv6_prefix",
        format!("{prefix} is not a prefix length from {MIN_IPV6_PREFIX} to 128"),
        "use 64 (one subscriber's network) unless clients share a longer prefix",
    ))
}

fn client(e: &Entry<'_>, raw: &RawLimits, d: ClientLimits) -> Result<ClientLimits, ConfigError> {
    Ok(ClientLimits {
        max_line: count(e, "max_line", raw.max_line, bounds::MAX_LINE, d.max_line)?,
        max_literal: count(
            e,
            "max_literal",
            raw.max_literal,
            bounds::MAX_LITERAL,
            d.max_literal,
        )?,
        max_commands: count(
            e,
            "max_commands",
            raw.max_commands,
            bounds::MAX_COMMANDS,
            d.max_commands,
        )?,
        max_auth_failures: count(
            e,
            "max_auth_failures",
            raw.max_auth_failures,
            bounds::MAX_AUTH_FAILURES,
            d.max_auth_failures,
        )?,
    })
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
