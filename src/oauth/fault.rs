//! What an identity-provider error means for the account that hit it.
//!
//! Getting this wrong is expensive in both directions: treating an expired
//! client secret as a dead grant de-authorises every account at once (each
//! must then be enrolled again by hand), and treating a dead grant as
//! temporary leaves an account retrying forever. So only errors that say
//! *this sign-in is over* ([`Fault::DeadGrant`]) touch the account; errors about
//! the app registration or mailgate's provider settings are a
//! [`Fault::ProviderConfig`] that every account shares and that goes away once
//! the configuration is fixed; the rest is [`Fault::Temporary`].
//!
//! Codes: RFC 6749 §5.2 error names, and the `AADSTS` codes Microsoft puts in
//! `error_description` (`docs/design.md`, "Microsoft facts").

use std::time::Duration;

use super::OAuthError;
use super::response::aadsts_code;

/// How long to stay away after AADSTS50196 ("client request loop"): the
/// provider already thinks we call too often.
pub const REQUEST_LOOP_BACKOFF: Duration = Duration::from_secs(10 * 60);

/// The meaning of an [`OAuthError`] for the account and the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The refresh token is revoked, expired or needs the user: sign in again.
    DeadGrant,
    /// The app registration or the provider settings are wrong: no account
    /// is to blame. `fix` tells the admin what to change.
    ProviderConfig { fix: &'static str },
    /// Try again later, not before `retry_after` when given.
    Temporary { retry_after: Option<Duration> },
}

/// AADSTS codes that mean the grant itself is over.
const DEAD_CODES: &[&str] = &[
    "70008",  // refresh token expired
    "700082", // expired by inactivity
    "50173",  // revoked (password change, admin)
    "54005",  // code already redeemed
    "70043",  // sign-in frequency policy
    "700084", // SPA refresh token lifetime
    "50076",  // MFA required
    "50079",  // MFA registration required
    "50158",  // external security challenge
    "53003",  // blocked by conditional access
    "65001",  // consent withdrawn
    "50057",  // user disabled
    "50034",  // user no longer exists
];

/// AADSTS codes about the app registration, each with the fix.
const CONFIG_CODES: &[(&str, &str)] = &[
    ("7000215", SECRET_FIX),
    ("7000222", SECRET_FIX),
    ("700027", CERTIFICATE_FIX),
    ("700024", CERTIFICATE_FIX),
    ("7000218", CREDENTIAL_FIX),
    ("700016", CLIENT_ID_FIX),
    ("90002", TENANT_FIX),
    ("70011", SCOPE_FIX),
    ("500011", CONSENT_FIX),
];

const SECRET_FIX: &str = "the client secret is wrong or expired: create a new client secret in the app registration (Certificates & secrets), set client_secret, and reload";
const CERTIFICATE_FIX: &str = "the client certificate assertion was refused: check that client_certificate matches a certificate uploaded to the app registration, that it has not expired, and that the system clock is right";
const CREDENTIAL_FIX: &str = "the provider wants a client credential: set client_secret or client_certificate, or allow public client flows in the app registration";
const CLIENT_ID_FIX: &str = "the app is not registered in this tenant: check client_id and tenant";
const TENANT_FIX: &str = "the tenant does not exist: check tenant";
const SCOPE_FIX: &str = "a scope is refused: check scopes / app_scopes";
const CONSENT_FIX: &str =
    "the resource is not available to the app: check the scopes and grant admin consent";
const CLIENT_FIX: &str = "the app registration refused mailgate's credentials or grant: check client_id, client_secret / client_certificate and admin consent";
const SETTINGS_FIX: &str = "the provider settings cannot be used as written: check token_url and the client credentials in the config file";
const UNKNOWN_FIX: &str = "the identity provider sent an error mailgate does not know; check the provider settings and the app registration";

impl OAuthError {
    /// Classifies the error; see the module documentation.
    pub fn fault(&self) -> Fault {
        match self {
            OAuthError::Temporary { retry_after, .. } => Fault::Temporary {
                retry_after: *retry_after,
            },
            OAuthError::Config(_) => Fault::ProviderConfig { fix: SETTINGS_FIX },
            OAuthError::Rejected { error, aadsts, .. } => classify(error, aadsts.as_deref()),
        }
    }
}

fn classify(error: &str, aadsts: Option<&str>) -> Fault {
    if aadsts == Some("50196") {
        return Fault::Temporary {
            retry_after: Some(REQUEST_LOOP_BACKOFF),
        };
    }
    if let Some((_, fix)) = CONFIG_CODES.iter().find(|(c, _)| Some(*c) == aadsts) {
        return Fault::ProviderConfig { fix };
    }
    if aadsts.is_some_and(|c| DEAD_CODES.contains(&c)) {
        return Fault::DeadGrant;
    }
    match error {
        "invalid_grant" | "interaction_required" | "consent_required" | "login_required" => {
            Fault::DeadGrant
        }
        "temporarily_unavailable" | "server_error" | "slow_down" => {
            Fault::Temporary { retry_after: None }
        }
        "invalid_client" | "unauthorized_client" | "unsupported_grant_type" => {
            Fault::ProviderConfig { fix: CLIENT_FIX }
        }
        "invalid_scope" => Fault::ProviderConfig { fix: SCOPE_FIX },
        "invalid_resource" => Fault::ProviderConfig { fix: CONSENT_FIX },
        _ => Fault::ProviderConfig { fix: UNKNOWN_FIX },
    }
}

/// Classifies an error as recorded in an account's `last_error` (the
/// [`OAuthError`] display text, `error (AADSTSn): description`), so that an
/// account marked "needs login" by a configuration fault may try again. Text
/// that names no known error counts as a dead grant: only a recognised
/// cause lifts the mark.
pub fn recorded_fault(text: &str) -> Fault {
    let error: String = text
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    match classify(&error, aadsts_code(text).as_deref()) {
        Fault::ProviderConfig { fix } if fix == UNKNOWN_FIX => Fault::DeadGrant,
        known => known,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(error: &str, aadsts: Option<&str>) -> Fault {
        OAuthError::Rejected {
            error: error.into(),
            aadsts: aadsts.map(str::to_owned),
            description: String::new(),
        }
        .fault()
    }

    #[test]
    fn table() {
        for (error, code) in [
            ("invalid_grant", Some("70008")),
            ("invalid_grant", Some("700082")),
            ("invalid_grant", Some("50173")),
            ("invalid_grant", Some("54005")),
            ("invalid_grant", Some("70043")),
            ("invalid_grant", None),
            ("interaction_required", Some("50076")),
        ] {
            assert_eq!(rejected(error, code), Fault::DeadGrant, "{error} {code:?}");
        }
        for (error, code) in [
            ("invalid_client", Some("7000215")),
            ("invalid_client", Some("7000222")),
            ("invalid_client", Some("700027")),
            ("invalid_client", Some("700024")),
            ("unauthorized_client", Some("700016")),
            ("invalid_request", Some("7000218")),
            ("invalid_scope", Some("70011")),
            ("invalid_request", Some("90002")),
            ("invalid_resource", Some("500011")),
            ("invalid_grant", Some("7000222")),
            ("invalid_client", None),
            ("unauthorized_client", None),
            ("invalid_scope", None),
            ("something_new", None),
        ] {
            assert!(
                matches!(rejected(error, code), Fault::ProviderConfig { .. }),
                "{error} {code:?}"
            );
        }
        assert_eq!(
            rejected("temporarily_unavailable", None),
            Fault::Temporary { retry_after: None }
        );
        assert_eq!(
            rejected("invalid_request", Some("50196")),
            Fault::Temporary {
                retry_after: Some(REQUEST_LOOP_BACKOFF)
            }
        );
        let five = Some(Duration::from_secs(5));
        let t = OAuthError::Temporary {
            reason: "HTTP 429".into(),
            retry_after: five,
        };
        assert_eq!(t.fault(), Fault::Temporary { retry_after: five });
        assert!(matches!(
            OAuthError::Config("x".into()).fault(),
            Fault::ProviderConfig { .. }
        ));
    }

    #[test]
    fn recorded_errors_classify_like_live_ones() {
        let secret = OAuthError::Rejected {
            error: "invalid_client".into(),
            aadsts: Some("7000215".into()),
            description: "AADSTS7000215: Invalid client secret provided.".into(),
        };
        assert_eq!(recorded_fault(&secret.to_string()), secret.fault());
        let dead = OAuthError::Rejected {
            error: "invalid_grant".into(),
            aadsts: Some("700082".into()),
            description: "expired".into(),
        };
        assert_eq!(recorded_fault(&dead.to_string()), Fault::DeadGrant);
        assert_eq!(recorded_fault("cannot read the file"), Fault::DeadGrant);
        assert_eq!(recorded_fault(""), Fault::DeadGrant);
    }
}
