//! A client whose first bytes are a PROXY protocol header is refused and
//! the connection closed. Only a balancer listed in `proxy_protocol_from`
//! may say where a connection comes from, and its header has been read off
//! the socket before the session starts; a header anywhere else is someone
//! trying to pass for another address (to slip past the allow-list or the
//! guard's lock-outs), or a balancer missing from the list. IMAP, POP3 and
//! SMTP clients never start with these bytes: the server speaks first, and
//! no command is called `PROXY`.

use bytes::BytesMut;

use super::proxy_header::{could_start_like_header, starts_like_header};
use super::{ClientMachine, ClientStep, LoginFailure, Machine, UpstreamSuccess};

/// The close reason of a refused header; the session logs it as a spoofing
/// attempt.
pub const SPOOFED_HEADER: &str =
    "PROXY header from a client not listed in proxy_protocol_from (spoofing attempt?)";

/// Wraps a client machine: decides on the client's first bytes, then steps
/// the inner machine untouched.
pub struct RefuseProxyHeader {
    inner: Box<dyn ClientMachine>,
    /// The closing line in the client's protocol.
    refusal: Vec<u8>,
    decided: bool,
}

impl RefuseProxyHeader {
    pub fn new(inner: Box<dyn ClientMachine>, refusal: &[u8]) -> Self {
        Self {
            inner,
            refusal: refusal.to_vec(),
            decided: false,
        }
    }
}

impl Machine for RefuseProxyHeader {
    type Step = ClientStep;

    fn step(&mut self, input: &mut BytesMut) -> ClientStep {
        if !self.decided {
            if starts_like_header(input) {
                return ClientStep::Close {
                    reply: self.refusal.clone(),
                    reason: SPOOFED_HEADER,
                };
            }
            // At most 11 bytes wait here for the decision.
            if could_start_like_header(input) {
                return ClientStep::NeedMore;
            }
            self.decided = true;
        }
        self.inner.step(input)
    }

    fn tls_established(&mut self) {
        self.decided = true;
        self.inner.tls_established();
    }
}

impl ClientMachine for RefuseProxyHeader {
    fn greeting(&self) -> Vec<u8> {
        self.inner.greeting()
    }
    fn login_failed(&mut self, failure: &LoginFailure) -> ClientStep {
        self.inner.login_failed(failure)
    }
    fn login_succeeded(&mut self, upstream: &UpstreamSuccess) -> Vec<u8> {
        self.inner.login_succeeded(upstream)
    }
    fn timeout_reply(&self) -> Vec<u8> {
        self.inner.timeout_reply()
    }
    fn shutdown_reply(&self) -> Vec<u8> {
        self.inner.shutdown_reply()
    }
    fn client_name(&self) -> Option<&str> {
        self.inner.client_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::imap::ImapClient;
    use crate::proto::{ClientLimits, ClientOptions};

    const REFUSAL: &[u8] = b"* BYE PROXY header refused\r\n";

    fn machine() -> RefuseProxyHeader {
        let options = ClientOptions {
            hostname: "mailgate.test".into(),
            tls_active: false,
            starttls_available: false,
            require_tls_for_auth: false,
            limits: ClientLimits::default(),
        };
        RefuseProxyHeader::new(Box::new(ImapClient::new(options)), REFUSAL)
    }

    /// Feeds `input` byte by byte; the first step that is not `NeedMore`.
    fn first_step(input: &[u8]) -> ClientStep {
        let mut m = machine();
        let mut buf = BytesMut::new();
        for &b in input {
            buf.extend_from_slice(&[b]);
            match m.step(&mut buf) {
                ClientStep::NeedMore => {}
                other => return other,
            }
        }
        ClientStep::NeedMore
    }

    #[test]
    fn a_header_from_a_client_is_refused() {
        let v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c";
        for header in [&b"PROXY TCP4 10.0.0.9 10.0.0.1 1234 143\r\n"[..], v2] {
            assert_eq!(
                first_step(header),
                ClientStep::Close {
                    reply: REFUSAL.to_vec(),
                    reason: SPOOFED_HEADER
                },
                "{header:?}"
            );
        }
    }

    #[test]
    fn other_first_bytes_go_to_the_protocol_machine() {
        let ClientStep::Reply(reply) = first_step(b"a1 CAPABILITY\r\n") else {
            panic!("no reply");
        };
        assert!(reply.starts_with(b"* CAPABILITY"), "{reply:?}");
        // Once decided, a later PROXY line is just an unknown command.
        let mut m = machine();
        let mut buf = BytesMut::from(&b"a1 NOOP\r\nPROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"[..]);
        assert!(matches!(m.step(&mut buf), ClientStep::Reply(_)));
        let ClientStep::Reply(reply) = m.step(&mut buf) else {
            panic!("no reply");
        };
        assert!(reply.starts_with(b"PROXY BAD"), "{reply:?}");
    }
}
