//! The local password a legacy client will type: either generated (short
//! enough to copy by hand, drawn without bias) or given by the admin and
//! checked here, so every front end applies the same rules.

use zeroize::Zeroize;

use super::EnrolError;
use crate::secret::Secret;

/// Length of a generated local password.
pub const GENERATED_PASSWORD_LEN: usize = 24;
/// Letters and digits that cannot be mistaken for one another when read
/// aloud or copied by hand (no 0/O, 1/l/I).
const PASSWORD_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Longest local password accepted, in bytes.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// A given password, without its line ending: at most [`MAX_PASSWORD_LEN`]
/// bytes of UTF-8, never empty.
pub fn local_password(given: &[u8]) -> Result<Secret<String>, EnrolError> {
    if given.len() > MAX_PASSWORD_LEN {
        return Err(EnrolError::Password("longer than 1024 bytes"));
    }
    if given.is_empty() {
        return Err(EnrolError::Password(
            "standard input gave an empty password",
        ));
    }
    let text = std::str::from_utf8(given).map_err(|_| EnrolError::Password("not valid UTF-8"))?;
    Ok(Secret::new(text.to_owned()))
}

/// [`GENERATED_PASSWORD_LEN`] characters from `PASSWORD_ALPHABET`, drawn
/// without modulo bias.
pub fn generate_password() -> Result<Secret<String>, EnrolError> {
    let limit = 256 - 256 % PASSWORD_ALPHABET.len();
    let mut password = String::with_capacity(GENERATED_PASSWORD_LEN);
    let mut bytes = [0u8; 64];
    while password.len() < GENERATED_PASSWORD_LEN {
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| EnrolError::Random)?;
        for b in bytes.iter().filter(|&&b| usize::from(b) < limit) {
            if password.len() < GENERATED_PASSWORD_LEN {
                password.push(char::from(
                    PASSWORD_ALPHABET[usize::from(*b) % PASSWORD_ALPHABET.len()],
                ));
            }
        }
    }
    bytes.zeroize();
    Ok(Secret::new(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_use_the_readable_alphabet() {
        let a = generate_password().unwrap();
        assert_eq!(a.expose().len(), GENERATED_PASSWORD_LEN);
        assert!(a.expose().bytes().all(|b| PASSWORD_ALPHABET.contains(&b)));
        assert_ne!(a.expose(), generate_password().unwrap().expose());
    }
}
