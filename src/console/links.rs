//! Self-service enrolment links: the admin makes a one-time link for one
//! mailbox, its owner opens it from any machine that may reach the admin
//! listener and enrols with the device code flow. The link's token is
//! random 256-bit and only its SHA-256 is kept, in `<state_dir>/links.json`,
//! so a restart keeps open links and a copy of the file opens none. A link
//! is used up when an enrolment through it succeeds; it then says "already
//! used", and past its expiry "expired". The table is bounded
//! ([`MAX_LINKS`]; used and expired links go first).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::base::hex;
use crate::fsutil;

/// Links kept at once.
pub const MAX_LINKS: usize = 256;
/// Longest expiry an admin may give, in minutes (a week).
pub const MAX_EXPIRY_MINUTES: u64 = 7 * 24 * 60;
const FILE_NAME: &str = "links.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Link {
    /// SHA-256 of the token, hex.
    hash: String,
    pub account: String,
    /// Unix seconds.
    pub expires: u64,
    pub used: bool,
}

/// Why a link cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Unknown,
    Used,
    Expired,
}

impl Refused {
    pub fn words(self) -> &'static str {
        match self {
            Refused::Unknown => "This link is not known. Ask your administrator for a new one.",
            Refused::Used => {
                "This link has already been used. Ask your administrator for a new one."
            }
            Refused::Expired => "This link has expired. Ask your administrator for a new one.",
        }
    }
}

pub struct Links {
    path: PathBuf,
    table: Mutex<Vec<Link>>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn digest(token: &str) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref())
}

impl Links {
    /// The links saved in `state_dir`; an unreadable file starts empty.
    pub fn load(state_dir: &Path) -> Self {
        let path = state_dir.join(FILE_NAME);
        let table = fsutil::read_bounded(&path, 1024 * 1024)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            path,
            table: Mutex::new(table),
        }
    }

    /// A new link for `account`; returns its token (shown once).
    pub fn create(&self, account: &str, minutes: u64) -> Option<String> {
        let token = super::session::token()?;
        let mut t = self.lock();
        let now = now();
        if t.len() >= MAX_LINKS {
            t.retain(|l| !l.used && l.expires > now);
        }
        if t.len() >= MAX_LINKS {
            t.remove(0);
        }
        t.push(Link {
            hash: digest(&token),
            account: account.to_owned(),
            expires: now + minutes * 60,
            used: false,
        });
        self.save(&t);
        Some(token)
    }

    /// The account an open link is for.
    pub fn check(&self, token: &str) -> Result<String, Refused> {
        let hash = digest(token);
        let t = self.lock();
        let link = t.iter().find(|l| l.hash == hash).ok_or(Refused::Unknown)?;
        if link.used {
            Err(Refused::Used)
        } else if link.expires <= now() {
            Err(Refused::Expired)
        } else {
            Ok(link.account.clone())
        }
    }

    /// Uses the link up.
    pub fn consume(&self, token: &str) {
        let hash = digest(token);
        let mut t = self.lock();
        if let Some(link) = t.iter_mut().find(|l| l.hash == hash) {
            link.used = true;
        }
        self.save(&t);
    }

    /// Every link, newest first.
    pub fn list(&self) -> Vec<Link> {
        self.lock().iter().rev().cloned().collect()
    }

    fn save(&self, t: &[Link]) {
        let written = serde_json::to_vec(t)
            .map_err(std::io::Error::other)
            .and_then(|b| fsutil::write_atomic(&self.path, &b));
        if let Err(error) = written {
            tracing::warn!(%error, "cannot save the enrolment links");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Link>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}
