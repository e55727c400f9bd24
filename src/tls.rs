//! TLS on both sides, one stack (rustls on aws-lc-rs), with one exception:
//! listeners that opt in to TLS 1.0/1.1 for legacy clients run their local
//! side on OpenSSL ([`legacy`], feature `legacy-tls`), because rustls does
//! not implement those versions. [`local`] picks the acceptor per listener.
//!
//! Local side: the listener's configured certificate, or a self-signed one
//! generated on first run into `<state_dir>/tls/` (never into the repo), so a
//! STARTTLS-capable listener works out of the box. Local listeners send no
//! TLS 1.3 session tickets unless asked (`tls13_tickets`): clients with a
//! threaded reader stall on those post-handshake messages, and resumption
//! buys little on a local hop. TLS 1.2 resumption (the session cache) stays.
//!
//! Upstream side: full verification against the platform's roots plus an
//! optional extra CA file (TLS-inspecting proxies, test servers). There is no
//! switch to turn verification off: a token sent to the wrong server is lost.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, ServerConfig};

#[cfg(feature = "legacy-tls")]
pub mod legacy;
pub mod local;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    File {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A PEM file was read but holds nothing usable.
    #[error("{path}: {problem}")]
    Pem { path: PathBuf, problem: String },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("generating the local certificate: {0}")]
    Generate(String),
    /// The OpenSSL side of a legacy-TLS listener refused its configuration.
    #[error("legacy TLS (OpenSSL): {0}")]
    Legacy(String),
}

impl TlsError {
    pub(crate) fn file(
        action: &'static str,
        path: &Path,
    ) -> impl FnOnce(io::Error) -> Self + use<> {
        let path = path.to_owned();
        move |source| Self::File {
            action,
            path,
            source,
        }
    }

    pub(crate) fn no_pem(path: &Path, what: &str) -> Self {
        Self::Pem {
            path: path.to_owned(),
            problem: format!("no PEM {what} found"),
        }
    }

    pub(crate) fn bad_pem(path: &Path, reason: impl std::fmt::Display) -> Self {
        Self::Pem {
            path: path.to_owned(),
            problem: format!("invalid PEM: {reason}"),
        }
    }
}

/// The crypto provider every config uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = std::fs::read(path).map_err(TlsError::file("read", path))?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::bad_pem(path, e))?;
    if certs.is_empty() {
        return Err(TlsError::no_pem(path, "certificate"));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let data = std::fs::read(path).map_err(TlsError::file("read", path))?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::no_pem(path, "private key"),
        other => TlsError::bad_pem(path, other),
    })
}

/// Server config for a listener from PEM files; TLS 1.3 session tickets
/// only when `tls13_tickets` (the rustls default of two per handshake).
pub fn server_config(
    cert: &Path,
    key: &Path,
    tls13_tickets: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(load_certs(cert)?, load_key(key)?)?;
    if !tls13_tickets {
        config.send_tls13_tickets = 0;
    }
    Ok(Arc::new(config))
}

/// Returns the paths of the generated local certificate and key, creating them
/// (self-signed, for `localhost`, 127.0.0.1, ::1 and `hostname`) if missing.
/// The key is ECDSA P-256, which every TLS 1.2+ client supports.
pub fn ensure_local_cert(state_dir: &Path, hostname: &str) -> Result<(PathBuf, PathBuf), TlsError> {
    ensure_generated(state_dir, hostname, "", rcgen::KeyPair::generate)
}

/// Like [`ensure_local_cert`], with an RSA 2048 key in separate files
/// (`legacy-cert.pem`, `legacy-key.pem`): TLS 1.0/1.1 clients know only
/// `TLS_RSA_*` and `TLS_ECDHE_RSA_*` suites, which need an RSA certificate.
pub fn ensure_local_rsa_cert(
    state_dir: &Path,
    hostname: &str,
) -> Result<(PathBuf, PathBuf), TlsError> {
    ensure_generated(state_dir, hostname, "legacy-", || {
        rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
    })
}

fn ensure_generated(
    state_dir: &Path,
    hostname: &str,
    prefix: &str,
    generate_key: impl FnOnce() -> Result<rcgen::KeyPair, rcgen::Error>,
) -> Result<(PathBuf, PathBuf), TlsError> {
    let dir = state_dir.join("tls");
    let cert = dir.join(format!("{prefix}cert.pem"));
    let key = dir.join(format!("{prefix}key.pem"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    crate::fsutil::private_dir(&dir).map_err(TlsError::file("write", &dir))?;
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
        hostname.to_owned(),
    ];
    let generate = || -> Result<_, rcgen::Error> {
        let signing_key = generate_key()?;
        let cert = rcgen::CertificateParams::new(names)?.self_signed(&signing_key)?;
        Ok((signing_key, cert))
    };
    let (signing_key, generated) = generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    crate::fsutil::write_atomic(&key, signing_key.serialize_pem().as_bytes())
        .map_err(TlsError::file("write", &key))?;
    crate::fsutil::write_atomic(&cert, generated.pem().as_bytes())
        .map_err(TlsError::file("write", &cert))?;
    tracing::info!(cert = %cert.display(), "generated a self-signed local certificate; configure cert/key to use your own");
    Ok((cert, key))
}

/// Client config for upstream connections: platform roots plus `extra_ca`.
pub fn upstream_config(extra_ca: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let extra = match extra_ca {
        Some(path) => load_certs(path)?,
        None => Vec::new(),
    };
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider())?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}
