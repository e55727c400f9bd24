//! App-only accounts: one client-credentials token per provider serves every
//! mailbox the app may open (scope `.default`; `docs/design.md`, "Microsoft facts"),
//! cached and single-flighted like a delegated account's token. A refusal is
//! never an account's fault here: it sets the provider's health and logins
//! get a temporary answer until the app registration is fixed.

use std::time::Duration;

use tokio::time::Instant;

use super::TokenError;
use super::cache::{self, CacheKey, Cached};
use super::refresh::temporary_reason;
use super::service::{CONFIG_FAULT_REASON, TokenService};
use crate::metrics::{self, GrantKind, TokenOutcome};
use crate::oauth::Fault;

/// There is no user sign-in behind an app-only token: any refusal that is
/// not temporary is about the app registration.
const APP_FIX: &str = "the provider refused the app credentials: check client_secret / client_certificate and admin consent for the app";

impl TokenService {
    pub(super) async fn app_only(&self, provider: &str) -> Result<Cached, TokenError> {
        let margin = self
            .timing
            .get(provider)
            .map_or(Duration::from_secs(15 * 60), |t| t.refresh_margin);
        let endpoint = self.endpoint(provider)?;
        let cache = self.cache(CacheKey::App(provider.to_owned()));
        let mut s = cache.lock().await;
        let now = Instant::now();
        if let Some(c) = s.fresh(now) {
            return Ok(c.clone());
        }
        if let Some(e) = s.backing_off(now) {
            return Err(e);
        }
        let counted =
            |outcome| metrics::global().token_request(GrantKind::client_credentials, outcome);
        let e = match endpoint.client_credentials().await {
            Ok(a) => {
                counted(TokenOutcome::ok);
                self.provider_ok(provider);
                let margin = cache::margin_for(&a, margin);
                return Ok(s.store(a.access_token, a.expires_in, margin));
            }
            Err(e) => e,
        };
        counted(match e.fault() {
            Fault::DeadGrant => TokenOutcome::config_fault,
            fault => super::refresh::fault_outcome(&fault),
        });
        match e.fault() {
            Fault::Temporary { retry_after } => {
                tracing::warn!(provider, error = %e, "client credentials grant failed; will retry later");
                Err(s.fail(temporary_reason(&e), retry_after))
            }
            Fault::ProviderConfig { fix } => {
                self.config_fault(provider, &e, fix);
                Err(s.fail(CONFIG_FAULT_REASON.to_owned(), None))
            }
            Fault::DeadGrant => {
                self.config_fault(provider, &e, APP_FIX);
                Err(s.fail(CONFIG_FAULT_REASON.to_owned(), None))
            }
        }
    }
}
