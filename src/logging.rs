//! Log set-up. Filters come from `--log` or `MAILGATE_LOG` (EnvFilter
//! syntax); the default keeps dependencies quiet. A filter that does not
//! parse is an error: falling back to another level would hide exactly the
//! lines the admin asked for. Colour codes only reach a terminal, so a
//! journal or a file never holds escape sequences; `--log-format json`
//! writes one object per line for log shippers.
//!
//! Nothing here can make a secret printable: secrets are `Secret<T>` and
//! redact themselves.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub const LOG_ENV: &str = "MAILGATE_LOG";

/// The filter when neither `--log` nor `MAILGATE_LOG` gives one.
const DEFAULT_FILTER: &str = "info";

/// How each event is written to standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(
        "invalid log filter {filter:?} (from {origin}): {reason}; \
         use tracing EnvFilter syntax, e.g. \"info\" or \"mailgate=debug,info\""
    )]
    Filter {
        filter: String,
        origin: &'static str,
        reason: String,
    },
}

/// Installs the global subscriber; `filter` is `--log`, which overrides
/// [`LOG_ENV`].
pub fn init(filter: Option<&str>, format: LogFormat) -> Result<(), LogError> {
    let mut filter = parse_filter(filter, std::env::var(LOG_ENV).ok())?;
    if let Ok(quiet) = QUIET_DATABASE_CLIENT.parse() {
        filter = filter.add_directive(quiet);
    }
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
    Ok(())
}

/// The flag's filter, else the environment's, else [`DEFAULT_FILTER`].
fn parse_filter(flag: Option<&str>, env: Option<String>) -> Result<EnvFilter, LogError> {
    let (filter, origin) = match (flag, env) {
        (Some(f), _) => (f.to_owned(), "--log"),
        (None, Some(e)) => (e, LOG_ENV),
        (None, None) => (DEFAULT_FILTER.to_owned(), "the default"),
    };
    EnvFilter::try_new(&filter).map_err(|e| LogError::Filter {
        reason: e.to_string(),
        filter,
        origin,
    })
}

/// Caps the database client's own logging: it logs every query's
/// parameters at debug, and sealed records and fingerprints have no place
/// in a log at any level.
const QUIET_DATABASE_CLIENT: &str = "tokio_postgres=info";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_over_the_environment() {
        let f = parse_filter(Some("debug"), Some("not a filter".into())).unwrap();
        assert_eq!(f.to_string(), "debug");
        assert_eq!(parse_filter(None, None).unwrap().to_string(), "info");
    }

    #[test]
    fn an_invalid_filter_names_itself_and_its_origin() {
        for (flag, env, origin) in [
            (Some("mailgate=loud"), None, "--log"),
            (None, Some("info,[".to_owned()), LOG_ENV),
        ] {
            let e = parse_filter(flag, env).unwrap_err().to_string();
            assert!(e.contains(origin), "{e}");
            assert!(e.contains("invalid log filter"), "{e}");
        }
    }
}
