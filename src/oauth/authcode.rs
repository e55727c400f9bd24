//! Authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636 S256) for
//! public clients, redirecting to a loopback listener (RFC 8252 §7.3).
//!
//! The redirect URI is `http://localhost:<port>/`: Microsoft accepts any
//! port on `localhost` for a public client's loopback redirect, so port 0
//! (the default) lets the OS pick a free one. The listener takes that port on
//! 127.0.0.1 and, when it can, on ::1, since browsers may resolve `localhost`
//! to either. The `state` parameter is random and compared in constant time
//! (RFC 6749 §10.12); a mismatch abandons the sign-in rather than waiting for
//! another try.

use std::borrow::Cow;
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oauth2::{
    AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use tokio::net::TcpListener;

use super::client::OAuthClient;
use super::redirect::{self, Redirect};
use super::response::{aadsts_code, map_error};
use super::{OAuthError, SignedIn};

/// Default time the user has to finish signing in.
pub const DEFAULT_BROWSER_WAIT: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// Try to open the system browser (the URL is always printed as well);
    /// only [`OAuthClient::browser_flow`] reads it.
    pub open_browser: bool,
    /// Pre-fills the account in the provider's sign-in page.
    pub login_hint: Option<String>,
    /// How long to wait for the redirect.
    pub wait: Duration,
    /// Scopes of another resource to consent to in the same sign-in
    /// (Microsoft Graph's `Mail.Send`): they go in the authorize request
    /// only, since a token names one resource (docs/design.md, "Sending
    /// through Graph").
    pub extra_consent: Vec<String>,
}

/// `n` random bytes from the system RNG, base64url without padding.
pub fn random_token(n: usize) -> Result<String, OAuthError> {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| OAuthError::Config("the system random generator failed".to_owned()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A browser sign-in waiting for its redirect: show [`BrowserSignIn::url`] to
/// the user, then hand it to [`OAuthClient::browser_finish`].
#[derive(Debug)]
pub struct BrowserSignIn {
    listener: TcpListener,
    v6: Option<TcpListener>,
    redirect_url: RedirectUrl,
    verifier: PkceCodeVerifier,
    state: String,
    url: oauth2::url::Url,
    wait: Duration,
}

impl BrowserSignIn {
    /// The authorization URL the user must open.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Writes the URL on a line of its own and, if asked, tries to open the
    /// system browser on it.
    pub fn show(&self, out: &mut dyn Write, open: bool) -> Result<(), OAuthError> {
        let shown = writeln!(
            out,
            "Sign in with this URL (a browser window may open):\n{}",
            self.url
        )
        .and_then(|()| out.flush());
        shown.map_err(|e| OAuthError::Config(format!("cannot print the sign-in URL: {e}")))?;
        if open {
            open_browser(self.url.as_str());
        }
        Ok(())
    }
}

impl OAuthClient {
    /// Runs the whole browser sign-in; the authorization URL is written to
    /// `out` on a line of its own.
    pub async fn browser_flow(
        &self,
        options: &BrowserOptions,
        out: &mut dyn Write,
    ) -> Result<SignedIn, OAuthError> {
        let sign_in = self.browser_start(options).await?;
        sign_in.show(out, options.open_browser)?;
        self.browser_finish(sign_in).await
    }

    /// Step 1: take the loopback redirect port and build the authorization
    /// URL (`options.open_browser` is the caller's business, see
    /// [`BrowserSignIn::show`]).
    pub async fn browser_start(
        &self,
        options: &BrowserOptions,
    ) -> Result<BrowserSignIn, OAuthError> {
        let listener =
            TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, self.redirect_port)))
                .await
                .map_err(|e| {
                    OAuthError::Config(format!(
                        "cannot listen on 127.0.0.1:{}: {e}",
                        self.redirect_port
                    ))
                })?;
        let port = listener
            .local_addr()
            .map_err(|e| OAuthError::Config(format!("redirect listener: {e}")))?
            .port();
        let v6 = TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port)))
            .await
            .ok();
        let redirect_url = RedirectUrl::new(format!("http://localhost:{port}/"))
            .map_err(|e| OAuthError::Config(format!("redirect URI: {e}")))?;
        // RFC 7636 §4.1: 32 random octets give a 43-character verifier.
        let verifier = PkceCodeVerifier::new(random_token(32)?);
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&verifier);
        let state = random_token(24)?;
        let state_for_url = state.clone();
        let mut request = self
            .oauth
            .authorize_url(move || CsrfToken::new(state_for_url))
            .add_scopes(self.sign_in_scopes())
            .add_scopes(options.extra_consent.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge)
            .set_redirect_uri(Cow::Borrowed(&redirect_url));
        if let Some(hint) = &options.login_hint {
            request = request.add_extra_param("login_hint", hint.clone());
        }
        let (url, _) = request.url();
        Ok(BrowserSignIn {
            listener,
            v6,
            redirect_url,
            verifier,
            state,
            url,
            wait: options.wait,
        })
    }

    /// Step 2: wait for the redirect, check it, and redeem the code with the
    /// PKCE verifier (RFC 6749 §4.1.3, RFC 7636 §4.5).
    pub async fn browser_finish(&self, sign_in: BrowserSignIn) -> Result<SignedIn, OAuthError> {
        let BrowserSignIn {
            listener,
            v6,
            redirect_url,
            verifier,
            state,
            wait,
            ..
        } = sign_in;
        let code = match redirect::receive(listener, v6, wait).await {
            None => {
                return Err(OAuthError::Rejected {
                    error: "timeout".to_owned(),
                    aadsts: None,
                    description: format!("no sign-in arrived within {} seconds", wait.as_secs()),
                });
            }
            Some(r) => accept(r, &state)?,
        };
        self.oauth
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(verifier)
            .set_redirect_uri(Cow::Borrowed(&redirect_url))
            .add_extra_param("scope", self.sign_in_scope_text())
            .request_async(&self.http)
            .await
            .map(SignedIn::from)
            .map_err(map_error)
    }
}

/// Checks `state`, then yields the code or the provider's error.
fn accept(redirect: Redirect, expected_state: &str) -> Result<String, OAuthError> {
    let (state, outcome) = match redirect {
        Redirect::Code { code, state } => (state, Ok(code)),
        Redirect::Error {
            error,
            description,
            state,
        } => (
            state,
            Err(OAuthError::Rejected {
                aadsts: aadsts_code(&description),
                error: error.chars().take(100).collect(),
                description: description.chars().take(400).collect(),
            }),
        ),
    };
    if aws_lc_rs::constant_time::verify_slices_are_equal(
        state.as_bytes(),
        expected_state.as_bytes(),
    )
    .is_err()
    {
        return Err(OAuthError::Rejected {
            error: "invalid_state".to_owned(),
            aadsts: None,
            description: "the redirect's state does not match this sign-in; it was abandoned"
                .to_owned(),
        });
    }
    outcome
}

/// Best effort: the URL is printed anyway.
fn open_browser(url: &str) {
    let mut cmd = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("rundll32");
        c.arg("url.dll,FileProtocolHandler");
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    cmd.arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Ok(mut child) = cmd.spawn() {
        std::thread::spawn(move || child.wait());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_must_match() {
        let code = |state: &str| Redirect::Code {
            code: "c".into(),
            state: state.into(),
        };
        assert_eq!(accept(code("s1"), "s1"), Ok("c".to_owned()));
        assert!(
            matches!(accept(code("s2"), "s1"), Err(OAuthError::Rejected { error, .. }) if error == "invalid_state")
        );
        assert!(
            matches!(accept(code(""), "s1"), Err(OAuthError::Rejected { error, .. }) if error == "invalid_state")
        );
        let denied = Redirect::Error {
            error: "access_denied".into(),
            description: "AADSTS65004: User declined".into(),
            state: "s1".into(),
        };
        assert_eq!(
            accept(denied, "s1"),
            Err(OAuthError::Rejected {
                error: "access_denied".into(),
                aadsts: Some("65004".into()),
                description: "AADSTS65004: User declined".into()
            })
        );
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let a = random_token(32).unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32).unwrap());
    }
}
