//! What the test identity provider tells a mail server about a token: the
//! RFC 7662 introspection answer, and whether the token may open a mailbox
//! by the rules in `grants.rs`. A child of `state` so it reads the issued
//! tokens directly.

use serde_json::{Value, json};

use super::super::grants::Principal;
use super::{State, now};

impl State {
    /// RFC 7662 §2.2 answer for `token`; `jti` names the token without
    /// revealing it, for [`Self::authorise`].
    pub fn introspect(&mut self, token: &str) -> Value {
        self.introspections += 1;
        match self.access.get(token) {
            Some(a) if a.active && now() < a.expires_at && !self.refused.contains(&a.mailbox) => {
                json!({
                    "active": true,
                    "email": a.mailbox,
                    "sub": a.mailbox,
                    "username": a.mailbox,
                    "scope": a.scope,
                    "exp": a.expires_at,
                    "token_type": "Bearer",
                    "jti": token_id(token),
                })
            }
            _ => json!({"active": false}),
        }
    }

    /// May the token introspected as `jti` open `mailbox`? `Err` carries the
    /// provider's reason. An empty `jti` is a password login, not ours to judge.
    pub fn authorise(&mut self, jti: &str, mailbox: &str) -> Result<(), String> {
        self.authorisations += 1;
        if jti.is_empty() {
            return Ok(());
        }
        let Some((_, a)) = self.access.iter().find(|(t, _)| token_id(t) == jti) else {
            return Err("AccessDenied: unknown token".to_owned());
        };
        let principal = if a.app_only {
            Principal::App {
                mailbox: a.mailbox.clone(),
            }
        } else {
            Principal::User(a.mailbox.clone())
        };
        self.grants.may_open(&principal, mailbox)
    }
}

/// A token's public name: the first 16 bytes of its SHA-256, hex.
pub fn token_id(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
