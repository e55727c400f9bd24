//! After both logins, the session is a pipe. Bytes already buffered on either
//! side (pipelined commands, an early upstream line) go first, then both
//! directions are copied through buffers of at most [`RELAY_BUFFER`], so a
//! slow reader stalls its writer instead of growing memory (backpressure).
//! The buffers exist only while data moves ([`copy`] says why and how they
//! grow and are freed): most relayed sessions sit quiet for hours. A
//! half-close on one side is passed on as a write shutdown; the relay ends
//! when both directions are done or nothing moved for the idle timeout.
//! Nothing here looks at or logs the bytes.

mod copy;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

use prometheus_client::metrics::counter::Counter;

use crate::metrics::{self, Direction, count_bytes};

/// Largest size of each direction's copy buffer, reached during bulk transfers.
pub const RELAY_BUFFER: usize = 64 * 1024;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RelayStats {
    pub client_to_upstream: u64,
    pub upstream_to_client: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("no traffic for {0:?}")]
    Idle(Duration),
    #[error("relay I/O: {0}")]
    Io(#[from] io::Error),
}

/// Forwards the leftovers, then copies both ways until both sides are done,
/// an error occurs, or nothing moves for `idle`.
pub async fn relay<C, U>(
    client: &mut C,
    upstream: &mut U,
    client_leftover: &[u8],
    upstream_leftover: &[u8],
    idle: Duration,
) -> Result<RelayStats, RelayError>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let registry = metrics::global();
    let to_upstream = registry.relayed_counter(Direction::client_to_upstream);
    let to_client = registry.relayed_counter(Direction::upstream_to_client);
    count_bytes(&to_upstream, client_leftover.len());
    count_bytes(&to_client, upstream_leftover.len());
    if !client_leftover.is_empty() {
        upstream.write_all(client_leftover).await?;
        upstream.flush().await?;
    }
    if !upstream_leftover.is_empty() {
        client.write_all(upstream_leftover).await?;
        client.flush().await?;
    }
    let epoch = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let mut c = Activity {
        inner: client,
        last: last.clone(),
        epoch,
        counted: to_upstream,
    };
    let mut u = Activity {
        inner: upstream,
        last: last.clone(),
        epoch,
        counted: to_client,
    };
    let copy = copy::CopyBoth::new(&mut c, &mut u);
    tokio::pin!(copy);
    loop {
        let since = Duration::from_millis(last.load(Ordering::Relaxed));
        let deadline = epoch + since + idle;
        tokio::select! {
            done = &mut copy => {
                let (up, down) = done?;
                return Ok(RelayStats {
                    client_to_upstream: up + client_leftover.len() as u64,
                    upstream_to_client: down + upstream_leftover.len() as u64,
                });
            }
            () = tokio::time::sleep_until(deadline) => {
                let since = Duration::from_millis(last.load(Ordering::Relaxed));
                if Instant::now() >= epoch + since + idle {
                    return Err(RelayError::Idle(idle));
                }
            }
        }
    }
}

/// Records when data last arrived, once per read call (not per byte), and
/// counts what was read in `mailgate_relayed_bytes_total` as it passes, so
/// a session relaying for hours shows in the metrics before it ends.
struct Activity<'a, S> {
    inner: &'a mut S,
    last: Arc<AtomicU64>,
    epoch: Instant,
    /// Counts the bytes read from `inner` (their direction's counter).
    counted: Counter,
}

impl<S: AsyncRead + Unpin> AsyncRead for Activity<'_, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut *this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            count_bytes(&this.counted, buf.filled().len() - before);
            let ms = u64::try_from(this.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
            this.last.store(ms, Ordering::Relaxed);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Activity<'_, S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
