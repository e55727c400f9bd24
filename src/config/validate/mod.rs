//! Raw TOML → validated [`Config`]. Every error names the file, the line of the
//! table it concerns, the key, and what to write instead.

mod account;
mod listener;
mod provider;

use std::path::{Path, PathBuf};
use std::time::Duration;

use account::account;
use listener::listener;
use provider::provider;

use super::raw::RawConfig;
use super::{Config, Limits, default_state_dir};
use crate::proto::ClientLimits;

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
