//! Certificate client credentials for app-only accounts: instead of a
//! client secret, the app proves itself with a JWT signed by its
//! certificate's private key (`private_key_jwt`, RFC 7523 §2.2 and §3, used
//! as in RFC 7521 §4.2). Microsoft's "certificate credentials" format: RS256,
//! header `x5t` = base64url(SHA-1 of the certificate DER), claims `aud` =
//! the token endpoint, `iss` = `sub` = client id, a unique `jti`, and a
//! short `exp`.
//!
//! The PEM files are read on every use so a renewed certificate takes effect
//! without a restart; app-only tokens are cached by the token layer, so this
//! happens about once an hour.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;

use super::OAuthError;
use super::authcode::random_token;
use crate::secret::Secret;

/// `client_assertion_type` for a JWT (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long a client assertion is valid; it is used at once.
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Largest PEM file read.
pub const MAX_PEM_BYTES: u64 = 64 * 1024;

/// A certificate's signing key and thumbprint.
pub struct CertificateCredential {
    key: RsaKeyPair,
    x5t: String,
}

impl CertificateCredential {
    pub fn load(cert: &Path, key: &Path) -> Result<Self, OAuthError> {
        let cert_pem = read_pem_file(cert)?;
        let key_pem = read_pem_file(key)?;
        Self::from_pem(cert_pem.expose(), key_pem.expose())
            .map_err(|e| OAuthError::Config(format!("{} / {}: {e}", cert.display(), key.display())))
    }

    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, String> {
        let cert = pem_block(cert_pem, "CERTIFICATE")
            .ok_or("no CERTIFICATE block in the certificate file")?;
        let x5t = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &cert));
        let key = if let Some(der) = pem_block(key_pem, "PRIVATE KEY") {
            RsaKeyPair::from_pkcs8(Secret::new(der).expose())
        } else if let Some(der) = pem_block(key_pem, "RSA PRIVATE KEY") {
            RsaKeyPair::from_der(Secret::new(der).expose())
        } else {
            return Err("no PRIVATE KEY or RSA PRIVATE KEY block in the key file".to_owned());
        };
        let key = key.map_err(|e| format!("the key is not a usable RSA key: {e}"))?;
        Ok(Self { key, x5t })
    }

    /// A signed assertion for `client_id` at `token_url`.
    pub fn assertion(
        &self,
        client_id: &str,
        token_url: &str,
    ) -> Result<Secret<String>, OAuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| OAuthError::Config("the system clock is before 1970".to_owned()))?
            .as_secs();
        let header = json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t});
        let claims = json!({
            "aud": token_url,
            "iss": client_id,
            "sub": client_id,
            "jti": random_token(16)?,
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME.as_secs(),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| OAuthError::Config("signing the client assertion failed".to_owned()))?;
        Ok(Secret::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }
}

fn read_pem_file(path: &Path) -> Result<Secret<String>, OAuthError> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PEM_BYTES).read_to_string(&mut text))
        .map_err(|e| OAuthError::Config(format!("cannot read {}: {e}", path.display())))?;
    Ok(Secret::new(text))
}

/// The first `-----BEGIN <label>-----` block, decoded (RFC 7468 §2).
fn pem_block(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(b64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assertion_is_a_verifiable_rs256_jwt() {
        let key =
            rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                .unwrap();
        let cert = rcgen::CertificateParams::new(vec!["app.example.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cred = CertificateCredential::from_pem(&cert.pem(), &key.serialize_pem()).unwrap();
        let jwt = cred
            .assertion("client-1", "https://idp.example/t/token")
            .unwrap();
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let thumb = URL_SAFE_NO_PAD.encode(digest::digest(
            &digest::SHA1_FOR_LEGACY_USE_ONLY,
            cert.der(),
        ));
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["x5t"], thumb.as_str());
        assert_eq!(claims["aud"], "https://idp.example/t/token");
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "client-1");
        let public = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            key.public_key_raw(),
        );
        let signed = format!("{}.{}", parts[0], parts[1]);
        public
            .verify(
                signed.as_bytes(),
                &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
            )
            .expect("signature verifies");
    }

    #[test]
    fn missing_blocks_are_named() {
        assert!(
            CertificateCredential::from_pem("", "")
                .err()
                .unwrap()
                .contains("CERTIFICATE")
        );
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(
            CertificateCredential::from_pem(cert, "junk")
                .err()
                .unwrap()
                .contains("PRIVATE KEY")
        );
    }
}
