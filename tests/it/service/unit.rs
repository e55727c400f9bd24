//! dist/systemd/mailgate.service passes `systemd-analyze verify`. verify
//! checks that the commands exist, so the copy it reads runs the binary
//! under test instead of /usr/local/bin/mailgate.

use std::process::Command;

use super::repo;
use crate::support::scratch::Scratch;

const INSTALLED_BINARY: &str = "/usr/local/bin/mailgate";

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!(
            "SKIPPED: systemd-analyze cannot run here; scripts/install-test-deps.sh installs it"
        );
        return;
    };
    assert!(version.status.success(), "systemd-analyze --version failed");
    let unit = std::fs::read_to_string(repo().join("dist/systemd/mailgate.service")).unwrap();
    for key in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "StateDirectory=mailgate",
        "Environment=MAILGATE_STATE_DIR=%S/mailgate",
        "User=mailgate",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    ] {
        assert!(unit.contains(key), "the unit lacks {key}");
    }
    assert!(unit.contains(INSTALLED_BINARY));
    let scratch = Scratch::new("unit");
    let copy = scratch.dir.join("mailgate.service");
    std::fs::write(
        &copy,
        unit.replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_mailgate")),
    )
    .unwrap();
    let out = Command::new("timeout")
        .args(["60", "systemd-analyze", "verify"])
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    assert!(
        !stderr.contains("mailgate.service"),
        "systemd-analyze verify complains: {stderr}"
    );
}
