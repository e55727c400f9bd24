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
        password_hash: password_hash(e, a)?,
        session_idle: seconds(e, "session_idle_secs", a.session_idle_secs, 30 * 60)?,
        session_max: seconds(e, "session_max_secs", a.session_max_secs, 12 * 3600)?,
    })
}

/// `password_hash` or the first line of `password_hash_file`, checked to be
/// an Argon2id PHC string so that a typo shows at start, not at sign-in.
fn password_hash(e: &Entry<'_>, a: &RawAdmin) -> Result<Option<String>, ConfigError> {
    let (key, hash) = match (&a.password_hash, &a.password_hash_file) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(e.err(
                "password_hash_file",
                "both password_hash and password_hash_file are set",
                "keep one of them",
            ));
        }
        (Some(hash), None) => ("password_hash", hash.clone()),
        (None, Some(file)) => {
            let path = e.path(file);
            let text = std::fs::read_to_string(&path).map_err(|error| {
                e.err(
                    "password_hash_file",
                    format!("cannot read {}: {error}", path.display()),
                    "write the output of `mailgate hash-password` into it",
                )
            })?;
            let line = text.lines().next().unwrap_or_default().trim().to_owned();
            ("password_hash_file", line)
        }
    };
    if !hash.starts_with("$argon2id$") || argon2::password_hash::PasswordHash::new(&hash).is_err() {
        return Err(e.err(
            key,
            "not an Argon2id password hash",
            "paste the line `mailgate hash-password` prints (it starts with $argon2id$)",
        ));
    }
    Ok(Some(hash))
}

fn seconds(
    e: &Entry<'_>,
    key: &str,
    value: Option<u64>,
    default: u64,
) -> Result<std::time::Duration, ConfigError> {
    match value.unwrap_or(default) {
        0 => Err(e.err(key, "must be at least 1", "give a number of seconds")),
        s if s > 7 * 24 * 3600 => Err(e.err(key, "longer than a week", "give at most 604800")),
        s => Ok(std::time::Duration::from_secs(s)),
    }
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

    #[test]
    fn the_console_password_must_be_an_argon2id_hash() {
        let a = with("[admin]\nbind = \"127.0.0.1:8025\"\n")
            .unwrap()
            .admin
            .unwrap();
        assert_eq!(a.password_hash, None);
        assert_eq!(a.session_idle.as_secs(), 1800);
        let hash = "$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA";
        let a = with(&format!("[admin]\nbind = \"127.0.0.1:8025\"\npassword_hash = \"{hash}\"\nsession_idle_secs = 5\n"))
            .unwrap()
            .admin
            .unwrap();
        assert_eq!(a.password_hash.as_deref(), Some(hash));
        assert_eq!(a.session_idle.as_secs(), 5);
        let e =
            with("[admin]\nbind = \"127.0.0.1:8025\"\npassword_hash = \"hunter2\"\n").unwrap_err();
        assert!(
            e.contains("admin.password_hash") && e.contains("hash-password"),
            "{e}"
        );
        let e = with("[admin]\nbind = \"127.0.0.1:8025\"\nsession_max_secs = 0\n").unwrap_err();
        assert!(e.contains("admin.session_max_secs"), "{e}");
    }
}
