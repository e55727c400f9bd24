//! What every session of one listener shares: its config, the token source,
//! TLS material, the upstream endpoint, the submission backend, the per-mailbox gate and the shutdown
//! signal. Built once per listener (and again on reload).

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::{Limits, Listener};
use crate::gate::MailboxGate;
use crate::submit::Submitter;
use crate::tls::local::LocalAcceptor;
use crate::token::TokenSource;
use crate::upstream::Endpoint;

pub struct SessionContext {
    pub listener: Listener,
    pub limits: Limits,
    pub hostname: String,
    pub tokens: Arc<dyn TokenSource>,
    /// Present when the listener has TLS (implicit or STARTTLS).
    pub acceptor: Option<LocalAcceptor>,
    pub endpoint: Endpoint,
    /// SMTP listeners: what takes over after a local login.
    pub submitter: Option<Arc<dyn Submitter>>,
    pub gate: Arc<MailboxGate>,
    pub guard: Arc<crate::guard::LoginGuard>,
    /// Becomes `true` when the process is shutting down.
    pub shutdown: watch::Receiver<bool>,
}
