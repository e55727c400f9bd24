//! `mailgate serve`: start listeners and run until a signal.

use std::path::PathBuf;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("serve is not wired yet")]
    Unavailable,
}

pub async fn run(_config: Config, _path: PathBuf) -> Result<(), ServeError> {
    Err(ServeError::Unavailable)
}
