//! Log set-up. Filters come from `--log` or `MAILGATE_LOG` (EnvFilter syntax);
//! the default keeps dependencies quiet. Nothing here can make a secret
//! printable: secrets are `Secret<T>` and redact themselves.

use tracing_subscriber::EnvFilter;

pub const LOG_ENV: &str = "MAILGATE_LOG";

pub fn init(filter: Option<&str>) {
    let filter = filter
        .map(str::to_owned)
        .or_else(|| std::env::var(LOG_ENV).ok())
        .unwrap_or_else(|| "info".to_owned());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
