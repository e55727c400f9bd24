//! Read-ahead under the upstream TLS session, for bulk downloads only.
//!
//! rustls asks its transport for at most 4 KiB per read (its deframer's
//! `READ_SIZE`), so relaying a large FETCH costs one `recvfrom` per 4 KiB:
//! about 250,000 system calls per GB, measured with `strace -c` in
//! BENCHMARKS.md. Once a connection shows bulk traffic (several reads in a
//! row that filled the whole request), reads go through a
//! [`READ_AHEAD`]-byte buffer instead, one system call per 64 KiB. Until
//! then no buffer exists: logins and the thousands of idle sessions a
//! proxy holds do not pay for it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Size of the buffer a bulk connection reads into.
pub const READ_AHEAD: usize = 64 * 1024;
/// Consecutive reads that filled the caller's whole request before the
/// buffer is allocated (more than a TLS handshake flight of 4 KiB reads).
pub const BULK_AFTER: u8 = 8;

pub struct ReadAhead<S> {
    inner: S,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    full_reads: u8,
}

impl<S> ReadAhead<S> {
    pub fn new(inner: S) -> Self {
        ReadAhead {
            inner,
            buf: Box::default(),
            pos: 0,
            end: 0,
            full_reads: 0,
        }
    }

    /// Whether the read-ahead buffer has been allocated.
    pub fn is_buffering(&self) -> bool {
        !self.buf.is_empty()
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> ReadAhead<S> {
    fn poll_direct(&mut self, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let want = out.remaining();
        let before = out.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, out))?;
        let got = out.filled().len() - before;
        if want > 0 && got == want {
            self.full_reads = self.full_reads.saturating_add(1);
            if self.full_reads >= BULK_AFTER {
                self.buf = vec![0; READ_AHEAD].into_boxed_slice();
            }
        } else {
            self.full_reads = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.buf.is_empty() {
            return this.poll_direct(cx, out);
        }
        if this.pos == this.end {
            let mut fill = ReadBuf::new(&mut this.buf);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut fill))?;
            this.end = fill.filled().len();
            this.pos = 0;
        }
        let n = (this.end - this.pos).min(out.remaining());
        out.put_slice(&this.buf[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Everything written arrives in order, in every read size, before and
    /// after the switch to buffering, and EOF is passed on.
    #[tokio::test]
    async fn bytes_arrive_intact_across_the_switch_to_buffering() {
        let (mut far, near) = tokio::io::duplex(8 * READ_AHEAD);
        let data: Vec<u8> = (0..3 * READ_AHEAD + 17).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            far.write_all(&sent).await.unwrap();
            far.shutdown().await.unwrap();
        });
        let mut reader = ReadAhead::new(near);
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut sizes = [4096usize, 4096, 100, 4096].iter().cycle();
        loop {
            let size = *sizes.next().unwrap();
            let n = reader.read(&mut chunk[..size]).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        writer.await.unwrap();
        assert_eq!(got, data);
    }

    #[tokio::test]
    async fn buffers_only_after_a_run_of_full_reads() {
        let (mut far, near) = tokio::io::duplex(8 * READ_AHEAD);
        let mut reader = ReadAhead::new(near);
        let mut chunk = [0u8; 4096];
        for _ in 0..2 * BULK_AFTER {
            far.write_all(b"* OK small\r\n").await.unwrap();
            assert_eq!(reader.read(&mut chunk).await.unwrap(), 12);
        }
        assert!(!reader.is_buffering(), "small reads never allocate");
        far.write_all(&vec![b'x'; 4096 * BULK_AFTER as usize + 1])
            .await
            .unwrap();
        for _ in 0..BULK_AFTER {
            assert_eq!(reader.read(&mut chunk).await.unwrap(), 4096);
        }
        assert!(reader.is_buffering(), "a run of full reads switches");
        assert_eq!(reader.read(&mut chunk).await.unwrap(), 1);
    }
}
