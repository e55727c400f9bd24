//! [`TokenService`]: the [`TokenSource`] sessions use. It resolves the login
//! ([`crate::accounts`]), checks the local password, and hands out a cached
//! access token, refreshing it when less than the provider's
//! `refresh_margin` is left (Exchange drops an IMAP session when the token it
//! logged in with expires, so a token must have life left).
//!
//! Single flight: each account has one tokio mutex around its token state,
//! and the cache is re-checked after acquiring it, so any number of
//! concurrent logins cause one refresh. The rotated refresh token is on disk
//! before the new access token leaves this module (`docs/design.md`: refresh tokens
//! rotate on every use). What a refusal does depends on what it means
//! ([`crate::oauth::Fault`]): a dead grant marks the account `needs-login`; a
//! fault in the provider's configuration leaves every account as it is and
//! sets the provider's health ([`super::ProviderHealth`]); a temporary fault
//! marks the account `refresh-failing`. Both of the latter back off, so a
//! flapping identity provider is not hammered and clients are told to come back.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::cache::{CacheKey, Cached, RefusalTable, TokenCache};
use super::health::HealthTable;
use super::refresh::{self, Flight, marked_by_mistake};
use super::source::served_here;
use super::{Grant, TokenError, TokenRequest};
use crate::accounts::{self, Accounts, Resolved};
use crate::base::AccountName;
use crate::config::Config;
use crate::oauth::TokenEndpoint;
use crate::store::{self, AccountState, CryptoError, Store, StoreError, Unlocked};

/// What a client is told while the provider's configuration is at fault.
pub const CONFIG_FAULT_REASON: &str = "the gateway's identity provider configuration needs attention; the administrator has been told";

/// Write `last_used` to disk at most this often per account.
pub const LAST_USED_INTERVAL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    pub refresh_margin: Duration,
    pub keep_warm_interval: Duration,
}

pub struct TokenService {
    pub(super) accounts: Accounts,
    pub(super) timing: HashMap<String, Timing>,
    pub(super) default_provider: Option<String>,
    pub(super) endpoints: HashMap<String, Arc<dyn TokenEndpoint>>,
    caches: std::sync::Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<TokenCache>>>>,
    config_path: OnceLock<String>,
    /// Per provider: the token endpoint asking for Microsoft Graph scopes.
    pub(super) graph_endpoints: OnceLock<HashMap<String, Arc<dyn TokenEndpoint>>>,
    pub(super) health: HealthTable,
    pub(super) refusals: RefusalTable,
    /// Where refresh failures and configuration faults are recorded, once
    /// `serve` set it.
    pub(super) audit: OnceLock<Arc<crate::audit::AuditLog>>,
}

impl TokenService {
    /// Fails only if the system random number generator does (see [`Accounts::new`]).
    pub fn new(
        config: &Config,
        store: Store,
        endpoints: HashMap<String, Arc<dyn TokenEndpoint>>,
    ) -> Result<Arc<TokenService>, CryptoError> {
        let timing = config
            .providers
            .iter()
            .map(|p| {
                let t = Timing {
                    refresh_margin: p.refresh_margin,
                    keep_warm_interval: p.keep_warm_interval,
                };
                (p.name.clone(), t)
            })
            .collect();
        let wrap = store::machine_wrapped_providers(config);
        let accounts = Accounts::new(config, store.with_machine_wrap(wrap))?;
        Ok(Arc::new(TokenService {
            accounts,
            timing,
            default_provider: config.providers.first().map(|p| p.name.clone()),
            endpoints,
            caches: Default::default(),
            config_path: OnceLock::new(),
            graph_endpoints: OnceLock::new(),
            health: HealthTable::new(config.providers.iter().map(|p| p.name.as_str())),
            refusals: RefusalTable::default(),
            audit: OnceLock::new(),
        }))
    }

    /// Takes what a reloaded configuration changes for logins: the account
    /// rules. Providers (endpoints, timing) stay as started; changing those
    /// needs a restart.
    pub fn reconfigure(&self, config: &Config) {
        self.accounts.set_rules(config.accounts.clone());
    }

    /// The config file to name in "run `mailgate login ... --config FILE`".
    pub fn set_config_path(&self, path: &Path) {
        let _ = self.config_path.set(path.display().to_string());
    }

    pub fn store(&self) -> &Store {
        self.accounts.store()
    }

    /// Accounts whose data key is unlocked in memory.
    pub async fn unlocked_count(&self) -> usize {
        self.accounts.held().await.len()
    }

    pub(super) async fn grant_inner(&self, req: TokenRequest<'_>) -> Result<Grant, TokenError> {
        match self
            .accounts
            .resolve(req.username, req.authzid, req.protocol)?
        {
            Resolved::Delegated { account, mailbox } => {
                let held = self.accounts.unlock(&account, req.password).await?;
                served_here(&account, &held.record.provider, req.provider)?;
                let cached = self.delegated(&held, false).await?;
                Ok(Grant {
                    account: held.record.account.to_string(),
                    sasl_user: mailbox.unwrap_or_else(|| held.record.sasl_user.clone()),
                    access_token: cached.token,
                    expires_at: cached.expires_at,
                })
            }
            Resolved::AppOnly {
                rule,
                provider,
                password_hash,
                mailbox,
            } => {
                self.accounts
                    .check_app_password(&rule, &password_hash, req.password)
                    .await?;
                let provider = provider
                    .or_else(|| self.default_provider.clone())
                    .unwrap_or_default();
                served_here(req.username, &provider, req.provider)?;
                let cached = self.app_only(&provider).await?;
                Ok(Grant {
                    account: mailbox.clone(),
                    sasl_user: mailbox,
                    access_token: cached.token,
                    expires_at: cached.expires_at,
                })
            }
        }
    }

    /// A fresh access token for a store account; `force` refreshes even if
    /// the cached one is fresh (keep-warm).
    pub(super) async fn delegated(
        &self,
        held: &Unlocked,
        force: bool,
    ) -> Result<Cached, TokenError> {
        let account = held.record.account.clone();
        let timing = self.timing_of(&account, &held.record.provider)?;
        let endpoint = self.endpoint(&held.record.provider)?;
        let cache = self.cache(CacheKey::Account(account.clone()));
        let mut s = cache.lock_owned().await;
        s.follow(&held.record.key_id);
        let now = Instant::now();
        self.note_use(&mut s, &account, now, force);
        if !force && let Some(c) = s.fresh(now) {
            return Ok(c.clone());
        }
        if let Some(e) = s.backing_off(now) {
            return Err(e);
        }
        let current = self.reopen(held).await?;
        if current.record.state == AccountState::NeedsLogin && !marked_by_mistake(&current) {
            let why = "the stored sign-in was refused earlier";
            return Err(self.needs_login(&account, why, false));
        }
        if !force && !s.seen_disk {
            s.seen_disk = true;
            if let Some(c) = disk_token(&current, timing.refresh_margin) {
                s.access = Some(c.clone());
                return Ok(c);
            }
        }
        let flight = Flight {
            cache: s,
            endpoint,
            store: self.store().clone(),
            current: current.clone(),
            margin: timing.refresh_margin,
            second_resource: false,
        };
        let (mut s, outcome) = refresh::run(flight)
            .await
            .ok_or_else(|| temporary("token refresh did not run"))?;
        self.settle(&mut s, &current, outcome).await
    }

    pub(super) async fn reopen(&self, held: &Unlocked) -> Result<Unlocked, TokenError> {
        let (store, account) = (self.store().clone(), held.record.account.clone());
        let (key, key_id) = (held.key.clone(), held.record.key_id.clone());
        let result = tokio::task::spawn_blocking(move || store.reopen(&account, &key, &key_id))
            .await
            .map_err(|_| temporary("token store read did not run"))?;
        match result {
            Ok(u) => Ok(u),
            Err(StoreError::Replaced { account }) => {
                self.accounts.forget(&account).await;
                Err(temporary("the account was enrolled again; log in again"))
            }
            Err(e) => Err(accounts::store_error(&held.record.account, e).into()),
        }
    }

    pub(super) async fn mark(
        &self,
        account: &AccountName,
        key_id: &str,
        state: AccountState,
        error: &str,
    ) {
        let (store, account, key_id, error) = (
            self.store().clone(),
            account.clone(),
            key_id.to_owned(),
            error.to_owned(),
        );
        let done = tokio::task::spawn_blocking(move || {
            store.set_state(&account, Some(&key_id), state, Some(&error))
        })
        .await;
        if let Ok(Err(e)) = done {
            tracing::warn!(error = %e, "cannot record the account state");
        }
    }

    fn note_use(&self, s: &mut TokenCache, account: &AccountName, now: Instant, background: bool) {
        if background || s.last_touch.is_some_and(|t| now < t + LAST_USED_INTERVAL) {
            return;
        }
        s.last_touch = Some(now);
        let (store, account) = (self.store().clone(), account.clone());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.touch(&account, SystemTime::now()) {
                tracing::warn!(account = %account, error = %e, "cannot record last use");
            }
        });
    }

    /// The error (and, when `log`, the one log line) telling the admin
    /// which command re-authorises the account.
    pub(super) fn needs_login(&self, account: &AccountName, why: &str, log: bool) -> TokenError {
        let config = self
            .config_path
            .get()
            .map_or("<config file>", String::as_str);
        let command = format!("mailgate login {account} --config {config}");
        if log {
            tracing::error!(%account, "{why}; run `{command}` to sign in again");
        }
        TokenError::NeedsAuthorisation {
            account: account.to_string(),
            hint: format!("{why}; the administrator must run `{command}`"),
        }
    }

    pub(super) fn timing_of(
        &self,
        account: &AccountName,
        provider: &str,
    ) -> Result<Timing, TokenError> {
        self.timing.get(provider).copied().ok_or_else(|| {
            let why = format!("provider {provider:?} is no longer configured");
            self.needs_login(account, &why, true)
        })
    }

    pub(super) fn endpoint(&self, provider: &str) -> Result<Arc<dyn TokenEndpoint>, TokenError> {
        self.endpoints
            .get(provider)
            .cloned()
            .ok_or_else(|| temporary(&format!("no token endpoint for provider {provider:?}")))
    }

    pub(super) fn cache(&self, key: CacheKey) -> Arc<tokio::sync::Mutex<TokenCache>> {
        let mut map = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key).or_default().clone()
    }

    /// The caches as they are now (for reports that must not wait on them).
    pub(super) fn caches_snapshot(&self) -> Vec<(CacheKey, Arc<tokio::sync::Mutex<TokenCache>>)> {
        let map = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub(super) async fn last_refresh(&self, account: &AccountName) -> Option<Instant> {
        let cache = self.cache(CacheKey::Account(account.clone()));
        cache.lock().await.last_refresh
    }

    /// Forgets `grant`'s token if a refusal may cost a refresh now; `false`
    /// when the account refreshed after a refusal too recently.
    pub(super) async fn drop_token(&self, grant: &Grant) -> bool {
        if !self.refusals.refused(&grant.account, Instant::now()) {
            tracing::warn!(account = %grant.account, "upstream refused a fresh token again; no refresh until the refusal back-off ends");
            return false;
        }
        let own = AccountName::parse(&grant.account)
            .ok()
            .map(CacheKey::Account);
        let candidates: Vec<_> = {
            let map = self.caches.lock().unwrap_or_else(|p| p.into_inner());
            map.iter()
                .filter(|(k, _)| Some(*k) == own.as_ref() || matches!(k, CacheKey::App(_)))
                .map(|(_, v)| v.clone())
                .collect()
        };
        for cache in candidates {
            let mut s = cache.lock().await;
            if s.access
                .as_ref()
                .is_some_and(|c| c.token == grant.access_token)
            {
                s.access = None;
                return true;
            }
        }
        true
    }
}

/// The disk's access token, if it still has more than `margin` to live.
fn disk_token(current: &Unlocked, margin: Duration) -> Option<Cached> {
    let token = current.tokens.access_token.clone()?;
    let expires_at = current.tokens.access_expires_at?;
    let left = expires_at.duration_since(SystemTime::now()).ok()?;
    let fresh_for = left.checked_sub(margin).filter(|d| !d.is_zero())?;
    Some(Cached {
        token,
        expires_at,
        fresh_until: Instant::now() + fresh_for,
    })
}

fn temporary(reason: &str) -> TokenError {
    TokenError::Temporary {
        reason: reason.to_owned(),
        retry_after: None,
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "graph_tests.rs"]
mod graph_tests;

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod lifecycle_tests;
