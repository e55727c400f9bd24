//! TLS 1.0/1.1 for legacy clients, on OpenSSL: the one exception to "one TLS
//! stack", because rustls does not implement those versions. Software such
//! as .NET Framework's `SmtpClient` (4.5.2 and earlier), Mono, Java 6/7 and
//! Windows 7-era mail clients speak only TLS 1.0 with CBC-SHA suites; without
//! this their only way in would be passwords in clear.
//!
//! Used only for the local side of listeners with `tls_min_version` below
//! 1.2; the upstream side and every other listener keep rustls. OpenSSL 3
//! allows TLS 1.0/1.1 only at security level 0, which is set on this context
//! alone through the cipher string. The suites are the AEAD ones first (the
//! server's order wins, so modern clients still get them, and TLS 1.3 stays
//! on), then the CBC-SHA suites legacy clients offer; no 3DES, RC4 or export
//! suites. No TLS 1.3 session tickets unless the listener asks
//! (`tls13_tickets`); TLS 1.2 resumption (session cache and tickets, both
//! sent inside the handshake) stays.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::Ordering;

use openssl::pkey::{Id, PKey};
use openssl::ssl::{Ssl, SslAcceptor, SslMethod, SslOptions, SslVersion};
use openssl::x509::X509;
use tokio::net::TcpStream;
use tokio_openssl::SslStream;
use tracing::{debug, info, warn};

use super::TlsError;
use super::local::LegacySessions;
use crate::config::TlsMinVersion;

/// Suites for TLS 1.0-1.2, in the server's order of preference. `@SECLEVEL=0`
/// is what lets OpenSSL 3 negotiate TLS 1.0/1.1 at all (their handshake
/// signatures use SHA-1).
const CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:\
ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:\
AES128-SHA:AES256-SHA:@SECLEVEL=0";

/// Identifies this server's cached TLS 1.2 sessions (OpenSSL needs one to
/// resume by session id).
const SESSION_ID_CONTEXT: &[u8] = b"mailgate";

#[derive(Clone)]
pub struct LegacyAcceptor {
    acceptor: SslAcceptor,
    sessions: LegacySessions,
}

impl LegacyAcceptor {
    pub fn new(
        cert: &Path,
        key: &Path,
        min: TlsMinVersion,
        tls13_tickets: bool,
        sessions: LegacySessions,
    ) -> Result<Self, TlsError> {
        let chain = X509::stack_from_pem(&read(cert)?).map_err(openssl_err(cert))?;
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err(TlsError::no_pem(cert, "certificate"));
        };
        let pkey = PKey::private_key_from_pem(&read(key)?).map_err(openssl_err(key))?;
        if pkey.id() != Id::RSA {
            warn!(key = %key.display(), "the key of a legacy-TLS listener is not RSA: TLS 1.0/1.1 clients usually offer only RSA suites and will fail the handshake");
        }
        let min_version = match min {
            TlsMinVersion::Tls10 => SslVersion::TLS1,
            TlsMinVersion::Tls11 => SslVersion::TLS1_1,
            TlsMinVersion::Tls12 => SslVersion::TLS1_2,
        };
        let setup =
            |b: &mut openssl::ssl::SslAcceptorBuilder| -> Result<(), openssl::error::ErrorStack> {
                b.clear_options(SslOptions::NO_TLSV1 | SslOptions::NO_TLSV1_1);
                b.set_options(SslOptions::CIPHER_SERVER_PREFERENCE);
                b.set_min_proto_version(Some(min_version))?;
                b.set_cipher_list(CIPHERS)?;
                b.set_num_tickets(if tls13_tickets { 2 } else { 0 })?;
                b.set_session_id_context(SESSION_ID_CONTEXT)?;
                b.set_certificate(leaf)?;
                for extra in intermediates {
                    b.add_extra_chain_cert(extra.clone())?;
                }
                b.set_private_key(&pkey)?;
                b.check_private_key()
            };
        let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
            .map_err(openssl_err(cert))?;
        setup(&mut builder).map_err(openssl_err(cert))?;
        Ok(Self {
            acceptor: builder.build(),
            sessions,
        })
    }

    /// Server-side handshake on `tcp`. A session that negotiated TLS 1.0 or
    /// 1.1 is logged with its version and suite, and counted.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<SslStream<TcpStream>> {
        let ssl = Ssl::new(self.acceptor.context()).map_err(io::Error::other)?;
        let mut stream = SslStream::new(ssl, tcp).map_err(io::Error::other)?;
        Pin::new(&mut stream)
            .accept()
            .await
            .map_err(|e| io::Error::other(handshake_error(&e)))?;
        self.record(stream.ssl());
        Ok(stream)
    }

    fn record(&self, ssl: &openssl::ssl::SslRef) {
        let version = ssl.version_str();
        let cipher = ssl.current_cipher().map_or("unknown", |c| c.name());
        if matches!(ssl.version2(), Some(SslVersion::TLS1 | SslVersion::TLS1_1)) {
            let count = self.sessions.fetch_add(1, Ordering::Relaxed) + 1;
            info!(
                tls_version = version,
                cipher,
                legacy_sessions = count,
                "client negotiated legacy TLS"
            );
        } else {
            debug!(tls_version = version, cipher, "client TLS");
        }
    }
}

/// OpenSSL's error stack in one line; an I/O error (client went away) as is.
fn handshake_error(e: &openssl::ssl::Error) -> String {
    match (e.ssl_error(), e.io_error()) {
        (Some(stack), _) => stack.to_string(),
        (None, Some(io)) => io.to_string(),
        (None, None) => e.to_string(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(TlsError::file("read", path))
}

fn openssl_err(path: &Path) -> impl Fn(openssl::error::ErrorStack) -> TlsError + '_ {
    move |e| TlsError::Legacy(format!("{}: {e}", path.display()))
}
