//! OAuth 2.0 grants against the identity provider (Microsoft identity platform
//! v2.0 or any provider configured with explicit URLs). This module is the only
//! place that speaks HTTP to the identity provider.

use std::time::Duration;

use crate::base::BoxFuture;
use crate::secret::Secret;

/// A successful token endpoint answer, normalised (Microsoft may send
/// `expires_in` as a string).
#[derive(Debug, Clone)]
pub struct TokenResponse {
    pub access_token: Secret<String>,
    /// Present when the provider rotated (or issued) a refresh token.
    pub refresh_token: Option<Secret<String>>,
    pub expires_in: Duration,
    /// The provider omitted `expires_in`: `expires_in` is
    /// [`DEFAULT_EXPIRES_IN`], a guess.
    pub expires_in_assumed: bool,
}

/// The answer to an interactive sign-in (device code or browser): the tokens,
/// and the OpenID Connect id token naming who signed in, when the provider
/// sent one ([`identity`] reads it).
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub tokens: TokenResponse,
    pub id_token: Option<Secret<String>>,
}

impl SignedIn {
    /// The user name the tokens were issued to, if any token names one.
    pub fn user(&self) -> Option<String> {
        identity::signed_in_as(self.id_token.as_ref(), &self.tokens.access_token)
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum OAuthError {
    /// The provider answered with an RFC 6749 §5.2 error. What it means
    /// (dead grant, configuration fault, temporary) is [`OAuthError::fault`].
    #[error("{error}{}: {description}", aadsts.as_ref().map(|c| format!(" (AADSTS{c})")).unwrap_or_default())]
    Rejected {
        error: String,
        aadsts: Option<String>,
        description: String,
    },
    /// Network failure, 5xx, 429 or similar: try again later.
    #[error("identity provider temporarily unavailable: {reason}")]
    Temporary {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The request could not be made as configured (bad URL, missing secret).
    #[error("OAuth configuration: {0}")]
    Config(String),
}

/// A token endpoint request in flight. Spelled out rather than borrowed from
/// the layers above, which this module must not import.
pub type TokenFuture<'a> = BoxFuture<'a, Result<TokenResponse, OAuthError>>;

/// The token endpoint as the token layer sees it: one object per configured
/// provider. [`TokenService`](crate::token) holds these behind `dyn`, so tests
/// can put an in-process fake in its place.
pub trait TokenEndpoint: Send + Sync + 'static {
    /// `grant_type=refresh_token`. Microsoft rotates the refresh token on every
    /// use: the caller must persist `refresh_token` from the answer before
    /// using the access token.
    fn refresh<'a>(&'a self, refresh_token: &'a Secret<String>) -> TokenFuture<'a>;

    /// `grant_type=client_credentials` for app-only accounts.
    fn client_credentials(&self) -> TokenFuture<'_>;
}

pub mod authcode;
pub mod client;
pub mod credentials;
pub mod device;
mod fault;
mod http;
pub mod identity;
mod redirect;
mod response;

pub use client::OAuthClient;
pub use fault::{Fault, REQUEST_LOOP_BACKOFF, recorded_fault};
pub use http::{build_client, retry_after};
pub use response::DEFAULT_EXPIRES_IN;
