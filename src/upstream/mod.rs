//! Connecting to the provider and running the upstream login machine over
//! that connection: TCP, then implicit TLS or the machine's STARTTLS, then
//! XOAUTH2, through the one driver loop (`net::drive`). Returns the stream
//! and any bytes the provider already sent after its success line, which the
//! relay must deliver first. `prewarm` keeps connections made ahead of
//! time for listeners that ask for it.

pub mod prewarm;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use crate::config::{Upstream, UpstreamTls};
use crate::net::{Dialogue, Interrupted, Phase, Stream, Tls, drive};
use crate::proto::{UpstreamMachine, UpstreamRejection, UpstreamStep, UpstreamSuccess};

/// Largest read during the upstream login.
pub(crate) const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("{phase} with {addr} timed out")]
    Timeout { addr: String, phase: &'static str },
    #[error("TLS with {addr} failed: {source}")]
    Tls { addr: String, source: io::Error },
    #[error("{addr} closed the connection during login")]
    Closed { addr: String },
    #[error("I/O with {addr}: {source}")]
    Io { addr: String, source: io::Error },
    #[error("{addr} refused the login: {0:?}", .rejection)]
    Rejected {
        addr: String,
        rejection: UpstreamRejection,
    },
}

/// Everything needed to reach one provider endpoint.
#[derive(Clone)]
pub struct Endpoint {
    pub upstream: Upstream,
    pub tls: Arc<rustls::ClientConfig>,
    pub connect_timeout: Duration,
    pub login_timeout: Duration,
    /// The listener's pool of connections made ahead of time (`prewarm`).
    pub prewarm: Option<Arc<prewarm::Pool>>,
}

impl Endpoint {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.upstream.host, self.upstream.port)
    }

    pub fn starttls(&self) -> bool {
        self.upstream.tls == UpstreamTls::StartTls
    }
}

pub struct LoggedIn {
    pub stream: Stream,
    pub leftover: BytesMut,
    pub success: UpstreamSuccess,
}

/// Connects (or takes a prewarmed connection) and logs in. Every phase is
/// bounded by the endpoint's timeouts.
pub async fn login(
    endpoint: &Endpoint,
    mut machine: Box<dyn UpstreamMachine>,
) -> Result<LoggedIn, UpstreamError> {
    let addr = endpoint.addr();
    let warm = endpoint.prewarm.as_deref().and_then(prewarm::Pool::take);
    let (mut stream, mut buf) = match warm {
        Some(warm) => (warm.stream, warm.buf),
        None => (
            connect(endpoint, &addr).await?,
            BytesMut::with_capacity(READ_CHUNK),
        ),
    };
    let mut dialogue = Dialogue {
        deadline: Instant::now() + endpoint.login_timeout,
        read_chunk: READ_CHUNK,
        tls: tls(endpoint),
        shutdown: None,
    };
    match drive(machine.as_mut(), &mut stream, &mut buf, &mut dialogue).await {
        Ok(UpstreamStep::Authenticated(success)) => Ok(LoggedIn {
            stream,
            leftover: crate::net::leftover(buf),
            success,
        }),
        Ok(UpstreamStep::Rejected(rejection)) => Err(UpstreamError::Rejected { addr, rejection }),
        Ok(_) => Err(UpstreamError::Io {
            addr,
            source: io::Error::other("login machine stopped without a verdict"),
        }),
        Err(interrupted) => Err(error(&addr, interrupted)),
    }
}

fn tls(endpoint: &Endpoint) -> Tls<'_> {
    Tls::Connect {
        config: &endpoint.tls,
        server_name: &endpoint.upstream.server_name,
    }
}

/// TCP, then implicit TLS where configured: everything before the first
/// byte from the server, bounded by the connect timeout.
async fn connect(endpoint: &Endpoint, addr: &str) -> Result<Stream, UpstreamError> {
    let connect_deadline = Instant::now() + endpoint.connect_timeout;
    let tcp = timeout_at(
        connect_deadline,
        TcpStream::connect((endpoint.upstream.host.as_str(), endpoint.upstream.port)),
    )
    .await
    .map_err(|_| UpstreamError::Timeout {
        addr: addr.to_owned(),
        phase: "connecting",
    })?
    .map_err(|source| UpstreamError::Connect {
        addr: addr.to_owned(),
        source,
    })?;
    let _ = tcp.set_nodelay(true);
    let stream = Stream::Plain(tcp);
    if endpoint.upstream.tls != UpstreamTls::Implicit {
        return Ok(stream);
    }
    tls(endpoint)
        .upgrade(stream, connect_deadline)
        .await
        .map_err(|e| error(addr, e))
}

/// The driver's reason in this layer's terms.
fn error(addr: &str, interrupted: Interrupted) -> UpstreamError {
    let addr = addr.to_owned();
    match interrupted {
        Interrupted::Closed => UpstreamError::Closed { addr },
        Interrupted::TimedOut(Phase::TlsHandshake) => UpstreamError::Timeout {
            addr,
            phase: "TLS handshake",
        },
        Interrupted::TimedOut(_) => UpstreamError::Timeout {
            addr,
            phase: "logging in",
        },
        Interrupted::Io {
            phase: Phase::TlsHandshake,
            source,
        } => UpstreamError::Tls { addr, source },
        Interrupted::Io { source, .. } => UpstreamError::Io { addr, source },
        other @ (Interrupted::Shutdown | Interrupted::NoCertificate) => UpstreamError::Io {
            addr,
            source: io::Error::other(other.to_string()),
        },
    }
}
