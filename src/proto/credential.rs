//! What an upstream machine holds of the login: the token, sent once as
//! the XOAUTH2 initial response, and the means to keep it out of every
//! rejection. Rejections are logged, and a server that echoes a refused
//! command back (`BAD unknown command ...`) would otherwise put the XOAUTH2
//! string or the token into the log, so every rejection an upstream machine
//! reports is made here ([`Credential::reject`]). The machines hand over
//! rejection texts uncut (bounded only by the line framing); they are cut to
//! reply size here, after the scrub.

use super::{UpstreamLogin, UpstreamRejection, UpstreamStep, sasl};
use crate::secret::Secret;

/// The login until it is sent, and what must never appear in a rejection.
#[derive(Debug)]
pub(crate) struct Credential {
    login: Option<UpstreamLogin>,
    scrub: Scrub,
}

impl Credential {
    pub(crate) fn new(login: UpstreamLogin) -> Self {
        Self {
            scrub: Scrub::new(&login),
            login: Some(login),
        }
    }

    /// `prefix`, the base64 XOAUTH2 initial response, CRLF: built in one
    /// allocation so no stray copy of the token is left behind. The token is
    /// sent once; `None` if it already was.
    pub(crate) fn xoauth2_line(&mut self, prefix: &[u8]) -> Option<Secret<Vec<u8>>> {
        let login = self.login.take()?;
        let encoded = sasl::encode_xoauth2(&login.user, &login.access_token);
        let mut bytes = Vec::with_capacity(prefix.len() + encoded.expose().len() + 2);
        bytes.extend_from_slice(prefix);
        bytes.extend_from_slice(encoded.expose().as_bytes());
        bytes.extend_from_slice(b"\r\n");
        Some(Secret::new(bytes))
    }

    /// Ends the login with `rejection`, its text cleared of the token and the
    /// XOAUTH2 string; the token is dropped.
    pub(crate) fn reject(&mut self, rejection: UpstreamRejection) -> UpstreamStep {
        self.login = None;
        UpstreamStep::Rejected(self.scrub.rejection(rejection))
    }
}

/// Replaces the token and the XOAUTH2 string in rejection texts.
#[derive(Debug)]
struct Scrub {
    secrets: [Secret<String>; 2],
}

impl Scrub {
    fn new(login: &UpstreamLogin) -> Self {
        let xoauth2 = sasl::encode_xoauth2(&login.user, &login.access_token);
        Self {
            secrets: [login.access_token.clone(), xoauth2],
        }
    }

    fn rejection(&self, r: UpstreamRejection) -> UpstreamRejection {
        match r {
            UpstreamRejection::AuthFailed(t) => UpstreamRejection::AuthFailed(self.text(t)),
            UpstreamRejection::SmtpAuthDisabled(t) => {
                UpstreamRejection::SmtpAuthDisabled(self.text(t))
            }
            UpstreamRejection::Throttled { text, backoff } => UpstreamRejection::Throttled {
                text: self.text(text),
                backoff,
            },
            UpstreamRejection::Unavailable(t) => UpstreamRejection::Unavailable(self.text(t)),
            UpstreamRejection::Protocol(t) => UpstreamRejection::Protocol(self.text(t)),
        }
    }

    /// Scrubs, then cuts to the reply bound: in that order, so a token
    /// across the cut is still whole when it is looked for.
    fn text(&self, mut text: String) -> String {
        for secret in &self.secrets {
            let secret = secret.expose();
            if !secret.is_empty() && text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "[redacted]");
            }
        }
        super::text::cut(text, super::text::MAX_REPLY_TEXT)
    }
}
