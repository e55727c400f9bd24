//! The PROXY protocol header a load balancer sends before the client's bytes
//! (HAProxy's "The PROXY protocol", versions 1 and 2), so mailgate sees the
//! real client's address behind the balancer.
//!
//! The address parsing is the `ppp` crate's; what is ours is the framing:
//! deciding from the bytes so far how many more certainly belong to the
//! header. The reader (`net::proxy_header`) never reads more than
//! [`Parsed::NeedMore`] asks for, so the client's first bytes stay on the
//! socket for the session (and for the TLS handshake on implicit-TLS
//! listeners). Every header is bounded: v1 by the specification's 107 bytes,
//! v2 by [`V2_MAX_PAYLOAD`].

use std::net::{IpAddr, SocketAddr};

use ppp::{v1, v2};

/// Longest v1 header, CRLF included (spec §2.1).
pub const V1_MAX: usize = 107;
/// The 12 bytes every v2 header starts with (spec §2.2).
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version/command, family/protocol and the 2-byte length.
const V2_FIXED: usize = 16;
/// Largest v2 address block (addresses and TLVs) accepted. The protocol
/// allows 65535; HAProxy and the cloud balancers send a few hundred bytes
/// at most, and a header this size is read before anything is checked.
pub const V2_MAX_PAYLOAD: usize = 2048;
/// How a v1 header starts.
const V1_PREFIX: &[u8] = b"PROXY ";
/// The shortest header of either version, `PROXY UNKNOWN\r\n`: safe to read
/// before knowing which version follows.
const SHORTEST: usize = 15;

/// What the bytes at the start of a connection from a balancer say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Not a whole header yet: at least this many more bytes belong to it,
    /// so reading up to this many never reads past it.
    NeedMore(usize),
    /// A proxied connection: `source` is the real client. The header is the
    /// first `length` bytes.
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
        length: usize,
    },
    /// Keep the connection's own addresses (v2 `LOCAL`, a balancer's health
    /// check; v1 `UNKNOWN`; v2 unspecified or UNIX addresses). The header is
    /// the first `length` bytes.
    Local { length: usize },
    /// Not a header the connection may start with.
    Invalid(Invalid),
}

/// Why the start of a connection is not an acceptable PROXY header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("the connection does not start with a PROXY protocol header")]
    Missing,
    #[error("PROXY v1 header longer than {V1_MAX} bytes")]
    V1TooLong,
    #[error("PROXY v1 header line not ended by CRLF")]
    V1BareLineFeed,
    #[error("PROXY v2 header announces {0} bytes of addresses, more than {V2_MAX_PAYLOAD}")]
    V2TooLong(usize),
    #[error("malformed PROXY v1 header: {0}")]
    V1(String),
    #[error("malformed PROXY v2 header: {0}")]
    V2(String),
}

/// Parses the header at the start of `input` (everything read so far).
pub fn parse(input: &[u8]) -> Parsed {
    if input.is_empty() {
        return Parsed::NeedMore(SHORTEST);
    }
    if is_prefix(input, V2_SIGNATURE) {
        return parse_v2(input);
    }
    if is_prefix(input, V1_PREFIX) {
        return parse_v1(input);
    }
    Parsed::Invalid(Invalid::Missing)
}

/// Whether a client's first bytes are a PROXY header (either version's
/// opening): only a listed balancer may send one.
pub fn starts_like_header(input: &[u8]) -> bool {
    input.starts_with(V1_PREFIX) || input.starts_with(V2_SIGNATURE)
}

/// Whether `input` could still turn out to start like a header (it is a
/// proper prefix of either opening), so that deciding needs more bytes.
pub fn could_start_like_header(input: &[u8]) -> bool {
    (input.len() < V1_PREFIX.len() && V1_PREFIX.starts_with(input))
        || (input.len() < V2_SIGNATURE.len() && V2_SIGNATURE.starts_with(input))
}

/// `input` and `pattern` agree on their common length.
fn is_prefix(input: &[u8], pattern: &[u8]) -> bool {
    let n = input.len().min(pattern.len());
    input[..n] == pattern[..n]
}

fn parse_v1(input: &[u8]) -> Parsed {
    let window = &input[..input.len().min(V1_MAX)];
    match window.iter().position(|&b| b == b'\n') {
        Some(end) if end > 0 && window[end - 1] == b'\r' => v1_header(&input[..=end]),
        Some(_) => Parsed::Invalid(Invalid::V1BareLineFeed),
        None if input.len() >= V1_MAX => Parsed::Invalid(Invalid::V1TooLong),
        None if input.len() < SHORTEST => Parsed::NeedMore(SHORTEST - input.len()),
        None if input.ends_with(b"\r") => Parsed::NeedMore(1),
        None => Parsed::NeedMore(2),
    }
}

fn v1_header(line: &[u8]) -> Parsed {
    let length = line.len();
    match v1::Header::try_from(line) {
        Ok(header) => match header.addresses {
            v1::Addresses::Tcp4(a) => Parsed::Proxied {
                source: SocketAddr::new(IpAddr::V4(a.source_address), a.source_port),
                destination: SocketAddr::new(IpAddr::V4(a.destination_address), a.destination_port),
                length,
            },
            v1::Addresses::Tcp6(a) => Parsed::Proxied {
                source: SocketAddr::new(IpAddr::V6(a.source_address), a.source_port),
                destination: SocketAddr::new(IpAddr::V6(a.destination_address), a.destination_port),
                length,
            },
            v1::Addresses::Unknown => Parsed::Local { length },
        },
        Err(error) => Parsed::Invalid(Invalid::V1(error.to_string())),
    }
}

fn parse_v2(input: &[u8]) -> Parsed {
    if input.len() < V2_FIXED {
        return Parsed::NeedMore(V2_FIXED - input.len());
    }
    let payload = usize::from(u16::from_be_bytes([input[14], input[15]]));
    if payload > V2_MAX_PAYLOAD {
        return Parsed::Invalid(Invalid::V2TooLong(payload));
    }
    let length = V2_FIXED + payload;
    if input.len() < length {
        return Parsed::NeedMore(length - input.len());
    }
    match v2::Header::try_from(&input[..length]) {
        Ok(header) if header.command == v2::Command::Local => Parsed::Local { length },
        Ok(header) => match header.addresses {
            v2::Addresses::IPv4(a) => Parsed::Proxied {
                source: SocketAddr::new(IpAddr::V4(a.source_address), a.source_port),
                destination: SocketAddr::new(IpAddr::V4(a.destination_address), a.destination_port),
                length,
            },
            v2::Addresses::IPv6(a) => Parsed::Proxied {
                source: SocketAddr::new(IpAddr::V6(a.source_address), a.source_port),
                destination: SocketAddr::new(IpAddr::V6(a.destination_address), a.destination_port),
                length,
            },
            v2::Addresses::Unspecified | v2::Addresses::Unix(_) => Parsed::Local { length },
        },
        Err(error) => Parsed::Invalid(Invalid::V2(error.to_string())),
    }
}

#[cfg(test)]
#[path = "proxy_header_tests.rs"]
mod tests;
