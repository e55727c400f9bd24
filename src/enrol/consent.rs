//! Consent for Microsoft Graph, checked at enrolment when a listener of the
//! account's provider may send through Graph (`submit = "graph"` or
//! `"auto"`). Entra issues a token for one resource per request, so the
//! sign-in itself yields a mail token only; but the new refresh token buys a
//! Graph token exactly when the app has consent for Graph's `Mail.Send`.
//! Asking for one right away turns a missing permission into a message for
//! the admin at enrolment, not a refused message weeks later. A missing
//! consent never fails the mail enrolment: IMAP and POP3 work without it
//! (docs/design.md, "Sending through Graph").

use std::fmt;

use crate::config::{Config, Provider, SubmitMode};
use crate::oauth::{OAuthClient, OAuthError, TokenResponse};

/// AADSTS code: the user or administrator has not consented to the app
/// using the resource.
const CONSENT_MISSING: &str = "65001";
/// AADSTS code: the scope is not valid for the app (`invalid_scope`).
const SCOPE_INVALID: &str = "70011";

/// What the Graph check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphConsent {
    /// No listener of the provider sends through Graph.
    NotNeeded,
    /// A Graph token was issued: sending through Graph will work.
    Granted,
    /// Entra refused the Graph scope: the app registration lacks the
    /// permission or its consent.
    Missing {
        listener: String,
        scopes: String,
        reason: String,
    },
    /// The check itself failed (network, throttling): nothing is known.
    Unchecked { listener: String, reason: String },
}

impl fmt::Display for GraphConsent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphConsent::NotNeeded => Ok(()),
            GraphConsent::Granted => write!(f, "Microsoft Graph: consent for sending is in place."),
            GraphConsent::Missing {
                listener,
                scopes,
                reason,
            } => write!(
                f,
                "warning: listener {listener} sends through Microsoft Graph, but the provider \
                 refused a Graph token ({reason}). In the app registration, add the Microsoft \
                 Graph delegated permission Mail.Send ({scopes}), and Mail.ReadWrite for \
                 messages over 3 MB, then grant admin consent; the mail enrolment itself is \
                 stored and IMAP/POP3 work meanwhile."
            ),
            GraphConsent::Unchecked { listener, reason } => write!(
                f,
                "note: listener {listener} sends through Microsoft Graph; the consent for it \
                 could not be checked ({reason}). The app registration needs the Microsoft \
                 Graph delegated permission Mail.Send (Mail.ReadWrite as well for messages \
                 over 3 MB), with admin consent."
            ),
        }
    }
}

/// A Graph check to run after the sign-in.
pub(super) struct GraphCheck {
    client: OAuthClient,
    listener: String,
    scopes: Vec<String>,
}

/// The Graph scopes to consent to in the sign-in, and the check to run
/// after it, when a listener of `provider` may send through Graph.
pub(super) fn plan(config: &Config, provider: &Provider) -> Result<Option<GraphCheck>, OAuthError> {
    let Some(listener) = config
        .listeners
        .iter()
        .find(|l| l.provider == provider.name && l.submit != SubmitMode::Smtp)
    else {
        return Ok(None);
    };
    let graph = Provider {
        scopes: provider.graph.scopes.clone(),
        ..provider.clone()
    };
    Ok(Some(GraphCheck {
        client: OAuthClient::new(&graph)?,
        listener: listener.name.clone(),
        scopes: provider.graph.scopes.clone(),
    }))
}

impl GraphCheck {
    /// The Graph scopes, for the authorize request's consent.
    pub(super) fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Asks for a Graph token with the sign-in's refresh token. Microsoft
    /// rotates the refresh token on every use, so on success the new one
    /// replaces it in `tokens` (to be stored).
    pub(super) async fn run(self, tokens: &mut TokenResponse) -> GraphConsent {
        let Some(refresh) = &tokens.refresh_token else {
            return GraphConsent::NotNeeded;
        };
        match self.client.refresh_token(refresh).await {
            Ok(answer) => {
                if let Some(rotated) = answer.refresh_token {
                    tokens.refresh_token = Some(rotated);
                }
                GraphConsent::Granted
            }
            Err(e) => sorted(e, self.listener, self.scopes.join(" ")),
        }
    }
}

fn sorted(e: OAuthError, listener: String, scopes: String) -> GraphConsent {
    match &e {
        OAuthError::Rejected { error, aadsts, .. }
            if error == "invalid_scope"
                || matches!(aadsts.as_deref(), Some(CONSENT_MISSING | SCOPE_INVALID)) =>
        {
            GraphConsent::Missing {
                listener,
                scopes,
                reason: e.to_string(),
            }
        }
        _ => GraphConsent::Unchecked {
            listener,
            reason: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(error: &str, aadsts: Option<&str>) -> OAuthError {
        OAuthError::Rejected {
            error: error.into(),
            aadsts: aadsts.map(Into::into),
            description: "d".into(),
        }
    }

    #[test]
    fn consent_and_scope_refusals_name_the_permission() {
        for e in [
            rejected("invalid_grant", Some("65001")),
            rejected("invalid_scope", None),
            rejected("invalid_request", Some("70011")),
        ] {
            let c = sorted(e, "smtp".into(), "g/Mail.Send".into());
            assert!(matches!(c, GraphConsent::Missing { .. }), "{c:?}");
            let text = c.to_string();
            assert!(text.contains("Mail.Send (g/Mail.Send)"), "{text}");
            assert!(text.contains("Mail.ReadWrite"), "{text}");
        }
    }

    #[test]
    fn other_failures_leave_the_consent_unknown() {
        let temporary = OAuthError::Temporary {
            reason: "503".into(),
            retry_after: None,
        };
        for e in [temporary, rejected("invalid_grant", Some("70000"))] {
            let c = sorted(e, "smtp".into(), "s".into());
            assert!(matches!(c, GraphConsent::Unchecked { .. }), "{c:?}");
        }
    }
}
