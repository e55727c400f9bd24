//! What happens to an SMTP session once the client has authenticated
//! locally: the *submission* backend. Today there is one, [`RelaySubmitter`]:
//! log in to the provider's SMTP with XOAUTH2 and relay bytes both ways.
//!
//! The seam exists for a second backend, an HTTP mail API (e.g. Microsoft
//! Graph `sendMail`), where mailgate itself plays the SMTP server after AUTH.
//! Such an implementation must:
//! - in [`Submitter::open`], do whatever proves the grant usable (or nothing)
//!   and report a refused token as [`UpstreamError::Rejected`] with
//!   `AuthFailed`, so the session refreshes the token once and retries;
//! - in [`Submission::success`], give the line the client's AUTH is answered
//!   with (a `235` line; the client machine writes it);
//! - in [`Submission::run`], take over the client stream and any bytes the
//!   client pipelined behind AUTH, speak SMTP (MAIL, RCPT, DATA) itself,
//!   bound every wait, and report how the session went in [`RelayStats`] /
//!   [`RelayError`] terms (add a variant there if none fits).
//!
//! The session keeps the per-mailbox slot until `run` ends and logs the end
//! once; a backend logs nothing that could hold a secret.

pub mod accept;
pub mod auto;
pub mod graph;
pub mod relay;
pub mod switched;

use std::sync::Arc;

use bytes::BytesMut;

use crate::config::{AccountRule, Limits, Listener, Provider, SubmitMode};
use crate::gate::MailboxGate;
use crate::net::Stream;
use crate::proto::{UpstreamLogin, UpstreamSuccess};
use crate::relay::{RelayError, RelayStats};
use crate::token::{BoxFuture, Protocol, TokenSource};
use crate::upstream::{Endpoint, UpstreamError};
use accept::ServerLimits;

pub use relay::{RelaySubmitter, Relayed};

/// What a listener's submission backend is built from.
pub struct Backends<'a> {
    pub listener: &'a Listener,
    /// The listener's provider, for its Graph settings.
    pub provider: Option<&'a Provider>,
    pub rules: &'a [AccountRule],
    pub endpoint: &'a Endpoint,
    pub limits: &'a Limits,
    /// The name mailgate gives itself in EHLO when it is the SMTP server.
    pub hostname: &'a str,
    /// Where Graph tokens come from: the listener's token source.
    pub tokens: Arc<dyn TokenSource>,
    /// The mailboxes `auto` listeners send through Graph, shared by all.
    pub switched: Arc<switched::Switched>,
}

/// The submission backend for a listener: SMTP listeners get one, as their
/// `submit` setting says.
pub fn for_listener(b: Backends<'_>) -> Result<Option<Arc<dyn Submitter>>, String> {
    if b.listener.protocol != Protocol::Smtp {
        return Ok(None);
    }
    let smtp = Arc::new(RelaySubmitter::new(
        b.endpoint.clone(),
        b.limits.relay_idle_timeout,
    )) as Arc<dyn Submitter>;
    if b.listener.submit == SubmitMode::Smtp {
        return Ok(Some(smtp));
    }
    let settings = b
        .provider
        .map(|p| p.graph.clone())
        .ok_or_else(|| format!("listener {}: no provider for Graph", b.listener.name))?;
    let shared = Arc::new(graph::GraphShared {
        api: graph::Api::new(&settings.endpoint, graph::REQUEST_TIMEOUT)?,
        max_size: settings.max_message_size,
        slots: MailboxGate::new(
            graph::GRAPH_SLOTS_PER_MAILBOX,
            b.limits.upstream_queue_timeout,
        ),
        tokens: b.tokens,
        volume: graph::UploadWindow::new(settings.upload_per_5min, graph::UPLOAD_WINDOW),
    });
    let server = ServerLimits {
        command_timeout: graph::COMMAND_TIMEOUT,
        data_timeout: graph::DATA_TIMEOUT,
    };
    let graph = Arc::new(
        graph::GraphSubmitter::new(shared, b.rules.to_vec(), server).with_hostname(b.hostname),
    );
    Ok(Some(match b.listener.submit {
        SubmitMode::Graph => graph,
        _ => Arc::new(auto::AutoSubmitter::sharing(smtp, graph, b.switched)),
    }))
}

/// Hands an authenticated SMTP client over to a submission backend.
pub trait Submitter: Send + Sync {
    /// Prepares the hand-off for this grant (today: log in upstream with
    /// XOAUTH2). `client_name` is the client's EHLO name.
    fn open<'a>(
        &'a self,
        login: UpstreamLogin,
        client_name: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Box<dyn Submission>, UpstreamError>>;

    /// What the pre-AUTH EHLO offers (AUTH and STARTTLS are added where
    /// they apply), when this backend is not a relay and so the provider's
    /// extensions are not what the client gets: an accepting backend returns
    /// [`accept::extensions`] with its own SIZE. `None` keeps the relay's list.
    fn extensions(&self) -> Option<Vec<String>> {
        None
    }

    /// Mailboxes this backend sends through Graph because their SMTP AUTH
    /// is off (`submit = "auto"`), each with how long that is remembered.
    fn switched(&self) -> Vec<(String, std::time::Duration)> {
        Vec::new()
    }
}

/// One opened hand-off, owned by the session until it ends.
pub trait Submission: Send {
    /// What the client's AUTH is answered with.
    fn success(&self) -> &UpstreamSuccess;
    /// Takes over the client once AUTH has been answered; `leftover` holds
    /// what the client pipelined behind it.
    fn run(
        self: Box<Self>,
        client: Stream,
        leftover: BytesMut,
    ) -> BoxFuture<'static, Result<RelayStats, RelayError>>;
}
