//! A minimal line-oriented test client over TCP, optionally TLS (implicit or
//! after STARTTLS), trusting only the test CA. Every read has a deadline.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub const READ_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Client {
    conn: Option<BufReader<Box<dyn Io>>>,
}

impl Client {
    pub async fn connect(addr: std::net::SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).await.expect("connect to mailgate");
        Self {
            conn: Some(BufReader::new(Box::new(tcp))),
        }
    }

    pub async fn connect_tls(addr: std::net::SocketAddr, tls: Arc<rustls::ClientConfig>) -> Self {
        let tcp = TcpStream::connect(addr).await.expect("connect to mailgate");
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .expect("TLS to mailgate");
        Self {
            conn: Some(BufReader::new(Box::new(stream))),
        }
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

    pub async fn send(&mut self, data: &str) {
        self.send_bytes(data.as_bytes()).await;
    }

    pub async fn send_bytes(&mut self, data: &[u8]) {
        let c = self.conn().get_mut();
        c.write_all(data).await.expect("write");
        c.flush().await.expect("flush");
    }

    /// One line without CRLF; empty string at EOF.
    pub async fn line(&mut self) -> String {
        let mut buf = Vec::new();
        timeout(READ_TIMEOUT, self.conn().read_until(b'\n', &mut buf))
            .await
            .expect("read timed out")
            .expect("read");
        String::from_utf8_lossy(&buf)
            .trim_end_matches(['\r', '\n'])
            .to_owned()
    }

    /// Reads lines until one starts with `prefix`; returns all lines read.
    pub async fn until(&mut self, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        for _ in 0..1000 {
            let l = self.line().await;
            let done = l.starts_with(prefix) || l.is_empty();
            lines.push(l);
            if done {
                return lines;
            }
        }
        panic!("no line starting with {prefix:?} in 1000 lines: {lines:?}");
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
}
