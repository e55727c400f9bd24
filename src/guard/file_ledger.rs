//! [`FileLedger`]: instances on one host sharing a state directory share
//! their verdicts through `<state_dir>/guard-shared/`. Each instance appends
//! to files of its own (`<instance>-<generation>.jsonl`, one JSON verdict a
//! line, written whole by one `write` on an append-only descriptor) and reads
//! the others' from where it stopped, up to the last complete line; no file
//! has two writers, so no lock is needed.
//!
//! Bounded on every side: a file past [`ROTATE_BYTES`] is continued in the
//! next generation and the one before the previous is removed; files nobody
//! wrote to for [`STALE_AFTER`] (instances that are gone) are removed by
//! whoever sees them; one pull reads at most [`MAX_READ`] bytes per file and
//! ignores lines longer than [`MAX_LINE`].

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ledger::{GuardLedger, LedgerError, Shared, Verdict};
use super::persist::{key_of, target_of};
use crate::base::BoxFuture;
use crate::fsutil;

/// The directory inside the state directory.
pub const DIR_NAME: &str = "guard-shared";
/// Size at which an instance continues in a new file.
pub const ROTATE_BYTES: u64 = 1 << 20;
/// Age (since the last write) at which a file is removed.
pub const STALE_AFTER: Duration = Duration::from_secs(15 * 60);
/// Bytes read per file and pull.
pub const MAX_READ: u64 = 4 << 20;
/// Longest line applied.
pub const MAX_LINE: usize = 4096;

#[derive(Serialize, Deserialize)]
struct Line {
    source: std::net::IpAddr,
    target: Option<String>,
    verdict: Verdict,
    at: u64,
}

pub struct FileLedger {
    state: Arc<Mutex<State>>,
}

struct State {
    dir: PathBuf,
    instance: String,
    generation: u64,
    /// Per file of another instance: bytes already read.
    offsets: HashMap<String, u64>,
    /// Until the first pull: start every file at its end.
    first_pull: bool,
}

impl FileLedger {
    /// Opens `<state_dir>/guard-shared/` for a new instance.
    pub fn open(state_dir: &Path) -> Result<FileLedger, LedgerError> {
        let dir = state_dir.join(DIR_NAME);
        fsutil::private_dir(&dir)?;
        let id =
            crate::base::random_bytes::<8>().map_err(|e| LedgerError::Backend(e.to_string()))?;
        Ok(FileLedger {
            state: Arc::new(Mutex::new(State {
                dir,
                instance: crate::base::hex(&id),
                generation: 0,
                offsets: HashMap::new(),
                first_pull: true,
            })),
        })
    }

    fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut State) -> Result<T, LedgerError> + Send + 'static,
    ) -> BoxFuture<'_, Result<T, LedgerError>> {
        let state = self.state.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                work(&mut s)
            })
            .await
            .map_err(|e| LedgerError::Backend(e.to_string()))?
        })
    }
}

impl GuardLedger for FileLedger {
    fn publish(&self, verdicts: Vec<Shared>) -> BoxFuture<'_, Result<(), LedgerError>> {
        self.blocking(move |s| s.append(&verdicts))
    }

    fn pull(&self) -> BoxFuture<'_, Result<Vec<Shared>, LedgerError>> {
        self.blocking(State::pull)
    }
}

impl State {
    fn file_name(&self, generation: u64) -> String {
        format!("{}-{generation}.jsonl", self.instance)
    }

    fn append(&mut self, verdicts: &[Shared]) -> Result<(), LedgerError> {
        let mut text = String::new();
        for v in verdicts {
            let line = Line {
                source: v.source,
                target: v.target.as_ref().map(key_of),
                verdict: v.verdict,
                at: v.at,
            };
            let json =
                serde_json::to_string(&line).map_err(|e| LedgerError::Backend(e.to_string()))?;
            text.push_str(&json);
            text.push('\n');
        }
        let path = self.dir.join(self.file_name(self.generation));
        let len = fs::metadata(&path).map_or(0, |m| m.len());
        if len >= ROTATE_BYTES {
            self.generation += 1;
            if let Some(old) = self.generation.checked_sub(2) {
                let _ = fsutil::remove(&self.dir.join(self.file_name(old)));
            }
            return self.append(verdicts);
        }
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        file.write_all(text.as_bytes())?;
        Ok(())
    }

    fn pull(&mut self) -> Result<Vec<Shared>, LedgerError> {
        let first = std::mem::take(&mut self.first_pull);
        let mut seen = HashMap::new();
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".jsonl") || name.starts_with(&format!("{}-", self.instance)) {
                continue;
            }
            let meta = entry.metadata()?;
            let stale = meta.modified().ok().and_then(|m| m.elapsed().ok());
            if stale.is_some_and(|age| age > STALE_AFTER) {
                let _ = fsutil::remove(&entry.path());
                continue;
            }
            let from = match self.offsets.get(&name) {
                Some(&at) => at,
                None if first => meta.len(),
                None => 0,
            };
            let read = read_lines(&entry.path(), from, &mut out)?;
            seen.insert(name, from + read);
        }
        self.offsets = seen;
        Ok(out)
    }
}

/// Reads the complete lines of `path` from `from` (at most [`MAX_READ`]
/// bytes) into `out`; returns the bytes consumed.
fn read_lines(path: &Path, from: u64, out: &mut Vec<Shared>) -> Result<u64, LedgerError> {
    let mut file = fs::File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.take(MAX_READ).read_to_end(&mut bytes)?;
    let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else {
        return Ok(0);
    };
    for line in bytes[..end].split(|&b| b == b'\n') {
        if line.len() > MAX_LINE {
            continue;
        }
        let Ok(l) = serde_json::from_slice::<Line>(line) else {
            continue;
        };
        let target = match l.target {
            Some(key) => match target_of(&key) {
                Some(t) => Some(t),
                None => continue,
            },
            None => None,
        };
        out.push(Shared {
            source: l.source,
            target,
            verdict: l.verdict,
            at: l.at,
        });
    }
    Ok(end as u64 + 1)
}
