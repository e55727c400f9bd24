//! `mailgate login`: enrolment flows.

use crate::cli::LoginArgs;
use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error("enrolment is not available in this build yet")]
    Unavailable,
}

pub async fn login(_config: &Config, _args: &LoginArgs) -> Result<(), EnrolError> {
    Err(EnrolError::Unavailable)
}
