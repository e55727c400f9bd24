//! Logs through the real binary: no colour codes when stderr is a file,
//! `--log-format json` writes one JSON object per line, and a filter that
//! does not parse stops the program with a message naming it.

use std::process::Stdio;

use super::imap_config;
use crate::support::mailgate::{Serve, command};
use crate::support::scratch::Scratch;

/// Starts `serve` with `args` appended, waits for its listener, stops it
/// and returns everything it logged.
fn serve_log(tag: &str, args: &[&str]) -> String {
    let scratch = Scratch::new(tag);
    let (config, port) = imap_config(&scratch);
    let mut serve = Serve::spawn(&config, |mut cmd| {
        cmd.args(args).env_remove("NO_COLOR");
        cmd
    })
    .unwrap()
    .listening(&[port])
    .unwrap();
    serve.stop();
    std::fs::read_to_string(scratch.dir.join("mailgate-serve.log")).unwrap()
}

#[test]
fn text_logs_to_a_file_have_no_colour_codes() {
    let log = serve_log("log-text", &[]);
    assert!(log.contains("listening"), "{log}");
    assert!(!log.contains('\x1b'), "escape sequences in {log:?}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let log = serve_log("log-json", &["--log-format", "json"]);
    let mut messages = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{log}"));
        assert!(value.is_object(), "{line}");
        assert!(
            value["level"].is_string() && value["timestamp"].is_string(),
            "{line}"
        );
        if let Some(m) = value["fields"]["message"].as_str() {
            messages.push(m.to_owned());
        }
    }
    assert!(messages.iter().any(|m| m == "listening"), "{messages:?}");
    assert!(
        messages.iter().any(|m| m.starts_with("shutting down")),
        "{messages:?}"
    );
}

#[test]
fn an_invalid_log_filter_is_an_error() {
    let scratch = Scratch::new("log-filter");
    let (config, _) = imap_config(&scratch);
    let cases = [
        (
            command(&["--log", "mailgate=loud", "check-config"], &config),
            "mailgate=loud",
            "--log",
        ),
        (
            {
                let mut cmd = command(&["check-config"], &config);
                cmd.env("MAILGATE_LOG", "info,[");
                cmd
            },
            "info,[",
            "MAILGATE_LOG",
        ),
    ];
    for (mut cmd, filter, origin) in cases {
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{filter}: accepted\n{stderr}");
        assert!(stderr.contains("invalid log filter"), "{stderr}");
        assert!(
            stderr.contains(filter) && stderr.contains(origin),
            "{stderr}"
        );
        assert!(out.stdout.is_empty(), "check-config ran: {:?}", out.stdout);
    }
}
