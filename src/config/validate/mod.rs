//! Raw TOML → validated [`Config`]. Every error names the file, the line of the
//! table it concerns, the key, and what to write instead.

mod account;
mod admin;
mod store;
mod limits;
mod listener;
mod provider;

pub use provider::{PLACEHOLDER_CLIENT_ID, unregistered_app};

use std::path::{Path, PathBuf};
use toml::Spanned;

use account::account;
use listener::listener;
use provider::provider;

use super::raw::RawConfig;
use super::{Config, Provider, StoreSettings, default_state_dir};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}:{line}: {key}: {problem}; {fix}")]
    Invalid {
        file: String,
        line: usize,
        key: String,
        problem: String,
        fix: String,
    },
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    base: &'a Path,
}

impl Ctx<'_> {
    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    /// Relative paths in the config are relative to the config file.
    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base.join(p)
        }
    }

    /// Validates every entry of a `[[table]]` array with `check`.
    fn each<R, T>(
        &self,
        table: &str,
        raw: &[Spanned<R>],
        mut check: impl FnMut(&Entry<'_>, &R) -> Result<T, ConfigError>,
    ) -> Result<Vec<T>, ConfigError> {
        raw.iter()
            .enumerate()
            .map(|(i, sp)| check(&self.entry(table, i, sp), sp.get_ref()))
            .collect()
    }

    fn entry<R>(&self, table: &str, i: usize, sp: &Spanned<R>) -> Entry<'_> {
        Entry {
            cx: self,
            at: sp.span().start,
            prefix: format!("{table}[{i}]"),
        }
    }
}

/// One `[[table]]` entry being validated: its errors point at the entry's
/// first line and name its keys `table[i].key`.
struct Entry<'a> {
    cx: &'a Ctx<'a>,
    at: usize,
    prefix: String,
}

impl<'a> Entry<'a> {
    fn err(&self, key: &str, problem: impl Into<String>, fix: &str) -> ConfigError {
        ConfigError::Invalid {
            file: self.cx.file.to_owned(),
            line: self.cx.line_of(self.at),
            key: format!("{}.{key}", self.prefix),
            problem: problem.into(),
            fix: fix.to_owned(),
        }
    }

    /// A sub-table (`listeners[0].upstream`) at the same place.
    fn table(&self, name: &str) -> Entry<'a> {
        Entry {
            cx: self.cx,
            at: self.at,
            prefix: format!("{}.{name}", self.prefix),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.cx.path(p)
    }

    /// `cert` and `key`: both (resolved against the config's directory) or
    /// neither (a certificate is generated).
    fn cert_pair(
        &self,
        cert: Option<&str>,
        key: Option<&str>,
    ) -> Result<Option<(PathBuf, PathBuf)>, ConfigError> {
        match (cert, key) {
            (Some(c), Some(k)) => Ok(Some((self.path(c), self.path(k)))),
            (None, None) => Ok(None),
            _ => Err(self.err(
                "cert",
                "cert and key go together",
                "give both PEM files, or neither to have one generated",
            )),
        }
    }

    /// The value of a keyword setting, or "unknown `what`" with the fix.
    fn keyword<T: Copy>(&self, key: &str, value: &str, kw: &Keywords<T>) -> Result<T, ConfigError> {
        kw.choices
            .iter()
            .find(|(name, _)| *name == value)
            .map(|&(_, v)| v)
            .ok_or_else(|| self.err(key, format!("unknown {} {value:?}", kw.what), kw.fix))
    }

    /// `provider = "..."` must name a `[[providers]]` entry.
    fn known_provider(&self, name: &str, providers: &[Provider]) -> Result<(), ConfigError> {
        if providers.iter().any(|q| q.name == name) {
            Ok(())
        } else {
            Err(self.err(
                "provider",
                format!("no provider named {name:?}"),
                "name one of the [[providers]] entries",
            ))
        }
    }
}

/// The spellings a keyword setting accepts. `fix` lists the ones to
/// recommend, which need not be all of them.
struct Keywords<T: 'static> {
    what: &'static str,
    fix: &'static str,
    choices: &'static [(&'static str, T)],
}

/// The index of the first item equal (by `same`) to an earlier one.
fn first_repeat<T>(items: &[T], same: impl Fn(&T, &T) -> bool) -> Option<usize> {
    (0..items.len()).find(|&i| items[..i].iter().any(|q| same(q, &items[i])))
}

/// Parses and validates config text. `file` is used in messages, `base` to
/// resolve relative paths.
pub fn parse(text: &str, file: &str, base: &Path) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        file: file.to_owned(),
        message: e.to_string(),
    })?;
    let cx = Ctx { file, text, base };
    let providers = cx.each("providers", &raw.providers, provider)?;
    if let Some(i) = first_repeat(&providers, |a, b| a.name == b.name) {
        let name = &providers[i].name;
        return Err(cx.entry("providers", i, &raw.providers[i]).err(
            "name",
            format!("duplicate provider name {name:?}"),
            "give every provider a different name",
        ));
    }
    let listeners = cx.each("listeners", &raw.listeners, |e, l| {
        listener(e, l, &providers)
    })?;
    if let Some(i) = first_repeat(&listeners, |a, b| a.bind == b.bind) {
        return Err(cx.entry("listeners", i, &raw.listeners[i]).err(
            "bind",
            format!("{} is bound twice", listeners[i].bind),
            "give every listener its own address or port",
        ));
    }
    let accounts = cx.each("accounts", &raw.accounts, |e, a| account(e, a, &providers))?;
    let state_dir = match (std::env::var_os(super::STATE_DIR_ENV), raw.state_dir) {
        (Some(env), _) => PathBuf::from(env),
        (None, Some(dir)) => cx.path(&dir),
        (None, None) => default_state_dir(),
    };
    let admin = match &raw.admin {
        Some(table) => {
            let e = Entry {
                cx: &cx,
                at: table.span().start,
                prefix: "admin".to_owned(),
            };
            let admin = admin::admin(&e, table.get_ref())?;
            if listeners.iter().any(|l| l.bind == admin.bind) {
                return Err(e.err(
                    "bind",
                    format!("{} is also a mail listener's address", admin.bind),
                    "give the admin listener its own port",
                ));
            }
            Some(admin)
        }
        None => None,
    };
    let store = match &raw.store {
        Some(table) => {
            let e = Entry {
                cx: &cx,
                at: table.span().start,
                prefix: "store".to_owned(),
            };
            store::store(&e, table.get_ref())?
        }
        None => StoreSettings::File,
    };
    Ok(Config {
        admin,
        store,
        state_dir,
        hostname: raw.hostname.unwrap_or_else(|| "mailgate".to_owned()),
        limits: limits::limits(&cx, &raw.limits)?,
        providers,
        listeners,
        accounts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTENER: &str = "[[listeners]]\nprotocol = \"imap\"\nbind = \"127.0.0.1:1143\"\nupstream = { host = \"outlook.office365.us\", port = 993, tls = \"implicit\" }\n";

    fn parse_ok(text: &str) -> Config {
        parse(text, "t.toml", Path::new("/etc/mailgate")).unwrap()
    }

    fn parse_err(text: &str) -> String {
        parse(text, "t.toml", Path::new("/etc/mailgate"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn microsoft_presets_per_cloud_and_tenant() {
        let c = parse_ok(&format!(
            "[[providers]]\nname=\"m\"\nkind=\"microsoft\"\ncloud=\"us-government\"\ntenant=\"contoso.example\"\nclient_id=\"c\"\n{LISTENER}"
        ));
        let p = &c.providers[0];
        assert_eq!(
            p.token_url,
            "https://login.microsoftonline.us/contoso.example/oauth2/v2.0/token"
        );
        assert_eq!(
            p.device_code_url,
            "https://login.microsoftonline.us/contoso.example/oauth2/v2.0/devicecode"
        );
        assert!(
            p.scopes
                .contains(&"https://outlook.office365.us/IMAP.AccessAsUser.All".to_owned())
        );
        assert_eq!(p.app_scopes, ["https://outlook.office365.us/.default"]);
        let c = parse_ok(&format!(
            "[[providers]]\nname=\"m\"\nkind=\"microsoft\"\ncloud=\"china\"\nclient_id=\"c\"\n{LISTENER}"
        ));
        assert_eq!(
            c.providers[0].authorize_url,
            "https://login.partner.microsoftonline.cn/organizations/oauth2/v2.0/authorize"
        );
        let c = parse_ok(&format!(
            "[[providers]]\nname=\"m\"\nkind=\"microsoft\"\ntenant=\"consumers\"\nclient_id=\"c\"\ntoken_url=\"https://proxy.example/token\"\n{LISTENER}"
        ));
        assert_eq!(
            c.providers[0].token_url, "https://proxy.example/token",
            "every endpoint can be overridden"
        );
        assert_eq!(
            c.providers[0].app_scopes,
            ["https://outlook.office365.com/.default"]
        );
    }

    #[test]
    fn errors_name_line_key_and_fix() {
        let text = format!(
            "[[providers]]\nname=\"m\"\nkind=\"microsoft\"\nclient_id=\"c\"\n{LISTENER}{}",
            LISTENER.replace("imap", "nntp").replace("1143", "1144")
        );
        let e = parse_err(&text);
        assert!(
            e.starts_with("t.toml:9: listeners[1].protocol: unknown protocol \"nntp\""),
            "{e}"
        );
        let e = parse_err(&format!(
            "[[providers]]\nname=\"m\"\nkind=\"microsoft\"\nclient_id=\"c\"\n{LISTENER}{LISTENER}"
        ));
        assert!(
            e.contains("listeners[1].bind") && e.contains("bound twice"),
            "{e}"
        );
        let e = parse_err(&format!(
            "[[providers]]\nname=\"m\"\nkind=\"microsoft\"\nclient_id=\"c\"\ntoken_url=\"http://login.example/t\"\n{LISTENER}"
        ));
        assert!(
            e.contains("providers[0].token_url") && e.contains("https"),
            "{e}"
        );
        let e = parse_err(&format!(
            "[[providers]]\nname=\"m\"\nkind=\"microsoft\"\nclient_id=\"c\"\n{}",
            LISTENER.replace(
                "outlook.office365.us\", port = 993, tls = \"implicit\"",
                "mail.example\", port = 143, tls = \"none\""
            )
        ));
        assert!(e.contains("upstream.tls") && e.contains("in clear"), "{e}");
        let e = parse_err(&format!(
            "[[providers]]\nname=\"m\"\nkind=\"microsoft\"\nclient_id=\"c\"\n{LISTENER}[[accounts]]\nlogin=\"*@x\"\nkind=\"app-only\"\npassword_hash=\"hunter2\"\n"
        ));
        assert!(
            e.contains("accounts[0].password_hash") && !e.contains("hunter2"),
            "the bad value (maybe a password) is not echoed: {e}"
        );
    }

    #[test]
    fn debug_of_config_never_shows_the_client_secret() {
        let text = format!(
            "[[providers]]\nname=\"m\"\nkind=\"microsoft\"\nclient_id=\"c\"\nclient_secret=\"cs-7Q~very-secret\"\n{LISTENER}"
        );
        let c = parse_ok(&text);
        assert_eq!(
            c.providers[0]
                .client_secret
                .as_ref()
                .map(|s| s.expose().as_str()),
            Some("cs-7Q~very-secret")
        );
        assert!(!format!("{c:?}").contains("very-secret"), "{c:?}");
        let raw: RawConfig = toml::from_str(&text).unwrap();
        assert!(!format!("{raw:?}").contains("very-secret"), "{raw:?}");
    }

    #[test]
    fn networks_and_account_rules_match() {
        let c = parse_ok(&format!(
            "[[providers]]\nname=\"m\"\nkind=\"microsoft\"\nclient_id=\"c\"\n{}allowed_networks = [\"192.168.1.0/24\", \"fd00::/8\", \"10.1.2.3\"]\n[[accounts]]\nlogin=\"*@Archive.example\"\nkind=\"shared\"\ndelegate=\"a@x\"\n",
            LISTENER
                .replace("127.0.0.1:1143", "0.0.0.0:993")
                .replace("bind =", "tls = \"implicit\"\nbind =")
        ));
        let l = &c.listeners[0];
        for (ip, ok) in [
            ("192.168.1.77", true),
            ("192.168.2.1", false),
            ("::ffff:192.168.1.5", true),
            ("fd12::1", true),
            ("fe80::1", false),
            ("10.1.2.3", true),
            ("10.1.2.4", false),
        ] {
            assert_eq!(l.admits(ip.parse().unwrap()), ok, "{ip}");
        }
        let name = |s: &str| crate::base::AccountName::parse(s).unwrap();
        assert!(c.accounts[0].matches(&name("journal@archive.EXAMPLE")));
        assert!(!c.accounts[0].matches(&name("journal@archive.example.evil")));
        assert!(!l.plaintext_auth_ok("192.168.1.77".parse().unwrap()));
        assert!(l.plaintext_auth_ok("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn proxy_protocol_from_lists_balancers() {
        let provider = "[[providers]]\nname=\"m\"\nkind=\"microsoft\"\nclient_id=\"c\"\n";
        let c = parse_ok(&format!("{provider}{LISTENER}"));
        assert!(
            c.listeners[0].proxy_protocol_from.is_empty(),
            "off by default"
        );
        assert!(!c.listeners[0].expects_proxy_header("127.0.0.1".parse().unwrap()));
        let c = parse_ok(&format!(
            "{provider}{LISTENER}proxy_protocol_from = [\"10.0.0.5\", \"192.168.1.0/24\", \"127.0.0.1\"]\n"
        ));
        let l = &c.listeners[0];
        for (ip, listed) in [
            ("10.0.0.5", true),
            ("10.0.0.6", false),
            ("192.168.1.200", true),
            ("127.0.0.1", true),
            ("127.0.0.2", false),
        ] {
            assert_eq!(l.expects_proxy_header(ip.parse().unwrap()), listed, "{ip}");
        }
        let e = parse_err(&format!(
            "{provider}{LISTENER}proxy_protocol_from = [\"lb.example\"]\n"
        ));
        assert!(
            e.contains("proxy_protocol_from") && e.contains("CIDR"),
            "{e}"
        );
    }

    #[test]
    fn ipv6_prefix_defaults_to_64_and_is_bounded() {
        let provider = "[[providers]]\nname=\"m\"\nkind=\"microsoft\"\nclient_id=\"c\"\n";
        let with = |limits: &str| format!("{limits}{provider}{LISTENER}");
        assert_eq!(parse_ok(&with("")).limits.ipv6_prefix, 64);
        let c = parse_ok(&with("[limits]\nipv6_prefix = 56\n"));
        assert_eq!(c.limits.ipv6_prefix, 56);
        for bad in [0, 8, 129] {
            let e = parse_err(&with(&format!("[limits]\nipv6_prefix = {bad}\n")));
            assert!(e.starts_with("t.toml:2: limits.ipv6_prefix: "), "{e}");
        }
    }
}

#[cfg(test)]
#[path = "url_tests.rs"]
mod url_tests;
