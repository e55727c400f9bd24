//! The benchmark's own client side: a buffered connection that reads CRLF
//! lines and IMAP literals (RFC 9051 §4.3) into one reused buffer, so that
//! the client costs little next to the servers it measures.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Longest response line accepted (an IMAP FETCH line with its literal marker).
pub const MAX_LINE: usize = 64 * 1024;
/// Longest single literal accepted (messages are 1 MB here).
pub const MAX_LITERAL: u64 = 64 * 1024 * 1024;
/// Upper bound for any one exchange (a whole FETCH included).
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Conn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    next_tag: u32,
}

pub fn tls_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

pub fn xoauth2(user: &str, token: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

pub fn plain(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::other(what.into())
}

impl Conn {
    /// Plain TCP, or implicit TLS when `tls` is given; `buffer` is the read
    /// buffer size (small for the thousands of idle sessions).
    pub async fn connect(
        addr: SocketAddr,
        tls: Option<&Arc<rustls::ClientConfig>>,
        buffer: usize,
    ) -> io::Result<Conn> {
        let tcp = timeout(EXCHANGE_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| bad("connect timed out"))??;
        tcp.set_nodelay(true)?;
        let io: Box<dyn Io> = match tls {
            None => Box::new(tcp),
            Some(config) => Box::new(Self::handshake(config, tcp).await?),
        };
        Ok(Conn {
            io,
            buf: vec![0; buffer],
            start: 0,
            end: 0,
            next_tag: 0,
        })
    }

    async fn handshake<S: Io>(
        config: &Arc<rustls::ClientConfig>,
        stream: S,
    ) -> io::Result<tokio_rustls::client::TlsStream<S>> {
        let name = rustls::pki_types::ServerName::try_from("localhost").map_err(bad_name)?;
        timeout(
            EXCHANGE_TIMEOUT,
            tokio_rustls::TlsConnector::from(config.clone()).connect(name, stream),
        )
        .await
        .map_err(|_| bad("TLS handshake timed out"))?
    }

    /// Upgrades after SMTP STARTTLS; nothing may be buffered.
    pub async fn starttls(self, config: &Arc<rustls::ClientConfig>) -> io::Result<Conn> {
        if self.start != self.end {
            return Err(bad("bytes buffered before STARTTLS"));
        }
        let Conn { io, buf, .. } = self;
        let tls = Self::handshake(config, io).await?;
        Ok(Conn {
            io: Box::new(tls),
            buf,
            start: 0,
            end: 0,
            next_tag: 0,
        })
    }

    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.buf.len() {
                return Err(bad("line longer than the read buffer"));
            }
        }
        let n = self.io.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.end += n;
        Ok(())
    }

    /// The next line without its CRLF.
    pub async fn line(&mut self) -> io::Result<String> {
        let mut scanned = 0;
        loop {
            let window = &self.buf[self.start + scanned..self.end];
            if let Some(i) = window.iter().position(|&b| b == b'\n') {
                let stop = self.start + scanned + i;
                let line = String::from_utf8_lossy(&self.buf[self.start..stop])
                    .trim_end_matches('\r')
                    .to_owned();
                self.start = stop + 1;
                return Ok(line);
            }
            scanned = self.end - self.start;
            if scanned > MAX_LINE {
                return Err(bad("line too long"));
            }
            self.fill().await?;
        }
    }

    /// Consumes `n` bytes without looking at them.
    async fn skip(&mut self, mut n: u64) -> io::Result<()> {
        loop {
            let have = (self.end - self.start) as u64;
            let take = have.min(n);
            self.start += take as usize;
            n -= take;
            if n == 0 {
                return Ok(());
            }
            self.fill().await?;
        }
    }

    /// Reads responses until the one tagged `tag`; returns its text and the
    /// number of literal bytes seen on the way.
    pub async fn until_tagged(&mut self, tag: &str) -> io::Result<(String, u64)> {
        let mut literal_bytes = 0;
        loop {
            let line = self.line().await?;
            if let Some(n) = literal_len(&line) {
                if n > MAX_LITERAL {
                    return Err(bad("literal too large"));
                }
                self.skip(n).await?;
                literal_bytes += n;
                continue;
            }
            if line.len() > tag.len() && line.starts_with(tag) && line.as_bytes()[tag.len()] == b' '
            {
                return Ok((line[tag.len() + 1..].to_owned(), literal_bytes));
            }
        }
    }

    /// Sends `tag command` and waits for the tagged answer, which must be OK.
    pub async fn command(&mut self, command: &str) -> io::Result<u64> {
        self.next_tag += 1;
        let tag = format!("b{}", self.next_tag);
        self.send(format!("{tag} {command}\r\n").as_bytes()).await?;
        let (status, bytes) = timeout(EXCHANGE_TIMEOUT, self.until_tagged(&tag))
            .await
            .map_err(|_| bad(format!("{command:.20}: timed out")))??;
        if !status.starts_with("OK") {
            return Err(bad(format!("{:.20}: {status:.200}", command)));
        }
        Ok(bytes)
    }

    /// Starts IDLE (RFC 2177) and waits for the server's continuation;
    /// returns the command's tag for [`Conn::idle_done`].
    pub async fn idle_start(&mut self) -> io::Result<String> {
        self.next_tag += 1;
        let tag = format!("b{}", self.next_tag);
        self.send(format!("{tag} IDLE\r\n").as_bytes()).await?;
        let line = timeout(EXCHANGE_TIMEOUT, self.line())
            .await
            .map_err(|_| bad("IDLE: timed out"))??;
        if line.starts_with('+') {
            Ok(tag)
        } else {
            Err(bad(format!("IDLE: {line:.200}")))
        }
    }

    /// Ends IDLE with DONE; the IDLE command's tagged answer must be OK.
    pub async fn idle_done(&mut self, tag: &str) -> io::Result<()> {
        self.send(b"DONE\r\n").await?;
        let (status, _) = timeout(EXCHANGE_TIMEOUT, self.until_tagged(tag))
            .await
            .map_err(|_| bad("DONE: timed out"))??;
        if status.starts_with("OK") {
            Ok(())
        } else {
            Err(bad(format!("DONE: {status:.200}")))
        }
    }

    /// Reads the IMAP greeting.
    pub async fn greeting(&mut self) -> io::Result<()> {
        let line = timeout(EXCHANGE_TIMEOUT, self.line())
            .await
            .map_err(|_| bad("greeting timed out"))??;
        if line.starts_with("* OK") {
            Ok(())
        } else {
            Err(bad(format!("greeting: {line:.200}")))
        }
    }

    /// Reads one SMTP reply (RFC 5321 §4.2) and checks its code class.
    pub async fn smtp_reply(&mut self, expect: u8) -> io::Result<String> {
        loop {
            let line = timeout(EXCHANGE_TIMEOUT, self.line())
                .await
                .map_err(|_| bad("SMTP reply timed out"))??;
            if line.len() < 3 {
                return Err(bad(format!("SMTP reply: {line:.200}")));
            }
            if line.as_bytes().get(3) == Some(&b'-') {
                continue;
            }
            if line.as_bytes()[0] != expect {
                return Err(bad(format!("SMTP reply: {line:.200}")));
            }
            return Ok(line);
        }
    }
}

fn bad_name(e: rustls::pki_types::InvalidDnsNameError) -> io::Error {
    bad(e.to_string())
}

/// `{N}` (or `{N+}`) at the end of a line announces an N-byte literal.
fn literal_len(line: &str) -> Option<u64> {
    let inner = line.strip_suffix('}')?;
    let open = inner.rfind('{')?;
    inner[open + 1..].trim_end_matches('+').parse().ok()
}
