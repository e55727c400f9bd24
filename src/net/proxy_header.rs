//! Reading the PROXY protocol header off a load balancer's connection,
//! before anything else happens on it. Reads only as many bytes as
//! `proto::proxy_header::parse` says certainly belong to the header, so the
//! client's first bytes (or its TLS ClientHello) stay on the socket for the
//! session; the whole read is bounded by one deadline and by the parser's
//! size bounds.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::{Instant, timeout_at};

use crate::proto::proxy_header::{Invalid, Parsed, V2_MAX_PAYLOAD, parse};

/// Largest header the reader may hold (a v2 header at its cap; v1 is shorter).
const MAX_HEADER: usize = 16 + V2_MAX_PAYLOAD;

/// Who the balancer says the connection is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// The real client's address.
    Proxied { source: SocketAddr },
    /// The balancer speaks for itself (a health check): keep its address.
    Local,
}

/// Why a balancer's connection did not start with a usable header.
#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("no PROXY header within the time allowed")]
    TimedOut,
    #[error("closed before a whole PROXY header arrived")]
    Closed,
    #[error("reading the PROXY header: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

/// Reads one header from the start of `stream`, by `deadline`.
pub async fn read_proxy_header<R: AsyncRead + Unpin>(
    stream: &mut R,
    deadline: Instant,
) -> Result<ProxyHeader, ProxyHeaderError> {
    timeout_at(deadline, read(stream))
        .await
        .unwrap_or(Err(ProxyHeaderError::TimedOut))
}

async fn read<R: AsyncRead + Unpin>(stream: &mut R) -> Result<ProxyHeader, ProxyHeaderError> {
    let mut buf = vec![0u8; MAX_HEADER];
    let mut have = 0;
    // Every read adds at least one byte, and the parser decides within
    // MAX_HEADER bytes.
    for _ in 0..=MAX_HEADER {
        match parse(&buf[..have]) {
            Parsed::NeedMore(n) => {
                let end = (have + n).min(MAX_HEADER);
                match stream.read(&mut buf[have..end]).await? {
                    0 => return Err(ProxyHeaderError::Closed),
                    got => have += got,
                }
            }
            Parsed::Proxied { source, .. } => return Ok(ProxyHeader::Proxied { source }),
            Parsed::Local { .. } => return Ok(ProxyHeader::Local),
            Parsed::Invalid(invalid) => return Err(invalid.into()),
        }
    }
    Err(Invalid::V2TooLong(have).into())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;

    use super::*;

    const CLIENT: &[u8] = b"\x16\x03\x01client hello";

    async fn after(header: &[u8]) -> (Result<ProxyHeader, ProxyHeaderError>, Vec<u8>) {
        let (mut near, mut far) = tokio::io::duplex(4096);
        far.write_all(header).await.unwrap();
        far.write_all(CLIENT).await.unwrap();
        drop(far);
        let deadline = Instant::now() + Duration::from_secs(5);
        let parsed = read_proxy_header(&mut near, deadline).await;
        let mut rest = Vec::new();
        near.read_to_end(&mut rest).await.unwrap();
        (parsed, rest)
    }

    #[tokio::test]
    async fn the_client_bytes_stay_on_the_stream() {
        let (parsed, rest) = after(b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 993\r\n").await;
        let source = "192.0.2.7:50000".parse().unwrap();
        assert_eq!(parsed.unwrap(), ProxyHeader::Proxied { source });
        assert_eq!(rest, CLIENT);
        let (parsed, rest) = after(b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00").await;
        assert_eq!(parsed.unwrap(), ProxyHeader::Local);
        assert_eq!(rest, CLIENT);
    }

    #[tokio::test]
    async fn missing_truncated_and_slow_headers_fail() {
        let (parsed, _) = after(b"").await;
        assert!(matches!(
            parsed,
            Err(ProxyHeaderError::Invalid(Invalid::Missing))
        ));
        let (mut near, mut far) = tokio::io::duplex(64);
        far.write_all(b"PROXY TCP4 192.0").await.unwrap();
        drop(far);
        let deadline = Instant::now() + Duration::from_secs(5);
        let parsed = read_proxy_header(&mut near, deadline).await;
        assert!(
            matches!(parsed, Err(ProxyHeaderError::Closed)),
            "{parsed:?}"
        );
        let (mut near, _far) = tokio::io::duplex(64);
        let deadline = Instant::now() + Duration::from_millis(50);
        let parsed = read_proxy_header(&mut near, deadline).await;
        assert!(
            matches!(parsed, Err(ProxyHeaderError::TimedOut)),
            "{parsed:?}"
        );
    }
}
