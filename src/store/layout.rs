//! Where [`FileStore`](super::FileStore) records sit on disk and how they
//! are read back: safe file names, change stamps, bounded and
//! version-checked reads.

use std::path::Path;
use std::time::SystemTime;

use super::record::{FORMAT_VERSION, MAX_FILE_BYTES, OLDEST_VERSION, Record};
use super::types::StoreError;
use crate::base::{self, AccountName};
use crate::fsutil;

/// Identifies one saved version of a record. For a file: size, modification
/// time and (on Unix) inode; atomic replacement always makes a new inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Stamp {
    /// A stamp for a backend that numbers its versions (a database row).
    pub fn from_version(version: u64) -> Stamp {
        Stamp {
            len: version,
            modified: None,
            inode: 0,
        }
    }

    pub(super) fn of(m: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(m);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp {
            len: m.len(),
            modified: m.modified().ok(),
            inode,
        }
    }
}

/// A readable, safe file name: the name's harmless characters, then a hash
/// of the whole name so that distinct names never share a file.
pub(super) fn file_name(account: &AccountName) -> String {
    let account = account.as_str();
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
    format!("{readable}-{}.json", base::hex(&hash.as_ref()[..8]))
}

pub(super) fn read_record(path: &Path) -> Result<Option<Record>, StoreError> {
    let Some(bytes) = fsutil::read_bounded(path, MAX_FILE_BYTES).map_err(io("read", path))? else {
        return Ok(None);
    };
    parse_record(&bytes, path).map(Some)
}

/// A record from its serialised bytes (a file's or a database row's);
/// `path` names where they came from in errors.
pub(super) fn parse_record(bytes: &[u8], path: &Path) -> Result<Record, StoreError> {
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FILE_BYTES {
        return Err(corrupt(path, "too large"));
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        version: u32,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| corrupt(path, &e.to_string()))?;
    if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&probe.version) {
        return Err(StoreError::Version {
            path: path.to_owned(),
            found: probe.version,
        });
    }
    let rec: Record = serde_json::from_slice(bytes).map_err(|e| corrupt(path, &e.to_string()))?;
    if rec.kdf.alg != "argon2id" || !rec.kdf.params.within_bounds() {
        return Err(corrupt(path, "unsupported or out-of-bounds kdf"));
    }
    Ok(rec)
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
