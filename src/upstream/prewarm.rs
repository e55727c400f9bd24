//! `prewarm = N`: a listener keeps up to N upstream connections open ahead of
//! logins, so a login skips the TCP connect, the TLS handshake and the wait
//! for the greeting (issue 14, "Login latency").
//!
//! What is done ahead of time is exactly what the login would do first and
//! does not depend on who logs in: TCP, implicit TLS, and reading the
//! greeting (an IMAP/POP3 greeting line, an SMTP 220 reply, all its lines).
//! The greeting bytes are not interpreted here: they wait in the buffer the
//! login's machine is stepped over, so it sees them as if it had just read
//! them, and its capability checks run on them unchanged. STARTTLS upstreams
//! get TCP and the greeting ahead of time; the STARTTLS exchange (and SMTP's
//! EHLOs) stay in the login, in the machine that owns them.
//!
//! A pooled connection is handed to one login at most, never back: after a
//! login it belongs to the relay. It is dropped instead of handed over when
//! it is older than [`MAX_AGE`] or when the upstream closed it or said
//! anything unsolicited while it waited (a `* BYE` before a timeout close).
//! The refill task connects in the background, backs off after failures, and
//! ends with the pool or at shutdown. An empty pool never delays a login: it
//! connects as it would without a pool. docs/design.md §12 explains why
//! this is off by default.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, sleep, timeout_at};
use tracing::debug;

use super::{Endpoint, READ_CHUNK, UpstreamError, connect};
use crate::base::Protocol;
use crate::metrics::{self, PrewarmOutcome};
use crate::net::Stream;

/// Oldest a pooled connection may be when handed over. Servers close a
/// connection that has not logged in after a pre-login timeout that mailgate
/// cannot read (compiled into Dovecot's login processes; undocumented for
/// Microsoft 365); 25 s stays under the shortest ones in use, at the price of
/// one reconnect per pooled connection every 25 s. A connection closed
/// earlier anyway is caught when it is handed over (see [`Pool::take`]).
pub const MAX_AGE: Duration = Duration::from_secs(25);

/// The refill task's timing; [`Timing::DEFAULT`] outside tests.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub max_age: Duration,
    /// Wait after the first failed connect; doubled per failure...
    pub first_backoff: Duration,
    /// ...up to this.
    pub max_backoff: Duration,
    /// How often a full pool is checked for aged or closed connections.
    pub sweep: Duration,
}

impl Timing {
    pub const DEFAULT: Timing = Timing {
        max_age: MAX_AGE,
        first_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(60),
        sweep: Duration::from_secs(1),
    };
}

/// A connection connected ahead of time, with the greeting bytes read.
pub struct Warm {
    pub stream: Stream,
    pub buf: BytesMut,
}

struct Pooled {
    warm: Warm,
    born: Instant,
}

/// One listener's pool. See the module documentation.
pub struct Pool {
    listener: String,
    size: usize,
    timing: Timing,
    ready: Mutex<VecDeque<Pooled>>,
    taken: Notify,
    gauge: Gauge,
}

impl Pool {
    pub fn new(listener: &str, size: usize, timing: Timing) -> Pool {
        Pool {
            listener: listener.to_owned(),
            size,
            timing,
            ready: Mutex::new(VecDeque::new()),
            taken: Notify::new(),
            gauge: metrics::global().prewarm_pooled(listener),
        }
    }

    /// A ready connection, at most once each; `None` (a miss) when none is
    /// fit, and the caller connects itself.
    pub fn take(&self) -> Option<Warm> {
        let found = self.pop_fit();
        self.taken.notify_one();
        let outcome = match found {
            Some(_) => PrewarmOutcome::hit,
            None => PrewarmOutcome::miss,
        };
        metrics::global().prewarm_take(&self.listener, outcome);
        found
    }

    /// Connections waiting now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn pop_fit(&self) -> Option<Warm> {
        let mut ready = self.lock();
        while let Some(mut pooled) = ready.pop_front() {
            self.gauge.dec();
            if self.fit(&mut pooled) {
                return Some(pooled.warm);
            }
        }
        None
    }

    /// Drops aged and closed connections.
    fn sweep(&self) {
        let mut ready = self.lock();
        let before = ready.len();
        ready.retain_mut(|pooled| self.fit(pooled));
        let dropped = before - ready.len();
        self.gauge
            .dec_by(i64::try_from(dropped).unwrap_or(i64::MAX));
    }

    fn fit(&self, pooled: &mut Pooled) -> bool {
        pooled.born.elapsed() < self.timing.max_age && quiet(&mut pooled.warm.stream)
    }

    fn push(&self, warm: Warm) {
        self.lock().push_back(Pooled {
            warm,
            born: Instant::now(),
        });
        self.gauge.inc();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Pooled>> {
        // A panic while holding the lock leaves a consistent queue.
        self.ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let left = self.lock().len();
        self.gauge.dec_by(i64::try_from(left).unwrap_or(i64::MAX));
    }
}

/// Whether the upstream has neither closed the connection nor sent anything
/// since its greeting: one read attempt that must not be ready.
fn quiet(stream: &mut Stream) -> bool {
    let mut scratch = [0u8; 64];
    let mut read = ReadBuf::new(&mut scratch);
    let mut cx = Context::from_waker(Waker::noop());
    matches!(
        Pin::new(stream).poll_read(&mut cx, &mut read),
        Poll::Pending
    )
}

/// The pool for a listener with `prewarm = size` in front of `endpoint`,
/// its refill task running until `shutdown`; `None` when `size` is 0.
pub fn start(
    listener: &str,
    size: usize,
    endpoint: &Endpoint,
    protocol: Protocol,
    shutdown: watch::Receiver<bool>,
) -> Option<Arc<Pool>> {
    if size == 0 {
        return None;
    }
    let pool = Arc::new(Pool::new(listener, size, Timing::DEFAULT));
    spawn(&pool, endpoint.clone(), protocol, shutdown);
    Some(pool)
}

/// Starts `pool`'s refill task for `endpoint` (whose own `prewarm` is
/// ignored). It ends when the pool is dropped or `shutdown` turns true.
pub fn spawn(
    pool: &Arc<Pool>,
    endpoint: Endpoint,
    protocol: Protocol,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let pool = Arc::downgrade(pool);
    tokio::spawn(async move {
        tokio::select! {
            () = refill(pool, &endpoint, protocol) => {}
            () = crate::net::stopped(&mut shutdown) => {}
        }
    })
}

async fn refill(pool: Weak<Pool>, endpoint: &Endpoint, protocol: Protocol) {
    let mut backoff = None::<Duration>;
    loop {
        let Some(strong) = pool.upgrade() else { return };
        let timing = strong.timing;
        strong.sweep();
        if strong.len() >= strong.size {
            let _ = tokio::time::timeout(timing.sweep, strong.taken.notified()).await;
            continue;
        }
        drop(strong);
        match warm(endpoint, protocol).await {
            Ok(warm) => {
                backoff = None;
                match pool.upgrade() {
                    Some(strong) => strong.push(warm),
                    None => return,
                }
            }
            Err(e) => {
                let wait = backoff.map_or(timing.first_backoff, |b| {
                    b.saturating_mul(2).min(timing.max_backoff)
                });
                debug!(error = %e, retry_in = ?wait, "prewarming an upstream connection failed");
                backoff = Some(wait);
                sleep(wait).await;
            }
        }
    }
}

/// Connects and reads the greeting, bounded by the endpoint's timeouts.
pub async fn warm(endpoint: &Endpoint, protocol: Protocol) -> Result<Warm, UpstreamError> {
    let addr = endpoint.addr();
    let mut stream = connect(endpoint, &addr).await?;
    let deadline = Instant::now() + endpoint.login_timeout;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    while !greeting_complete(protocol, &buf) {
        if buf.len() >= READ_CHUNK {
            let source = std::io::Error::other("greeting longer than the read chunk");
            return Err(UpstreamError::Io { addr, source });
        }
        let read = timeout_at(deadline, stream.read_buf(&mut buf))
            .await
            .map_err(|_| UpstreamError::Timeout {
                addr: addr.clone(),
                phase: "reading the greeting",
            })?
            .map_err(|source| UpstreamError::Io {
                addr: addr.clone(),
                source,
            })?;
        if read == 0 {
            return Err(UpstreamError::Closed { addr });
        }
    }
    Ok(Warm { stream, buf })
}

/// Whether `buf` holds a whole greeting: one line for IMAP and POP3, an SMTP
/// reply through its last line (`220 ` rather than `220-`).
pub fn greeting_complete(protocol: Protocol, buf: &[u8]) -> bool {
    let mut lines = buf.split_inclusive(|&b| b == b'\n');
    match protocol {
        Protocol::Imap | Protocol::Pop3 => lines.next().is_some_and(|l| l.ends_with(b"\n")),
        Protocol::Smtp => {
            lines.any(|l| l.ends_with(b"\n") && l.get(3).is_none_or(|&sep| sep != b'-'))
        }
    }
}

#[cfg(test)]
#[path = "prewarm_tests.rs"]
mod tests;
