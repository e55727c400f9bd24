//! When a certificate expires, for the health page: the local certificate,
//! listener and admin certificates, and an app-only provider's client
//! certificate. Only the validity's `notAfter` is needed, so this walks the
//! DER just far enough (RFC 5280 §4.1: Certificate → tbsCertificate →
//! version?, serialNumber, signature, issuer, validity) instead of pulling
//! in a full X.509 parser. A client secret's expiry is not in the secret;
//! the page says so.

use std::path::Path;

use base64::Engine as _;

/// Largest certificate file read.
const MAX_PEM: u64 = 64 * 1024;

/// Unix seconds at which the first certificate in the PEM file expires.
pub fn not_after(path: &Path) -> Result<u64, String> {
    let bytes = crate::fsutil::read_bounded(path, MAX_PEM)
        .map_err(|e| e.to_string())?
        .ok_or("missing or too large")?;
    let text = String::from_utf8_lossy(&bytes);
    let body = text
        .split("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .and_then(|rest| rest.split("-----END CERTIFICATE-----").next())
        .ok_or("no PEM certificate in it")?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "the PEM is not base64")?;
    der_not_after(&der).ok_or_else(|| "not an X.509 certificate".to_owned())
}

/// One DER element at the start of `input`: (tag, content, rest).
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    let (&first, mut input) = input.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || input.len() < n {
            return None;
        }
        let (digits, rest) = input.split_at(n);
        input = rest;
        digits
            .iter()
            .fold(0usize, |acc, &d| (acc << 8) | usize::from(d))
    };
    (input.len() >= len).then(|| (tag, &input[..len], &input[len..]))
}

fn der_not_after(der: &[u8]) -> Option<u64> {
    let (0x30, cert, _) = element(der)? else {
        return None;
    };
    let (0x30, tbs, _) = element(cert)? else {
        return None;
    };
    let mut rest = tbs;
    let (tag, _, after) = element(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    for _ in 0..3 {
        rest = element(rest)?.2; // serialNumber, signature, issuer
    }
    let (0x30, validity, _) = element(rest)? else {
        return None;
    };
    let (_, _, validity) = element(validity)?; // notBefore
    let (tag, time, _) = element(validity)?;
    let time = std::str::from_utf8(time).ok()?;
    let full = match tag {
        0x17 => {
            let yy: u32 = time.get(..2)?.parse().ok()?;
            format!("{}{time}", if yy < 50 { "20" } else { "19" })
        }
        0x18 => time.to_owned(),
        _ => return None,
    };
    unix_of(&full)
}

/// `YYYYMMDDHHMMSSZ` as Unix seconds.
fn unix_of(t: &str) -> Option<u64> {
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(8..10)?, num(10..12)?, num(12..14)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Days from civil (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_expiry_of_a_generated_certificate() {
        let dir = std::env::temp_dir().join(format!("mailgate-certs-{}", std::process::id()));
        let (cert, _) = crate::tls::ensure_local_cert(&dir, "gw.test").unwrap();
        let at = not_after(&cert).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(at > now + 86_400, "{at} vs {now}");
        assert_eq!(unix_of("20261118110640Z"), Some(1_795_000_000));
        assert_eq!(der_not_after(&[0x30, 0x81]), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
