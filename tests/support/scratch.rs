//! Scratch directories for tests that write configs, stores and logs: one
//! per test, unique per process and call, removed when the test ends.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system temp dir, unique per process and call.
/// The caller removes it (or wraps it in a [`Scratch`]).
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("mailgate-test-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A [`temp_dir`] removed on drop, with the conventional paths of a test
/// that runs the real binary.
pub struct Scratch {
    pub dir: PathBuf,
    /// `mailgate.toml` inside the directory.
    pub config: PathBuf,
}

impl Scratch {
    pub fn new(tag: &str) -> Self {
        let dir = temp_dir(tag);
        let config = dir.join("mailgate.toml");
        Self { dir, config }
    }

    /// The `state_dir` the configs written here use.
    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Writes the config file; returns its path.
    pub fn write(&self, text: &str) -> PathBuf {
        std::fs::write(&self.config, text).expect("write config");
        self.config.clone()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
