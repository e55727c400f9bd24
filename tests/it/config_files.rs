//! Every shipped config parses, and `check-config` explains a broken one with
//! the file, line, key and fix, exiting non-zero.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mailgate");

#[test]
fn every_shipped_config_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = mailgate::config::Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!config.listeners.is_empty(), "{}", path.display());
            seen += 1;
        }
    }
    assert!(
        seen >= 2,
        "expected config/mailgate.toml and config/reference.toml"
    );
}

#[test]
fn shipped_microsoft_config_points_at_exchange_online() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mailgate.toml");
    let config = mailgate::config::Config::load(&path).unwrap();
    let ups: Vec<_> = config
        .listeners
        .iter()
        .map(|l| {
            (
                l.bind.to_string(),
                l.upstream.host.as_str(),
                l.upstream.port,
            )
        })
        .collect();
    assert_eq!(
        ups,
        [
            ("127.0.0.1:1143".to_owned(), "outlook.office365.com", 993),
            ("127.0.0.1:1110".to_owned(), "outlook.office365.com", 995),
            ("127.0.0.1:1587".to_owned(), "smtp.office365.com", 587),
        ]
    );
    let p = &config.providers[0];
    assert_eq!(
        p.token_url,
        "https://login.microsoftonline.com/organizations/oauth2/v2.0/token"
    );
    assert!(p.scopes.iter().any(|s| s == "offline_access"));
}

#[test]
fn check_config_names_file_line_key_and_fix() {
    let dir = crate::support::scratch::temp_dir("check-config");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[[providers]]\nname = \"m\"\nkind = \"microsoft\"\nclient_id = \"x\"\n\n[[listeners]]\nprotocol = \"imap\"\nbind = \"0.0.0.0:143\"\nupstream = { host = \"outlook.office365.com\", port = 993, tls = \"implicit\" }\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:6")
            && err.contains("listeners[0].tls")
            && err.contains("set tls = \"starttls\""),
        "{err}"
    );

    std::fs::write(&path, "[[listeners]]\nprotocl = \"imap\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("protocl") && err.contains("line 2"),
        "unknown keys are named with their line: {err}"
    );

    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mailgate.toml");
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn help_is_available_for_every_command() {
    for cmd in [
        "serve",
        "check-config",
        "login",
        "accounts",
        "logout",
        "hash-password",
    ] {
        let out = Command::new(BIN).args([cmd, "--help"]).output().unwrap();
        assert!(out.status.success(), "{cmd} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{cmd}"
        );
    }
}
