//! Where records sit on disk and how they are read back: safe file names,
//! change stamps, bounded and version-checked reads.

use std::path::Path;
use std::time::SystemTime;

use super::record::{FORMAT_VERSION, MAX_FILE_BYTES, Record};
use super::store_types::StoreError;
use crate::fsutil;

/// Longest account name accepted (an e-mail address is at most 254).
pub const MAX_ACCOUNT_LEN: usize = 320;

/// Size, modification time and (on Unix) inode of a token file. Atomic
/// replacement always makes a new inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl FileStamp {
    pub(super) fn of(m: &std::fs::Metadata) -> FileStamp {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(m);
        #[cfg(not(unix))]
        let inode = 0;
        FileStamp {
            len: m.len(),
            modified: m.modified().ok(),
            inode,
        }
    }
}

/// Account names compare case-insensitively, as mail addresses do in practice.
pub fn normalise(account: &str) -> Result<String, StoreError> {
    if account.is_empty()
        || account.len() > MAX_ACCOUNT_LEN
        || account.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(StoreError::InvalidAccount(
            account.chars().take(64).collect(),
        ));
    }
    Ok(account.to_lowercase())
}

/// A readable, safe file name: the name's harmless characters, then a hash
/// of the whole name so that distinct names never share a file.
pub(super) fn file_name(account: &str) -> String {
    let readable: String = account
        .chars()
        .take(64)
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '@' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .collect();
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, account.as_bytes());
    let readable = readable.trim_start_matches('.');
    format!("{readable}-{}.json", crate::base::hex(&hash.as_ref()[..8]))
}

pub(super) fn read_record(path: &Path) -> Result<Option<Record>, StoreError> {
    let Some(bytes) = fsutil::read_bounded(path, MAX_FILE_BYTES).map_err(io("read", path))? else {
        return Ok(None);
    };
    #[derive(serde::Deserialize)]
    struct Probe {
        version: u32,
    }
    let probe: Probe = serde_json::from_slice(&bytes).map_err(|e| corrupt(path, &e.to_string()))?;
    if probe.version != FORMAT_VERSION {
        return Err(StoreError::Version {
            path: path.to_owned(),
            found: probe.version,
        });
    }
    let rec: Record = serde_json::from_slice(&bytes).map_err(|e| corrupt(path, &e.to_string()))?;
    if rec.kdf.alg != "argon2id" || !rec.kdf.params.within_bounds() {
        return Err(corrupt(path, "unsupported or out-of-bounds kdf"));
    }
    Ok(Some(rec))
}

pub(super) fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

pub(super) fn corrupt(path: &Path, reason: &str) -> StoreError {
    StoreError::Corrupt {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}
