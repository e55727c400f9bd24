//! The warm-login cache: what stays in memory after a successful password
//! check, so the next login skips Argon2id. It holds an HMAC-SHA256 of
//! (scope, password) under a key drawn at start and never stored: the tag
//! lets us recognise the same password again but, unlike a fast unsalted
//! hash, cannot be brute-forced offline without that key.

use aws_lc_rs::hmac;

use crate::secret::Secret;
use crate::store::{Stamp, Unlocked};

pub type Tag = [u8; 32];

pub struct Verifier {
    key: hmac::Key,
}

impl Verifier {
    pub fn new() -> Result<Verifier, aws_lc_rs::error::Unspecified> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        Ok(Verifier {
            key: hmac::Key::generate(hmac::HMAC_SHA256, &rng)?,
        })
    }

    pub fn tag(&self, scope: &str, password: &Secret<String>) -> Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(scope.as_bytes());
        ctx.update(b"\0");
        ctx.update(password.expose().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    pub fn matches(&self, scope: &str, password: &Secret<String>, tag: &Tag) -> bool {
        same(&self.tag(scope, password), tag)
    }
}

/// Constant-time comparison.
pub fn same(a: &Tag, b: &Tag) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// One store account's in-memory state.
#[derive(Default)]
pub struct WarmEntry {
    pub held: Option<Unlocked>,
    pub tag: Option<Tag>,
    pub stamp: Option<Stamp>,
    /// When this account's last full check failed (wrong password).
    pub failed_at: Option<std::time::Instant>,
}

/// Argon2id PHC string check (app-only rules). The parameters come from the
/// string, which comes from the admin's config.
pub fn verify_phc(phc: &str, password: &Secret<String>) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    argon2::Argon2::default()
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_ok()
}
