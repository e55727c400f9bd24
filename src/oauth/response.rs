//! Token endpoint answers as Microsoft actually sends them, and the mapping
//! from `oauth2` errors to [`OAuthError`].
//!
//! Microsoft's v2.0 endpoint is close to RFC 6749 §5.1 but not equal:
//! `expires_in` (and `ext_expires_in`) may arrive as a JSON string, which
//! `oauth2`'s `StandardTokenResponse` refuses. [`MsTokenResponse`] implements
//! `oauth2::TokenResponse` itself and accepts both forms, so the crate still
//! drives the grants. Errors (RFC 6749 §5.2) carry an `AADSTS<n>` code at the
//! start of `error_description`; it is kept because it tells the admin what
//! happened (50173 revoked, 700082 expired by inactivity, 70043 sign-in
//! frequency, 50076 MFA, 54005 code already redeemed).

use std::time::Duration;

use oauth2::basic::BasicTokenType;
use oauth2::{AccessToken, ErrorResponse, RefreshToken, RequestTokenError, Scope};
use serde::{Deserialize, Deserializer, Serialize};

use super::http::HttpError;
use super::{OAuthError, SignedIn, TokenResponse};
use crate::secret::Secret;

/// Used when the provider omits `expires_in` (RFC 6749 §5.1 makes it optional);
/// short, so that mailgate refreshes early rather than late. It is shorter
/// than the default refresh margin, so for such a token the token cache caps
/// the margin at half of it: reused for 5 minutes, not refreshed per login.
pub const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(600);
/// Longest `expires_in` believed; Microsoft issues 60-90 minutes.
pub const MAX_EXPIRES_IN: Duration = Duration::from_secs(24 * 3600);
/// Longest error description kept (it ends up in logs and CLI output).
pub const MAX_DESCRIPTION: usize = 400;

#[derive(Debug, Deserialize, Serialize)]
pub struct MsTokenResponse {
    access_token: AccessToken,
    #[serde(default = "bearer")]
    token_type: BasicTokenType,
    #[serde(default, deserialize_with = "lenient_seconds")]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<RefreshToken>,
    #[serde(default)]
    scope: Option<String>,
    /// OpenID Connect Core §3.1.3.3: present when `openid` was asked for.
    #[serde(default)]
    id_token: Option<String>,
}

fn bearer() -> BasicTokenType {
    BasicTokenType::Bearer
}

/// A JSON number or a string holding one.
fn lenient_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrString {
        Num(u64),
        Str(String),
    }
    match Option::<NumOrString>::deserialize(d)? {
        None => Ok(None),
        Some(NumOrString::Num(n)) => Ok(Some(n)),
        Some(NumOrString::Str(s)) => s.trim().parse().map(Some).map_err(serde::de::Error::custom),
    }
}

impl oauth2::TokenResponse for MsTokenResponse {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }
    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }
    fn expires_in(&self) -> Option<Duration> {
        self.expires_in.map(Duration::from_secs)
    }
    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }
    fn scopes(&self) -> Option<&Vec<Scope>> {
        None
    }
}

impl From<MsTokenResponse> for TokenResponse {
    fn from(r: MsTokenResponse) -> Self {
        TokenResponse {
            expires_in_assumed: r.expires_in.is_none(),
            access_token: Secret::new(r.access_token.into_secret()),
            refresh_token: r.refresh_token.map(|t| Secret::new(t.into_secret())),
            expires_in: r
                .expires_in
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_EXPIRES_IN)
                .min(MAX_EXPIRES_IN),
        }
    }
}

impl From<MsTokenResponse> for SignedIn {
    fn from(mut r: MsTokenResponse) -> Self {
        let id_token = r.id_token.take().map(Secret::new);
        SignedIn {
            tokens: TokenResponse::from(r),
            id_token,
        }
    }
}

/// The `AADSTS<digits>` code in a Microsoft error description, if any.
pub fn aadsts_code(description: &str) -> Option<String> {
    let at = description.find("AADSTS")?;
    let digits: String = description[at + 6..]
        .chars()
        .take_while(char::is_ascii_digit)
        .take(10)
        .collect();
    (!digits.is_empty()).then_some(digits)
}

fn truncated(s: &str) -> String {
    s.chars().take(MAX_DESCRIPTION).collect()
}

/// Maps any `oauth2` request error onto the three outcomes the token layer
/// distinguishes.
pub fn map_error<TE>(e: RequestTokenError<HttpError, TE>) -> OAuthError
where
    TE: ErrorResponse + ServerError,
{
    match e {
        RequestTokenError::ServerResponse(r) => {
            let description = r.description().map(truncated).unwrap_or_default();
            OAuthError::Rejected {
                error: truncated(&r.code()),
                aadsts: aadsts_code(&description),
                description,
            }
        }
        RequestTokenError::Request(h) => from_http(h),
        RequestTokenError::Parse(_, body) => OAuthError::Temporary {
            reason: format!(
                "the identity provider's answer is not a token response ({} bytes)",
                body.len()
            ),
            retry_after: None,
        },
        RequestTokenError::Other(reason) => OAuthError::Temporary {
            reason: truncated(&reason),
            retry_after: None,
        },
    }
}

pub fn from_http(h: HttpError) -> OAuthError {
    match h {
        HttpError::Status { retry_after, .. } => OAuthError::Temporary {
            reason: h.to_string(),
            retry_after,
        },
        HttpError::Request(_) => OAuthError::Config(h.to_string()),
        HttpError::Redirect { .. } => OAuthError::Config(format!(
            "{h}; check token_url (a proxy or captive portal may be in the way)"
        )),
        HttpError::Network(_) | HttpError::Timeout | HttpError::TooLarge => OAuthError::Temporary {
            reason: h.to_string(),
            retry_after: None,
        },
    }
}

/// The two things mailgate reads from an RFC 6749 §5.2 error body.
pub trait ServerError {
    fn code(&self) -> String;
    fn description(&self) -> Option<&str>;
}

impl<T: oauth2::ErrorResponseType + AsRef<str> + 'static> ServerError
    for oauth2::StandardErrorResponse<T>
{
    fn code(&self) -> String {
        self.error().as_ref().to_owned()
    }
    fn description(&self) -> Option<&str> {
        self.error_description().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_as_number_or_string() {
        for body in [
            r#"{"access_token":"a","token_type":"Bearer","expires_in":"3599","ext_expires_in":"3599"}"#,
            r#"{"access_token":"a","token_type":"Bearer","expires_in":3599}"#,
        ] {
            let r: MsTokenResponse = serde_json::from_str(body).unwrap();
            let t = TokenResponse::from(r);
            assert_eq!(t.expires_in, Duration::from_secs(3599));
            assert!(!t.expires_in_assumed);
        }
        let r: MsTokenResponse = serde_json::from_str(r#"{"access_token":"a"}"#).unwrap();
        let t = TokenResponse::from(r);
        assert_eq!(t.expires_in, DEFAULT_EXPIRES_IN);
        assert!(t.expires_in_assumed);
        assert!(
            serde_json::from_str::<MsTokenResponse>(r#"{"access_token":"a","expires_in":"soon"}"#)
                .is_err()
        );
    }

    #[test]
    fn aadsts_codes_are_extracted() {
        assert_eq!(
            aadsts_code("AADSTS50173: The provided grant has expired due to it being revoked")
                .as_deref(),
            Some("50173")
        );
        assert_eq!(
            aadsts_code("x AADSTS700082: expired").as_deref(),
            Some("700082")
        );
        assert_eq!(aadsts_code("AADSTS: nothing"), None);
        assert_eq!(aadsts_code("plain"), None);
    }
}
