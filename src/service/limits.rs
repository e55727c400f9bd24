//! The open-file limit. Every relayed session holds two descriptors (the
//! client's socket and the upstream one); the usual soft limit of 1,024
//! therefore allows about 500 sessions, although the hard limit (often
//! 524,288, or `LimitNOFILE=` in the unit) allows far more. `serve` raises
//! the soft limit to the hard one at start and says what that allows, and
//! warns when `[limits] max_connections` asks for more.

use rlimit::Resource;
use tracing::{info, warn};

/// Descriptors set aside for listeners, the token store, logs and the
/// resolver: (1,024 − 24) / 2 = 500 sessions under the default soft limit.
pub const RESERVED_DESCRIPTORS: u64 = 24;

/// Descriptors one relayed session holds: the client's and the upstream's.
pub const DESCRIPTORS_PER_SESSION: u64 = 2;

/// Linux refuses a soft limit above `fs.nr_open` (1,048,576 unless raised),
/// so an unlimited hard limit is taken as this.
const UNLIMITED_AS: u64 = 1 << 20;

/// The open-file soft limit before and after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub before: u64,
    pub limit: u64,
}

impl OpenFiles {
    /// Concurrent sessions the limit allows.
    pub fn sessions(&self) -> u64 {
        self.limit.saturating_sub(RESERVED_DESCRIPTORS) / DESCRIPTORS_PER_SESSION
    }
}

/// Raises the open-file soft limit to the hard limit.
pub fn raise() -> std::io::Result<OpenFiles> {
    let (before, hard) = Resource::NOFILE.get()?;
    let limit = rlimit::increase_nofile_limit(hard.min(UNLIMITED_AS))?;
    Ok(OpenFiles { before, limit })
}

/// [`raise`], then logs the sessions the limit allows; a limit below
/// `max_connections` is worth a warning, a failure to raise it too.
pub fn raise_and_report(max_connections: usize) {
    let files = match raise() {
        Ok(files) => files,
        Err(e) => {
            warn!(error = %e, "cannot raise the open-file limit; keeping the current one");
            return;
        }
    };
    let sessions = files.sessions();
    info!(
        before = files.before,
        limit = files.limit,
        sessions,
        "open-file limit raised to the hard limit"
    );
    if (max_connections as u64) > sessions {
        warn!(
            max_connections,
            sessions,
            "[limits] max_connections is above what the open-file limit allows; \
             raise the hard limit (LimitNOFILE= in the unit, or ulimit -Hn)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_soft_limit_allows_about_500_sessions() {
        let files = OpenFiles {
            before: 1024,
            limit: 1024,
        };
        assert_eq!(files.sessions(), 500);
        assert_eq!(
            OpenFiles {
                before: 0,
                limit: 3
            }
            .sessions(),
            0
        );
    }

    #[test]
    fn raise_ends_at_or_above_the_old_soft_limit() {
        let files = raise().unwrap();
        assert!(files.limit >= files.before, "{files:?}");
    }
}
