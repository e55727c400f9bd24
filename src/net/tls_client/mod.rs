//! The upstream TLS stream, on rustls's unbuffered API.
//!
//! A bulk FETCH is the one place where mailgate moves gigabytes, and the
//! buffered rustls connection copies every byte twice before decrypting
//! it: from the socket into a read-ahead buffer, then into its deframer.
//! Here the socket reads up to 64 KiB straight into one buffer mailgate
//! owns, rustls decrypts the records in place there, and consumed records
//! are skipped over, not moved. rustls 0.23 still hands each record's
//! plaintext over as its own allocation; what is left of one the caller
//! had no room for waits in a small side buffer. Every buffer goes away
//! while the connection is idle. See `docs/design.md` ("Upstream TLS").
//!
//! End of stream follows tokio-rustls: a close_notify ends reads with
//! `Ok(0)`; a bare TCP EOF is an `UnexpectedEof` error.

mod buffers;
#[cfg(test)]
mod tests;

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::pki_types::ServerName;
use rustls::unbuffered::{ConnectionState, WriteTraffic};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use buffers::{Incoming, Outgoing, Plain};

/// A client TLS connection over TCP.
pub struct TlsClient {
    tcp: TcpStream,
    conn: UnbufferedClientConnection,
    incoming: Incoming,
    plain: Plain,
    out: Outgoing,
    /// The peer's close_notify has been processed.
    peer_closed: bool,
    close_sent: bool,
    /// Woken when a write decrypted records a pending read waits for.
    reader: Option<Waker>,
}

/// What one call of `process_tls_records` came to.
enum Event<R> {
    /// Application data went to the caller's buffer or to `plain`.
    Read,
    /// A message was queued in `out`; call again.
    Queued,
    /// The handshake waits for the peer's bytes.
    Blocked,
    /// Ready for application data (and, on a read, waiting for bytes).
    Writable(R),
    PeerClosed,
    Closed,
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

fn no_close_notify() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "peer closed connection without sending TLS close_notify",
    )
}

impl TlsClient {
    /// Runs the client handshake on `tcp`, sending any bytes it queued.
    pub async fn connect(
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
        tcp: TcpStream,
    ) -> io::Result<Self> {
        let conn = UnbufferedClientConnection::new(config, name).map_err(tls_error)?;
        let mut this = Self {
            tcp,
            conn,
            incoming: Incoming::default(),
            plain: Plain::default(),
            out: Outgoing::default(),
            peer_closed: false,
            close_sent: false,
            reader: None,
        };
        loop {
            match this.process(&mut ReadBuf::new(&mut []), |_, _| Ok(()))? {
                Event::Read | Event::Queued => {}
                Event::Writable(()) => {
                    poll_fn(|cx| this.poll_send(cx)).await?;
                    return Ok(this);
                }
                Event::Blocked => {
                    poll_fn(|cx| this.poll_send(cx)).await?;
                    if poll_fn(|cx| this.poll_fill(cx)).await? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "peer closed the connection during the TLS handshake",
                        ));
                    }
                }
                Event::PeerClosed | Event::Closed => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "peer closed TLS during the handshake",
                    ));
                }
            }
        }
    }

    /// How the handshake went (full or resumed).
    pub fn handshake_kind(&self) -> Option<rustls::HandshakeKind> {
        self.conn.handshake_kind()
    }

    pub fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }

    /// One step of the TLS state machine over the unprocessed input.
    /// Application data goes to `dst` as far as it fits, the rest to
    /// `plain`; `on_write` runs when application data may be encrypted.
    fn process<R>(
        &mut self,
        dst: &mut ReadBuf<'_>,
        on_write: impl FnOnce(
            &mut WriteTraffic<'_, ClientConnectionData>,
            &mut Outgoing,
        ) -> io::Result<R>,
    ) -> io::Result<Event<R>> {
        let Self {
            conn,
            incoming,
            plain,
            out,
            ..
        } = self;
        let status = conn.process_tls_records(incoming.data());
        let mut discard = status.discard;
        let event = match status.state.map_err(tls_error)? {
            ConnectionState::ReadTraffic(mut traffic) => {
                while let Some(record) = traffic.next_record() {
                    let record = record.map_err(tls_error)?;
                    discard += record.discard;
                    let fits = record.payload.len().min(dst.remaining());
                    dst.put_slice(&record.payload[..fits]);
                    if fits < record.payload.len() {
                        plain.push(&record.payload[fits..]);
                    }
                }
                Event::Read
            }
            ConnectionState::EncodeTlsData(mut message) => {
                out.encode(&mut message)?;
                Event::Queued
            }
            // Bytes in `out` leave in order, ahead of anything queued later.
            ConnectionState::TransmitTlsData(transmit) => {
                transmit.done();
                Event::Queued
            }
            ConnectionState::BlockedHandshake => Event::Blocked,
            ConnectionState::WriteTraffic(mut traffic) => {
                Event::Writable(on_write(&mut traffic, out)?)
            }
            ConnectionState::PeerClosed => Event::PeerClosed,
            ConnectionState::Closed => Event::Closed,
            _ => return Err(io::Error::other("unexpected TLS client state")),
        };
        incoming.discard(discard);
        Ok(event)
    }

    /// Steps until application data may be encrypted, then runs `write`.
    /// Records decrypted on the way wait in `plain` for the reader.
    fn until_writable<R>(
        &mut self,
        write: impl FnOnce(&mut WriteTraffic<'_, ClientConnectionData>, &mut Outgoing) -> io::Result<R>,
    ) -> io::Result<R> {
        let mut write = Some(write);
        loop {
            let step = self.process(&mut ReadBuf::new(&mut []), |traffic, out| {
                match write.take() {
                    Some(write) => write(traffic, out),
                    None => Err(io::Error::other("TLS write attempted twice")),
                }
            })?;
            match step {
                Event::Writable(r) => return Ok(r),
                Event::Read | Event::PeerClosed => {
                    self.peer_closed |= matches!(step, Event::PeerClosed);
                    if let Some(reader) = self.reader.take() {
                        reader.wake();
                    }
                }
                Event::Queued => {}
                Event::Blocked => return Err(io::Error::other("TLS handshake not complete")),
                Event::Closed => {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "TLS connection closed",
                    ));
                }
            }
        }
    }

    /// Sends everything queued in `out`.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, self.out.pending()))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.sent(n);
        }
        Poll::Ready(Ok(()))
    }

    /// Reads from the socket into the incoming buffer; `Ok(0)` at EOF.
    /// Allocates the buffer only once the socket has bytes.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.tcp.poll_read_ready(cx))?;
            let buf = self.incoming.room()?;
            match self.tcp.try_read_buf(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_read_inner(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if dst.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if !self.out.is_empty()
            && let Poll::Ready(Err(e)) = self.poll_send(cx)
        {
            return Poll::Ready(Err(e));
        }
        let before = dst.filled().len();
        loop {
            if !self.plain.is_empty() {
                self.plain.take_into(dst);
                return Poll::Ready(Ok(()));
            }
            if self.peer_closed {
                return Poll::Ready(Ok(()));
            }
            match self.process(dst, |_, _| Ok(()))? {
                Event::Read | Event::Queued => {
                    // Post-handshake replies (KeyUpdate) leave when they can.
                    if let Poll::Ready(Err(e)) = self.poll_send(cx) {
                        return Poll::Ready(Err(e));
                    }
                    if dst.remaining() == 0 {
                        return Poll::Ready(Ok(()));
                    }
                }
                Event::PeerClosed => self.peer_closed = true,
                Event::Closed => return Poll::Ready(Ok(())),
                Event::Blocked | Event::Writable(()) => {
                    if dst.filled().len() > before {
                        return Poll::Ready(Ok(()));
                    }
                    match self.poll_fill(cx) {
                        Poll::Ready(Ok(0)) => return Poll::Ready(Err(no_close_notify())),
                        Poll::Ready(Ok(_)) => {}
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => {
                            self.incoming.release();
                            self.plain.release();
                            self.reader = Some(cx.waker().clone());
                            return Poll::Pending;
                        }
                    }
                }
            }
        }
    }
}

impl AsyncRead for TlsClient {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().poll_read_inner(cx, dst)
    }
}

impl AsyncWrite for TlsClient {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // One batch of ciphertext in flight at a time: that is the bound.
        ready!(this.poll_send(cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = this.until_writable(|traffic, out| out.encrypt(traffic, data))?;
        if let Poll::Ready(Err(e)) = this.poll_send(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_sent {
            ready!(this.poll_send(cx))?;
            this.until_writable(|traffic, out| out.close_notify(traffic))?;
            this.close_sent = true;
        }
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}
