//! The one driver loop. A machine is stepped over a buffer; the driver does
//! what each step asks (read, write, upgrade to TLS) under one deadline for
//! the whole dialogue, so a peer trickling a byte a second is still cut off,
//! and stops when the machine yields a step for its caller or the dialogue is
//! interrupted. The client dialogue (`session`) and the upstream login
//! (`upstream`) run through here; what differs (a login, a shutdown reply, a
//! token in a write) stays with them.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{Instant, timeout, timeout_at};

use super::Stream;
use crate::proto::{Action, Machine, Step};
use crate::tls::local::LocalAcceptor;

/// Which part of the dialogue was interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Reading,
    Writing,
    TlsHandshake,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Reading => "reading",
            Self::Writing => "writing",
            Self::TlsHandshake => "TLS handshake",
        })
    }
}

/// Why a dialogue stopped before its machine yielded a step.
#[derive(Debug, thiserror::Error)]
pub enum Interrupted {
    #[error("the peer closed the connection")]
    Closed,
    #[error("shutting down")]
    Shutdown,
    #[error("{0} timed out")]
    TimedOut(Phase),
    #[error("{phase}: {source}")]
    Io { phase: Phase, source: io::Error },
    #[error("TLS requested but no certificate is loaded")]
    NoCertificate,
}

/// How a STARTTLS step upgrades the stream.
pub enum Tls<'a> {
    /// Server side (towards a client), bounded by its own handshake timeout.
    Accept {
        acceptor: Option<&'a LocalAcceptor>,
        within: Duration,
    },
    /// Client side (towards the provider), bounded by the dialogue deadline.
    Connect {
        config: &'a Arc<rustls::ClientConfig>,
        server_name: &'a str,
    },
}

impl Tls<'_> {
    /// Upgrades a plain stream; `deadline` bounds a `Connect`.
    pub async fn upgrade(&self, stream: Stream, deadline: Instant) -> Result<Stream, Interrupted> {
        let handshake = match self {
            Tls::Accept { acceptor, within } => {
                let acceptor = acceptor.ok_or(Interrupted::NoCertificate)?;
                timeout(*within, stream.accept_tls(acceptor)).await
            }
            Tls::Connect {
                config,
                server_name,
            } => {
                let connect = stream.connect_tls(Arc::clone(config), server_name);
                timeout_at(deadline, connect).await
            }
        };
        match handshake {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(source)) => Err(Interrupted::Io {
                phase: Phase::TlsHandshake,
                source,
            }),
            Err(_) => Err(Interrupted::TimedOut(Phase::TlsHandshake)),
        }
    }
}

/// The bounds and context of one dialogue.
pub struct Dialogue<'a> {
    /// Every read and write of the dialogue ends by this instant.
    pub deadline: Instant,
    /// Largest single read; the machines bound whole commands and lines.
    pub read_chunk: usize,
    pub tls: Tls<'a>,
    /// Interrupts a read when the process shuts down (client side only).
    pub shutdown: Option<watch::Receiver<bool>>,
}

/// Steps `machine` over `buf`, doing what each step asks, until it yields a
/// step for the caller. Bytes the machine left in `buf` stay there (the
/// relay forwards them).
pub async fn drive<M: Machine + ?Sized>(
    machine: &mut M,
    stream: &mut Stream,
    buf: &mut BytesMut,
    dialogue: &mut Dialogue<'_>,
) -> Result<M::Step, Interrupted> {
    loop {
        let step = machine.step(buf);
        match step.action() {
            Action::Read => read(stream, buf, dialogue).await?,
            Action::Write(bytes) => write_all(stream, bytes, dialogue.deadline).await?,
            Action::StartTls(bytes) => {
                write_all(stream, bytes, dialogue.deadline).await?;
                // Bytes pipelined behind STARTTLS were sent in clear and could
                // have been injected (RFC 3207 §4.2): drop them.
                buf.clear();
                let plain = stream.take();
                *stream = dialogue.tls.upgrade(plain, dialogue.deadline).await?;
                machine.tls_established();
            }
            Action::Yield => return Ok(step),
        }
    }
}

async fn read(
    stream: &mut Stream,
    buf: &mut BytesMut,
    dialogue: &mut Dialogue<'_>,
) -> Result<(), Interrupted> {
    buf.reserve(dialogue.read_chunk);
    let read = timeout_at(dialogue.deadline, stream.read_buf(buf));
    let outcome = match dialogue.shutdown.as_mut() {
        Some(shutdown) => tokio::select! {
            read = read => read,
            () = super::stopped(shutdown) => return Err(Interrupted::Shutdown),
        },
        None => read.await,
    };
    match outcome {
        Ok(Ok(0)) => Err(Interrupted::Closed),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => Err(Interrupted::Io {
            phase: Phase::Reading,
            source,
        }),
        Err(_) => Err(Interrupted::TimedOut(Phase::Reading)),
    }
}

/// Writes and flushes `bytes` by `deadline`: a peer that never reads cannot
/// hold the dialogue open by stalling our writes.
pub async fn write_all(
    stream: &mut Stream,
    bytes: &[u8],
    deadline: Instant,
) -> Result<(), Interrupted> {
    if bytes.is_empty() {
        return Ok(());
    }
    let io = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    match timeout_at(deadline, io).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(Interrupted::Io {
            phase: Phase::Writing,
            source,
        }),
        Err(_) => Err(Interrupted::TimedOut(Phase::Writing)),
    }
}

/// What a dialogue leaves behind for the relay: only the bytes still unread,
/// in an allocation of their size. The read buffer itself (a page touched by
/// every login) is freed here instead of living as long as the session;
/// BENCHMARKS.md section 4 measures what that costs per idle session.
pub fn leftover(buf: BytesMut) -> BytesMut {
    BytesMut::from(&buf[..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::pop3::Pop3Client;
    use crate::proto::{ClientLimits, ClientOptions, ClientStep};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// A loopback connection: the driven end and the peer.
    async fn pair() -> (Stream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (near, far) = tokio::join!(listener.accept(), TcpStream::connect(addr));
        (Stream::Plain(near.unwrap().0), far.unwrap())
    }

    fn dialogue(within: Duration) -> Dialogue<'static> {
        Dialogue {
            deadline: Instant::now() + within,
            read_chunk: 16,
            tls: Tls::Accept {
                acceptor: None,
                within: Duration::from_secs(1),
            },
            shutdown: None,
        }
    }

    fn pop3(starttls_available: bool) -> Pop3Client {
        Pop3Client::new(ClientOptions {
            hostname: "gate.test".into(),
            tls_active: false,
            starttls_available,
            require_tls_for_auth: false,
            limits: ClientLimits::default(),
        })
    }

    #[tokio::test]
    async fn writes_replies_and_yields_the_close() {
        let (mut near, mut far) = pair().await;
        far.write_all(b"NOOP\r\nQUIT\r\n").await.unwrap();
        let mut buf = BytesMut::new();
        let step = drive(
            &mut pop3(false),
            &mut near,
            &mut buf,
            &mut dialogue(Duration::from_secs(5)),
        )
        .await
        .unwrap();
        assert!(matches!(
            step,
            ClientStep::Close {
                reason: "client quit",
                ..
            }
        ));
        let mut got = vec![0u8; 64];
        let n = timeout(Duration::from_secs(5), far.read(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&got[..n], b"-ERR Command not valid before login\r\n");
    }

    #[tokio::test]
    async fn a_peer_that_hangs_up_is_closed() {
        let (mut near, far) = pair().await;
        drop(far);
        let mut buf = BytesMut::new();
        let mut d = dialogue(Duration::from_secs(5));
        let end = drive(&mut pop3(false), &mut near, &mut buf, &mut d).await;
        assert!(matches!(end, Err(Interrupted::Closed)), "{end:?}");
    }

    #[tokio::test]
    async fn silence_until_the_deadline_times_out_reading() {
        let (mut near, _far) = pair().await;
        let mut buf = BytesMut::new();
        let mut d = dialogue(Duration::from_millis(50));
        let end = drive(&mut pop3(false), &mut near, &mut buf, &mut d).await;
        assert!(
            matches!(end, Err(Interrupted::TimedOut(Phase::Reading))),
            "{end:?}"
        );
    }

    #[tokio::test]
    async fn starttls_without_a_certificate_stops_and_drops_pipelined_bytes() {
        let (mut near, mut far) = pair().await;
        far.write_all(b"STLS\r\nUSER injected\r\n").await.unwrap();
        let mut buf = BytesMut::new();
        let mut d = dialogue(Duration::from_secs(5));
        let end = drive(&mut pop3(true), &mut near, &mut buf, &mut d).await;
        assert!(matches!(end, Err(Interrupted::NoCertificate)), "{end:?}");
        assert!(buf.is_empty(), "bytes behind STARTTLS must be dropped");
    }

    #[tokio::test]
    async fn shutdown_interrupts_a_read() {
        let (mut near, _far) = pair().await;
        let (stop, shutdown) = watch::channel(false);
        let mut d = dialogue(Duration::from_secs(5));
        d.shutdown = Some(shutdown);
        stop.send(true).unwrap();
        let mut buf = BytesMut::new();
        let end = drive(&mut pop3(false), &mut near, &mut buf, &mut d).await;
        assert!(matches!(end, Err(Interrupted::Shutdown)), "{end:?}");
    }

    #[test]
    fn leftover_keeps_only_the_unread_bytes_in_an_allocation_of_their_size() {
        let mut buf = BytesMut::with_capacity(4096);
        buf.extend_from_slice(b"a1 NOOP\r\n");
        let kept = super::leftover(buf);
        assert_eq!(&kept[..], b"a1 NOOP\r\n");
        assert_eq!(kept.capacity(), kept.len());
        assert_eq!(super::leftover(BytesMut::with_capacity(4096)).capacity(), 0);
    }
}
