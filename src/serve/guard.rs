//! Which ledger the login guard shares its verdicts through, chosen from the
//! configuration: none for a single instance (`[limits] share_guard` off, the
//! default), otherwise the one that goes with the store: instances sharing a
//! state directory share `<state_dir>/guard-shared/` (`guard::file_ledger`).

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use super::ServeError;
use crate::config::Config;
use crate::guard::LoginGuard;
use crate::guard::file_ledger::FileLedger;
use crate::guard::ledger::GuardLedger;
use crate::guard::share;

/// Starts sharing the guard's verdicts when the configuration asks for it;
/// the task ends after one last exchange once `shutdown` is sent.
pub(super) fn share_guard(
    config: &Config,
    guard: &Arc<LoginGuard>,
    shutdown: &watch::Sender<bool>,
) -> Result<Option<JoinHandle<()>>, ServeError> {
    if !config.limits.share_guard {
        return Ok(None);
    }
    let ledger: Arc<dyn GuardLedger> = Arc::new(FileLedger::open(&config.state_dir)?);
    guard.enable_sharing();
    info!(dir = %config.state_dir.join(crate::guard::file_ledger::DIR_NAME).display(), "login guard shares its verdicts");
    Ok(Some(tokio::spawn(share::keep_shared(
        guard.clone(),
        ledger,
        shutdown.subscribe(),
    ))))
}
