//! Raw TOML → validated [`Config`]. Every error names the file, the line of the
//! table it concerns, the key, and what to write instead.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::raw::{RawAccount, RawConfig, RawListener, RawProvider, RawUpstream};
use super::{
    AccountKind, AccountRule, Cloud, Config, Limits, Listener, LocalTls, Network, Provider,
    Upstream, UpstreamTls, default_state_dir,
};
use crate::proto::ClientLimits;
use crate::token::Protocol;

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

    fn err(
        &self,
        offset: usize,
        key: String,
        problem: impl Into<String>,
        fix: &str,
    ) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_owned(),
            line: self.line_of(offset),
            key,
            problem: problem.into(),
            fix: fix.to_owned(),
        }
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
}

/// Parses and validates config text. `file` is used in messages, `base` to
/// resolve relative paths.
pub fn parse(text: &str, file: &str, base: &Path) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        file: file.to_owned(),
        message: e.to_string(),
    })?;
    let cx = Ctx { file, text, base };
    let providers = raw
        .providers
        .iter()
        .enumerate()
        .map(|(i, p)| provider(&cx, i, p))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, p) in providers.iter().enumerate() {
        if providers[..i].iter().any(|q| q.name == p.name) {
            let at = raw.providers[i].span().start;
            return Err(cx.err(
                at,
                format!("providers[{i}].name"),
                format!("duplicate provider name {:?}", p.name),
                "give every provider a different name",
            ));
        }
    }
    let listeners = raw
        .listeners
        .iter()
        .enumerate()
        .map(|(i, l)| listener(&cx, i, l, &providers))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, l) in listeners.iter().enumerate() {
        if listeners[..i].iter().any(|m| m.bind == l.bind) {
            let at = raw.listeners[i].span().start;
            return Err(cx.err(
                at,
                format!("listeners[{i}].bind"),
                format!("{} is bound twice", l.bind),
                "give every listener its own address or port",
            ));
        }
    }
    let accounts = raw
        .accounts
        .iter()
        .enumerate()
        .map(|(i, a)| account(&cx, i, a, &providers))
        .collect::<Result<Vec<_>, _>>()?;
    let state_dir = match (std::env::var_os(super::STATE_DIR_ENV), raw.state_dir) {
        (Some(env), _) => PathBuf::from(env),
        (None, Some(dir)) => cx.path(&dir),
        (None, None) => default_state_dir(),
    };
    Ok(Config {
        state_dir,
        hostname: raw.hostname.unwrap_or_else(|| "mailgate".to_owned()),
        limits: limits(&raw.limits),
        providers,
        listeners,
        accounts,
    })
}

fn limits(raw: &super::raw::RawLimits) -> Limits {
    let d = Limits::default();
    let secs = |v: Option<u64>, default: Duration| v.map(Duration::from_secs).unwrap_or(default);
    Limits {
        max_connections: raw.max_connections.unwrap_or(d.max_connections),
        max_connections_per_ip: raw
            .max_connections_per_ip
            .unwrap_or(d.max_connections_per_ip),
        client: ClientLimits {
            max_line: raw.max_line.unwrap_or(d.client.max_line),
            max_literal: raw.max_literal.unwrap_or(d.client.max_literal),
            max_commands: raw.max_commands.unwrap_or(d.client.max_commands),
            max_auth_failures: raw.max_auth_failures.unwrap_or(d.client.max_auth_failures),
        },
        tls_handshake_timeout: secs(raw.tls_handshake_timeout_secs, d.tls_handshake_timeout),
        preauth_timeout: secs(raw.preauth_timeout_secs, d.preauth_timeout),
        upstream_connect_timeout: secs(
            raw.upstream_connect_timeout_secs,
            d.upstream_connect_timeout,
        ),
        upstream_login_timeout: secs(raw.upstream_login_timeout_secs, d.upstream_login_timeout),
        relay_idle_timeout: secs(raw.relay_idle_timeout_secs, d.relay_idle_timeout),
        shutdown_grace: secs(raw.shutdown_grace_secs, d.shutdown_grace),
    }
}

const MS_SCOPES: [&str; 3] = ["IMAP.AccessAsUser.All", "POP.AccessAsUser.All", "SMTP.Send"];

fn provider(cx: &Ctx, i: usize, sp: &Spanned<RawProvider>) -> Result<Provider, ConfigError> {
    let at = sp.span().start;
    let p = sp.get_ref();
    let key = |k: &str| format!("providers[{i}].{k}");
    let (authority, resource) = match p.kind.as_str() {
        "microsoft" => {
            let cloud = match p.cloud.as_deref().unwrap_or("global") {
                "global" => Cloud::Global,
                "us-government" => Cloud::UsGovernment,
                "china" => Cloud::China,
                other => {
                    return Err(cx.err(
                        at,
                        key("cloud"),
                        format!("unknown cloud {other:?}"),
                        "use \"global\", \"us-government\" or \"china\"",
                    ));
                }
            };
            let (login, mail) = match cloud {
                Cloud::Global => (
                    "https://login.microsoftonline.com",
                    "https://outlook.office.com",
                ),
                Cloud::UsGovernment => (
                    "https://login.microsoftonline.us",
                    "https://outlook.office365.us",
                ),
                Cloud::China => (
                    "https://login.partner.microsoftonline.cn",
                    "https://partner.outlook.cn",
                ),
            };
            let tenant = p.tenant.as_deref().unwrap_or("organizations");
            if tenant.is_empty() || tenant.contains(['/', '?', '#', ' ']) {
                return Err(cx.err(
                    at,
                    key("tenant"),
                    format!("{tenant:?} is not a tenant"),
                    "use organizations, common, consumers, a tenant id or a domain",
                ));
            }
            let authority = p.authority.clone().unwrap_or_else(|| login.to_owned());
            (
                Some(format!(
                    "{}/{tenant}/oauth2/v2.0",
                    authority.trim_end_matches('/')
                )),
                Some(mail),
            )
        }
        "generic" => (None, None),
        other => {
            return Err(cx.err(
                at,
                key("kind"),
                format!("unknown provider kind {other:?}"),
                "use \"microsoft\" or \"generic\"",
            ));
        }
    };
    let url = |given: &Option<String>, suffix: &str, k: &str| -> Result<String, ConfigError> {
        let u = match (given, &authority) {
            (Some(u), _) => u.clone(),
            (None, Some(a)) => format!("{a}/{suffix}"),
            (None, None) => {
                return Err(cx.err(
                    at,
                    key(k),
                    "missing for a generic provider",
                    "give the full https:// URL",
                ));
            }
        };
        if !(u.starts_with("https://")
            || u.starts_with("http://127.")
            || u.starts_with("http://localhost"))
        {
            return Err(cx.err(
                at,
                key(k),
                format!("{u:?} is not an https URL"),
                "use https:// (plain http only for 127.0.0.1 test providers)",
            ));
        }
        Ok(u)
    };
    let scopes = match (&p.scopes, resource) {
        (Some(s), _) => s.clone(),
        (None, Some(r)) => MS_SCOPES
            .iter()
            .map(|s| format!("{r}/{s}"))
            .chain(["offline_access".to_owned()])
            .collect(),
        (None, None) => {
            return Err(cx.err(
                at,
                key("scopes"),
                "missing for a generic provider",
                "list the scopes, including offline_access if the provider needs it",
            ));
        }
    };
    let app_scopes = match (&p.app_scopes, resource) {
        (Some(s), _) => s.clone(),
        (None, Some(r)) => vec![format!(
            "{}/.default",
            r.replace("outlook.office.com", "outlook.office365.com")
        )],
        (None, None) => Vec::new(),
    };
    if p.client_id.trim().is_empty() {
        return Err(cx.err(
            at,
            key("client_id"),
            "is empty",
            "set the application (client) id of your app registration",
        ));
    }
    if p.client_certificate.is_some() != p.client_key.is_some() {
        return Err(cx.err(
            at,
            key("client_certificate"),
            "client_certificate and client_key go together",
            "give both PEM files, or neither",
        ));
    }
    Ok(Provider {
        name: p.name.clone(),
        client_id: p.client_id.clone(),
        client_secret: p.client_secret.clone(),
        client_certificate: p.client_certificate.as_deref().map(|c| cx.path(c)),
        client_key: p.client_key.as_deref().map(|c| cx.path(c)),
        authorize_url: url(&p.authorize_url, "authorize", "authorize_url")?,
        token_url: url(&p.token_url, "token", "token_url")?,
        device_code_url: url(&p.device_code_url, "devicecode", "device_code_url")?,
        scopes,
        app_scopes,
        redirect_port: p.redirect_port.unwrap_or(0),
        refresh_margin: Duration::from_secs(p.refresh_margin_secs.unwrap_or(15 * 60)),
        keep_warm_interval: Duration::from_secs(p.keep_warm_interval_secs.unwrap_or(24 * 3600)),
        machine_key_wrap: p.machine_key_wrap.unwrap_or(false),
    })
}

fn listener(
    cx: &Ctx,
    i: usize,
    sp: &Spanned<RawListener>,
    providers: &[Provider],
) -> Result<Listener, ConfigError> {
    let at = sp.span().start;
    let l = sp.get_ref();
    let key = |k: &str| format!("listeners[{i}].{k}");
    let protocol = match l.protocol.as_str() {
        "imap" => Protocol::Imap,
        "pop3" => Protocol::Pop3,
        "smtp" => Protocol::Smtp,
        other => {
            return Err(cx.err(
                at,
                key("protocol"),
                format!("unknown protocol {other:?}"),
                "use \"imap\", \"pop3\" or \"smtp\"",
            ));
        }
    };
    let bind: SocketAddr = l.bind.parse().map_err(|_| {
        cx.err(
            at,
            key("bind"),
            format!("{:?} is not an address:port", l.bind),
            "write e.g. \"127.0.0.1:1143\" or \"[::1]:1143\"",
        )
    })?;
    let tls = match l.tls.as_deref().unwrap_or("none") {
        "none" => LocalTls::None,
        "starttls" => LocalTls::StartTls,
        "implicit" => LocalTls::Implicit,
        other => {
            return Err(cx.err(
                at,
                key("tls"),
                format!("unknown TLS mode {other:?}"),
                "use \"none\", \"starttls\" or \"implicit\"",
            ));
        }
    };
    let cert = match (&l.cert, &l.key) {
        (Some(c), Some(k)) => Some((cx.path(c), cx.path(k))),
        (None, None) => None,
        _ => {
            return Err(cx.err(
                at,
                key("cert"),
                "cert and key go together",
                "give both PEM files, or neither to have one generated",
            ));
        }
    };
    let provider = match (&l.provider, providers) {
        (Some(p), _) if providers.iter().any(|q| &q.name == p) => p.clone(),
        (Some(p), _) => {
            return Err(cx.err(
                at,
                key("provider"),
                format!("no provider named {p:?}"),
                "name one of the [[providers]] entries",
            ));
        }
        (None, [only]) => only.name.clone(),
        (None, _) => {
            return Err(cx.err(
                at,
                key("provider"),
                "missing",
                "name the [[providers]] entry this listener serves",
            ));
        }
    };
    let allow_plaintext_auth = l.allow_plaintext_auth.unwrap_or(false);
    if tls == LocalTls::None && !bind.ip().is_loopback() && !allow_plaintext_auth {
        return Err(cx.err(at, key("tls"), format!("{bind} is reachable from the network but has no TLS, so passwords would cross it in clear"), "set tls = \"starttls\" or \"implicit\", bind to 127.0.0.1, or set allow_plaintext_auth = true"));
    }
    let allowed_networks = l
        .allowed_networks
        .iter()
        .flatten()
        .map(|n| {
            network(n).ok_or_else(|| {
                cx.err(
                    at,
                    key("allowed_networks"),
                    format!("{n:?} is not a network"),
                    "write CIDR, e.g. \"192.168.1.0/24\" or \"fd00::/8\"",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let default_cap = if protocol == Protocol::Smtp { 3 } else { 16 };
    Ok(Listener {
        name: l
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", l.protocol, bind.port())),
        protocol,
        bind,
        tls,
        cert,
        provider,
        allow_plaintext_auth,
        allowed_networks,
        max_upstream_per_mailbox: l.max_upstream_per_mailbox.unwrap_or(default_cap),
        upstream: upstream(cx, at, i, &l.upstream)?,
    })
}

fn upstream(cx: &Ctx, at: usize, i: usize, u: &RawUpstream) -> Result<Upstream, ConfigError> {
    let key = |k: &str| format!("listeners[{i}].upstream.{k}");
    let tls = match u.tls.as_str() {
        "implicit" => UpstreamTls::Implicit,
        "starttls" => UpstreamTls::StartTls,
        "none" => UpstreamTls::None,
        other => {
            return Err(cx.err(
                at,
                key("tls"),
                format!("unknown upstream TLS mode {other:?}"),
                "use \"implicit\" or \"starttls\"",
            ));
        }
    };
    if tls == UpstreamTls::None && !is_loopback_host(&u.host) {
        return Err(cx.err(
            at,
            key("tls"),
            "tokens would cross the network in clear",
            "use \"implicit\" or \"starttls\"; \"none\" is only for 127.0.0.1 test servers",
        ));
    }
    if u.host.is_empty() || u.port == 0 {
        return Err(cx.err(
            at,
            key("host"),
            "host and port are required",
            "write e.g. host = \"outlook.office365.com\", port = 993",
        ));
    }
    Ok(Upstream {
        host: u.host.clone(),
        port: u.port,
        tls,
        server_name: u.server_name.clone().unwrap_or_else(|| u.host.clone()),
        ca_file: u.ca_file.as_deref().map(|c| cx.path(c)),
    })
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn network(text: &str) -> Option<Network> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a.parse().ok()?, p.parse().ok()?),
        None => {
            let a: std::net::IpAddr = text.parse().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if matches!(addr, std::net::IpAddr::V4(_)) {
        32
    } else {
        128
    };
    (prefix <= max).then_some(Network { addr, prefix })
}

fn account(
    cx: &Ctx,
    i: usize,
    sp: &Spanned<RawAccount>,
    providers: &[Provider],
) -> Result<AccountRule, ConfigError> {
    let at = sp.span().start;
    let a = sp.get_ref();
    let key = |k: &str| format!("accounts[{i}].{k}");
    if let Some(p) = &a.provider
        && !providers.iter().any(|q| &q.name == p)
    {
        return Err(cx.err(
            at,
            key("provider"),
            format!("no provider named {p:?}"),
            "name one of the [[providers]] entries",
        ));
    }
    let kind = match a.kind.as_str() {
        "app-only" => {
            let Some(hash) = &a.password_hash else {
                return Err(cx.err(
                    at,
                    key("password_hash"),
                    "missing",
                    "run `mailgate hash-password` and paste the $argon2id$ string",
                ));
            };
            if !hash.starts_with("$argon2id$")
                || argon2::password_hash::PasswordHash::new(hash).is_err()
            {
                return Err(cx.err(at, key("password_hash"), "is not an Argon2id PHC string", "run `mailgate hash-password` and paste the $argon2id$ string; never a plain password"));
            }
            AccountKind::AppOnly {
                password_hash: hash.clone(),
                mailbox: a.mailbox.clone(),
            }
        }
        "shared" => match &a.delegate {
            Some(d) => AccountKind::Shared {
                delegate: d.clone(),
            },
            None => {
                return Err(cx.err(
                    at,
                    key("delegate"),
                    "missing",
                    "name the enrolled account whose token opens this shared mailbox",
                ));
            }
        },
        other => {
            return Err(cx.err(
                at,
                key("kind"),
                format!("unknown account kind {other:?}"),
                "use \"app-only\" or \"shared\"",
            ));
        }
    };
    if a.login.is_empty() {
        return Err(cx.err(
            at,
            key("login"),
            "is empty",
            "write a login name or *@domain",
        ));
    }
    Ok(AccountRule {
        login: a.login.clone(),
        provider: a.provider.clone(),
        kind,
    })
}
