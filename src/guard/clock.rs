//! Instants across processes: monotonic instants mean nothing to another
//! process (the next run after a restart, or another instance sharing the
//! guard), so what leaves the process is Unix seconds, converted with one
//! reading of both clocks.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// One reading of both clocks, to carry instants across processes.
pub(super) struct Clock {
    pub instant: Instant,
    pub unix: u64,
}

impl Clock {
    pub fn now() -> Clock {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Clock {
            instant: Instant::now(),
            unix,
        }
    }

    /// Rounded up, so a saved lock-out never ends earlier than it would have.
    pub fn unix(&self, at: Instant) -> u64 {
        if at >= self.instant {
            let ahead = at.duration_since(self.instant);
            self.unix
                .saturating_add(ahead.as_secs())
                .saturating_add(u64::from(ahead.subsec_nanos() > 0))
        } else {
            self.unix
                .saturating_sub(self.instant.duration_since(at).as_secs())
        }
    }

    pub fn instant_of(&self, unix: u64) -> Instant {
        if unix >= self.unix {
            let ahead = Duration::from_secs(unix - self.unix).min(super::TRUST_TTL);
            self.instant + ahead
        } else {
            let behind = Duration::from_secs(self.unix - unix);
            self.instant.checked_sub(behind).unwrap_or(self.instant)
        }
    }
}
