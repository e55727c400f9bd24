//! The Graph calls a submission makes, over the crate's one HTTP stack
//! (reqwest, built like the identity provider's client in
//! `oauth::http`: no redirects, bounded connect and request time).
//! Each call answers an [`Outcome`] and, on success, the JSON body.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::reply::{Outcome, graph_message};
use crate::oauth::retry_after;
use crate::secret::Secret;

/// Largest request body Graph takes (`docs/design.md`, Graph facts: "about
/// 4 MB"); kept a little below so headers never tip it over.
pub const MAX_REQUEST_BODY: usize = 4_000_000;
/// Largest answer read from Graph (drafts and upload sessions are small).
pub const MAX_ANSWER: usize = 256 * 1024;
/// Upload session chunks: a multiple of 320 KiB below 4 MiB, as Graph's
/// `createUploadSession` documentation requires of every chunk but the last.
pub const CHUNK: usize = 12 * 320 * 1024;
const _: () = assert!(CHUNK.is_multiple_of(320 * 1024) && CHUNK <= 4 * 1024 * 1024);

/// One Graph host and the HTTP client that talks to it.
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    /// `https://graph.microsoft.com` or a national cloud's host, no slash.
    endpoint: String,
}

/// A successful answer's JSON (`Value::Null` when there was none).
pub type Answer = Result<Value, Outcome>;

impl Api {
    pub fn new(endpoint: &str, request_timeout: Duration) -> Result<Self, String> {
        let client = crate::oauth::build_client(request_timeout)?;
        Ok(Self {
            client,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
        })
    }

    /// `{endpoint}/v1.0/users/{mailbox}{rest}`.
    pub fn url(&self, mailbox: &str, rest: &str) -> String {
        format!(
            "{}/v1.0/users/{}{rest}",
            self.endpoint,
            percent_encode(mailbox)
        )
    }

    /// POSTs `mime` as base64 `text/plain` (the MIME form of `sendMail` and
    /// of draft creation).
    pub async fn post_mime(&self, url: &str, token: &Secret<String>, mime: &[u8]) -> Answer {
        let body = STANDARD.encode(mime);
        let request = self
            .client
            .request(Method::POST, url)
            .bearer_auth(token.expose())
            .header("content-type", "text/plain")
            .body(body);
        self.answer(request).await
    }

    pub async fn post_json(&self, url: &str, token: &Secret<String>, body: &Value) -> Answer {
        let request = self
            .client
            .request(Method::POST, url)
            .bearer_auth(token.expose())
            .header("content-type", "application/json")
            .body(body.to_string());
        self.answer(request).await
    }

    pub async fn delete(&self, url: &str, token: &Secret<String>) -> Answer {
        let request = self
            .client
            .request(Method::DELETE, url)
            .bearer_auth(token.expose());
        self.answer(request).await
    }

    /// PUTs one chunk to an upload session. The session URL carries its own
    /// authorisation; Graph refuses a bearer token on it.
    pub async fn put_chunk(&self, url: &str, chunk: &[u8], at: usize, total: usize) -> Answer {
        let last = at + chunk.len() - 1;
        let request = self
            .client
            .request(Method::PUT, url)
            .header("content-range", format!("bytes {at}-{last}/{total}"))
            .header("content-type", "application/octet-stream")
            .body(chunk.to_vec());
        self.answer(request).await
    }

    async fn answer(&self, request: reqwest::RequestBuilder) -> Answer {
        let mut response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                Outcome::Timeout
            } else {
                Outcome::Network
            }
        })?;
        let status = response.status();
        let wait = retry_after(response.headers().get("retry-after"));
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_ANSWER => {
                    body.extend_from_slice(&chunk)
                }
                Ok(Some(_)) | Ok(None) => break,
                Err(e) if e.is_timeout() => return Err(Outcome::Timeout),
                Err(_) => return Err(Outcome::Network),
            }
        }
        if status.is_success() {
            return Ok(serde_json::from_slice(&body).unwrap_or(Value::Null));
        }
        Err(Outcome::Status {
            status: status.as_u16(),
            message: graph_message(&body),
            retry_after: wait.filter(|_| {
                status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
            }),
        })
    }
}

/// Percent-encodes a mailbox for a URL path segment (RFC 3986 §3.3): only
/// unreserved characters and `@` stay as they are.
fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_is_one_path_segment() {
        assert_eq!(percent_encode("a.b@x.example"), "a.b@x.example");
        assert_eq!(percent_encode("a/b?c#@x"), "a%2Fb%3Fc%23@x");
        assert_eq!(percent_encode("j\u{fc}@x"), "j%C3%BC@x");
    }
}
