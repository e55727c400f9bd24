//! The one line-oriented test client: TCP, optionally TLS (implicit or after
//! STARTTLS) trusting only the test CA, or a socket bound to a chosen
//! loopback source address. Every read has a deadline.
//!
//! A client is strict by default: a failed write or read panics, because a
//! well-behaved test session never sees one. Tests that feed hostile input
//! use a *tolerant* client ([`Client::raw`], [`Client::from_tcp`]), where the
//! server resetting the connection is an expected answer: a failed write
//! returns `false` and a reset reads as EOF.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

pub use super::lines::Io;

pub const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// Upper bound on the lines [`Client::until`] reads looking for its prefix.
const MAX_UNTIL_LINES: usize = 1000;

pub struct Client {
    conn: Option<BufReader<Box<dyn Io>>>,
    /// Resets read as EOF and failed writes return `false` instead of panicking.
    tolerant: bool,
}

impl Client {
    fn wrap(io: Box<dyn Io>, tolerant: bool) -> Self {
        Self {
            conn: Some(BufReader::new(io)),
            tolerant,
        }
    }

    /// A strict client over plain TCP.
    pub async fn connect(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).await.expect("connect to mailgate");
        Self::wrap(Box::new(tcp), false)
    }

    /// A tolerant client over plain TCP.
    pub async fn raw(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).await.expect("connect to mailgate");
        Self::from_tcp(tcp)
    }

    /// A tolerant client over a connected socket (e.g. from [`connect_from`]).
    pub fn from_tcp(tcp: TcpStream) -> Self {
        Self::wrap(Box::new(tcp), true)
    }

    /// A strict client over implicit TLS to "localhost".
    pub async fn connect_tls(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> Self {
        let tcp = TcpStream::connect(addr).await.expect("connect to mailgate");
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .expect("TLS to mailgate");
        Self::wrap(Box::new(stream), false)
    }

    fn conn(&mut self) -> &mut BufReader<Box<dyn Io>> {
        self.conn.as_mut().expect("connection")
    }

    pub async fn starttls(&mut self, tls: Arc<rustls::ClientConfig>) {
        let conn = self.conn.take().expect("connection");
        assert!(conn.buffer().is_empty(), "bytes buffered before TLS");
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, conn.into_inner())
            .await
            .expect("STARTTLS handshake");
        self.conn = Some(BufReader::new(Box::new(stream)));
    }

    /// Writes; `false` if a tolerant client's peer has gone.
    pub async fn send(&mut self, data: &str) -> bool {
        self.send_bytes(data.as_bytes()).await
    }

    pub async fn send_bytes(&mut self, data: &[u8]) -> bool {
        let tolerant = self.tolerant;
        let c = self.conn().get_mut();
        let sent = c.write_all(data).await.and(c.flush().await);
        match sent {
            Ok(()) => true,
            Err(_) if tolerant => false,
            Err(e) => panic!("write: {e}"),
        }
    }

    /// One line without CRLF; empty string at EOF (or, tolerant, a reset).
    pub async fn line(&mut self) -> String {
        let tolerant = self.tolerant;
        let mut buf = Vec::new();
        let read = timeout(READ_TIMEOUT, self.conn().read_until(b'\n', &mut buf))
            .await
            .expect("read timed out");
        match read {
            Ok(_) => {}
            Err(_) if tolerant => return String::new(),
            Err(e) => panic!("read: {e}"),
        }
        String::from_utf8_lossy(&buf)
            .trim_end_matches(['\r', '\n'])
            .to_owned()
    }

    /// Reads lines until one starts with `prefix` (or EOF); returns all
    /// lines read.
    pub async fn until(&mut self, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        for _ in 0..MAX_UNTIL_LINES {
            let l = self.line().await;
            let done = l.starts_with(prefix) || l.is_empty();
            lines.push(l);
            if done {
                return lines;
            }
        }
        panic!("no line starting with {prefix:?} in {MAX_UNTIL_LINES} lines: {lines:?}");
    }

    pub async fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        timeout(READ_TIMEOUT, self.conn().read_exact(&mut buf))
            .await
            .expect("read timed out")
            .expect("read");
        buf
    }

    /// True if the server closed the connection (reads EOF) within the timeout.
    pub async fn closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(
            timeout(READ_TIMEOUT, self.conn().read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    /// True if the server closes (EOF or reset) within `within`, discarding
    /// whatever it still sends.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let mut buf = [0u8; 1024];
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.conn().read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
                Err(_) => return false,
            }
        }
    }
}

/// A TCP connection whose source address is `source` (Linux routes all of
/// 127.0.0.0/8 on loopback).
pub async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{source}:0").parse().unwrap())
        .expect("bind source address");
    socket.connect(to).await.expect("connect to mailgate")
}
