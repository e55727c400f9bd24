//! Random bytes from the system generator, and their hex spelling (file name
//! suffixes, enrolment ids, generated passwords).

/// The system random number generator failed; nothing random can be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("system random number generator failed")]
pub struct RandomError;

pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| RandomError)?;
    Ok(b)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_and_two_digits_per_byte() {
        assert_eq!(hex(&[0, 0xab, 0x0f]), "00ab0f");
        assert_ne!(random_bytes::<16>().unwrap(), [0u8; 16]);
    }
}
