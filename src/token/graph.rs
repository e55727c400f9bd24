//! A second access token per account, for Microsoft Graph (`submit =
//! "graph"`): Entra refresh tokens work across the resources the app has
//! consent for, so the account's refresh token also buys a token with the
//! Graph `Mail.Send` scope (`docs/design.md`, "Sending through Graph"). It
//! is cached per account next to the mail token and refreshed under the
//! account's lock, so the two never rotate the refresh token at once; the
//! rotated refresh token is saved, the Graph access token only kept in
//! memory. App-only rules get a client-credentials token for Graph's
//! `.default` scope, one per provider.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;

use super::TokenError;
use super::cache::CacheKey;
use super::refresh::{self, Flight};
use super::service::TokenService;
use crate::accounts::Resolved;
use crate::base::{AccountName, Protocol};
use crate::oauth::{Fault, TokenEndpoint};
use crate::secret::Secret;

impl TokenService {
    /// Installs the per-provider token endpoints that ask for Graph scopes
    /// (once, at start).
    pub fn set_graph_endpoints(&self, endpoints: HashMap<String, Arc<dyn TokenEndpoint>>) {
        let _ = self.graph_endpoints.set(endpoints);
    }

    fn graph_endpoint(&self, provider: &str) -> Result<Arc<dyn TokenEndpoint>, TokenError> {
        self.graph_endpoints
            .get()
            .and_then(|m| m.get(provider).cloned())
            .ok_or_else(|| temporary(&format!("no Graph token endpoint for {provider:?}")))
    }

    /// A Graph access token for the mailbox whose SMTP `user=` is `user`,
    /// newer than `refused` when given. The account must have logged in
    /// with its password since start (its key is then in memory).
    pub async fn graph_access(
        &self,
        user: &str,
        refused: Option<&Secret<String>>,
    ) -> Result<Secret<String>, TokenError> {
        let name = AccountName::parse(user).map_err(|_| TokenError::BadCredentials)?;
        let held = self.accounts.held().await.into_iter().find(|h| {
            h.record.account == name
                || AccountName::parse(&h.record.sasl_user).is_ok_and(|s| s == name)
        });
        if let Some(held) = held {
            return self.delegated_graph(&held, refused).await;
        }
        match self.accounts.resolve(&name, None, Protocol::Smtp) {
            Ok(Resolved::AppOnly { provider, .. }) => {
                let provider = provider
                    .or_else(|| self.default_provider.clone())
                    .unwrap_or_default();
                self.app_graph(&provider, refused).await
            }
            _ => Err(temporary("the account has not logged in since start")),
        }
    }

    async fn delegated_graph(
        &self,
        held: &crate::store::Unlocked,
        refused: Option<&Secret<String>>,
    ) -> Result<Secret<String>, TokenError> {
        let account = held.record.account.clone();
        let timing = self.timing_of(&account, &held.record.provider)?;
        let endpoint = self.graph_endpoint(&held.record.provider)?;
        // The mail token's lock first: one refresh at a time per account.
        let mail = self.cache(CacheKey::Account(account.clone()));
        let _mail = mail.lock().await;
        let cache = self.cache(CacheKey::Graph(account.clone()));
        let mut s = cache.lock_owned().await;
        if let Some(answer) = s.reuse(refused, Instant::now()) {
            return answer;
        }
        let current = self.reopen(held).await?;
        let flight = Flight {
            cache: s,
            endpoint,
            store: self.store().clone(),
            current: current.clone(),
            margin: timing.refresh_margin,
            second_resource: true,
        };
        let (mut s, outcome) = refresh::run(flight)
            .await
            .ok_or_else(|| temporary("Graph token refresh did not run"))?;
        self.settle(&mut s, &current, outcome)
            .await
            .map(|c| c.token)
    }

    async fn app_graph(
        &self,
        provider: &str,
        refused: Option<&Secret<String>>,
    ) -> Result<Secret<String>, TokenError> {
        let endpoint = self.graph_endpoint(provider)?;
        let cache = self.cache(CacheKey::GraphApp(provider.to_owned()));
        let mut s = cache.lock().await;
        if let Some(answer) = s.reuse(refused, Instant::now()) {
            return answer;
        }
        match endpoint.client_credentials().await {
            Ok(a) => {
                let margin = super::cache::margin_for(&a, std::time::Duration::from_secs(300));
                Ok(s.store(a.access_token, a.expires_in, margin).token)
            }
            Err(e) => {
                let retry_after = match e.fault() {
                    Fault::Temporary { retry_after } => retry_after,
                    _ => None,
                };
                tracing::warn!(provider, error = %e, "client credentials grant for Graph failed");
                Err(s.fail(e.to_string(), retry_after))
            }
        }
    }
}

fn temporary(reason: &str) -> TokenError {
    TokenError::Temporary {
        reason: reason.to_owned(),
        retry_after: None,
    }
}
