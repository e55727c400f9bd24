use std::path::Path;

use super::super::parse;
use super::*;

const BASE: &str = "[[providers]]\nname=\"m\"\nkind=\"microsoft\"\nclient_id=\"c\"\n";
const LISTENER: &str = "[[listeners]]\nprotocol = \"imap\"\nbind = \"127.0.0.1:1143\"\nupstream = { host = \"outlook.office365.us\", port = 993, tls = \"implicit\" }\n";

/// Every bounded key, where it goes, and its bound.
const KEYS: &[(&str, &str, u64)] = &[
    ("limits", "max_connections", bounds::MAX_CONNECTIONS as u64),
    (
        "limits",
        "max_connections_per_ip",
        bounds::MAX_CONNECTIONS as u64,
    ),
    ("limits", "max_line", bounds::MAX_LINE as u64),
    ("limits", "max_literal", bounds::MAX_LITERAL as u64),
    ("limits", "max_commands", bounds::MAX_COMMANDS as u64),
    (
        "limits",
        "max_auth_failures",
        bounds::MAX_AUTH_FAILURES as u64,
    ),
    ("limits", "tls_handshake_timeout_secs", 86_400),
    ("limits", "preauth_timeout_secs", 86_400),
    ("limits", "upstream_connect_timeout_secs", 86_400),
    ("limits", "upstream_login_timeout_secs", 86_400),
    ("limits", "relay_idle_timeout_secs", 604_800),
    ("limits", "upstream_queue_timeout_secs", 86_400),
    ("limits", "shutdown_grace_secs", 86_400),
    ("providers[0]", "refresh_margin_secs", 2_592_000),
    ("providers[0]", "keep_warm_interval_secs", 2_592_000),
    (
        "listeners[0]",
        "max_upstream_per_mailbox",
        bounds::MAX_UPSTREAM_PER_MAILBOX as u64,
    ),
];

fn config_with(table: &str, key: &str, value: &str) -> String {
    let line = format!("{key} = {value}\n");
    match table {
        "limits" => format!("{BASE}{LISTENER}[limits]\n{line}"),
        "providers[0]" => format!("{BASE}{line}{LISTENER}"),
        _ => format!("{BASE}{LISTENER}{line}"),
    }
}

fn parse_text(text: &str) -> Result<crate::config::Config, ConfigError> {
    parse(text, "t.toml", Path::new("/etc/mailgate"))
}

/// TOML integers stop at i64::MAX; that, and one past each bound, are
/// refused naming the key and the bound; the bound itself is accepted.
#[test]
fn every_bounded_key_refuses_a_huge_value_naming_key_and_bound() {
    for &(table, key, max) in KEYS {
        for value in [i64::MAX as u64, max + 1] {
            let e = parse_text(&config_with(table, key, &value.to_string()))
                .expect_err(key)
                .to_string();
            assert!(
                e.contains(&format!("{table}.{key}")) && e.contains(&format!("at most {max}")),
                "{key} = {value}: {e}"
            );
        }
        assert!(
            parse_text(&config_with(table, key, &max.to_string())).is_ok(),
            "{key} = {max} is allowed"
        );
    }
}

/// The raw values as serde hands them over, at their type's maximum.
#[test]
fn limits_refuse_u64_max_without_overflow() {
    let text = format!("{BASE}{LISTENER}[limits]\n");
    let cx = Ctx {
        file: "t.toml",
        text: &text,
        base: Path::new("/"),
    };
    let huge = RawLimits {
        max_connections: Some(usize::MAX),
        max_connections_per_ip: Some(usize::MAX),
        ipv6_prefix: Some(u8::MAX),
        share_guard: Some(true),
        max_line: Some(usize::MAX),
        max_literal: Some(usize::MAX),
        max_commands: Some(usize::MAX),
        max_auth_failures: Some(usize::MAX),
        tls_handshake_timeout_secs: Some(u64::MAX),
        preauth_timeout_secs: Some(u64::MAX),
        upstream_connect_timeout_secs: Some(u64::MAX),
        upstream_login_timeout_secs: Some(u64::MAX),
        relay_idle_timeout_secs: Some(u64::MAX),
        upstream_queue_timeout_secs: Some(u64::MAX),
        shutdown_grace_secs: Some(u64::MAX),
    };
    let e = limits(&cx, &huge).unwrap_err().to_string();
    assert!(e.starts_with("t.toml:9: limits.max_connections:"), "{e}");
    assert_eq!(
        limits(&cx, &RawLimits::default()).unwrap(),
        Limits::default()
    );
}

/// `config/reference.toml` states every bound next to its key.
#[test]
fn reference_config_states_every_bound() {
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/reference.toml"
    ));
    for &(_, key, max) in KEYS {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{key} =")))
            .unwrap_or_else(|| panic!("{key} missing"));
        assert!(line.contains(&format!("max {max}")), "{line}");
    }
}

/// Graph's upload volume: 150 MB by default, never below the largest
/// message (one message must fit in a window), at most the bound.
#[test]
fn graph_upload_volume_is_bounded_by_the_message_size() {
    let c = parse_text(&format!("{BASE}{LISTENER}")).unwrap();
    assert_eq!(c.providers[0].graph.upload_per_5min, 150 * 1024 * 1024);
    let c = parse_text(&config_with(
        "providers[0]",
        "graph_upload_per_5min",
        "36700160",
    ))
    .unwrap();
    assert_eq!(c.providers[0].graph.upload_per_5min, 36_700_160);
    let too_big = (bounds::GRAPH_UPLOAD_PER_5MIN + 1).to_string();
    for value in ["1024", too_big.as_str()] {
        let e = parse_text(&config_with("providers[0]", "graph_upload_per_5min", value))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("providers[0].graph_upload_per_5min")
                && e.contains("graph_max_message_size (36700160)"),
            "{value}: {e}"
        );
    }
    let small =
        format!("{BASE}graph_max_message_size = 1024\ngraph_upload_per_5min = 1024\n{LISTENER}");
    assert_eq!(
        parse_text(&small).unwrap().providers[0]
            .graph
            .upload_per_5min,
        1024
    );
}
