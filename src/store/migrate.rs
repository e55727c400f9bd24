//! Copying sealed records between two backends (`mailgate store migrate`):
//! from the file store into a shared database and back. Records travel
//! sealed and are never opened, so accounts keep their local passwords and
//! the command needs none.
//!
//! Idempotent: a record the destination already holds byte for byte is
//! skipped; one that differs goes to whichever side refreshed last
//! (`last_refresh`, set by every enrolment and refresh), because that side
//! holds the newest rotated refresh token and the other's is spent.

use super::{Record, StoreError, TokenStore};
use crate::base::AccountName;

/// What happened, or would happen on a dry run, to one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The destination had no record, or an older one: copied.
    Copied,
    /// The destination holds the same record.
    Identical,
    /// The destination's record is as new or newer: left as it is.
    KeptNewer,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Copied => "copy",
            Action::Identical => "same",
            Action::KeptNewer => "keep (newer at the destination)",
        }
    }
}

/// Copies every record of `from` into `to` (nothing is written on a dry
/// run). Stops at the first record that cannot be read or written.
pub fn copy_records(
    from: &dyn TokenStore,
    to: &dyn TokenStore,
    dry_run: bool,
) -> Result<Vec<(AccountName, Action)>, StoreError> {
    let mut records = from.list()?;
    records.sort_by(|a, b| a.account.cmp(&b.account));
    let mut done = Vec::with_capacity(records.len());
    for rec in records {
        let lease = to.lease(&rec.account)?;
        let action = decide(&rec, to.load(&rec.account)?.as_ref());
        if action == Action::Copied && !dry_run {
            to.save(&lease, &rec)?;
        }
        done.push((rec.account, action));
    }
    Ok(done)
}

fn decide(source: &Record, dest: Option<&Record>) -> Action {
    let Some(dest) = dest else {
        return Action::Copied;
    };
    if serde_json::to_vec(source).ok() == serde_json::to_vec(dest).ok() {
        return Action::Identical;
    }
    if source.last_refresh > dest.last_refresh {
        Action::Copied
    } else {
        Action::KeptNewer
    }
}
