//! Signals while serving: SIGINT/SIGTERM end `serve`; SIGHUP re-reads the
//! configuration and applies it to the listeners, the token service and the
//! admin listener, keeping the running configuration when the new one is
//! invalid or cannot be applied.

use std::path::Path;

use tracing::{error, info};

use super::{Admin, ServeError, Server, notify};
use crate::config::Config;
use crate::console;
use crate::token::service::TokenService;

#[cfg(unix)]
pub(super) async fn wait_for_signals(
    server: &mut Server,
    tokens: &TokenService,
    admin: &mut Admin,
    path: &Path,
) -> Result<(), ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signal)?;
    let mut hup = signal(SignalKind::hangup()).map_err(ServeError::Signal)?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => {
                notify::reloading();
                reload(server, tokens, admin, path).await;
                notify::ready();
            }
        }
    }
}

#[cfg(not(unix))]
pub(super) async fn wait_for_signals(
    _server: &mut Server,
    _tokens: &TokenService,
    _admin: &mut Admin,
    _path: &Path,
) -> Result<(), ServeError> {
    tokio::signal::ctrl_c().await.map_err(ServeError::Signal)
}

async fn reload(server: &mut Server, tokens: &TokenService, admin: &mut Admin, path: &Path) {
    info!(config = %path.display(), "reloading configuration");
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            error!(error = %e, "new configuration rejected; keeping the running one");
            return;
        }
    };
    match server.apply(&config).await {
        Ok(()) => {
            tokens.reconfigure(&config);
            admin.probes.configured(&config);
            admin.probes.web.attach(
                server.guard.clone(),
                server.gates.values().cloned().collect(),
                server.submitters(),
            );
            if let Err(e) = console::apply(&mut admin.console, &config, admin.probes.clone()).await
            {
                error!(error = %e, "admin listener not reconfigured");
            }
            info!(listeners = server.running.len(), "configuration reloaded")
        }
        Err(e) => {
            error!(error = %e, "new configuration could not be applied; keeping the running one")
        }
    }
}
