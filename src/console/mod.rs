//! The admin listener: one small HTTP server beside the mail listeners for
//! the people and machines that operate mailgate. It answers `/healthz`,
//! `/readyz` and `/metrics` ([`routes`]) and, once `[admin] password_hash`
//! is set, the web console ([`web`]: sign-in, [`session`]s and CSRF, then
//! the pages), whose every change goes through [`crate::admin::Admin`].
//!
//! What it serves describes the proxy, so it is guarded like a mail
//! listener: loopback by default, TLS whenever it binds elsewhere (config
//! validation refuses anything else), an allow-list of networks, and every
//! connection bounded in size, time and number ([`http`]). A reload swaps
//! the settings (networks, certificate, metric labels) without dropping the
//! socket, and rebinds only when the address changed.

mod actions;
mod certs;
mod flows;
pub mod form;
mod health;
pub mod http;
mod links;
mod pages;
pub mod routes;
pub mod session;
mod views;
mod web;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tracing::info;

use crate::audit::AuditLog;
use crate::base::AccountName;
use crate::config::{Admin, Config};
use crate::gate::MailboxGate;
use crate::guard::LoginGuard;
use crate::submit::Submitter;
use crate::token::service::TokenService;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("admin listener: cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("admin listener: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// What the probes look at: the token service (store, provider health,
/// token ages) and whether every mail listener is bound.
pub struct Probes {
    pub tokens: Arc<TokenService>,
    /// Set by `serve` once the mail listeners are bound.
    pub listeners_bound: Arc<AtomicBool>,
    /// Providers the configuration itself leaves unusable (the shipped
    /// placeholder `client_id`), with the fix; set at start and on reload.
    pub unregistered: std::sync::Mutex<Vec<(String, String)>>,
    /// The running configuration; replaced on reload.
    pub config: std::sync::Mutex<Arc<Config>>,
    /// The web console's state and its view of the running server.
    pub web: Arc<Web>,
}

/// What the console pages keep and what they see of the running server,
/// which `serve` hands over once it runs (so the console imports nothing
/// above it).
pub struct Web {
    pub sessions: session::Sessions,
    flows: Arc<flows::Flows>,
    links: links::Links,
    /// Self-service link token → its enrolment's id: one entry per link,
    /// and entries whose enrolment is gone are dropped once it holds
    /// [`links::MAX_LINKS`].
    self_flows: std::sync::Mutex<std::collections::HashMap<String, String>>,
    pub audit: Arc<AuditLog>,
    guard: std::sync::OnceLock<Arc<LoginGuard>>,
    gates: std::sync::Mutex<Vec<Arc<MailboxGate>>>,
    /// The SMTP listeners' submission backends, for `auto`'s switches.
    submitters: std::sync::Mutex<Vec<Arc<dyn Submitter>>>,
    reachability:
        std::sync::Mutex<std::collections::HashMap<String, (tokio::time::Instant, String)>>,
}

impl Web {
    pub fn new(state_dir: &Path, audit: Arc<AuditLog>) -> Self {
        Self {
            sessions: session::Sessions::default(),
            flows: Arc::default(),
            links: links::Links::load(state_dir),
            self_flows: std::sync::Mutex::default(),
            audit,
            guard: std::sync::OnceLock::new(),
            gates: std::sync::Mutex::default(),
            submitters: std::sync::Mutex::default(),
            reachability: std::sync::Mutex::default(),
        }
    }

    /// The running server's login guard, per-mailbox gates and submission
    /// backends (again after a reload, which may add gates and rebuilds the
    /// backends; the guard stays the same).
    pub fn attach(
        &self,
        guard: Arc<LoginGuard>,
        gates: Vec<Arc<MailboxGate>>,
        submitters: Vec<Arc<dyn Submitter>>,
    ) {
        let _ = self.guard.set(guard);
        *self.gates.lock().unwrap_or_else(|p| p.into_inner()) = gates;
        *self.submitters.lock().unwrap_or_else(|p| p.into_inner()) = submitters;
    }

    /// Mailboxes `submit = "auto"` sends through Graph, with how long ago
    /// each switched (the longest-running switch over all listeners).
    pub fn graph_switched(&self) -> std::collections::HashMap<String, std::time::Duration> {
        let mut out = std::collections::HashMap::new();
        let backends = self.submitters.lock().unwrap_or_else(|p| p.into_inner());
        for (mailbox, left) in backends.iter().flat_map(|s| s.switched()) {
            let since = crate::submit::auto::REMEMBER.saturating_sub(left);
            let e = out.entry(mailbox).or_insert(since);
            *e = (*e).max(since);
        }
        out
    }

    pub fn guard(&self) -> Option<&Arc<LoginGuard>> {
        self.guard.get()
    }

    /// Upstream sessions open per mailbox, over every gate.
    pub fn open_sessions(&self) -> std::collections::HashMap<AccountName, usize> {
        let mut out = std::collections::HashMap::new();
        for gate in self.gates.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            for (name, n) in gate.open_sessions() {
                *out.entry(name).or_insert(0) += n;
            }
        }
        out
    }

    /// `target`'s reachability, checked at most every [`health::CHECK_CACHE`].
    async fn reachable(&self, target: &str) -> String {
        let now = tokio::time::Instant::now();
        if let Some((at, state)) = self
            .reachability
            .lock()
            .ok()
            .and_then(|m| m.get(target).cloned())
            && now.duration_since(at) < health::CHECK_CACHE
        {
            return state;
        }
        let state = health::connect_check(target).await;
        if let Ok(mut m) = self.reachability.lock() {
            m.insert(target.to_owned(), (now, state.clone()));
        }
        state
    }
}

impl Probes {
    pub fn new(tokens: Arc<TokenService>, config: &Config, audit: Arc<AuditLog>) -> Self {
        Self {
            tokens,
            listeners_bound: Arc::new(AtomicBool::new(false)),
            unregistered: std::sync::Mutex::default(),
            config: std::sync::Mutex::new(Arc::new(config.clone())),
            web: Arc::new(Web::new(&config.state_dir, audit)),
        }
    }

    pub fn config(&self) -> Arc<Config> {
        self.config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The admin service for the running server.
    pub fn admin(&self) -> crate::admin::Admin {
        crate::admin::Admin::running(
            self.config(),
            Arc::clone(&self.web.audit),
            self.web.guard().cloned(),
        )
    }

    /// Takes the providers `config` leaves unusable.
    pub fn configured(&self, config: &Config) {
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(config.clone());
        let unregistered = config
            .providers
            .iter()
            .filter_map(|p| {
                let fix = p.unregistered_app()?;
                let prefix = format!("provider {}: ", p.name);
                let fix = fix.strip_prefix(&prefix).map_or(fix.clone(), str::to_owned);
                Some((p.name.clone(), fix))
            })
            .collect();
        *self.unregistered.lock().unwrap_or_else(|p| p.into_inner()) = unregistered;
    }
}

/// The part of the configuration a reload may change in place.
pub struct Settings {
    pub admin: Admin,
    /// `None` when the listener speaks plain HTTP (loopback only).
    pub acceptor: Option<TlsAcceptor>,
}

impl Settings {
    /// Reads the certificate (or generates the local one) when TLS is on.
    pub fn new(admin: &Admin, state_dir: &Path, hostname: &str) -> Result<Self, ConsoleError> {
        let acceptor = if admin.tls {
            let (cert, key) = match &admin.cert {
                Some(pair) => pair.clone(),
                None => crate::tls::ensure_local_cert(state_dir, hostname)?,
            };
            Some(TlsAcceptor::from(crate::tls::server_config(
                &cert, &key, false,
            )?))
        } else {
            None
        };
        Ok(Self {
            admin: admin.clone(),
            acceptor,
        })
    }
}

/// A running admin listener.
pub struct Console {
    settings: watch::Sender<Arc<Settings>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    local: SocketAddr,
}

impl Console {
    /// Binds `config`'s admin listener, if it has one.
    pub async fn start(config: &Config, probes: Arc<Probes>) -> Result<Option<Self>, ConsoleError> {
        let Some(admin) = &config.admin else {
            return Ok(None);
        };
        let settings = Settings::new(admin, &config.state_dir, &config.hostname)?;
        Self::bind(settings, probes).await.map(Some)
    }

    async fn bind(settings: Settings, probes: Arc<Probes>) -> Result<Self, ConsoleError> {
        let addr = settings.admin.bind;
        let socket = TcpListener::bind(addr)
            .await
            .map_err(|source| ConsoleError::Bind { addr, source })?;
        let local = socket.local_addr().unwrap_or(addr);
        info!(%local, tls = settings.admin.tls, "admin listener listening");
        let (settings, settings_rx) = watch::channel(Arc::new(settings));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(http::accept_loop(socket, settings_rx, probes, stop_rx));
        Ok(Self {
            settings,
            stop,
            task,
            local,
        })
    }

    /// The bound address (useful when the config binds port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops accepting and waits for the accept loop to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Brings the admin listener in `slot` in line with a reloaded `config`:
/// new settings in place when the address stays; otherwise the old
/// listener closes and the new one binds. The certificate is read before
/// anything changes, so a bad one keeps the running listener; a failure to
/// bind a new address leaves none, which the caller logs.
pub async fn apply(
    slot: &mut Option<Console>,
    config: &Config,
    probes: Arc<Probes>,
) -> Result<(), ConsoleError> {
    let Some(admin) = &config.admin else {
        if let Some(old) = slot.take() {
            info!("admin listener removed");
            old.stop().await;
        }
        return Ok(());
    };
    let settings = Settings::new(admin, &config.state_dir, &config.hostname)?;
    if let Some(running) = slot.as_ref() {
        let same_address = running.settings.borrow().admin.bind == admin.bind;
        if same_address {
            let _ = running.settings.send(Arc::new(settings));
            return Ok(());
        }
    }
    if let Some(old) = slot.take() {
        old.stop().await;
    }
    *slot = Some(Console::bind(settings, probes).await?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::base::BoxFuture;
    use crate::proto::UpstreamLogin;
    use crate::submit::Submission;
    use crate::upstream::UpstreamError;

    /// A backend that only reports switches.
    struct Switched(Vec<(String, Duration)>);

    impl Submitter for Switched {
        fn open<'a>(
            &'a self,
            _: UpstreamLogin,
            _: Option<&'a str>,
        ) -> BoxFuture<'a, Result<Box<dyn Submission>, UpstreamError>> {
            Box::pin(std::future::pending())
        }

        fn switched(&self) -> Vec<(String, Duration)> {
            self.0.clone()
        }
    }

    #[test]
    fn graph_switches_are_told_by_how_long_ago_they_happened() {
        let dir = std::env::temp_dir().join(format!("mailgate-web-{}", std::process::id()));
        let web = Web::new(&dir, Arc::new(AuditLog::new(&dir)));
        assert!(web.graph_switched().is_empty());
        let remember = crate::submit::auto::REMEMBER;
        let hour = Duration::from_secs(3600);
        let a = Switched(vec![("a@x.test".to_owned(), remember - hour)]);
        let b = Switched(vec![("a@x.test".to_owned(), remember - 2 * hour)]);
        let guard = Arc::new(LoginGuard::new(crate::guard::GuardSettings::default()));
        web.attach(guard, Vec::new(), vec![Arc::new(a), Arc::new(b)]);
        let switched = web.graph_switched();
        assert_eq!(switched.len(), 1);
        assert_eq!(switched["a@x.test"], 2 * hour, "the earliest switch");
    }
}
