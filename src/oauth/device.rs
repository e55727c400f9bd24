//! Device authorization grant (RFC 8628): for machines without a browser, and
//! the default on a headless gateway. The user opens the verification URL on
//! any device (a QR code makes that a phone scan) and types the code.
//!
//! Polling follows RFC 8628 §3.5: wait `interval` between requests, keep
//! waiting on `authorization_pending`, add 5 seconds on `slow_down`, and stop
//! when the code expires. Every wait is bounded here regardless of what the
//! provider sends. Microsoft adds a ready-made `message` to the device
//! authorization response; it is shown as given.

use std::io::{self, Write};
use std::time::Duration;

use oauth2::{DeviceAuthorizationResponse, ExtraDeviceAuthorizationFields};
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use serde::{Deserialize, Serialize};

use super::client::OAuthClient;
use super::response::{MsTokenResponse, map_error};
use super::{OAuthError, SignedIn};

/// Longest time mailgate waits for the user to approve a device code.
pub const MAX_DEVICE_WAIT: Duration = Duration::from_secs(20 * 60);
/// Poll interval bounds, whatever `interval` the provider asks for.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(60);
/// Longest provider `message` shown.
pub const MAX_MESSAGE: usize = 500;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct MsDeviceFields {
    #[serde(default)]
    message: Option<String>,
}

impl ExtraDeviceAuthorizationFields for MsDeviceFields {}

/// What the user must see to approve the sign-in.
#[derive(Debug)]
pub struct DevicePrompt {
    response: DeviceAuthorizationResponse<MsDeviceFields>,
}

impl DevicePrompt {
    pub fn verification_uri(&self) -> &str {
        self.response.verification_uri()
    }

    pub fn user_code(&self) -> &str {
        self.response.user_code().secret()
    }

    pub fn message(&self) -> Option<&str> {
        self.response.extra_fields().message.as_deref()
    }

    /// How long the code stays valid, bounded by [`MAX_DEVICE_WAIT`].
    pub fn expires_in(&self) -> Duration {
        self.response.expires_in().min(MAX_DEVICE_WAIT)
    }

    /// The instructions, then a QR code of the verification URL.
    pub fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        if let Some(m) = self.message() {
            writeln!(out, "{}", printable(m))?;
        }
        writeln!(out, "Open:  {}", printable(self.verification_uri()))?;
        writeln!(out, "Code:  {}", printable(self.user_code()))?;
        if let Ok(qr) = QrCode::new(self.verification_uri().as_bytes()) {
            let picture = qr
                .render::<Dense1x2>()
                .dark_color(Dense1x2::Light)
                .light_color(Dense1x2::Dark)
                .build();
            writeln!(out, "{picture}")?;
        }
        out.flush()
    }
}

/// Provider text goes to a terminal: no control characters, bounded length.
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(MAX_MESSAGE)
        .collect()
}

impl OAuthClient {
    /// Step 1: ask the device authorization endpoint for a code (RFC 8628 §3.1).
    pub async fn device_start(&self) -> Result<DevicePrompt, OAuthError> {
        let response = self
            .oauth
            .exchange_device_code()
            .add_scopes(self.sign_in_scopes())
            .request_async(&self.http)
            .await
            .map_err(map_error)?;
        Ok(DevicePrompt { response })
    }

    /// Step 2: poll the token endpoint until the user approves, declines or
    /// the code expires (RFC 8628 §3.4, §3.5).
    pub async fn device_finish(&self, prompt: &DevicePrompt) -> Result<SignedIn, OAuthError> {
        let wait = prompt.expires_in();
        let poll = self
            .oauth
            .exchange_device_access_token(&prompt.response)
            .request_async(
                &self.http,
                |d: Duration| tokio::time::sleep(d.clamp(MIN_POLL_INTERVAL, MAX_POLL_INTERVAL)),
                Some(wait),
            );
        match tokio::time::timeout(
            wait + MAX_POLL_INTERVAL + super::http::REQUEST_TIMEOUT,
            poll,
        )
        .await
        {
            Ok(r) => r
                .map(|t: MsTokenResponse| SignedIn::from(t))
                .map_err(map_error),
            Err(_) => Err(OAuthError::Rejected {
                error: "expired_token".to_owned(),
                aadsts: None,
                description: "the device code expired before sign-in completed".to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_renders_message_code_and_qr() {
        let response: DeviceAuthorizationResponse<MsDeviceFields> = serde_json::from_str(
            r#"{"device_code":"d","user_code":"ABCD-EFGH","verification_uri":"https://microsoft.com/devicelogin",
                "expires_in":900,"interval":5,"message":"To sign in, use a web browser\u001b[2J."}"#,
        )
        .unwrap();
        let prompt = DevicePrompt { response };
        let mut out = Vec::new();
        prompt.render(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("To sign in, use a web browser[2J."), "{text}");
        assert!(!text.contains('\u{1b}'));
        assert!(text.contains("Code:  ABCD-EFGH"));
        assert!(text.contains("Open:  https://microsoft.com/devicelogin"));
        assert!(text.contains('▀') || text.contains('▄'), "QR code missing");
        assert_eq!(prompt.expires_in(), Duration::from_secs(900));
    }
}
