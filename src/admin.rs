//! `mailgate accounts`, `logout`, `hash-password`: what an admin needs to see
//! and fix the accounts of a gateway without reading token files.

use std::io::{BufRead, Read, Write};
use std::time::SystemTime;

use zeroize::Zeroizing;

use crate::base::AccountName;
use crate::config::Config;
use crate::secret::Secret;
use crate::store::crypto::{self, KdfParams};
use crate::store::{AccountSummary, Store, StoreError};

/// Longest password `hash-password` accepts.
pub const MAX_PASSWORD_LEN: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no enrolled account {0:?}; `mailgate accounts` lists them")]
    UnknownAccount(String),
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
    #[error("cannot read the password from standard input: {0}")]
    Input(#[source] std::io::Error),
    #[error("no password given: type it on one line")]
    EmptyPassword,
    #[error("the password is not UTF-8 text")]
    NotUtf8,
    #[error("password longer than {MAX_PASSWORD_LEN} bytes")]
    PasswordTooLong,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

pub fn accounts(config: &Config, out: &mut dyn Write) -> Result<(), AdminError> {
    let list = Store::open(&config.state_dir)?.list()?;
    write_table(&list, SystemTime::now(), out).map_err(AdminError::Output)
}

pub fn logout(config: &Config, account: &str) -> Result<(), AdminError> {
    let name = AccountName::parse(account).map_err(StoreError::from)?;
    if Store::open(&config.state_dir)?.remove(&name)? {
        Ok(())
    } else {
        Err(AdminError::UnknownAccount(account.to_owned()))
    }
}

pub fn hash_password(input: &mut dyn BufRead, out: &mut dyn Write) -> Result<(), AdminError> {
    let phc = hash_with(input, KdfParams::DEFAULT)?;
    writeln!(out, "{}", phc.expose()).map_err(AdminError::Output)
}

fn hash_with(input: &mut dyn BufRead, kdf: KdfParams) -> Result<Secret<String>, AdminError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut raw = Zeroizing::new(Vec::with_capacity(MAX_PASSWORD_LEN + 2));
    input
        .take(MAX_PASSWORD_LEN as u64 + 2)
        .read_until(b'\n', &mut raw)
        .map_err(AdminError::Input)?;
    let text = std::str::from_utf8(&raw).map_err(|_| AdminError::NotUtf8)?;
    let password = text.trim_end_matches(['\n', '\r']);
    if password.len() > MAX_PASSWORD_LEN {
        return Err(AdminError::PasswordTooLong);
    }
    if password.is_empty() {
        return Err(AdminError::EmptyPassword);
    }
    let hash_err = |e: &dyn std::fmt::Display| AdminError::Hash(e.to_string());
    let salt = crypto::random_bytes::<16>().map_err(|e| hash_err(&e))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| hash_err(&e))?;
    let params = argon2::Params::new(kdf.m_kib, kdf.t, kdf.p, None).map_err(|e| hash_err(&e))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let phc = argon
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| hash_err(&e))?;
    Ok(Secret::new(phc.to_string()))
}

fn write_table(
    list: &[AccountSummary],
    now: SystemTime,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if list.is_empty() {
        return writeln!(out, "no accounts enrolled; run `mailgate login <account>`");
    }
    let rows: Vec<[String; 6]> = list
        .iter()
        .map(|a| {
            let expiry = match a.access_expires_at {
                Some(t) if t <= now => format!("{} (expired)", utc(t)),
                Some(t) => utc(t),
                None => "-".to_owned(),
            };
            [
                a.account.to_string(),
                a.provider.clone(),
                a.state.as_str().to_owned(),
                expiry,
                a.last_used.map_or_else(|| "never".to_owned(), utc),
                a.last_error.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    let head = [
        "ACCOUNT",
        "PROVIDER",
        "STATE",
        "TOKEN EXPIRES",
        "LAST USED",
        "LAST ERROR",
    ];
    let mut width = head.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate().take(5) {
            s.push_str(&format!("{cell:<w$}  ", w = width[i]));
        }
        s.push_str(cells[5]);
        s
    };
    writeln!(out, "{}", line(head))?;
    for row in &rows {
        writeln!(out, "{}", line(row.each_ref().map(String::as_str)))?;
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MMZ` without a calendar crate (days-from-civil inverse,
/// H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
fn utc(t: SystemTime) -> String {
    let secs = crate::store::record::to_unix(t) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::AccountState;
    use crate::store::testutil::{TEST_KDF, TempDir, config, enrol, name, test_store};

    #[test]
    fn hash_password_prints_a_verifiable_phc_string() {
        let mut out = Vec::new();
        hash_password(&mut &b"s3cret pass\r\n"[..], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let phc = text.trim_end();
        assert!(phc.starts_with("$argon2id$v=19$m=65536,t=3,p=1$"), "{phc}");
        assert!(text.ends_with('\n') && !phc.contains("s3cret"));
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        let parsed = PasswordHash::new(phc).unwrap();
        let argon = argon2::Argon2::default();
        assert!(argon.verify_password(b"s3cret pass", &parsed).is_ok());
        assert!(argon.verify_password(b"s3cret pass\r", &parsed).is_err());
    }

    #[test]
    fn hash_password_salts_and_rejects_bad_input() {
        let a = hash_with(&mut &b"pw\n"[..], TEST_KDF).unwrap();
        let b = hash_with(&mut &b"pw\n"[..], TEST_KDF).unwrap();
        assert_ne!(a.expose(), b.expose());
        assert!(matches!(
            hash_with(&mut &b"\n"[..], TEST_KDF),
            Err(AdminError::EmptyPassword)
        ));
        let long = vec![b'x'; MAX_PASSWORD_LEN + 5];
        assert!(matches!(
            hash_with(&mut &long[..], TEST_KDF),
            Err(AdminError::PasswordTooLong)
        ));
    }

    #[test]
    fn accounts_table_and_logout() {
        let dir = TempDir::new("admin");
        let cfg = config(dir.path(), "");
        let mut out = Vec::new();
        accounts(&cfg, &mut out).unwrap();
        assert!(String::from_utf8_lossy(&out).starts_with("no accounts enrolled"));
        let store = test_store(dir.path());
        enrol(&store, "alice@example.com", "ms", "pw", "RT-alice-secret");
        enrol(&store, "bob@example.com", "ms", "pw", "RT-bob-secret");
        store
            .set_state(
                &name("bob@example.com"),
                None,
                AccountState::NeedsLogin,
                Some("invalid_grant (AADSTS700082): idle"),
            )
            .unwrap();
        let mut out = Vec::new();
        accounts(&cfg, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("ACCOUNT") && lines[0].contains("LAST ERROR"));
        assert!(lines[1].starts_with("alice@example.com") && lines[1].contains(" active "));
        assert!(lines[1].contains("never"));
        assert!(lines[2].contains("needs-login") && lines[2].ends_with("AADSTS700082): idle"));
        assert!(!text.contains("RT-"));
        logout(&cfg, "Bob@example.com").unwrap();
        assert!(matches!(
            logout(&cfg, "bob@example.com"),
            Err(AdminError::UnknownAccount(_))
        ));
        assert_eq!(store.list().unwrap().len(), 1);
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(utc(SystemTime::UNIX_EPOCH), "1970-01-01 00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_834_620);
        assert_eq!(utc(t), "2026-11-28 02:57Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc(leap), "2000-02-29 00:00Z");
    }
}
