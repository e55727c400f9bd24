//! The mailboxes `submit = "auto"` sends through Graph because their SMTP
//! AUTH is switched off, shared by every `auto` listener and kept in
//! `submit-auto.json` in the state directory: a restart does not try SMTP
//! again for each of them (one wasted login per mailbox), and `mailgate
//! accounts`, another process, can show the switch. The file is small and
//! bounded ([`MAX_REMEMBERED`] entries, [`MAX_FILE`] bytes), written
//! atomically, and holds wall-clock expiry times so that they mean the same
//! after a restart; expired entries are dropped when read. In memory the
//! expiry is a tokio [`Instant`], so tests can run the clock forward.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::base::AccountName;
use crate::fsutil;

/// How long a mailbox found with SMTP AUTH disabled goes straight to Graph.
pub const REMEMBER: Duration = Duration::from_secs(24 * 3600);
/// Mailboxes remembered at most; the soonest to expire are forgotten first.
pub const MAX_REMEMBERED: usize = 100_000;
/// The file's name in the state directory.
pub const FILE: &str = "submit-auto.json";
/// Largest file read: [`MAX_REMEMBERED`] entries of a 320-byte name.
pub const MAX_FILE: u64 = 40 * 1024 * 1024;

#[derive(Debug, Default, Serialize, Deserialize)]
struct OnDisk {
    /// Mailbox → Unix seconds until which it goes through Graph.
    switched: HashMap<String, u64>,
}

/// The remembered switches; see the module docs.
#[derive(Debug, Default)]
pub struct Switched {
    path: Option<PathBuf>,
    map: Mutex<HashMap<AccountName, Instant>>,
    /// Serialises file writes, which run off the async workers.
    writing: std::sync::Arc<Mutex<()>>,
}

impl Switched {
    /// In memory only (tests, and a server without a state directory).
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Kept in `dir`/[`FILE`], starting from what is there. An unreadable
    /// file is logged and ignored: the worst case is one SMTP attempt per
    /// mailbox.
    pub fn in_dir(dir: &Path) -> Self {
        let path = dir.join(FILE);
        let (wall, now) = (SystemTime::now(), Instant::now());
        let map = match read(dir, wall) {
            Ok(list) => list
                .into_iter()
                .map(|(m, until)| (m, now + until.duration_since(wall).unwrap_or_default()))
                .collect(),
            Err(error) => {
                tracing::warn!(file = %path.display(), %error, "SMTP AUTH switches not restored");
                HashMap::new()
            }
        };
        Self {
            path: Some(path),
            map: Mutex::new(map),
            writing: Default::default(),
        }
    }

    /// Whether `mailbox` goes straight to Graph now.
    pub fn contains(&self, mailbox: &AccountName) -> bool {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(mailbox) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                map.remove(mailbox);
                false
            }
            None => false,
        }
    }

    /// Sends `mailbox` through Graph for [`REMEMBER`]; `true` when it was
    /// not switched already (the caller logs it once).
    pub fn insert(&self, mailbox: &AccountName) -> bool {
        let now = Instant::now();
        let (new, snapshot) = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, until| *until > now);
            if map.len() >= MAX_REMEMBERED
                && let Some(oldest) = map.iter().min_by_key(|(_, u)| **u).map(|(m, _)| m.clone())
            {
                map.remove(&oldest);
            }
            let new = map.insert(mailbox.clone(), now + REMEMBER).is_none();
            (new, new.then(|| to_disk(&map, now)))
        };
        if let (Some(path), Some(bytes)) = (self.path.clone(), snapshot) {
            let writing = self.writing.clone();
            let write = move || {
                let _one = writing.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(error) = fsutil::write_atomic(&path, &bytes) {
                    tracing::warn!(file = %path.display(), %error, "SMTP AUTH switches not saved");
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn_blocking(write)),
                Err(_) => write(),
            }
        }
        new
    }

    /// Mailboxes currently sent through Graph, with the time left.
    pub fn list(&self) -> Vec<(String, Duration)> {
        let now = Instant::now();
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|(_, until)| **until > now)
            .map(|(m, until)| (m.as_str().to_owned(), *until - now))
            .collect()
    }
}

fn to_disk(map: &HashMap<AccountName, Instant>, now: Instant) -> Vec<u8> {
    let wall = SystemTime::now();
    let switched = map
        .iter()
        .map(|(m, until)| (m.as_str().to_owned(), unix(wall + (*until - now))))
        .collect();
    serde_json::to_vec(&OnDisk { switched }).unwrap_or_default()
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The unexpired switches saved in `dir`, for `mailgate accounts`: mailbox
/// and until when. Entries that do not parse are skipped.
pub fn read(dir: &Path, now: SystemTime) -> std::io::Result<Vec<(AccountName, SystemTime)>> {
    let Some(bytes) = fsutil::read_bounded(&dir.join(FILE), MAX_FILE)? else {
        return Ok(Vec::new());
    };
    let disk: OnDisk = serde_json::from_slice(&bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let latest = now + REMEMBER;
    let mut list: Vec<_> = disk
        .switched
        .into_iter()
        .filter_map(|(m, secs)| {
            let until = (UNIX_EPOCH + Duration::from_secs(secs)).min(latest);
            Some((AccountName::parse(&m).ok()?, until)).filter(|_| until > now)
        })
        .collect();
    list.sort_by_key(|(_, until)| *until);
    let skip = list.len().saturating_sub(MAX_REMEMBERED);
    Ok(list.split_off(skip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> AccountName {
        AccountName::parse(s).unwrap()
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mailgate-switched-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_switch_survives_a_restart_and_expires() {
        let dir = scratch("restart");
        let first = Switched::in_dir(&dir);
        assert!(first.insert(&name("A@example.test")));
        assert!(!first.insert(&name("a@example.test")), "logged once");
        let again = Switched::in_dir(&dir);
        assert!(again.contains(&name("a@example.test")));
        let listed = read(&dir, SystemTime::now()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0.as_str(), "a@example.test");
        let later = SystemTime::now() + REMEMBER + Duration::from_secs(1);
        assert!(read(&dir, later).unwrap().is_empty(), "expired");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_bad_file_is_ignored_and_far_expiries_are_capped() {
        let dir = scratch("bad");
        std::fs::write(dir.join(FILE), b"{not json").unwrap();
        assert!(Switched::in_dir(&dir).list().is_empty());
        let far = unix(SystemTime::now()) + 10 * REMEMBER.as_secs();
        let text = format!(r#"{{"switched":{{"b@example.test":{far},"bad name":{far}}}}}"#);
        std::fs::write(dir.join(FILE), text).unwrap();
        let now = SystemTime::now();
        let listed = read(&dir, now).unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert!(listed[0].1 <= now + REMEMBER);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
