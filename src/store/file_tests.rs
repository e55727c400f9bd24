//! The file backend's own guarantees: crash leftovers go at open, and the
//! machine key is made once however many processes race for it.

use std::sync::{Arc, Barrier, mpsc};
use std::time::Duration;

use super::*;
use crate::store::testutil::{TempDir, enrol, record_path, test_store};

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A crash between writing a temporary file and renaming it leaves the
/// temporary behind; the next open removes it, waiting for the lock so it
/// never takes a file a live writer is still filling.
#[test]
fn crash_leftovers_are_removed_at_open_under_the_lock() {
    let t = TempDir::new("store-leftover");
    let store = test_store(t.path());
    enrol(&store, "k@example.com", "ms", "pw", "RT-k");
    let accounts = t.path().join("accounts");
    let planted = [
        accounts.join(format!("{}4242-00112233aabbccdd", fsutil::TEMP_PREFIX)),
        t.path()
            .join(format!("{}4242-8899aabbccddeeff", fsutil::TEMP_PREFIX)),
    ];
    let guard = FileStore::open(t.path()).unwrap().lock().unwrap();
    for p in &planted {
        std::fs::write(p, b"{\"half\":").unwrap();
    }
    let dir = t.path().to_owned();
    let (tx, rx) = mpsc::channel();
    let opener = std::thread::spawn(move || tx.send(FileStore::open(&dir).is_ok()).unwrap());
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "open cleaned up while another holder had the lock"
    );
    assert!(planted.iter().all(|p| p.exists()));
    drop(guard);
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(true));
    opener.join().unwrap();
    for p in &planted {
        assert!(!p.exists(), "{} left behind", p.display());
    }
    let record = record_path(t.path(), "k@example.com");
    let record = record.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(names_in(&accounts), [record]);
}

/// Processes starting together all get the one key, and none of them ever
/// reads a half-written file.
#[test]
fn racing_openers_create_one_machine_key() {
    const THREADS: usize = 8;
    for round in 0..100 {
        let t = TempDir::new(&format!("store-mkey-{round}"));
        let barrier = Arc::new(Barrier::new(THREADS));
        let racers: Vec<_> = (0..THREADS)
            .map(|_| {
                let dir = t.path().to_owned();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let store = FileStore::open(&dir).unwrap();
                    barrier.wait();
                    store.machine_key().map(|k| *k.expose())
                })
            })
            .collect();
        let keys: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let first = keys[0].as_ref().unwrap();
        for k in &keys {
            assert_eq!(k.as_ref().unwrap(), first, "round {round}: {keys:?}");
        }
        let names = names_in(t.path());
        assert!(
            names.iter().all(|n| !n.starts_with(fsutil::TEMP_PREFIX)),
            "{names:?}"
        );
    }
}
