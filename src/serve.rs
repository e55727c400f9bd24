//! `mailgate serve`: binds every listener, runs until SIGINT/SIGTERM, reloads
//! on SIGHUP. A reload swaps the session context of listeners whose address
//! stays, binds new ones and closes removed ones; sessions already running keep
//! the context they started with. An invalid new config is refused and the
//! old one keeps running.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::{Config, Listener};
use crate::console::{Console, Probes};
use crate::gate::MailboxGate;
use crate::guard::{GuardSettings, LoginGuard, persist};
use crate::listener::{ConnectionLimits, accept_loop};
use crate::service::{self, notify, unregistered};
use crate::session::context::SessionContext;
use crate::tls::local::{LegacySessions, LocalAcceptor};
use crate::token::TokenSource;
use crate::upstream::{Endpoint, prewarm};

mod guard;
mod signals;
mod tokens;

use guard::share_guard;
pub use tokens::token_service;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("listener {name}: cannot bind {addr}: {source}")]
    Bind {
        name: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("listener {name}: {source}")]
    Tls {
        name: String,
        source: crate::tls::TlsError,
    },
    #[error("cannot install signal handler: {0}")]
    Signal(std::io::Error),
    #[error("token store: {0}")]
    Tokens(String),
    #[error("listener {name}: submission backend: {reason}")]
    Submit { name: String, reason: String },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    #[error(transparent)]
    GuardLedger(#[from] crate::guard::ledger::LedgerError),
}

struct Running {
    name: String,
    contexts: watch::Sender<Arc<SessionContext>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    local: SocketAddr,
}

/// A running set of listeners.
pub struct Server {
    tokens: Arc<dyn TokenSource>,
    limits: Arc<ConnectionLimits>,
    guard: Arc<LoginGuard>,
    /// Where the guard's state is saved (`guard::persist`).
    state_dir: PathBuf,
    guard_saver: JoinHandle<()>,
    /// Exchanges the guard's verdicts with other instances (`guard::share`).
    guard_sharer: Option<JoinHandle<()>>,
    gates: HashMap<String, Arc<MailboxGate>>,
    /// Mailboxes `submit = "auto"` sends through Graph (`submit::switched`).
    switched: Arc<crate::submit::switched::Switched>,
    /// Per listener name: sessions that negotiated TLS 1.0/1.1.
    legacy_sessions: HashMap<String, LegacySessions>,
    shutdown: watch::Sender<bool>,
    running: HashMap<SocketAddr, Running>,
    grace: std::time::Duration,
}

impl Server {
    pub async fn start(config: &Config, tokens: Arc<dyn TokenSource>) -> Result<Self, ServeError> {
        let (shutdown, _) = watch::channel(false);
        let guard = Arc::new(LoginGuard::new(GuardSettings {
            ipv6_prefix: config.limits.ipv6_prefix,
            ..GuardSettings::default()
        }));
        match persist::load(&guard, &config.state_dir) {
            Ok(0) => {}
            Ok(restored) => info!(restored, "login guard state restored"),
            Err(error) => warn!(%error, "login guard state not restored; starting empty"),
        }
        let guard_saver = tokio::spawn(persist::keep_saved(
            guard.clone(),
            config.state_dir.clone(),
            shutdown.subscribe(),
        ));
        let guard_sharer = share_guard(config, &guard, &shutdown)?;
        let mut server = Self {
            tokens,
            limits: ConnectionLimits::new(
                config.limits.max_connections,
                config.limits.max_connections_per_ip,
                config.limits.ipv6_prefix,
            ),
            guard,
            state_dir: config.state_dir.clone(),
            guard_saver,
            guard_sharer,
            gates: HashMap::new(),
            switched: Arc::new(crate::submit::switched::Switched::in_dir(&config.state_dir)),
            legacy_sessions: HashMap::new(),
            shutdown,
            running: HashMap::new(),
            grace: config.limits.shutdown_grace,
        };
        server.apply(config).await?;
        Ok(server)
    }

    /// Name and bound address of every listener (useful when a config binds port 0).
    pub fn local_addrs(&self) -> Vec<(String, SocketAddr)> {
        let mut v: Vec<_> = self
            .running
            .values()
            .map(|r| (r.name.clone(), r.local))
            .collect();
        v.sort();
        v
    }

    /// The running listeners' SMTP submission backends (the console shows
    /// which mailboxes `auto` switched to Graph).
    pub fn submitters(&self) -> Vec<Arc<dyn crate::submit::Submitter>> {
        self.running
            .values()
            .filter_map(|r| r.contexts.borrow().submitter.clone())
            .collect()
    }

    pub fn active_connections(&self) -> usize {
        self.limits.active()
    }

    /// Per listener that has had any: sessions that negotiated TLS 1.0/1.1
    /// since start, so the admin can see which clients still need it.
    pub fn legacy_sessions(&self) -> Vec<(String, u64)> {
        let mut v: Vec<_> = self
            .legacy_sessions
            .iter()
            .map(|(name, n)| (name.clone(), n.load(std::sync::atomic::Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        v.sort();
        v
    }

    /// Brings the running listeners in line with `config`. Everything that can
    /// fail (TLS files, binding) is prepared before anything is changed.
    pub async fn apply(&mut self, config: &Config) -> Result<(), ServeError> {
        let mut contexts = Vec::new();
        for listener in &config.listeners {
            contexts.push(self.context(config, listener)?);
        }
        let mut fresh = Vec::new();
        for ctx in &contexts {
            let addr = ctx.listener.bind;
            if !self.running.contains_key(&addr) {
                let socket = TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind {
                        name: ctx.listener.name.clone(),
                        addr,
                        source,
                    })?;
                fresh.push(socket);
            }
        }
        let keep: Vec<SocketAddr> = contexts.iter().map(|c| c.listener.bind).collect();
        self.stop_removed(&keep);
        for warning in config.warnings() {
            warn!("{warning}");
        }
        let mut fresh = fresh.into_iter();
        for ctx in contexts {
            let ctx = Arc::new(ctx);
            let addr = ctx.listener.bind;
            if let Some(r) = self.running.get_mut(&addr) {
                r.name = ctx.listener.name.clone();
                let _ = r.contexts.send(ctx);
                continue;
            }
            if let Some(socket) = fresh.next() {
                self.start_listener(ctx, socket);
            }
        }
        Ok(())
    }

    /// Closes the listeners whose address is not in `keep`.
    fn stop_removed(&mut self, keep: &[SocketAddr]) {
        for addr in self
            .running
            .keys()
            .copied()
            .filter(|a| !keep.contains(a))
            .collect::<Vec<_>>()
        {
            if let Some(r) = self.running.remove(&addr) {
                info!(listener = %r.name, %addr, "listener removed");
                let _ = r.stop.send(true);
            }
        }
    }

    fn start_listener(&mut self, ctx: Arc<SessionContext>, socket: TcpListener) {
        let addr = ctx.listener.bind;
        let local = socket.local_addr().unwrap_or(addr);
        info!(listener = %ctx.listener.name, protocol = ctx.listener.protocol.as_str(), %local, upstream = %ctx.endpoint.addr(), tls = ?ctx.listener.tls, tls_min_version = ctx.listener.tls_min_version.as_str(), "listening");
        let name = ctx.listener.name.clone();
        let (contexts, rx) = watch::channel(ctx);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(socket, rx, self.limits.clone(), stop_rx));
        self.running.insert(
            addr,
            Running {
                name,
                contexts,
                stop,
                task,
                local,
            },
        );
    }

    fn context(
        &mut self,
        config: &Config,
        listener: &Listener,
    ) -> Result<SessionContext, ServeError> {
        let tls_err = |source| ServeError::Tls {
            name: listener.name.clone(),
            source,
        };
        let legacy_sessions = self
            .legacy_sessions
            .entry(listener.name.clone())
            .or_default()
            .clone();
        let acceptor = LocalAcceptor::for_listener(
            listener,
            &config.state_dir,
            &config.hostname,
            &legacy_sessions,
        )
        .map_err(tls_err)?;
        let upstream_tls =
            crate::tls::upstream_config(listener.upstream.ca_file.as_deref()).map_err(tls_err)?;
        let gate = self
            .gates
            .entry(format!(
                "{}|{}:{}",
                listener.protocol.as_str(),
                listener.upstream.host,
                listener.upstream.port
            ))
            .or_insert_with(|| {
                Arc::new(MailboxGate::new(
                    listener.max_upstream_per_mailbox,
                    config.limits.upstream_queue_timeout,
                ))
            })
            .clone();
        let mut endpoint = Endpoint {
            upstream: listener.upstream.clone(),
            tls: upstream_tls,
            connect_timeout: config.limits.upstream_connect_timeout,
            login_timeout: config.limits.upstream_login_timeout,
            prewarm: None,
        };
        endpoint.prewarm = prewarm::start(
            &listener.name,
            listener.prewarm,
            &endpoint,
            listener.protocol,
            self.shutdown.subscribe(),
        );
        let tokens = unregistered::or_shared(config, listener, &self.tokens);
        let submitter = crate::submit::for_listener(crate::submit::Backends {
            listener,
            provider: config
                .providers
                .iter()
                .find(|p| p.name == listener.provider),
            rules: &config.accounts,
            endpoint: &endpoint,
            limits: &config.limits,
            hostname: &config.hostname,
            tokens: tokens.clone(),
            switched: self.switched.clone(),
        })
        .map_err(|reason| ServeError::Submit {
            name: listener.name.clone(),
            reason,
        })?;
        Ok(SessionContext {
            listener: listener.clone(),
            limits: config.limits,
            hostname: config.hostname.clone(),
            tokens,
            acceptor,
            submitter,
            endpoint,
            gate,
            guard: self.guard.clone(),
            shutdown: self.shutdown.subscribe(),
        })
    }

    /// Stops accepting, tells sessions still logging in to go, and gives
    /// relaying sessions the grace period to finish. Returns whether every
    /// session ended in time.
    pub async fn shutdown(self) -> bool {
        for (listener, sessions) in self.legacy_sessions() {
            info!(%listener, sessions, "sessions that negotiated legacy TLS since start");
        }
        let _ = self.shutdown.send(true);
        for r in self.running.values() {
            let _ = r.stop.send(true);
        }
        for r in self.running.into_values() {
            let _ = r.task.await;
        }
        let drained = self.limits.drain(self.grace).await;
        let _ = self.guard_saver.await;
        if let Some(sharer) = self.guard_sharer {
            let _ = sharer.await;
        }
        if let Err(error) = persist::save_if_changed(&self.guard, &self.state_dir) {
            warn!(%error, "cannot save the login guard's state");
        }
        drained
    }
}

/// Runs the proxy for `config` until a signal; `path` is re-read on SIGHUP.
pub async fn run(config: Config, path: PathBuf) -> Result<(), ServeError> {
    let mut signals = signals::Signals::register()?;
    service::limits::raise_and_report(config.limits.max_connections);
    let tokens = token_service(&config, &path)?;
    let audit = Arc::new(crate::audit::AuditLog::new(&config.state_dir));
    let mut admin = Admin {
        probes: Arc::new(Probes::new(tokens.clone(), &config, audit.clone())),
        console: None,
    };
    admin.probes.configured(&config);
    admin.console = Console::start(&config, admin.probes.clone()).await?;
    let mut server = Server::start(&config, tokens.clone()).await?;
    server.guard.record_in(audit.clone());
    tokens.record_in(audit);
    admin.probes.web.attach(
        server.guard.clone(),
        server.gates.values().cloned().collect(),
        server.submitters(),
    );
    admin.probes.listeners_bound.store(true, Ordering::Relaxed);
    let keep_warm = tokens.spawn_keep_warm(server.shutdown.subscribe());
    notify::ready();
    let watchdog = notify::spawn_watchdog();
    signals::wait_for_signals(&mut signals, &mut server, &tokens, &mut admin, &path).await?;
    if let Some(console) = admin.console.take() {
        console.stop().await;
    }
    notify::stopping();
    info!(
        active = server.active_connections(),
        "shutting down; waiting for sessions to finish"
    );
    if !server.shutdown().await {
        warn!("grace period over; closing the remaining sessions");
    }
    keep_warm.abort();
    watchdog.inspect(JoinHandle::abort);
    Ok(())
}

/// The admin listener and what its probes look at, kept across reloads.
pub(crate) struct Admin {
    pub(crate) probes: Arc<Probes>,
    pub(crate) console: Option<Console>,
}
