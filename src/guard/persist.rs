//! Lock-outs survive a restart: the guard's counts and trusted pairs are
//! saved to `<state_dir>/guard.json` and read back at start, so restarting
//! mailgate (or making it crash) does not hand an attacker fresh free
//! attempts, nor lock the owner out of an account under attack.
//!
//! The file is written atomically (`fsutil::write_atomic`), at most every
//! [`SAVE_INTERVAL`] while something changed and once more at shutdown. It
//! is bounded on both sides: at most [`MAX_SAVED`] entries per table are
//! written (the most recent), and a file above [`MAX_FILE_BYTES`] or one
//! that does not parse is ignored with a warning: the guard then starts
//! empty, as it did before this file existed. Times are stored as Unix
//! seconds, because monotonic instants mean nothing to the next process.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::clock::Clock;
use super::table::Entry;
use super::{LoginGuard, Target};
use crate::base::AccountName;
use crate::fsutil;
use serde::{Deserialize, Serialize};

/// The file's name inside the state directory.
pub const FILE_NAME: &str = "guard.json";
/// Entries saved per table (sources, targets, trusted pairs).
pub const MAX_SAVED: usize = 10_000;
/// Largest file read back; bigger than [`MAX_SAVED`] entries can need.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// Least time between two saves while logins keep changing the counts.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(10);
const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path} is not a guard state file of version {VERSION}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
}

#[derive(Serialize, Deserialize)]
struct Saved {
    version: u32,
    sources: Vec<SavedCount>,
    targets: Vec<SavedCount>,
    trusted: Vec<SavedTrust>,
}

#[derive(Serialize, Deserialize)]
struct SavedCount {
    key: String,
    count: u32,
    locked_until: u64,
    last: u64,
}

#[derive(Serialize, Deserialize)]
struct SavedTrust {
    target: String,
    source: IpAddr,
    until: u64,
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// Writes the guard's state if it changed since the last save.
pub fn save_if_changed(guard: &LoginGuard, state_dir: &Path) -> Result<(), PersistError> {
    let Some(bytes) = snapshot(guard) else {
        return Ok(());
    };
    let file = path(state_dir);
    let io = |source| PersistError::Io {
        path: file.clone(),
        source,
    };
    let written = fsutil::private_dir(state_dir).and_then(|()| fsutil::write_atomic(&file, &bytes));
    if written.is_err() {
        guard.lock().dirty = true;
    }
    written.map_err(io)
}

/// Reads a saved state into `guard`; a missing file is an empty state.
/// Returns how many entries were restored.
pub fn load(guard: &LoginGuard, state_dir: &Path) -> Result<usize, PersistError> {
    let file = path(state_dir);
    let bytes = match fsutil::read_bounded(&file, MAX_FILE_BYTES) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(PersistError::TooLarge { path: file });
        }
        Err(source) => return Err(PersistError::Io { path: file, source }),
    };
    let saved: Saved = serde_json::from_slice(&bytes)
        .ok()
        .filter(|s: &Saved| s.version == VERSION)
        .ok_or_else(|| PersistError::Unreadable {
            path: file.clone(),
            reason: "unknown version or not JSON".into(),
        })?;
    Ok(restore(guard, saved))
}

/// The state as JSON, or `None` when nothing changed since the last call.
fn snapshot(guard: &LoginGuard) -> Option<Vec<u8>> {
    let clock = Clock::now();
    let mut t = guard.lock();
    if !std::mem::take(&mut t.dirty) {
        return None;
    }
    let counts = |entries: Vec<(String, &Entry)>| -> Vec<SavedCount> {
        let mut v: Vec<_> = entries
            .into_iter()
            .filter(|(_, e)| e.count > 0)
            .map(|(key, e)| SavedCount {
                key,
                count: e.count,
                locked_until: clock.unix(e.locked_until),
                last: clock.unix(e.last),
            })
            .collect();
        v.sort_by_key(|c| std::cmp::Reverse(c.last));
        v.truncate(MAX_SAVED);
        v
    };
    let sources = counts(
        t.by_source
            .map
            .iter()
            .map(|(k, e)| (k.to_string(), e))
            .collect(),
    );
    let targets = counts(
        t.by_target
            .map
            .iter()
            .map(|(k, e)| (key_of(k), e))
            .collect(),
    );
    let mut trusted: Vec<_> = t
        .trusted
        .iter()
        .filter(|(_, until)| **until > clock.instant)
        .map(|((target, source), until)| SavedTrust {
            target: key_of(target),
            source: *source,
            until: clock.unix(*until),
        })
        .collect();
    drop(t);
    trusted.sort_by_key(|t| std::cmp::Reverse(t.until));
    trusted.truncate(MAX_SAVED);
    let saved = Saved {
        version: VERSION,
        sources,
        targets,
        trusted,
    };
    serde_json::to_vec(&saved).ok()
}

fn restore(guard: &LoginGuard, saved: Saved) -> usize {
    let clock = Clock::now();
    let capacity = guard.settings.capacity;
    let mut t = guard.lock();
    let mut restored = 0;
    let entry = |c: &SavedCount| Entry {
        count: c.count,
        pending: 0,
        locked_until: clock.instant_of(c.locked_until),
        last: clock.instant_of(c.last),
    };
    for c in saved.sources.iter().take(MAX_SAVED) {
        if let Ok(source) = c.key.parse::<IpAddr>() {
            restored += usize::from(t.by_source.restore(source, entry(c)));
        }
    }
    for c in saved.targets.iter().take(MAX_SAVED) {
        if let Some(target) = target_of(&c.key) {
            restored += usize::from(t.by_target.restore(target, entry(c)));
        }
    }
    for s in saved.trusted.iter().take(MAX_SAVED) {
        if let Some(target) = target_of(&s.target)
            && t.trusted.len() < capacity
        {
            t.trusted
                .insert((target, s.source), clock.instant_of(s.until));
            restored += 1;
        }
    }
    restored
}

pub(super) fn key_of(target: &Target) -> String {
    match target {
        Target::Account(name) => format!("account:{}", name.as_str()),
        Target::Rule(rule) => format!("rule:{rule}"),
    }
}

pub(super) fn target_of(key: &str) -> Option<Target> {
    if let Some(name) = key.strip_prefix("account:") {
        return AccountName::parse(name).ok().map(Target::Account);
    }
    let rule = key.strip_prefix("rule:")?;
    (rule.len() <= crate::base::MAX_ACCOUNT_LEN + 2).then(|| Target::Rule(rule.to_owned()))
}

/// Saves `guard` every [`SAVE_INTERVAL`] while it changes, until `stop`;
/// the caller saves once more after the last session has ended.
pub async fn keep_saved(
    guard: std::sync::Arc<LoginGuard>,
    state_dir: PathBuf,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(SAVE_INTERVAL) => {}
            () = crate::net::stopped(&mut stop) => return,
        }
        let (g, dir) = (guard.clone(), state_dir.clone());
        match tokio::task::spawn_blocking(move || save_if_changed(&g, &dir)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "cannot save the login guard's state"),
            Err(error) => tracing::warn!(%error, "saving the login guard's state failed to run"),
        }
    }
}
