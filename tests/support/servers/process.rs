//! Child processes and the host facts the servers need: binaries, system
//! accounts, free loopback ports. Each server runs as the leader of its own
//! process group so stopping it also reaches the workers it forked.

use std::fs::{self, File};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server gets to exit after SIGTERM before its group gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Poll interval for start-up and shutdown waits.
pub const POLL: Duration = Duration::from_millis(20);

pub const INSTALL_HINT: &str =
    "run `sudo scripts/install-test-deps.sh` to install the test mail servers";

const SEARCH_DIRS: &[&str] = &["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin"];

/// Finds `name` on PATH or in the usual sbin directories.
pub fn find_binary(name: &str) -> Result<PathBuf, String> {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .chain(SEARCH_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| format!("`{name}` not found; {INSTALL_HINT}"))
}

/// A numeric uid/gid of a system account, read from /etc/passwd or /etc/group.
pub fn system_id(database: &str, name: &str) -> Result<u32, String> {
    let text = fs::read_to_string(database).map_err(|e| format!("read {database}: {e}"))?;
    text.lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&name))
        .and_then(|fields| fields.get(2).and_then(|id| id.parse().ok()))
        .ok_or_else(|| format!("no `{name}` in {database}; {INSTALL_HINT}"))
}

/// The effective uid of this process (the owner of /proc/self).
pub fn effective_uid() -> Result<u32, String> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| format!("stat /proc/self: {e}"))
}

/// Where test listeners take their ports: below Linux's ephemeral range
/// (32768-60999 by default), so an outgoing connection of another test can
/// never take a port between the moment it is chosen and the moment the
/// server binds it, which happened with ports picked by binding port 0.
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Picks `count` distinct free ports on 127.0.0.1. Each process walks the
/// range from its own starting point, so concurrent test processes rarely
/// meet; every candidate is probed with a bind and skipped if taken.
pub fn free_ports(count: usize) -> Result<Vec<u16>, String> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CURSOR: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(PORTS.end - PORTS.start);
    let _ = CURSOR.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % span,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    let mut ports = Vec::with_capacity(count);
    for _ in 0..span {
        if ports.len() == count {
            break;
        }
        let offset = CURSOR.fetch_add(1, Ordering::SeqCst) % span;
        let port = PORTS.start + u16::try_from(offset).map_err(|e| e.to_string())?;
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            ports.push(port);
        }
    }
    if ports.len() < count {
        return Err(format!("no {count} free ports in {PORTS:?}"));
    }
    Ok(ports)
}

/// A server's master process, leader of its own process group.
pub struct GroupChild {
    name: &'static str,
    child: Child,
}

impl GroupChild {
    /// Spawns `command` in a new process group, stdout and stderr appended to `output`.
    pub fn spawn(name: &'static str, mut command: Command, output: &Path) -> Result<Self, String> {
        let out = File::create(output).map_err(|e| format!("create {}: {e}", output.display()))?;
        let err = out.try_clone().map_err(|e| format!("dup output: {e}"))?;
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = command.spawn().map_err(|e| format!("spawn {name}: {e}"))?;
        Ok(GroupChild { name, child })
    }

    /// The master's process id (the group's id too).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// `Some(description)` once the master has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("{} exited: {status}", self.name)),
            Ok(None) => None,
            Err(e) => Some(format!("{} wait failed: {e}", self.name)),
        }
    }

    /// SIGTERM to the group, a bounded wait, then SIGKILL to whatever is left.
    pub fn stop(&mut self) {
        let group = format!("-{}", self.child.id());
        signal_group("TERM", &group);
        let deadline = Instant::now() + STOP_GRACE;
        while self.exited().is_none() && Instant::now() < deadline {
            thread::sleep(POLL);
        }
        signal_group("KILL", &group);
        let _ = self.child.wait();
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.stop();
        } else {
            signal_group("KILL", &format!("-{}", self.child.id()));
        }
    }
}

fn signal_group(signal: &str, group: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), "--", group])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Polls `ready` until it returns `Ok(true)`, the child exits, or `timeout` passes.
pub fn wait_until(
    child: &mut GroupChild,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(exit) = child.exited() {
            return Err(exit);
        }
        if ready() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("{} not ready after {timeout:?}", child.name));
        }
        thread::sleep(POLL);
    }
}
