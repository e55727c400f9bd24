//! Background refresh. Microsoft refresh tokens die after 90 days unused
//! (`docs/design.md`, "Microsoft facts"); an archive mailbox read once a quarter
//! would lose its sign-in. Every unlocked account (and, with
//! `machine_key_wrap`, every machine-wrapped one, even before anyone logs in)
//! is refreshed once per `keep_warm_interval` (default one day), far inside
//! that limit. One unreadable record or a corrupt timestamp costs only that
//! account its refresh (logged), never the loop.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::service::TokenService;
use crate::store::{Unlocked, record};

/// How often the keep-warm loop looks for due accounts (or the shortest
/// `keep_warm_interval`, when that is shorter).
pub const KEEP_WARM_TICK: Duration = Duration::from_secs(10 * 60);
/// Floor for the tick, whatever the config says.
pub const KEEP_WARM_MIN_TICK: Duration = Duration::from_secs(1);

impl TokenService {
    pub fn spawn_keep_warm(
        self: &Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let this = self.clone();
        let tick = this
            .timing
            .values()
            .map(|t| t.keep_warm_interval)
            .fold(KEEP_WARM_TICK, Duration::min)
            .max(KEEP_WARM_MIN_TICK);
        tokio::spawn(async move {
            this.adopt_machine_wrapped().await;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(tick) => {}
                    _ = shutdown.changed() => {}
                }
                if *shutdown.borrow() {
                    break;
                }
                this.keep_warm_once().await;
            }
        })
    }

    /// Refreshes every held account whose last refresh is older than its
    /// provider's interval. Failures are logged and handled like any other
    /// refresh (state, back-off).
    pub async fn keep_warm_once(&self) {
        for held in self.accounts.held().await {
            let Some(timing) = self.timing.get(&held.record.provider) else {
                continue;
            };
            if !self.due(&held, timing.keep_warm_interval).await {
                continue;
            }
            let account = held.record.account.clone();
            match self.delegated(&held, true).await {
                Ok(_) => tracing::debug!(%account, "kept warm"),
                Err(e) => tracing::warn!(%account, error = %e, "keep-warm refresh failed"),
            }
        }
    }

    async fn due(&self, held: &Unlocked, interval: Duration) -> bool {
        if let Some(last) = self.last_refresh(&held.record.account).await {
            return last.elapsed() >= interval;
        }
        // A corrupt timestamp (in the future, or too large for the clock)
        // counts as "long ago": refreshing once too often is cheap.
        let on_disk = held.record.last_refresh.map(record::from_unix);
        on_disk.is_none_or(|t| {
            SystemTime::now()
                .duration_since(t)
                .map_or(true, |age| age >= interval)
        })
    }

    async fn adopt_machine_wrapped(&self) {
        let store = self.store().clone();
        let found = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let each = store.list_each().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot list the token store");
                Vec::new()
            });
            for summary in each {
                let summary = match summary {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "skipping an unreadable token record");
                        continue;
                    }
                };
                if !summary.machine_wrapped || !store.wants_machine_wrap(&summary.provider) {
                    continue;
                }
                match store.unlock_machine(&summary.account) {
                    Ok(Some(u)) => out.push(u),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(account = %summary.account, error = %e, "cannot open with the machine key"),
                }
            }
            out
        })
        .await
        .unwrap_or_default();
        for held in found {
            self.accounts.adopt(held).await;
        }
    }
}
