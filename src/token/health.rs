//! Per-provider health: is the provider's configuration (app registration,
//! client secret or certificate, scopes) usable? A configuration fault is
//! shared by every account of the provider, so it is reported once, here and
//! in one log line, instead of being pinned on each account (which would
//! de-authorise them all; see [`crate::oauth::Fault`]). The admin console
//! and readiness probe read [`TokenService::provider_health`].

use std::collections::HashMap;
use std::sync::Mutex;

use super::service::TokenService;
use crate::audit::{AuditLog, Event};
use crate::oauth::OAuthError;

/// What the token service last learned about a provider's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderHealth {
    /// No configuration fault seen since the last successful grant.
    Ok,
    /// The provider refused mailgate's app credentials or settings.
    /// Logins get a temporary answer until the configuration is fixed.
    ConfigFault {
        /// The provider's error, as it answered.
        error: String,
        /// What to change.
        fix: String,
    },
}

/// The health of each configured provider.
#[derive(Debug, Default)]
pub(super) struct HealthTable(Mutex<HashMap<String, ProviderHealth>>);

impl HealthTable {
    pub fn new<'a>(providers: impl Iterator<Item = &'a str>) -> HealthTable {
        let map = providers
            .map(|p| (p.to_owned(), ProviderHealth::Ok))
            .collect();
        HealthTable(Mutex::new(map))
    }

    fn set(&self, provider: &str, health: ProviderHealth) -> ProviderHealth {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(provider.to_owned(), health)
            .unwrap_or(ProviderHealth::Ok)
    }
}

impl TokenService {
    /// Every configured provider with its health, sorted by name.
    pub fn provider_health(&self) -> Vec<(String, ProviderHealth)> {
        let map = self.health.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = map.iter().map(|(p, h)| (p.clone(), h.clone())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Records a configuration fault; logs it (and returns `true`) when it
    /// is new or needs a different fix. Microsoft's descriptions carry a
    /// trace id and a timestamp, so the error text differs on every request.
    pub(super) fn config_fault(&self, provider: &str, error: &OAuthError, fix: &str) -> bool {
        let now = ProviderHealth::ConfigFault {
            error: error.to_string(),
            fix: fix.to_owned(),
        };
        let before = self.health.set(provider, now);
        if !matches!(before, ProviderHealth::ConfigFault { fix: f, .. } if f == fix) {
            tracing::error!(
                provider,
                %error,
                "identity provider refused mailgate's configuration; accounts keep their sign-ins and logins get a temporary answer until this is fixed: {fix}"
            );
            self.record(Event::now(
                "mailgate",
                format!("provider {provider}: configuration fault: {fix}"),
            ));
            return true;
        }
        false
    }

    /// Records every refresh failure and configuration fault in `audit`
    /// from now on.
    pub fn record_in(&self, audit: std::sync::Arc<AuditLog>) {
        let _ = self.audit.set(audit);
    }

    pub(super) fn record(&self, event: Event) {
        if let Some(audit) = self.audit.get() {
            audit.record(event);
        }
    }

    /// A grant succeeded: the provider's configuration works.
    pub(super) fn provider_ok(&self, provider: &str) {
        if self.health.set(provider, ProviderHealth::Ok) != ProviderHealth::Ok {
            tracing::info!(
                provider,
                "identity provider accepts mailgate's configuration again"
            );
        }
    }
}
