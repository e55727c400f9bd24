//! `mailgate accounts`, `logout`, `hash-password`.

use std::io::{BufRead, Write};

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("account administration is not available in this build yet")]
    Unavailable,
}

pub fn accounts(_config: &Config, _out: &mut dyn Write) -> Result<(), AdminError> {
    Err(AdminError::Unavailable)
}

pub fn logout(_config: &Config, _account: &str) -> Result<(), AdminError> {
    Err(AdminError::Unavailable)
}

pub fn hash_password(_input: &mut dyn BufRead, _out: &mut dyn Write) -> Result<(), AdminError> {
    Err(AdminError::Unavailable)
}
