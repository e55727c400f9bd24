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

/// The signal streams, registered before anything listens: a SIGTERM that
/// arrives while the listeners come up must shut down gracefully, not take
/// the default action and kill the process.
#[cfg(unix)]
pub(super) struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    pub(super) fn register() -> Result<Self, ServeError> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).map_err(ServeError::Signal)?,
            int: signal(SignalKind::interrupt()).map_err(ServeError::Signal)?,
            hup: signal(SignalKind::hangup()).map_err(ServeError::Signal)?,
        })
    }
}

#[cfg(unix)]
pub(super) async fn wait_for_signals(
    signals: &mut Signals,
    server: &mut Server,
    tokens: &TokenService,
    admin: &mut Admin,
    path: &Path,
) -> Result<(), ServeError> {
    loop {
        tokio::select! {
            _ = signals.term.recv() => return Ok(()),
            _ = signals.int.recv() => return Ok(()),
            _ = signals.hup.recv() => {
                notify::reloading();
                reload(server, tokens, admin, path).await;
                notify::ready();
            }
        }
    }
}

#[cfg(not(unix))]
pub(super) struct Signals;

#[cfg(not(unix))]
impl Signals {
    pub(super) fn register() -> Result<Self, ServeError> {
        Ok(Self)
    }
}

#[cfg(not(unix))]
pub(super) async fn wait_for_signals(
    _signals: &mut Signals,
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
