//! The audit log: what happened to the gateway, for the people who run it.
//! Admin actions, enrolments, sign-outs, refresh failures, lock-outs and
//! configuration faults, each with who did it, when and from where.
//!
//! It lives in the ground layer so that the layers that notice these events
//! (the guard, the token service, the admin service, the console) can all
//! record them without reaching upwards. It is one JSON object per line in
//! `<state_dir>/events.jsonl`: readable with `tail`, and a line torn by a
//! crash costs that line only. The file is bounded: past [`MAX_LINES`] or
//! [`MAX_BYTES`] it is rewritten with its newest half, atomically.
//!
//! Nothing secret is ever recorded: callers pass names, addresses and
//! plain-words outcomes, never passwords, tokens or codes.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::fsutil;

/// Events kept at most; the oldest half goes when this is passed.
pub const MAX_LINES: usize = 10_000;
/// Bytes kept at most; the oldest half goes when this is passed.
pub const MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Longest text field kept (longer ones are cut).
pub const MAX_FIELD: usize = 512;
/// The file, in the state directory.
pub const FILE_NAME: &str = "events.jsonl";

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Seconds since the Unix epoch.
    pub when: u64,
    /// Who did it: `admin`, `self-service`, `mailgate`, a login name.
    pub who: String,
    /// What happened, in plain words.
    pub what: String,
    /// The account it concerns, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The client address it came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

impl Event {
    /// An event happening now.
    pub fn now(who: &str, what: impl Into<String>) -> Self {
        let when = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            when,
            who: cut(who.to_owned()),
            what: cut(what.into()),
            account: None,
            from: None,
        }
    }

    pub fn account(mut self, account: &str) -> Self {
        self.account = Some(cut(account.to_owned()));
        self
    }

    pub fn from(mut self, from: impl std::fmt::Display) -> Self {
        self.from = Some(cut(from.to_string()));
        self
    }
}

fn cut(mut s: String) -> String {
    if s.len() > MAX_FIELD {
        let mut end = MAX_FIELD;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The log of one state directory. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    /// Serialises appends and rewrites within this process; holds the
    /// file's line count once known.
    lock: Mutex<Option<usize>>,
}

impl AuditLog {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join(FILE_NAME),
            lock: Mutex::new(None),
        }
    }

    /// Appends `event`; a failure to write is logged, never returned: the
    /// action it describes has happened either way.
    pub fn record(&self, event: Event) {
        tracing::info!(who = %event.who, what = %event.what, account = ?event.account, from = ?event.from, "event");
        let mut count = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(error) = self.append(&event, &mut count) {
            tracing::warn!(%error, path = %self.path.display(), "cannot write the audit log");
        }
    }

    fn append(&self, event: &Event, count: &mut Option<usize>) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(&line)?;
        let size = file.metadata()?.len();
        drop(file);
        let lines = match *count {
            Some(n) => n + 1,
            None => self.lines()?,
        };
        *count = Some(lines);
        if size > MAX_BYTES || lines > MAX_LINES {
            *count = Some(self.keep_newest_half()?);
        }
        Ok(())
    }

    fn lines(&self) -> std::io::Result<usize> {
        let bytes = std::fs::read(&self.path)?;
        Ok(bytes.iter().filter(|&&b| b == b'\n').count())
    }

    /// Rewrites the file with its newest half; returns the lines kept.
    fn keep_newest_half(&self) -> std::io::Result<usize> {
        let bytes = fsutil::read_bounded(&self.path, MAX_BYTES * 2)?.unwrap_or_default();
        let lines: Vec<&[u8]> = bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let keep = (MAX_LINES / 2).min(lines.len() / 2);
        let mut out = Vec::with_capacity(bytes.len() / 2);
        for line in &lines[lines.len() - keep..] {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        fsutil::write_atomic(&self.path, &out)?;
        Ok(keep)
    }

    /// Up to `limit` events, newest first; unreadable lines are skipped.
    pub fn recent(&self, limit: usize) -> Vec<Event> {
        let _held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let Ok(Some(bytes)) = fsutil::read_bounded(&self.path, MAX_BYTES * 2) else {
            return Vec::new();
        };
        bytes
            .split(|&b| b == b'\n')
            .rev()
            .filter_map(|l| serde_json::from_slice(l).ok())
            .take(limit)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_newest_first_and_keeps_fields_bounded() {
        let dir = std::env::temp_dir().join(format!("mailgate-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = AuditLog::new(&dir);
        log.record(Event::now("admin", "signed in").from("127.0.0.1"));
        log.record(Event::now("admin", "x".repeat(2000)).account("a@b.test"));
        let events = log.recent(10);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].account.as_deref(), Some("a@b.test"));
        assert_eq!(events[0].what.len(), MAX_FIELD);
        assert_eq!(events[1].from.as_deref(), Some("127.0.0.1"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rewrites_its_newest_half_past_the_line_cap() {
        let dir = std::env::temp_dir().join(format!("mailgate-audit-cap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = AuditLog::new(&dir);
        let padding = "p".repeat(100);
        for i in 0..MAX_LINES + 1 {
            log.record(Event::now("t", format!("{i} {padding}")));
        }
        let lines = log.lines().unwrap();
        assert!(lines <= MAX_LINES / 2 + 1, "{lines}");
        let newest = log.recent(1);
        assert!(newest[0].what.starts_with(&format!("{MAX_LINES} ")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
