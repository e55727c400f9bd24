//! The one HTTP seam between the `oauth2` crate and the network.
//!
//! `oauth2` turns every non-200 answer into "parse the error body", which
//! loses the status code. mailgate needs it: a 5xx or 429 is a temporary
//! fault (RFC 6585 §4, `Retry-After` per RFC 9110 §10.2.3) that must never look
//! like a revoked grant, and a 3xx from a token endpoint is never followed
//! (RFC 6749 §3.2 gives no meaning to redirects there, and following one would
//! post the refresh token to wherever `Location` points). So this seam turns
//! those answers into [`HttpError`]s before `oauth2` sees them; 2xx and 4xx
//! bodies go through for `oauth2` to parse.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use oauth2::http::{self, HeaderValue, StatusCode};
use oauth2::{HttpRequest, HttpResponse};

/// Time allowed to establish a TCP + TLS connection to the identity provider.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a whole request, body included (the default).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body read from the identity provider.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Largest `Retry-After` honoured; anything longer is clamped.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HttpError {
    #[error("cannot reach the identity provider: {0}")]
    Network(String),
    #[error("the identity provider did not answer in time")]
    Timeout,
    #[error("the identity provider answered HTTP {status}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error(
        "the token endpoint answered with a redirect (HTTP {status}); redirects are not followed"
    )]
    Redirect { status: u16 },
    #[error("the identity provider's answer is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("cannot build the request: {0}")]
    Request(String),
}

/// A reqwest client for the identity provider: platform roots, the system
/// proxy (`HTTPS_PROXY`), bounded timeouts, and no redirects.
pub fn build_client(request_timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(request_timeout)
        .user_agent(concat!("mailgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// The HTTP client `oauth2` calls for every grant.
pub struct Seam(pub reqwest::Client);

impl<'c> oauth2::AsyncHttpClient<'c> for Seam {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(send(&self.0, request))
    }
}

/// Sends one request built by `oauth2` and classifies the answer.
pub async fn send(
    client: &reqwest::Client,
    request: HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let (parts, body) = request.into_parts();
    let url = reqwest::Url::parse(&parts.uri.to_string())
        .map_err(|e| HttpError::Request(e.to_string()))?;
    let mut builder = client.request(parts.method, url).body(body);
    for (name, value) in &parts.headers {
        builder = builder.header(name, value);
    }
    let mut response = builder.send().await.map_err(classify)?;
    let status = response.status();
    if status.is_redirection() {
        return Err(HttpError::Redirect {
            status: status.as_u16(),
        });
    }
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Err(HttpError::Status {
            status: status.as_u16(),
            retry_after: retry_after(response.headers().get(http::header::RETRY_AFTER)),
        });
    }
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(HttpError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    let mut out = http::Response::builder().status(status);
    if let Some(h) = out.headers_mut() {
        *h = headers;
    }
    out.body(body)
        .map_err(|e| HttpError::Request(e.to_string()))
}

fn classify(e: reqwest::Error) -> HttpError {
    if e.is_timeout() {
        return HttpError::Timeout;
    }
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    HttpError::Network(text)
}

/// `Retry-After` in delta-seconds (RFC 9110 §10.2.3). HTTP-dates are ignored:
/// Microsoft sends seconds, and a date needs a trusted clock.
pub fn retry_after(value: Option<&HeaderValue>) -> Option<Duration> {
    let secs: u64 = value?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_clamps() {
        let v = |s: &'static str| Some(HeaderValue::from_static(s));
        assert_eq!(retry_after(v("7").as_ref()), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after(v(" 12 ").as_ref()),
            Some(Duration::from_secs(12))
        );
        assert_eq!(retry_after(v("999999").as_ref()), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after(v("Wed, 21 Oct 2015 07:28:00 GMT").as_ref()),
            None
        );
        assert_eq!(retry_after(None), None);
    }
}
