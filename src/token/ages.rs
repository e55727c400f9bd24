//! How old each cached access token is, for the token gauges of `/metrics`:
//! seconds until it expires and since its last successful refresh. A
//! token whose refresh is in flight is skipped rather than waited for, so
//! a slow identity provider never stalls a scrape.

use std::time::{Duration, SystemTime};

use super::cache::CacheKey;
use super::service::TokenService;

/// One cached token's times. `account` is the account name, or
/// `app:<provider>` for a provider's client-credentials token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenAge {
    pub account: String,
    /// Negative once expired.
    pub expires_in_secs: Option<f64>,
    pub since_refresh: Option<Duration>,
}

impl TokenService {
    /// Every token cached in memory with its times, sorted by account.
    pub fn token_ages(&self) -> Vec<TokenAge> {
        let now = SystemTime::now();
        let mut out: Vec<TokenAge> = self
            .caches_snapshot()
            .into_iter()
            .filter_map(|(key, cache)| {
                let state = cache.try_lock().ok()?;
                let expires_in_secs =
                    state
                        .access
                        .as_ref()
                        .map(|c| match c.expires_at.duration_since(now) {
                            Ok(left) => left.as_secs_f64(),
                            Err(past) => -past.duration().as_secs_f64(),
                        });
                Some(TokenAge {
                    account: match key {
                        CacheKey::Account(name) => name.as_str().to_owned(),
                        CacheKey::App(provider) => format!("app:{provider}"),
                        CacheKey::Graph(name) => format!("graph:{}", name.as_str()),
                        CacheKey::GraphApp(provider) => format!("graph-app:{provider}"),
                    },
                    expires_in_secs,
                    since_refresh: state.last_refresh.map(|at| at.elapsed()),
                })
            })
            .collect();
        out.sort_by(|a, b| a.account.cmp(&b.account));
        out
    }
}
