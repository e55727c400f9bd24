//! The acceptor for a listener's local side. Every listener gets rustls,
//! except one that opted in to TLS 1.0/1.1 (`tls_min_version`), which gets
//! OpenSSL for all its clients: one acceptor has to answer whatever version
//! the ClientHello offers, so modern clients on that listener still get
//! TLS 1.2/1.3, from OpenSSL. The certificate machinery (configured files or
//! a generated certificate, re-read on every reload) is the same for both.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use rustls::{Error as RustlsError, PeerIncompatible};
use tokio_rustls::TlsAcceptor;

use super::TlsError;
use crate::config::Listener;

/// How many sessions of one listener negotiated TLS 1.0/1.1 since start.
/// Kept across reloads; stays zero on listeners without the opt-in.
pub type LegacySessions = Arc<AtomicU64>;

#[derive(Clone)]
pub enum LocalAcceptor {
    Rustls(TlsAcceptor),
    #[cfg(feature = "legacy-tls")]
    Legacy(super::legacy::LegacyAcceptor),
}

impl LocalAcceptor {
    /// The acceptor for `listener`, or `None` when it has no TLS. Reads the
    /// certificate files (generating them in `state_dir` if not configured).
    pub fn for_listener(
        listener: &Listener,
        state_dir: &Path,
        hostname: &str,
        legacy_sessions: &LegacySessions,
    ) -> Result<Option<Self>, TlsError> {
        if listener.tls == crate::config::LocalTls::None {
            return Ok(None);
        }
        if listener.accepts_legacy_tls() {
            return legacy(listener, state_dir, hostname, legacy_sessions).map(Some);
        }
        let (cert, key) = match &listener.cert {
            Some(pair) => pair.clone(),
            None => super::ensure_local_cert(state_dir, hostname)?,
        };
        let config = super::server_config(&cert, &key, listener.tls13_tickets)?;
        Ok(Some(Self::Rustls(TlsAcceptor::from(config))))
    }
}

#[cfg(feature = "legacy-tls")]
fn legacy(
    listener: &Listener,
    state_dir: &Path,
    hostname: &str,
    sessions: &LegacySessions,
) -> Result<LocalAcceptor, TlsError> {
    let (cert, key) = match &listener.cert {
        Some(pair) => pair.clone(),
        None => super::ensure_local_rsa_cert(state_dir, hostname)?,
    };
    let acceptor = super::legacy::LegacyAcceptor::new(
        &cert,
        &key,
        listener.tls_min_version,
        listener.tls13_tickets,
        sessions.clone(),
    )?;
    Ok(LocalAcceptor::Legacy(acceptor))
}

#[cfg(not(feature = "legacy-tls"))]
fn legacy(
    listener: &Listener,
    _state_dir: &Path,
    _hostname: &str,
    _sessions: &LegacySessions,
) -> Result<LocalAcceptor, TlsError> {
    // Config validation refuses the key in such builds; this is the backstop.
    Err(TlsError::Legacy(format!(
        "tls_min_version = \"{}\" needs a build with `--features legacy-tls`",
        listener.tls_min_version.as_str()
    )))
}

/// A handshake failure in words an admin can act on: a client that offers
/// only TLS 1.0/1.1 to a listener without the opt-in says so.
pub fn describe_handshake_error(error: &io::Error) -> String {
    let legacy_client = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<RustlsError>())
        .is_some_and(|e| {
            matches!(
                e,
                RustlsError::PeerIncompatible(
                    PeerIncompatible::SignatureAlgorithmsExtensionRequired
                        | PeerIncompatible::Tls12NotOffered
                        | PeerIncompatible::Tls12NotOfferedOrEnabled
                        | PeerIncompatible::SupportedVersionsExtensionRequired
                )
            )
        });
    if legacy_client {
        format!(
            "{error}: the client offers only TLS 1.0/1.1, which this listener does not accept \
             (see tls_min_version, README \"Legacy TLS\")"
        )
    } else {
        error.to_string()
    }
}
