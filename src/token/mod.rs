//! The seam between sessions and the token machinery. A session asks one
//! question: "a valid access token for this login and this local password". The
//! answer is a [`Grant`] or a [`TokenError`] whose variant decides the protocol
//! answer (`docs/design.md`, error mapping): a temporary fault must never look like a
//! wrong password.
//!
//! This layer sits on [`crate::accounts`], which sits on [`crate::store`].

mod ages;
mod graph;
mod app_only;
mod cache;
mod health;
mod keep_warm;
mod refresh;
mod source;
pub mod service;

use std::time::{Duration, SystemTime};

use crate::accounts::AccountError;
use crate::base::AccountName;
use crate::secret::Secret;

pub use crate::base::{BoxFuture, Protocol};
pub use ages::TokenAge;
pub use health::ProviderHealth;

/// A local login to turn into an access token.
#[derive(Debug)]
pub struct TokenRequest<'a> {
    /// The login name, parsed once from what the client sent.
    pub username: &'a AccountName,
    /// SASL PLAIN authzid, when the client gave one (shared mailboxes).
    pub authzid: Option<&'a str>,
    pub password: &'a Secret<String>,
    pub protocol: Protocol,
    /// The provider of the listener the login came in on: only its accounts
    /// are served there, so a token never reaches another provider's upstream.
    pub provider: &'a str,
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

impl From<AccountError> for TokenError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::BadCredentials => TokenError::BadCredentials,
            AccountError::NeedsAuthorisation { account, hint } => TokenError::NeedsAuthorisation {
                account: account.to_string(),
                hint,
            },
            AccountError::Temporary(reason) => TokenError::Temporary {
                reason,
                retry_after: None,
            },
        }
    }
}

/// Where sessions get access tokens from.
pub trait TokenSource: Send + Sync + 'static {
    fn grant<'a>(&'a self, request: TokenRequest<'a>) -> BoxFuture<'a, Result<Grant, TokenError>>;

    /// What `request` would open, without checking its password: the guard
    /// counts failures against it. `None` when the source has no account
    /// rules (or the login resolves to nothing); the typed name counts then.
    fn resolve(&self, _request: &TokenRequest<'_>) -> Option<crate::accounts::Resolved> {
        None
    }

    /// Checks the local password alone, so the guard hears the verdict
    /// before any token work (a refresh can take seconds; the guard holds
    /// a reserved failure until the verdict). The [`TokenSource::grant`]
    /// that follows a success finds the password warm. `None` when the
    /// source cannot check it apart from `grant`.
    fn verify<'a>(
        &'a self,
        _request: TokenRequest<'a>,
    ) -> Option<BoxFuture<'a, Result<(), TokenError>>> {
        None
    }

    /// The upstream refused `grant` before it expired: forget it, so that the
    /// next `grant` for the account fetches a fresh one. Returns `false` when
    /// the account refreshed after a refusal too recently: the caller then
    /// passes the upstream's answer on instead of trying again.
    fn rejected<'a>(&'a self, grant: &'a Grant) -> BoxFuture<'a, bool>;

    /// The upstream accepted `grant`: the account's next refusal may cost a
    /// refresh again.
    fn accepted(&self, _grant: &Grant) {}

    /// A Microsoft Graph access token for the mailbox whose SMTP `user=` is
    /// `user` (`submit = "graph"`), newer than `refused` when given.
    fn graph_token<'a>(
        &'a self,
        _user: &'a str,
        _refused: Option<&'a Secret<String>>,
    ) -> BoxFuture<'a, Result<Secret<String>, TokenError>> {
        Box::pin(async {
            Err(TokenError::Temporary {
                reason: "no Microsoft Graph tokens here".to_owned(),
                retry_after: None,
            })
        })
    }
}
