//! [`OAuthClient`]: one configured provider's token endpoint, with the grants
//! the token layer needs at run time (refresh, client credentials; RFC 6749
//! §6 and §4.4). The enrolment grants live in [`super::device`] and
//! [`super::authcode`] on the same type.
//!
//! The `oauth2` crate builds requests and parses answers; every request goes
//! through `http::send`, which never follows redirects and keeps the
//! status code (see that module for why).

use std::path::PathBuf;
use std::time::Duration;

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
};
use oauth2::{
    AuthType, AuthUrl, ClientId, ClientSecret, DeviceAuthorizationUrl, EndpointNotSet, EndpointSet,
    RefreshToken, Scope, StandardRevocableToken, TokenUrl,
};

use super::credentials::{ASSERTION_TYPE, CertificateCredential};
use super::http::{self, Seam};
use super::response::{MsTokenResponse, map_error};
use super::{OAuthError, TokenEndpoint, TokenFuture, TokenResponse};
use crate::config::Provider;
use crate::secret::Secret;

pub(crate) type MsClient = oauth2::Client<
    BasicErrorResponse,
    MsTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The grants for one configured provider.
pub struct OAuthClient {
    pub(crate) oauth: MsClient,
    pub(crate) http: Seam,
    pub(crate) scopes: Vec<Scope>,
    app_scopes: Vec<Scope>,
    pub(crate) redirect_port: u16,
    has_secret: bool,
    certificate: Option<(PathBuf, PathBuf)>,
}

impl OAuthClient {
    pub fn new(provider: &Provider) -> Result<Self, OAuthError> {
        let url_err =
            |key: &str, e: oauth2::url::ParseError| OAuthError::Config(format!("{key}: {e}"));
        let mut oauth = oauth2::Client::new(ClientId::new(provider.client_id.clone()))
            .set_auth_uri(
                AuthUrl::new(provider.authorize_url.clone())
                    .map_err(|e| url_err("authorize_url", e))?,
            )
            .set_token_uri(
                TokenUrl::new(provider.token_url.clone()).map_err(|e| url_err("token_url", e))?,
            )
            .set_device_authorization_url(
                DeviceAuthorizationUrl::new(provider.device_code_url.clone())
                    .map_err(|e| url_err("device_code_url", e))?,
            )
            .set_auth_type(AuthType::RequestBody);
        if let Some(secret) = &provider.client_secret {
            oauth = oauth.set_client_secret(ClientSecret::new(secret.expose().clone()));
        }
        let http = http::build_client(http::REQUEST_TIMEOUT)
            .map_err(|e| OAuthError::Config(format!("HTTP client: {e}")))?;
        let scopes = |list: &[String]| list.iter().map(|s| Scope::new(s.clone())).collect();
        Ok(Self {
            oauth,
            http: Seam(http),
            scopes: scopes(&provider.scopes),
            app_scopes: scopes(&provider.app_scopes),
            redirect_port: provider.redirect_port,
            has_secret: provider.client_secret.is_some(),
            certificate: provider
                .client_certificate
                .clone()
                .zip(provider.client_key.clone()),
        })
    }

    /// The scopes an interactive sign-in asks for: the configured ones plus
    /// `openid profile` (OpenID Connect Core §3.1.2.1, §5.4), so that the
    /// answer carries an id token naming who signed in. Microsoft allows
    /// these next to one resource's scopes; refreshes ask for the
    /// configured scopes only.
    pub(crate) fn sign_in_scopes(&self) -> impl Iterator<Item = Scope> + '_ {
        let missing = ["openid", "profile"]
            .into_iter()
            .filter(|s| !self.scopes.iter().any(|c| c.as_str() == *s))
            .map(|s| Scope::new(s.to_owned()));
        self.scopes.iter().cloned().chain(missing)
    }

    /// [`Self::sign_in_scopes`] as one `scope` value: a code redemption
    /// names them so that the token is for the mail resource even when the
    /// authorize request consented to more (Microsoft's v2.0 token endpoint
    /// takes scopes of a single resource).
    pub(crate) fn sign_in_scope_text(&self) -> String {
        self.sign_in_scopes()
            .map(|s| s.as_str().to_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Replaces the per-request time limit (`http::REQUEST_TIMEOUT`).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Result<Self, OAuthError> {
        let http = http::build_client(timeout)
            .map_err(|e| OAuthError::Config(format!("HTTP client: {e}")))?;
        self.http = Seam(http);
        Ok(self)
    }

    /// `grant_type=refresh_token` (RFC 6749 §6).
    pub async fn refresh_token(
        &self,
        refresh_token: &Secret<String>,
    ) -> Result<TokenResponse, OAuthError> {
        let rt = RefreshToken::new(refresh_token.expose().clone());
        self.oauth
            .exchange_refresh_token(&rt)
            .add_scopes(self.scopes.iter().cloned())
            .request_async(&self.http)
            .await
            .map(TokenResponse::from)
            .map_err(map_error)
    }

    /// `grant_type=client_credentials` (RFC 6749 §4.4), authenticated with
    /// the client secret or, failing that, a certificate assertion
    /// ([`super::credentials`]).
    pub async fn client_credentials_token(&self) -> Result<TokenResponse, OAuthError> {
        if self.app_scopes.is_empty() {
            return Err(OAuthError::Config(
                "app-only accounts need app_scopes in the provider".to_owned(),
            ));
        }
        let mut request = self
            .oauth
            .exchange_client_credentials()
            .add_scopes(self.app_scopes.iter().cloned());
        match (&self.certificate, self.has_secret) {
            (_, true) => {}
            (Some((cert, key)), false) => {
                let credential = CertificateCredential::load(cert, key)?;
                let assertion =
                    credential.assertion(self.oauth.client_id(), self.oauth.token_uri())?;
                request = request
                    .add_extra_param("client_assertion_type", ASSERTION_TYPE)
                    .add_extra_param("client_assertion", assertion.expose().clone());
            }
            (None, false) => {
                return Err(OAuthError::Config(
                    "app-only accounts need client_secret, or client_certificate and client_key, in the provider"
                        .to_owned(),
                ));
            }
        }
        request
            .request_async(&self.http)
            .await
            .map(TokenResponse::from)
            .map_err(map_error)
    }
}

impl TokenEndpoint for OAuthClient {
    fn refresh<'a>(&'a self, refresh_token: &'a Secret<String>) -> TokenFuture<'a> {
        Box::pin(self.refresh_token(refresh_token))
    }

    fn client_credentials(&self) -> TokenFuture<'_> {
        Box::pin(self.client_credentials_token())
    }
}
