//! The three buffers of an upstream TLS stream, each bounded and each
//! released when it holds nothing, so that an idle session keeps none.

use std::io;

use rustls::unbuffered::{EncodeError, EncodeTlsData, EncryptError, WriteTraffic};

/// Capacity of the incoming buffer: one socket read takes up to this much.
pub const INCOMING: usize = 64 * 1024;
/// Largest TLS record on the wire: header, 16 KiB of payload and the
/// 2 KiB of expansion TLS 1.2 allows.
pub const MAX_RECORD: usize = 5 + 16 * 1024 + 2048;
/// Bound on the unprocessed bytes: rustls joins a handshake message of up
/// to 64 KiB (a long certificate chain) in place, over several records.
const MAX_INCOMING: usize = INCOMING + 0x1_0000 + MAX_RECORD;
/// Plaintext encrypted per `poll_write`.
pub const MAX_WRITE: usize = 64 * 1024;
/// Bound on one handshake message rustls asks us to encode.
const MAX_ENCODE: usize = 64 * 1024;
/// Room reserved per record for header, content type and AEAD tag.
const RECORD_OVERHEAD: usize = 64;

/// Ciphertext from the socket. rustls decrypts records in place here;
/// consumed records only move `start` on, and the bytes of an incomplete
/// record are moved to the front only when the tail has no room for a
/// whole record.
#[derive(Default)]
pub struct Incoming {
    buf: Vec<u8>,
    start: usize,
}

impl Incoming {
    /// The unprocessed bytes, for `process_tls_records`.
    pub fn data(&mut self) -> &mut [u8] {
        let start = self.start.min(self.buf.len());
        &mut self.buf[start..]
    }

    pub fn is_empty(&self) -> bool {
        self.start >= self.buf.len()
    }

    pub fn discard(&mut self, n: usize) {
        self.start = self.start.saturating_add(n);
        if self.is_empty() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Drops the allocation when nothing is waiting in it.
    pub fn release(&mut self) {
        if self.is_empty() {
            self.buf = Vec::new();
            self.start = 0;
        }
    }

    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Makes room for at least one whole record behind the unprocessed
    /// bytes and returns the buffer for a socket read into its spare
    /// capacity: [`INCOMING`], more only while a handshake message is
    /// being joined, never beyond [`MAX_INCOMING`].
    pub fn room(&mut self) -> io::Result<&mut Vec<u8>> {
        if self.buf.capacity() - self.buf.len() < MAX_RECORD {
            if self.start > 0 {
                self.buf.copy_within(self.start.., 0);
                self.buf.truncate(self.buf.len() - self.start);
                self.start = 0;
            }
            let len = self.buf.len();
            let target = INCOMING.max(len + MAX_RECORD).min(MAX_INCOMING);
            self.buf.reserve_exact(target.saturating_sub(len));
            if self.buf.capacity() == len {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "TLS record larger than the incoming buffer",
                ));
            }
        }
        Ok(&mut self.buf)
    }
}

/// Decrypted bytes the caller's buffer had no room for (or that a write
/// decrypted while looking for its turn to encrypt).
#[derive(Default)]
pub struct Plain {
    buf: Vec<u8>,
    pos: usize,
}

impl Plain {
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.is_empty() {
            self.buf.clear();
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Moves as much as fits into `dst`.
    pub fn take_into(&mut self, dst: &mut tokio::io::ReadBuf<'_>) {
        let pending = &self.buf[self.pos..];
        let n = pending.len().min(dst.remaining());
        dst.put_slice(&pending[..n]);
        self.pos += n;
        if self.is_empty() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    pub fn release(&mut self) {
        if self.is_empty() {
            *self = Self::default();
        }
    }

    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

/// Ciphertext waiting for the socket, sent in order.
#[derive(Default)]
pub struct Outgoing {
    buf: Vec<u8>,
    pos: usize,
}

impl Outgoing {
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Marks `n` bytes as sent; the allocation goes once all are.
    pub fn sent(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n);
        if self.is_empty() {
            *self = Self::default();
        }
    }

    /// Runs `fill` on `want` zeroed bytes at the end; on "too small" it
    /// learns the size it needs and runs once more.
    fn append<E>(
        &mut self,
        mut want: usize,
        bound: usize,
        mut fill: impl FnMut(&mut [u8]) -> Result<usize, E>,
        required: impl Fn(&E) -> Option<usize>,
        describe: impl Fn(E) -> io::Error,
    ) -> io::Result<usize> {
        let len = self.buf.len();
        for _ in 0..2 {
            self.buf.resize(len + want, 0);
            match fill(&mut self.buf[len..]) {
                Ok(n) => {
                    self.buf.truncate(len + n);
                    return Ok(n);
                }
                Err(e) => {
                    self.buf.truncate(len);
                    match required(&e) {
                        Some(size) if size > want && size <= bound => want = size,
                        _ => return Err(describe(e)),
                    }
                }
            }
        }
        Err(io::Error::other("TLS output did not fit its buffer"))
    }

    /// Appends a handshake (or post-handshake) message.
    pub fn encode<D>(&mut self, message: &mut EncodeTlsData<'_, D>) -> io::Result<()> {
        let encoded = self.append(
            4096,
            MAX_ENCODE,
            |buf| message.encode(buf),
            |e| match e {
                EncodeError::InsufficientSize(s) => Some(s.required_size),
                _ => None,
            },
            |e| match e {
                // Already encoded: nothing more to send for this message.
                EncodeError::AlreadyEncoded => io::Error::other("TLS message encoded twice"),
                e => io::Error::other(e),
            },
        );
        encoded.map(drop)
    }

    /// Encrypts up to [`MAX_WRITE`] bytes of `data`; returns how many.
    pub fn encrypt<D>(
        &mut self,
        traffic: &mut WriteTraffic<'_, D>,
        data: &[u8],
    ) -> io::Result<usize> {
        let data = &data[..data.len().min(MAX_WRITE)];
        let records = data.len() / (16 * 1024) + 1;
        let want = data.len() + records * RECORD_OVERHEAD;
        self.append(
            want,
            want + MAX_RECORD,
            |buf| traffic.encrypt(data, buf),
            encrypt_required,
            io::Error::other,
        )?;
        Ok(data.len())
    }

    /// Appends a close_notify alert.
    pub fn close_notify<D>(&mut self, traffic: &mut WriteTraffic<'_, D>) -> io::Result<()> {
        self.append(
            RECORD_OVERHEAD,
            MAX_RECORD,
            |buf| traffic.queue_close_notify(buf),
            encrypt_required,
            io::Error::other,
        )
        .map(drop)
    }
}

fn encrypt_required(e: &EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(s) => Some(s.required_size),
        _ => None,
    }
}
