//! Maildir access behind Dovecot's back: seeding messages the way a delivery
//! agent would (write in `tmp/`, rename into `new/`), and spotting messages
//! that arrived through SMTP → LMTP.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::process::POLL;

/// File name prefix of seeded messages, so deliveries can be told apart.
const SEED_PREFIX: &str = "seed.";

pub struct Maildirs {
    ids: (u32, u32),
    seeded: AtomicU64,
    reported: Mutex<HashSet<String>>,
}

impl Maildirs {
    pub fn new(ids: (u32, u32)) -> Self {
        Maildirs {
            ids,
            seeded: AtomicU64::new(0),
            reported: Mutex::new(HashSet::new()),
        }
    }

    /// Creates `home/Maildir/{new,cur,tmp}` owned by the mail user.
    pub fn create(&self, home: &Path) -> Result<(), String> {
        let maildir = home.join("Maildir");
        for sub in ["new", "cur", "tmp"] {
            let path = maildir.join(sub);
            fs::create_dir_all(&path).map_err(|e| format!("mkdir {}: {e}", path.display()))?;
        }
        for path in [
            home.to_path_buf(),
            maildir.clone(),
            maildir.join("new"),
            maildir.join("cur"),
            maildir.join("tmp"),
        ] {
            self.own(&path, 0o700)?;
        }
        Ok(())
    }

    /// Creates the Maildir++ folder `name` (`.name/{new,cur,tmp}`) and
    /// returns its path, which [`Maildirs::seed`] takes like a maildir.
    pub fn folder(&self, maildir: &Path, name: &str) -> Result<PathBuf, String> {
        let folder = maildir.join(format!(".{name}"));
        for sub in ["new", "cur", "tmp"] {
            let path = folder.join(sub);
            fs::create_dir_all(&path).map_err(|e| format!("mkdir {}: {e}", path.display()))?;
            self.own(&path, 0o700)?;
        }
        self.own(&folder, 0o700)?;
        Ok(folder)
    }

    pub fn seed(&self, maildir: &Path, message: &[u8]) -> Result<PathBuf, String> {
        let n = self.seeded.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!(
            "{SEED_PREFIX}{nanos}.{n}.{}.mailgate-test",
            std::process::id()
        );
        let staged = maildir.join("tmp").join(&name);
        fs::write(&staged, message).map_err(|e| format!("write {}: {e}", staged.display()))?;
        self.own(&staged, 0o600)?;
        let target = maildir.join("new").join(&name);
        fs::rename(&staged, &target).map_err(|e| format!("rename into new/: {e}"))?;
        Ok(target)
    }

    /// The oldest delivered (not seeded) message not returned before, polled
    /// until `timeout`.
    pub fn wait_for_delivery(&self, maildir: &Path, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.take_delivered(maildir) {
                return Some(found);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL);
        }
    }

    fn take_delivered(&self, maildir: &Path) -> Option<Vec<u8>> {
        let mut reported = self.reported.lock().ok()?;
        let mut candidates: Vec<(SystemTime, String, PathBuf)> = ["new", "cur"]
            .iter()
            .filter_map(|sub| fs::read_dir(maildir.join(sub)).ok())
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let base = name.split(':').next().unwrap_or_default().to_string();
                let modified = entry.metadata().and_then(|m| m.modified()).ok()?;
                Some((modified, base, entry.path()))
            })
            .filter(|(_, base, _)| !base.starts_with(SEED_PREFIX) && !reported.contains(base))
            .collect();
        candidates.sort();
        for (_, base, path) in candidates {
            if let Ok(bytes) = fs::read(&path) {
                reported.insert(base);
                return Some(bytes);
            }
        }
        None
    }

    fn own(&self, path: &Path, mode: u32) -> Result<(), String> {
        let (uid, gid) = self.ids;
        chown(path, Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", path.display()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {}: {e}", path.display()))
    }
}
