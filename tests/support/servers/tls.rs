//! TEST-ONLY certificate authority. Every run generates a fresh CA key and
//! leaf certificates with rcgen into the run's temporary directory, so the
//! repository carries no keys and nothing here is ever trusted outside a test.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Names every test server certificate carries: clients connect to
/// `127.0.0.1`, some verify `localhost`.
pub const LOCAL_NAMES: &[&str] = &["127.0.0.1", "localhost"];

/// A throw-away CA for one test run. TEST ONLY.
pub struct TestCa {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A leaf certificate and its private key, PEM encoded. TEST ONLY.
pub struct LeafCert {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Where [`TestCa::write_leaf`] put a leaf certificate.
#[derive(Clone, Debug)]
pub struct LeafPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn generate() -> Result<TestCa, String> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err("CA params"))?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "mailgate TEST-ONLY CA");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let key = KeyPair::generate().map_err(err("CA key"))?;
        let cert = params.self_signed(&key).map_err(err("CA certificate"))?;
        Ok(TestCa {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a server (and client) leaf certificate for `names`; each name
    /// is an IP address or a DNS name.
    pub fn issue_leaf(&self, names: &[&str]) -> Result<LeafCert, String> {
        let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(sans).map_err(err("leaf params"))?;
        let common_name = names.first().copied().unwrap_or("mailgate test");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{common_name} (TEST ONLY)"));
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().map_err(err("leaf key"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(err("leaf certificate"))?;
        Ok(LeafCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues a leaf for `names` and writes `<stem>.crt` and `<stem>.key`
    /// (mode 0600) into `dir`.
    pub fn write_leaf(&self, dir: &Path, stem: &str, names: &[&str]) -> Result<LeafPaths, String> {
        let leaf = self.issue_leaf(names)?;
        let paths = LeafPaths {
            cert: dir.join(format!("{stem}.crt")),
            key: dir.join(format!("{stem}.key")),
        };
        write_file(&paths.cert, leaf.cert_pem.as_bytes(), 0o644)?;
        write_file(&paths.key, leaf.key_pem.as_bytes(), 0o600)?;
        Ok(paths)
    }
}

pub(super) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, bytes).map_err(|e| format!("write {}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

fn err(what: &'static str) -> impl Fn(rcgen::Error) -> String {
    move |e| format!("{what}: {e}")
}
