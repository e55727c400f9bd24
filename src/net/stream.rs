//! One stream type for a connection that may be upgraded to TLS in the
//! middle (STARTTLS), on either side. The driver owns a `Stream` and swaps
//! its variant on upgrade; the relay sees only `AsyncRead + AsyncWrite`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server;

use super::tls_client::TlsClient;
use crate::tls::local::LocalAcceptor;

pub enum Stream {
    Plain(TcpStream),
    Server(Box<server::TlsStream<TcpStream>>),
    /// Upstream TLS, decrypting in place (see `tls_client`).
    Client(Box<TlsClient>),
    /// Local TLS on OpenSSL, for a listener that accepts TLS 1.0/1.1.
    #[cfg(feature = "legacy-tls")]
    Legacy(Box<tokio_openssl::SslStream<TcpStream>>),
    /// Only while an upgrade is in progress.
    Upgrading,
}

impl Stream {
    pub fn is_tls(&self) -> bool {
        match self {
            Self::Server(_) | Self::Client(_) => true,
            #[cfg(feature = "legacy-tls")]
            Self::Legacy(_) => true,
            Self::Plain(_) | Self::Upgrading => false,
        }
    }

    /// Server-side TLS handshake on a plain stream.
    pub async fn accept_tls(self, acceptor: &LocalAcceptor) -> io::Result<Self> {
        let Self::Plain(tcp) = self else {
            return Err(io::Error::other("TLS is already active on this connection"));
        };
        match acceptor {
            LocalAcceptor::Rustls(a) => Ok(Self::Server(Box::new(a.accept(tcp).await?))),
            #[cfg(feature = "legacy-tls")]
            LocalAcceptor::Legacy(a) => Ok(Self::Legacy(Box::new(a.accept(tcp).await?))),
        }
    }

    /// Client-side TLS handshake on a plain stream, verifying `name`.
    pub async fn connect_tls(
        self,
        config: Arc<rustls::ClientConfig>,
        name: &str,
    ) -> io::Result<Self> {
        let server_name =
            rustls::pki_types::ServerName::try_from(name.to_owned()).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{name:?} is not a valid TLS server name"),
                )
            })?;
        match self {
            Self::Plain(tcp) => Ok(Self::Client(Box::new(
                TlsClient::connect(config, server_name, tcp).await?,
            ))),
            _ => Err(io::Error::other("TLS is already active on this connection")),
        }
    }

    pub fn take(&mut self) -> Self {
        std::mem::replace(self, Self::Upgrading)
    }
}

fn upgrading() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "stream is being upgraded to TLS",
    )
}

/// What every variant is underneath: one byte stream.
trait Io: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Io for T {}

impl Stream {
    /// The live variant, or `None` while an upgrade is in progress.
    fn io(&mut self) -> Option<&mut dyn Io> {
        match self {
            Self::Plain(s) => Some(s),
            Self::Server(s) => Some(s.as_mut()),
            Self::Client(s) => Some(s.as_mut()),
            #[cfg(feature = "legacy-tls")]
            Self::Legacy(s) => Some(s.as_mut()),
            Self::Upgrading => None,
        }
    }

    /// Runs one poll on the live variant; fails while upgrading.
    fn poll_io<T>(
        self: Pin<&mut Self>,
        poll: impl FnOnce(Pin<&mut dyn Io>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match self.get_mut().io() {
            Some(io) => poll(Pin::new(io)),
            None => Poll::Ready(Err(upgrading())),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.poll_io(|io| io.poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(|io| io.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_io(|io| io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_io(|io| io.poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(|io| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Server(s) => s.is_write_vectored(),
            Self::Client(s) => s.is_write_vectored(),
            #[cfg(feature = "legacy-tls")]
            Self::Legacy(s) => s.is_write_vectored(),
            Self::Upgrading => false,
        }
    }
}
