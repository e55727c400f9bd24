//! One direction of the copy: its buffer's life (none, first page, doubled,
//! freed when quiet; see the parent module for why) and tokio's copy order of
//! read, write, flush.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::coop;
use tokio::time::Instant;

use super::{FIRST_BUFFER, RELEASE_AFTER};
use crate::relay::RELAY_BUFFER;

/// One direction's buffer and progress: bytes `pos..cap` of `buf` are read
/// and not yet written. An empty `buf` owns no allocation.
pub(super) struct OneWay {
    buf: Vec<u8>,
    pos: usize,
    cap: usize,
    read_done: bool,
    need_flush: bool,
    /// A read since the buffer was last drained left it full.
    filled_up: bool,
    /// When the reader last returned `Pending` with the buffer drained, if no
    /// data arrived since.
    quiet_since: Option<Instant>,
    amt: u64,
    #[cfg(test)]
    allocations: u32,
}

impl OneWay {
    pub(super) fn new() -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            cap: 0,
            read_done: false,
            need_flush: false,
            filled_up: false,
            quiet_since: None,
            amt: 0,
            #[cfg(test)]
            allocations: 0,
        }
    }

    /// Bytes of buffer this direction owns now.
    pub(super) fn held(&self) -> usize {
        self.buf.len()
    }

    #[cfg(test)]
    pub(super) fn allocations(&self) -> u32 {
        self.allocations
    }

    fn allocate(&mut self, size: usize) {
        self.buf = Vec::new();
        self.buf = vec![0; size];
        #[cfg(test)]
        {
            self.allocations += 1;
        }
    }

    fn poll_fill_buf<R>(
        &mut self,
        cx: &mut Context<'_>,
        reader: Pin<&mut R>,
    ) -> Poll<io::Result<()>>
    where
        R: AsyncRead + ?Sized,
    {
        if self.buf.is_empty() {
            return self.poll_fill_released(cx, reader);
        }
        let mut buf = ReadBuf::new(&mut self.buf);
        buf.set_filled(self.cap);
        let res = reader.poll_read(cx, &mut buf);
        if let Poll::Ready(Ok(())) = res {
            let filled = buf.filled().len();
            self.read_done = self.cap == filled;
            self.cap = filled;
            self.filled_up |= filled == self.buf.len();
            if !self.read_done {
                self.quiet_since = None;
            }
        }
        res
    }

    /// Reads while the direction owns no buffer (it is drained: `cap` is 0).
    fn poll_fill_released<R>(
        &mut self,
        cx: &mut Context<'_>,
        reader: Pin<&mut R>,
    ) -> Poll<io::Result<()>>
    where
        R: AsyncRead + ?Sized,
    {
        let mut stack = [MaybeUninit::<u8>::uninit(); FIRST_BUFFER];
        let mut buf = ReadBuf::uninit(&mut stack);
        let res = reader.poll_read(cx, &mut buf);
        if let Poll::Ready(Ok(())) = res {
            let data = buf.filled();
            if data.is_empty() {
                self.read_done = true;
            } else {
                self.allocate(FIRST_BUFFER);
                self.buf[..data.len()].copy_from_slice(data);
                self.cap = data.len();
                self.filled_up = data.len() == FIRST_BUFFER;
                self.quiet_since = None;
            }
        }
        res
    }

    fn poll_write_buf<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        mut reader: Pin<&mut R>,
        mut writer: Pin<&mut W>,
    ) -> Poll<io::Result<usize>>
    where
        R: AsyncRead + ?Sized,
        W: AsyncWrite + ?Sized,
    {
        match writer
            .as_mut()
            .poll_write(cx, &self.buf[self.pos..self.cap])
        {
            Poll::Pending => {
                // Top the buffer up while the writer is busy, for a larger
                // write next time (as tokio's copy does).
                if !self.read_done && self.cap < self.buf.len() {
                    ready!(self.poll_fill_buf(cx, reader.as_mut()))?;
                }
                Poll::Pending
            }
            res => res,
        }
    }

    /// Copies until the reader's end of file has been written and flushed.
    pub(super) fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        mut reader: Pin<&mut R>,
        mut writer: Pin<&mut W>,
    ) -> Poll<io::Result<u64>>
    where
        R: AsyncRead + ?Sized,
        W: AsyncWrite + ?Sized,
    {
        let coop = ready!(coop::poll_proceed(cx));
        loop {
            if (self.buf.is_empty() || self.cap < self.buf.len()) && !self.read_done {
                match self.poll_fill_buf(cx, reader.as_mut()) {
                    Poll::Ready(Ok(())) => coop.made_progress(),
                    Poll::Ready(Err(err)) => {
                        coop.made_progress();
                        return Poll::Ready(Err(err));
                    }
                    Poll::Pending => {
                        if self.pos == self.cap {
                            if self.quiet_since.is_none() && !self.buf.is_empty() {
                                self.quiet_since = Some(Instant::now());
                            }
                            // Flush when the reader has nothing, so that what
                            // was written does not wait for more (an IMAP
                            // `+ idling` must reach the client).
                            if self.need_flush {
                                ready!(writer.as_mut().poll_flush(cx))?;
                                coop.made_progress();
                                self.need_flush = false;
                            }
                            return Poll::Pending;
                        }
                    }
                }
            }
            while self.pos < self.cap {
                let n = ready!(self.poll_write_buf(cx, reader.as_mut(), writer.as_mut()))?;
                coop.made_progress();
                if n == 0 {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "write zero byte into writer",
                    )));
                }
                self.pos += n;
                self.amt += n as u64;
                self.need_flush = true;
            }
            self.pos = 0;
            self.cap = 0;
            if self.filled_up && self.buf.len() < RELAY_BUFFER {
                self.allocate((self.buf.len() * 2).min(RELAY_BUFFER));
            }
            self.filled_up = false;
            if self.read_done {
                ready!(writer.as_mut().poll_flush(cx))?;
                coop.made_progress();
                return Poll::Ready(Ok(self.amt));
            }
        }
    }

    /// When this direction's buffer may be freed, if it is drained and quiet.
    pub(super) fn release_due(&self) -> Option<Instant> {
        if self.buf.is_empty() || self.cap != 0 {
            return None;
        }
        self.quiet_since.map(|since| since + RELEASE_AFTER)
    }

    pub(super) fn release_if_due(&mut self, now: Instant) {
        if self.release_due().is_some_and(|due| due <= now) {
            self.buf = Vec::new();
            self.filled_up = false;
            self.quiet_since = None;
        }
    }
}
