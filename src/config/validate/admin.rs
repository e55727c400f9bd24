//! `[admin]`: health, readiness and metrics say how the proxy runs, and the
//! later console pages act on it, so the listener answers in clear only on
//! loopback. A bind anywhere else needs TLS (configured files or the
//! generated local certificate), and may be narrowed to networks.

use std::net::SocketAddr;

use super::Entry;
use super::listener::networks;
use crate::config::Admin;
use crate::config::raw::RawAdmin;
use crate::config::validate::ConfigError;

pub(super) fn admin(e: &Entry<'_>, a: &RawAdmin) -> Result<Admin, ConfigError> {
    let bind: SocketAddr = a.bind.parse().map_err(|_| {
        e.err(
            "bind",
            format!("{:?} is not an address:port", a.bind),
            "write e.g. \"127.0.0.1:8025\"",
        )
    })?;
    let loopback = bind.ip().is_loopback();
    let tls = match a.tls.as_deref() {
        None => !loopback,
        Some("tls") => true,
        Some("none") if loopback => false,
        Some("none") => {
            return Err(e.err(
                "tls",
                format!("{bind} is reachable from the network but has no TLS"),
                "set tls = \"tls\" (with cert and key, or none to have one generated), or bind to 127.0.0.1",
            ));
        }
        Some(other) => {
            return Err(e.err(
                "tls",
                format!("unknown admin TLS mode {other:?}"),
                "use \"tls\", or \"none\" on a loopback address",
            ));
        }
    };
    let cert = e.cert_pair(a.cert.as_deref(), a.key.as_deref())?;
    if cert.is_some() && !tls {
        return Err(e.err(
            "cert",
            "a certificate is given but tls = \"none\"",
            "set tls = \"tls\", or remove cert and key",
        ));
    }
    Ok(Admin {
        bind,
        tls,
        cert,
        allowed_networks: networks(
            e,
            "allowed_networks",
            a.allowed_networks.as_deref().unwrap_or_default(),
        )?,
        per_account_metrics: a.per_account_metrics.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::parse;

    const BASE: &str = "[[providers]]\nname=\"m\"\nkind=\"microsoft\"\nclient_id=\"c\"\n[[listeners]]\nprotocol = \"imap\"\nbind = \"127.0.0.1:1143\"\nupstream = { host = \"outlook.office365.com\", port = 993, tls = \"implicit\" }\n";

    fn with(admin: &str) -> Result<crate::config::Config, String> {
        parse(
            &format!("{BASE}{admin}"),
            "t.toml",
            Path::new("/etc/mailgate"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn loopback_defaults_to_clear_and_elsewhere_to_tls() {
        assert_eq!(with("").unwrap().admin, None);
        let a = with("[admin]\nbind = \"127.0.0.1:8025\"\n")
            .unwrap()
            .admin
            .unwrap();
        assert!(!a.tls && !a.per_account_metrics && a.allowed_networks.is_empty());
        let a = with("[admin]\nbind = \"0.0.0.0:8025\"\nallowed_networks = [\"10.0.0.0/8\"]\n")
            .unwrap()
            .admin
            .unwrap();
        assert!(a.tls);
        assert!(a.admits("10.1.2.3".parse().unwrap()));
        assert!(!a.admits("192.168.1.1".parse().unwrap()));
    }

    #[test]
    fn refuses_clear_text_off_loopback_and_names_line_key_fix() {
        let e = with("[admin]\nbind = \"0.0.0.0:8025\"\ntls = \"none\"\n").unwrap_err();
        assert!(e.starts_with("t.toml:9: admin.tls: "), "{e}");
        assert!(
            e.contains("reachable from the network") && e.contains("bind to 127.0.0.1"),
            "{e}"
        );
        let e = with("[admin]\nbind = \"127.0.0.1:1143\"\n").unwrap_err();
        assert!(e.contains("admin.bind") && e.contains("own port"), "{e}");
        let e = with("[admin]\nbind = \"127.0.0.1:8025\"\ncert = \"a.pem\"\n").unwrap_err();
        assert!(e.contains("admin.cert"), "{e}");
        let e = with("[admin]\nbind = \"127.0.0.1:8025\"\ntls = \"maybe\"\n").unwrap_err();
        assert!(e.contains("admin.tls") && e.contains("unknown"), "{e}");
    }
}
