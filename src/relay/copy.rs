//! The relay's copy loop: both directions in one future, as
//! `tokio::io::copy_bidirectional` does, with the same order of reads,
//! writes, flushes and shutdowns, but with buffers that follow the traffic.
//!
//! Most relayed sessions wait: an IMAP client sits in IDLE for hours. A fixed
//! buffer per direction costs every such session the pages its few bytes
//! touched, for as long as it lives (BENCHMARKS.md section 4, "Where the
//! memory of an idle session goes"). So each direction's buffer
//!
//! - does not exist until data arrives. While it has none, a direction reads
//!   into a [`FIRST_BUFFER`]-sized array on the stack, and only when that read
//!   returns bytes does it allocate [`FIRST_BUFFER`] and copy them in; a read
//!   that returns `Pending` costs no allocation;
//! - doubles, up to [`RELAY_BUFFER`](super::RELAY_BUFFER), once it has been
//!   drained after a read that filled it, so a bulk transfer (a FETCH of a
//!   large message) reaches 64 KiB reads and writes after four full reads,
//!   as with the fixed buffers before;
//! - is freed, not cleared, once it is drained and its reader has had
//!   nothing for [`RELEASE_AFTER`], and the next data starts again at
//!   [`FIRST_BUFFER`].
//!
//! Why a quiet period and not the first `Pending`: mailgate relays faster
//! than most upstreams send, so during a FETCH the reader returns `Pending`
//! between TCP segments many times per MiB. Freeing on each of them would
//! free, allocate and regrow the buffer for nearly every read. A transfer
//! stalls for a whole second only on a retransmission timeout (at least 1 s,
//! RFC 6298 section 2.4; Linux's floor is 200 ms) or when its peer stops;
//! the unit test `bulk_transfer_with_pauses_allocates_only_while_growing`
//! counts five allocations (the first page and four doublings) for 32 MiB
//! delivered in 100 KiB bursts with `Pending` between them. A drained, quiet
//! session keeps one timer until its buffers are freed, and none after.
//!
//! Backpressure is unchanged: a direction holds at most
//! [`RELAY_BUFFER`](super::RELAY_BUFFER) bytes and reads only into free
//! space, so a slow reader stalls its writer.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};

mod one_way;
use one_way::OneWay;

/// Size of a direction's buffer when data first arrives after a quiet period:
/// one page, enough for a command or a short response.
pub const FIRST_BUFFER: usize = 4 * 1024;

/// How long a drained direction must have nothing to read before its buffer
/// is freed (see the module documentation for why not at once).
pub const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// A direction's life: copying, then passing the end of file on as a write
/// shutdown, then done with its byte count.
enum Transfer {
    Running(OneWay),
    ShuttingDown(u64),
    Done(u64),
}

impl Transfer {
    fn running(&self) -> Option<&OneWay> {
        match self {
            Transfer::Running(way) => Some(way),
            _ => None,
        }
    }

    fn holds_buffer(&self) -> bool {
        self.running().is_some_and(|way| way.held() > 0)
    }

    fn release_due(&self) -> Option<Instant> {
        self.running().and_then(OneWay::release_due)
    }

    fn release_if_due(&mut self, now: Instant) {
        if let Transfer::Running(way) = self {
            way.release_if_due(now);
        }
    }

    fn poll<R, W>(&mut self, cx: &mut Context<'_>, r: &mut R, w: &mut W) -> Poll<io::Result<u64>>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        let mut r = Pin::new(r);
        let mut w = Pin::new(w);
        loop {
            match self {
                Transfer::Running(way) => {
                    let count = ready!(way.poll_copy(cx, r.as_mut(), w.as_mut()))?;
                    *self = Transfer::ShuttingDown(count);
                }
                Transfer::ShuttingDown(count) => {
                    ready!(w.as_mut().poll_shutdown(cx))?;
                    *self = Transfer::Done(*count);
                }
                Transfer::Done(count) => return Poll::Ready(Ok(*count)),
            }
        }
    }
}

/// Copies `a` to `b` and `b` to `a` until both have reached end of file and
/// passed it on; resolves to the bytes copied each way, or the first error.
pub struct CopyBoth<'a, A: ?Sized, B: ?Sized> {
    a: &'a mut A,
    b: &'a mut B,
    a_to_b: Transfer,
    b_to_a: Transfer,
    /// Fires when a quiet direction's buffer is due to be freed; exists only
    /// while a buffer does.
    release: Option<Pin<Box<Sleep>>>,
}

impl<'a, A: ?Sized, B: ?Sized> CopyBoth<'a, A, B> {
    pub fn new(a: &'a mut A, b: &'a mut B) -> Self {
        Self {
            a,
            b,
            a_to_b: Transfer::Running(OneWay::new()),
            b_to_a: Transfer::Running(OneWay::new()),
            release: None,
        }
    }

    /// Frees the buffers that are due and arms the timer for the next one.
    fn poll_release(&mut self, cx: &mut Context<'_>) {
        loop {
            if !self.a_to_b.holds_buffer() && !self.b_to_a.holds_buffer() {
                self.release = None;
                return;
            }
            let due = match (self.a_to_b.release_due(), self.b_to_a.release_due()) {
                (Some(x), Some(y)) => x.min(y),
                (Some(x), None) | (None, Some(x)) => x,
                // Both busy: a stale timer may still fire once, harmlessly.
                (None, None) => return,
            };
            let timer = self
                .release
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
            if timer.is_elapsed() || timer.deadline() > due {
                timer.as_mut().reset(due);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return;
            }
            let now = Instant::now();
            self.a_to_b.release_if_due(now);
            self.b_to_a.release_if_due(now);
        }
    }

    /// Bytes of buffer each direction owns now (`a` to `b`, `b` to `a`).
    #[cfg(test)]
    pub fn held(&self) -> (usize, usize) {
        let size = |t: &Transfer| t.running().map_or(0, |way| way.held());
        (size(&self.a_to_b), size(&self.b_to_a))
    }

    /// Buffers allocated so far by each direction (first ones and growth).
    #[cfg(test)]
    pub fn allocations(&self) -> (u32, u32) {
        let count = |t: &Transfer| t.running().map_or(0, OneWay::allocations);
        (count(&self.a_to_b), count(&self.b_to_a))
    }
}

impl<A, B> Future for CopyBoth<'_, A, B>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    type Output = io::Result<(u64, u64)>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let a_to_b = this.a_to_b.poll(cx, &mut *this.a, &mut *this.b)?;
        let b_to_a = this.b_to_a.poll(cx, &mut *this.b, &mut *this.a)?;
        if let (Poll::Ready(up), Poll::Ready(down)) = (a_to_b, b_to_a) {
            this.release = None;
            return Poll::Ready(Ok((up, down)));
        }
        this.poll_release(cx);
        Poll::Pending
    }
}

#[cfg(test)]
mod tests;
