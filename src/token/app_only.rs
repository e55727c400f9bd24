//! App-only accounts: one client-credentials token per provider serves every
//! mailbox the app may open (scope `.default`; `docs/design.md`, "Microsoft facts"),
//! cached and single-flighted like a delegated account's token.

use std::time::Duration;

use tokio::time::Instant;

use super::TokenError;
use super::cache::{self, CacheKey, Cached};
use super::service::TokenService;

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
        match endpoint.client_credentials().await {
            Ok(a) => Ok(s.store(a.access_token, a.expires_in, margin)),
            Err(e) => match cache::temporary_parts(&e) {
                Some((reason, retry_after)) => {
                    tracing::warn!(provider, error = %e, "client credentials grant failed; will retry later");
                    Err(s.fail(reason, retry_after))
                }
                None => {
                    tracing::error!(provider, error = %e, "client credentials refused: check the app registration's secret or certificate and admin consent");
                    Err(TokenError::NeedsAuthorisation {
                        account: format!("app-only ({provider})"),
                        hint: format!(
                            "the provider refused the app credentials ({e}); check client_secret / client_certificate and admin consent for provider {provider}"
                        ),
                    })
                }
            },
        }
    }
}
