//! [`UploadWindow`]: the bytes each mailbox sent through Graph in the last
//! five minutes. Graph allows 150 MB of upload per mailbox in any 5 minutes
//! and answers 429 beyond it; counting here lets mailgate answer `451` with
//! the real wait *before* uploading, instead of spending the upload and then
//! learning the limit from Graph (`docs/design.md` §9).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Graph's upload volume window.
pub const UPLOAD_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Graph's upload volume per mailbox and window.
pub const DEFAULT_UPLOAD_PER_WINDOW: usize = 150 * 1024 * 1024;
/// Mailboxes tracked at once: beyond it, mailboxes whose window is empty are
/// forgotten, and if every one is still active a new one waits.
pub const MAX_MAILBOXES: usize = 100_000;
/// Sends remembered per mailbox and window (Graph's own limit is 10,000
/// requests per 10 minutes, so a real mailbox never reaches it).
pub const MAX_SENDS_PER_WINDOW: usize = 10_000;

/// Why a send has to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MustWait(pub Duration);

/// The sliding window of every mailbox.
pub struct UploadWindow {
    limit: usize,
    window: Duration,
    sent: Mutex<HashMap<String, VecDeque<(Instant, usize)>>>,
}

impl UploadWindow {
    /// `limit` bytes per mailbox in any `window`.
    pub fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit,
            window,
            sent: Mutex::new(HashMap::new()),
        }
    }

    /// The configured bytes per window.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Counts `bytes` for `mailbox` at `now` if they fit in its window;
    /// otherwise says how long until they would.
    pub fn reserve(&self, mailbox: &str, bytes: usize, now: Instant) -> Result<(), MustWait> {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        if !sent.contains_key(mailbox) && sent.len() >= MAX_MAILBOXES {
            sent.retain(|_, q| {
                expire(q, now, self.window);
                !q.is_empty()
            });
            if sent.len() >= MAX_MAILBOXES {
                return Err(MustWait(self.window));
            }
        }
        let queue = sent.entry(mailbox.to_owned()).or_default();
        expire(queue, now, self.window);
        let used: usize = queue.iter().map(|(_, n)| n).sum();
        if used.saturating_add(bytes) <= self.limit && queue.len() < MAX_SENDS_PER_WINDOW {
            queue.push_back((now, bytes));
            return Ok(());
        }
        Err(MustWait(self.wait(queue, used, bytes, now)))
    }

    /// Until enough of the oldest sends leave the window for `bytes` to fit.
    fn wait(
        &self,
        queue: &VecDeque<(Instant, usize)>,
        used: usize,
        bytes: usize,
        now: Instant,
    ) -> Duration {
        let mut left = used;
        for (n, (at, size)) in queue.iter().enumerate() {
            left -= size;
            let room = left.saturating_add(bytes) <= self.limit;
            if room && queue.len() - n - 1 < MAX_SENDS_PER_WINDOW {
                return (*at + self.window).saturating_duration_since(now);
            }
        }
        self.window
    }
}

/// Drops the sends that left the window.
fn expire(queue: &mut VecDeque<(Instant, usize)>, now: Instant, window: Duration) {
    while queue
        .front()
        .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= window)
    {
        queue.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn a_send_over_the_limit_waits_until_the_oldest_leave() {
        let w = UploadWindow::new(1000, 5 * MIN);
        let t0 = Instant::now();
        assert_eq!(w.reserve("a@x", 600, t0), Ok(()));
        assert_eq!(w.reserve("a@x", 300, t0 + MIN), Ok(()));
        // 900 used: 200 more must wait for the first send (t0 + 5 min).
        assert_eq!(w.reserve("a@x", 200, t0 + 2 * MIN), Err(MustWait(3 * MIN)));
        // Another mailbox has its own window.
        assert_eq!(w.reserve("b@x", 1000, t0 + 2 * MIN), Ok(()));
        // 100 still fits.
        assert_eq!(w.reserve("a@x", 100, t0 + 2 * MIN), Ok(()));
        // Once the first send left the window, 600 fits again.
        assert_eq!(w.reserve("a@x", 600, t0 + 5 * MIN), Ok(()));
    }

    #[test]
    fn the_wait_counts_as_many_old_sends_as_needed() {
        let w = UploadWindow::new(1000, 5 * MIN);
        let t0 = Instant::now();
        for i in 0..4 {
            assert_eq!(w.reserve("a@x", 250, t0 + i * MIN), Ok(()));
        }
        // 700 needs the first three gone: the third leaves at t0 + 7 min.
        assert_eq!(w.reserve("a@x", 700, t0 + 4 * MIN), Err(MustWait(3 * MIN)));
        // A message larger than the whole limit waits a full window.
        assert_eq!(w.reserve("a@x", 1001, t0 + 4 * MIN), Err(MustWait(5 * MIN)));
    }

    #[test]
    fn the_map_forgets_idle_mailboxes() {
        let w = UploadWindow::new(10, MIN);
        let t0 = Instant::now();
        for i in 0..MAX_MAILBOXES {
            w.reserve(&format!("m{i}@x"), 1, t0).unwrap();
        }
        // Full and every window active: a new mailbox waits.
        assert_eq!(w.reserve("new@x", 1, t0), Err(MustWait(MIN)));
        // A window later all are idle and forgotten.
        assert_eq!(w.reserve("new@x", 1, t0 + MIN), Ok(()));
        assert_eq!(w.sent.lock().unwrap().len(), 1);
    }
}
