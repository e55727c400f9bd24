//! The OpenID Connect id token the test IdP adds to a sign-in that asked for
//! `openid`, naming who signed in (mailgate checks it at enrolment).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::state::{now, random};

/// An OpenID Connect id token naming who signed in, shaped like Microsoft's
/// (`preferred_username`, `name`, `oid`) with a placeholder signature:
/// mailgate reads it straight from the token endpoint and does not verify it.
pub fn id_token(mailbox: &str) -> String {
    let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = json!({
        "aud": "client-1",
        "iss": "http://127.0.0.1/test-tenant/v2.0",
        "iat": now(),
        "exp": now() + 3600,
        "name": "Test User",
        "oid": random("oid-"),
        "preferred_username": mailbox,
        "tid": "test-tenant",
        "ver": "2.0",
    });
    format!(
        "{}.{}.{}",
        part(json!({"alg": "RS256", "typ": "JWT", "kid": "test"})),
        part(claims),
        URL_SAFE_NO_PAD.encode(b"not-a-signature")
    )
}
