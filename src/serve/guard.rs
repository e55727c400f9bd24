//! Which ledger the login guard shares its verdicts through, chosen from the
//! configuration: none for a single instance (`[limits] share_guard` off, the
//! default), otherwise the one that goes with the store: instances on one
//! database share its `mailgate_guard_verdicts` table (`guard::pg_ledger`),
//! instances sharing a state directory `<state_dir>/guard-shared/`
//! (`guard::file_ledger`).

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use super::ServeError;
use crate::config::{Config, StoreSettings};
use crate::guard::LoginGuard;
use crate::guard::file_ledger::FileLedger;
use crate::guard::ledger::GuardLedger;
use crate::guard::pg_ledger::PgLedger;
use crate::guard::share;
use crate::store::Database;

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
    let ledger: Arc<dyn GuardLedger> = match &config.store {
        StoreSettings::File => {
            let dir = config.state_dir.join(crate::guard::file_ledger::DIR_NAME);
            info!(dir = %dir.display(), "login guard shares its verdicts");
            Arc::new(FileLedger::open(&config.state_dir)?)
        }
        StoreSettings::Postgres(pg) => {
            let db = Database::new(pg).map_err(|e| ServeError::Tokens(e.to_string()))?;
            info!(database = db.label(), "login guard shares its verdicts");
            Arc::new(PgLedger::new(db)?)
        }
    };
    guard.enable_sharing();
    Ok(Some(tokio::spawn(share::keep_shared(
        guard.clone(),
        ledger,
        shutdown.subscribe(),
    ))))
}
