//! `tls_min_version` and `tls13_tickets`: legacy TLS is an explicit opt-in
//! per listener, needs local TLS, and exists only in `legacy-tls` builds.

use std::path::Path;

use crate::config::{Config, TlsMinVersion, parse};

const PROVIDER: &str = "[[providers]]\nname=\"m\"\nkind=\"microsoft\"\nclient_id=\"c\"\n";

fn listener(tls: &str, extra: &str) -> String {
    format!(
        "{PROVIDER}[[listeners]]\nname = \"l\"\nprotocol = \"smtp\"\nbind = \"127.0.0.1:1587\"\n\
         tls = \"{tls}\"\n{extra}\nupstream = {{ host = \"smtp.example\", port = 587, tls = \"starttls\" }}\n"
    )
}

fn load(text: &str) -> Result<Config, String> {
    parse(text, "t.toml", Path::new("/etc/mailgate")).map_err(|e| e.to_string())
}

#[test]
fn defaults_are_tls12_without_tickets_and_no_warning() {
    let c = load(&listener("starttls", "")).unwrap();
    let l = &c.listeners[0];
    assert_eq!(l.tls_min_version, TlsMinVersion::Tls12);
    assert!(!l.tls13_tickets);
    assert!(!l.accepts_legacy_tls());
    assert!(c.warnings().is_empty());
    let c = load(&listener("implicit", "tls13_tickets = true")).unwrap();
    assert!(c.listeners[0].tls13_tickets);
}

#[test]
fn unknown_version_and_legacy_without_tls_are_refused() {
    let e = load(&listener("starttls", "tls_min_version = \"1.3\"")).unwrap_err();
    assert!(
        e.contains("listeners[0].tls_min_version") && e.contains("unknown TLS version"),
        "{e}"
    );
    let e = load(&listener("none", "tls_min_version = \"1.0\"")).unwrap_err();
    assert!(
        e.contains("listeners[0].tls_min_version") && e.contains("no TLS"),
        "{e}"
    );
}

#[cfg(feature = "legacy-tls")]
#[test]
fn legacy_versions_are_accepted_and_warned_about() {
    for (text, version) in [("1.0", TlsMinVersion::Tls10), ("1.1", TlsMinVersion::Tls11)] {
        let extra = format!("tls_min_version = \"{text}\"");
        let c = load(&listener("starttls", &extra)).unwrap();
        assert_eq!(c.listeners[0].tls_min_version, version);
        assert!(c.listeners[0].accepts_legacy_tls());
        let warnings = c.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("listener l") && warnings[0].contains(&format!("TLS {text}")),
            "{warnings:?}"
        );
    }
}

#[cfg(not(feature = "legacy-tls"))]
#[test]
fn legacy_versions_need_the_feature() {
    let e = load(&listener("implicit", "tls_min_version = \"1.0\"")).unwrap_err();
    assert!(
        e.contains("listeners[0].tls_min_version") && e.contains("--features legacy-tls"),
        "{e}"
    );
}
