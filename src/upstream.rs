//! Connecting to the provider and running the upstream login machine over
//! that connection: TCP, then implicit TLS or the machine's STARTTLS, then
//! XOAUTH2. Returns the stream and any bytes the provider already sent after
//! its success line, which the relay must deliver first.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use crate::config::{Upstream, UpstreamTls};
use crate::proto::{UpstreamRejection, UpstreamStep, UpstreamSuccess};
use crate::session::machine::UpstreamMachine;
use crate::session::stream::Stream;

/// Largest read during the upstream login.
const READ_CHUNK: usize = 16 * 1024;

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
pub struct Target {
    pub upstream: Upstream,
    pub tls: Arc<rustls::ClientConfig>,
    pub connect_timeout: Duration,
    pub login_timeout: Duration,
}

impl Target {
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

/// Connects and logs in. Every phase is bounded by the target's timeouts.
pub async fn login(
    target: &Target,
    mut machine: Box<dyn UpstreamMachine>,
) -> Result<LoggedIn, UpstreamError> {
    let addr = target.addr();
    let connect_deadline = Instant::now() + target.connect_timeout;
    let tcp = timeout_at(
        connect_deadline,
        TcpStream::connect((target.upstream.host.as_str(), target.upstream.port)),
    )
    .await
    .map_err(|_| UpstreamError::Timeout {
        addr: addr.clone(),
        phase: "connecting",
    })?
    .map_err(|source| UpstreamError::Connect {
        addr: addr.clone(),
        source,
    })?;
    let _ = tcp.set_nodelay(true);
    let mut stream = Stream::Plain(tcp);
    if target.upstream.tls == UpstreamTls::Implicit {
        stream = tls(target, stream, connect_deadline).await?;
    }
    let deadline = Instant::now() + target.login_timeout;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        match machine.step(&mut buf) {
            UpstreamStep::NeedMore => {
                let io = |source| UpstreamError::Io {
                    addr: addr.clone(),
                    source,
                };
                buf.reserve(READ_CHUNK);
                let n = timeout_at(deadline, stream.read_buf(&mut buf))
                    .await
                    .map_err(|_| UpstreamError::Timeout {
                        addr: addr.clone(),
                        phase: "logging in",
                    })?
                    .map_err(io)?;
                if n == 0 {
                    return Err(UpstreamError::Closed { addr });
                }
            }
            UpstreamStep::Send(bytes) => {
                let io = |source| UpstreamError::Io {
                    addr: addr.clone(),
                    source,
                };
                timeout_at(deadline, async {
                    stream.write_all(bytes.expose()).await?;
                    stream.flush().await
                })
                .await
                .map_err(|_| UpstreamError::Timeout {
                    addr: addr.clone(),
                    phase: "logging in",
                })?
                .map_err(io)?;
            }
            UpstreamStep::StartTls => {
                // Anything the server sent before the handshake could have been
                // injected by an attacker in the path (RFC 3207 §4.2).
                buf.clear();
                stream = tls(target, stream, deadline).await?;
            }
            UpstreamStep::Authenticated(success) => {
                return Ok(LoggedIn {
                    stream,
                    leftover: buf,
                    success,
                });
            }
            UpstreamStep::Rejected(rejection) => {
                return Err(UpstreamError::Rejected { addr, rejection });
            }
        }
    }
}

async fn tls(target: &Target, stream: Stream, deadline: Instant) -> Result<Stream, UpstreamError> {
    let addr = target.addr();
    timeout_at(
        deadline,
        stream.connect_tls(target.tls.clone(), &target.upstream.server_name),
    )
    .await
    .map_err(|_| UpstreamError::Timeout {
        addr: addr.clone(),
        phase: "TLS handshake",
    })?
    .map_err(|source| UpstreamError::Tls { addr, source })
}
