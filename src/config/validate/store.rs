//! `[store]`: the file store needs nothing; the shared PostgreSQL store needs
//! an address, a password kept out of the config file (the file is often
//! world-readable, the database holds every sealed record), and a TLS mode
//! that says outright whether the server's certificate is checked.

use std::time::Duration;

use super::Entry;
use crate::config::raw::RawStore;
use crate::config::validate::ConfigError;
use crate::config::{PasswordSource, PgTls, Postgres, StoreSettings};

/// Default bound on a connection, a lock or a query.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default and largest pool size.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
const MAX_CONNECTIONS: usize = 1000;
const MAX_TIMEOUT_SECS: u64 = 600;

pub(super) fn store(e: &Entry<'_>, s: &RawStore) -> Result<StoreSettings, ConfigError> {
    match s.kind.as_str() {
        "file" => {
            let extra = [
                ("url", s.url.is_some()),
                ("password_file", s.password_file.is_some()),
                ("password_env", s.password_env.is_some()),
                ("tls", s.tls.is_some()),
                ("ca_file", s.ca_file.is_some()),
            ];
            if let Some((key, _)) = extra.iter().find(|(_, set)| *set) {
                return Err(e.err(
                    key,
                    "only a postgres store takes this setting",
                    "remove it, or set kind = \"postgres\"",
                ));
            }
            Ok(StoreSettings::File)
        }
        "postgres" => postgres(e, s).map(StoreSettings::Postgres),
        other => Err(e.err(
            "kind",
            format!("unknown store kind {other:?}"),
            "use \"file\" (the default) or \"postgres\"",
        )),
    }
}

fn postgres(e: &Entry<'_>, s: &RawStore) -> Result<Postgres, ConfigError> {
    let Some(url) = s.url.clone() else {
        return Err(e.err(
            "url",
            "a postgres store needs a url",
            "write e.g. url = \"postgres://mailgate@db.example:5432/mailgate\"",
        ));
    };
    let parsed: tokio_postgres::Config = url.parse().map_err(|err| {
        e.err(
            "url",
            format!("not a PostgreSQL connection URL ({err})"),
            "write e.g. \"postgres://mailgate@db.example:5432/mailgate\"",
        )
    })?;
    if parsed.get_password().is_some() {
        return Err(e.err(
            "url",
            "the url holds a password",
            "remove it from the url and set password_file or password_env",
        ));
    }
    if parsed.get_hosts().is_empty() || parsed.get_user().is_none() {
        return Err(e.err(
            "url",
            "the url names no host or no user",
            "write e.g. \"postgres://mailgate@db.example:5432/mailgate\"",
        ));
    }
    let password = match (&s.password_file, &s.password_env) {
        (Some(_), Some(_)) => {
            return Err(e.err(
                "password_env",
                "both password_file and password_env are set",
                "keep one of them",
            ));
        }
        (Some(f), None) => Some(PasswordSource::File(e.path(f))),
        (None, Some(v)) => Some(PasswordSource::Env(v.clone())),
        (None, None) => None,
    };
    let tls = match s.tls.as_deref().unwrap_or("verify-full") {
        "disable" => PgTls::Disable,
        "require" => PgTls::Require,
        "verify-full" => PgTls::VerifyFull,
        other => {
            return Err(e.err(
                "tls",
                format!("unknown TLS mode {other:?}"),
                "use \"verify-full\" (the default), \"require\" or \"disable\"",
            ));
        }
    };
    if s.ca_file.is_some() && tls != PgTls::VerifyFull {
        return Err(e.err(
            "ca_file",
            "a CA file is only used with tls = \"verify-full\"",
            "set tls = \"verify-full\", or remove ca_file",
        ));
    }
    let timeout = match s.timeout_secs {
        None => DEFAULT_TIMEOUT,
        Some(n) if (1..=MAX_TIMEOUT_SECS).contains(&n) => Duration::from_secs(n),
        Some(n) => {
            return Err(e.err(
                "timeout_secs",
                format!("{n} is out of range"),
                &format!("use 1 to {MAX_TIMEOUT_SECS}"),
            ));
        }
    };
    let max_connections = match s.max_connections {
        None => DEFAULT_MAX_CONNECTIONS,
        Some(n) if (2..=MAX_CONNECTIONS).contains(&n) => n,
        Some(n) => {
            return Err(e.err(
                "max_connections",
                format!("{n} is out of range"),
                &format!("use 2 to {MAX_CONNECTIONS} (a lease holds one connection)"),
            ));
        }
    };
    Ok(Postgres {
        url,
        password,
        tls,
        ca_file: s.ca_file.as_deref().map(|f| e.path(f)),
        timeout,
        max_connections,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{PasswordSource, PgTls, StoreSettings, parse};

    const BASE: &str = "[[providers]]\nname=\"m\"\nkind=\"microsoft\"\nclient_id=\"c\"\n";

    fn with(store: &str) -> Result<StoreSettings, String> {
        parse(
            &format!("{BASE}{store}"),
            "t.toml",
            Path::new("/etc/mailgate"),
        )
        .map(|c| c.store)
        .map_err(|e| e.to_string())
    }

    #[test]
    fn file_is_the_default_and_postgres_is_validated() {
        assert_eq!(with(""), Ok(StoreSettings::File));
        assert_eq!(with("[store]\nkind = \"file\"\n"), Ok(StoreSettings::File));
        let StoreSettings::Postgres(pg) = with(
            "[store]\nkind = \"postgres\"\nurl = \"postgres://mg@127.0.0.1:5432/mg\"\npassword_file = \"pg.pw\"\nca_file = \"ca.pem\"\n",
        )
        .unwrap() else {
            panic!("not postgres");
        };
        assert_eq!(pg.tls, PgTls::VerifyFull);
        assert_eq!(
            pg.password,
            Some(PasswordSource::File("/etc/mailgate/pg.pw".into()))
        );
        assert_eq!(pg.ca_file, Some("/etc/mailgate/ca.pem".into()));
    }

    #[test]
    fn refusals_name_key_and_fix() {
        let cases = [
            ("kind = \"redis\"", "store.kind"),
            ("kind = \"postgres\"", "store.url"),
            (
                "kind = \"postgres\"\nurl = \"postgres://mg:secret@h/db\"",
                "password_file",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgres://mg@h/db\"\ntls = \"prefer\"",
                "store.tls",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgres://mg@h/db\"\ntls = \"require\"\nca_file = \"c\"",
                "store.ca_file",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgres://mg@h/db\"\npassword_file = \"a\"\npassword_env = \"B\"",
                "store.password_env",
            ),
            ("kind = \"file\"\nurl = \"postgres://mg@h/db\"", "store.url"),
        ];
        for (table, needle) in cases {
            let e = with(&format!("[store]\n{table}\n")).unwrap_err();
            assert!(e.contains(needle), "{table}: {e}");
            assert!(!e.contains("secret"), "{e}");
        }
    }
}
