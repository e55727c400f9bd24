//! CRLF line framing over any async stream, shared by the test client and
//! the fake upstreams so both sides of a test transcript read lines the same
//! way. A line is capped at [`MAX_LINE`] bytes so a broken peer cannot make a
//! fake server buffer without bound.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A buffered connection, plain or TLS.
pub type Conn = BufReader<Box<dyn Io>>;

/// Longest line a fake server reads at once.
pub const MAX_LINE: u64 = 1 << 20;

/// One line without its CRLF; `None` at EOF.
pub async fn read_line(conn: &mut Conn) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = (&mut *conn)
        .take(MAX_LINE)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(
        String::from_utf8_lossy(&buf)
            .trim_end_matches(['\r', '\n'])
            .to_owned(),
    ))
}

/// One raw line including its terminator; `None` at EOF.
pub async fn read_raw_line(conn: &mut Conn) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let n = (&mut *conn)
        .take(MAX_LINE)
        .read_until(b'\n', &mut buf)
        .await?;
    Ok((n > 0).then_some(buf))
}

/// Writes and flushes.
pub async fn write(conn: &mut Conn, data: &[u8]) -> std::io::Result<()> {
    conn.get_mut().write_all(data).await?;
    conn.get_mut().flush().await
}
