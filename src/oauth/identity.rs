//! Who signed in: the user name an enrolment's tokens were issued to, read
//! from the OpenID Connect id token (Core §2) or, failing that, from the
//! access token when it is a readable JWT (Microsoft's access tokens for
//! Exchange Online are; other providers' may be opaque).
//!
//! No signature is verified, on purpose: both tokens come straight from the
//! token endpoint over TLS, in the answer to mailgate's own request
//! (OpenID Connect Core §3.1.3.7, item 6, allows exactly this), so whoever
//! could forge them could also hand out any token they like. The claim only
//! guards against an honest mistake: a browser signed in to another account.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::secret::Secret;

/// Longest token read; Microsoft's are 1.5-3 KB.
pub const MAX_JWT_LEN: usize = 16 * 1024;
/// Longest user name taken from a claim.
pub const MAX_CLAIM_LEN: usize = 320;
/// Claims naming the user, most specific first: Microsoft's
/// `preferred_username` (v2.0) and `upn` (work accounts), then
/// `unique_name` (v1.0 tokens) and the standard `email`.
const USER_CLAIMS: [&str; 4] = ["preferred_username", "upn", "unique_name", "email"];

/// The signed-in user name from the id token, else from the access token;
/// `None` when neither is a JWT carrying one.
pub fn signed_in_as(
    id_token: Option<&Secret<String>>,
    access_token: &Secret<String>,
) -> Option<String> {
    id_token
        .and_then(|t| user_claim(t.expose()))
        .or_else(|| user_claim(access_token.expose()))
}

/// The first user claim of a JWT's payload (RFC 7519 §3: `header.payload.sig`,
/// each base64url without padding).
fn user_claim(jwt: &str) -> Option<String> {
    if jwt.len() > MAX_JWT_LEN {
        return None;
    }
    let mut parts = jwt.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    parts.next()?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    USER_CLAIMS.iter().find_map(|c| {
        let v = claims.get(c)?.as_str()?.trim();
        (!v.is_empty() && v.len() <= MAX_CLAIM_LEN && !v.chars().any(char::is_control))
            .then(|| v.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: Value) -> String {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.c2ln",
            part(&serde_json::json!({"alg": "RS256", "typ": "JWT"})),
            part(&claims)
        )
    }

    fn secret(s: &str) -> Secret<String> {
        Secret::new(s.to_owned())
    }

    #[test]
    fn the_id_token_comes_first_then_the_access_token() {
        let id = secret(&jwt(
            serde_json::json!({"preferred_username": "Bob@Example.test"}),
        ));
        let at = secret(&jwt(serde_json::json!({"upn": "alice@example.test"})));
        assert_eq!(
            signed_in_as(Some(&id), &at).as_deref(),
            Some("Bob@Example.test")
        );
        assert_eq!(
            signed_in_as(None, &at).as_deref(),
            Some("alice@example.test")
        );
        let empty = secret(&jwt(serde_json::json!({"sub": "x"})));
        assert_eq!(
            signed_in_as(Some(&empty), &at).as_deref(),
            Some("alice@example.test"),
            "an id token without a user claim falls back to the access token"
        );
    }

    #[test]
    fn claims_in_order_of_preference() {
        let t = jwt(serde_json::json!({"email": "e@x", "upn": "u@x"}));
        assert_eq!(user_claim(&t).as_deref(), Some("u@x"));
        let t = jwt(serde_json::json!({"unique_name": "live.com#n@x", "email": "e@x"}));
        assert_eq!(user_claim(&t).as_deref(), Some("live.com#n@x"));
    }

    #[test]
    fn unreadable_tokens_name_nobody() {
        for t in [
            "at-opaque".to_owned(),
            "a.b".to_owned(),
            "a.!!!.c".to_owned(),
            format!("h.{}.s", URL_SAFE_NO_PAD.encode("not json")),
            jwt(serde_json::json!({"preferred_username": 7})),
            jwt(serde_json::json!({"preferred_username": ""})),
            jwt(serde_json::json!({"preferred_username": "a\u{1}b@x"})),
            jwt(serde_json::json!({"preferred_username": "x".repeat(MAX_CLAIM_LEN + 1)})),
            jwt(serde_json::json!({"preferred_username": "a@x", "pad": "y".repeat(MAX_JWT_LEN)})),
        ] {
            assert_eq!(user_claim(&t), None, "{t:.60}");
        }
        assert_eq!(signed_in_as(None, &secret("at-opaque")), None);
    }
}
