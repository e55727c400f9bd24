//! The seam between sessions and the token machinery. A session asks one
//! question: "a valid access token for this login and this local password". The
//! answer is a [`Grant`] or a [`TokenError`] whose variant decides the protocol
//! answer (`docs/design.md`, error mapping): a temporary fault must never look like a
//! wrong password.

mod app_only;
pub mod crypto;
mod keep_warm;
mod layout;
pub mod record;
pub mod service;
mod slot;
pub mod store;
mod store_types;
#[cfg(test)]
pub(crate) mod testutil;

use std::time::{Duration, SystemTime};

use crate::secret::Secret;

pub use crate::base::{BoxFuture, Protocol};

/// A local login to turn into an access token.
#[derive(Debug)]
pub struct TokenRequest<'a> {
    pub username: &'a str,
    /// SASL PLAIN authzid, when the client gave one (shared mailboxes).
    pub authzid: Option<&'a str>,
    pub password: &'a Secret<String>,
    pub protocol: Protocol,
}

/// An access token good for logging in upstream now.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The account name, for logs and for [`TokenSource::rejected`].
    pub account: String,
    /// The XOAUTH2 `user=` value.
    pub sasl_user: String,
    pub access_token: Secret<String>,
    pub expires_at: SystemTime,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Unknown account or wrong local password. Never reaches the provider.
    #[error("unknown account or wrong local password")]
    BadCredentials,
    /// The account has no usable refresh token; `hint` tells the admin what to run.
    #[error("account {account} needs authorisation: {hint}")]
    NeedsAuthorisation { account: String, hint: String },
    /// The identity provider is unreachable, failing or throttling.
    #[error("temporary token failure: {reason}")]
    Temporary {
        reason: String,
        retry_after: Option<Duration>,
    },
}

/// Where sessions get access tokens from.
pub trait TokenSource: Send + Sync + 'static {
    fn grant<'a>(&'a self, request: TokenRequest<'a>) -> BoxFuture<'a, Result<Grant, TokenError>>;

    /// The upstream refused `grant` before it expired: forget it, so that the
    /// next `grant` for the account fetches a fresh one.
    fn rejected<'a>(&'a self, grant: &'a Grant) -> BoxFuture<'a, ()>;
}
