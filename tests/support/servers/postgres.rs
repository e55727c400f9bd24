//! TEST-ONLY: a private PostgreSQL cluster from the distribution's package
//! (`initdb` + `postgres` from /usr/lib/postgresql/*/bin) on a free
//! 127.0.0.1 port, its files in a temporary directory. PostgreSQL refuses
//! to run as root, so under root (CI) it runs as the `postgres` system
//! user, which owns the directory.
//!
//! [`PgCluster::shared`] is one cluster for the whole test binary (a start
//! costs a second or two); each test takes a fresh database from it with
//! [`PgCluster::database`]. A watchdog stops that cluster and removes its
//! files when the test binary exits. A test that stops or restarts the
//! server ([`PgCluster::stop`], [`PgCluster::start_again`]) starts its own
//! with [`PgCluster::start`], stopped and removed on drop.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::process::{self, GroupChild, find_binary, free_ports, wait_until};
use super::tls::{LOCAL_NAMES, TestCa};

const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The superuser the tests connect as (trust authentication on loopback).
pub const SUPERUSER: &str = "postgres";

static DATABASES: AtomicU64 = AtomicU64::new(0);

pub struct PgCluster {
    dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
    /// `Some` when the cluster runs as the `postgres` system user.
    owner: Option<(u32, u32)>,
    child: Option<GroupChild>,
    /// PEM of the CA that issued the server's certificate, when TLS is on.
    ca_path: Option<PathBuf>,
}

impl PgCluster {
    /// The test binary's cluster, started on first use.
    pub fn shared() -> Result<&'static PgCluster, String> {
        static SHARED: OnceLock<Result<PgCluster, String>> = OnceLock::new();
        let cluster = SHARED.get_or_init(|| {
            let cluster = PgCluster::start(false)?;
            cluster.watch_for_exit()?;
            Ok(cluster)
        });
        cluster.as_ref().map_err(Clone::clone)
    }

    /// A cluster of its own; `tls` turns on SSL with a certificate from a
    /// fresh test CA ([`PgCluster::ca_path`]).
    pub fn start(tls: bool) -> Result<PgCluster, String> {
        let bin = bin_dir()?;
        let dir = super::instance_dir("mgtest-pg")?;
        let owner = if process::effective_uid()? == 0 {
            Some((
                process::system_id("/etc/passwd", "postgres")?,
                process::system_id("/etc/group", "postgres")?,
            ))
        } else {
            None
        };
        let mut cluster = PgCluster {
            dir,
            port: 0,
            bin,
            owner,
            child: None,
            ca_path: None,
        };
        fs::set_permissions(&cluster.dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
        if tls {
            cluster.write_certificate()?;
        }
        cluster.chown_all()?;
        cluster.initdb()?;
        cluster.port = free_ports(1)?[0];
        cluster.start_again()?;
        Ok(cluster)
    }

    pub fn ca_path(&self) -> Option<&Path> {
        self.ca_path.as_deref()
    }

    /// A fresh, empty database; its name.
    pub fn database(&self) -> Result<String, String> {
        let n = DATABASES.fetch_add(1, Ordering::Relaxed);
        let name = format!("mgtest_{}_{n}", std::process::id());
        self.sql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(name)
    }

    /// A `[store]` url for `db` as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs `sql` in `db` with psql; its output.
    pub fn sql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                db,
                "-c",
                sql,
            ])
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "psql {sql:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Stops the server (fast shutdown: sessions are cut); the files stay.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        for _ in 0..500 {
            if child.exited().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.stop();
    }

    /// Starts the server again on the same port and data.
    pub fn start_again(&mut self) -> Result<(), String> {
        let mut command = self.as_owner(&self.bin.join("postgres"));
        command
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(&self.dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "max_connections=200"]);
        if self.ca_path.is_some() {
            command
                .args(["-c", "ssl=on", "-c"])
                .arg(format!(
                    "ssl_cert_file={}",
                    self.dir.join("server.crt").display()
                ))
                .arg("-c")
                .arg(format!(
                    "ssl_key_file={}",
                    self.dir.join("server.key").display()
                ));
        }
        let mut child = GroupChild::spawn("postgres", command, &self.dir.join("postgres.log"))?;
        let port = self.port;
        let started = wait_until(&mut child, START_TIMEOUT, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        self.child = Some(child);
        started.map_err(|e| format!("{e}\n{}", self.log()))?;
        // Accepting connections is not yet accepting queries.
        for _ in 0..250 {
            if self.sql("postgres", "SELECT 1").is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("postgres answers no query\n{}", self.log()))
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
    }

    fn initdb(&self) -> Result<(), String> {
        let mut command = self.as_owner(&self.bin.join("initdb"));
        command
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdin(Stdio::null());
        let out = command.output().map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    fn write_certificate(&mut self) -> Result<(), String> {
        let ca = TestCa::generate()?;
        let leaf = ca.write_leaf(&self.dir, "server", LOCAL_NAMES)?;
        fs::rename(&leaf.cert, self.dir.join("server.crt")).map_err(|e| e.to_string())?;
        fs::rename(&leaf.key, self.dir.join("server.key")).map_err(|e| e.to_string())?;
        fs::set_permissions(
            self.dir.join("server.key"),
            fs::Permissions::from_mode(0o600),
        )
        .map_err(|e| e.to_string())?;
        let ca_path = self.dir.join("ca.crt");
        fs::write(&ca_path, ca.cert_pem()).map_err(|e| e.to_string())?;
        self.ca_path = Some(ca_path);
        Ok(())
    }

    fn chown_all(&self) -> Result<(), String> {
        let Some((uid, gid)) = self.owner else {
            return Ok(());
        };
        for entry in fs::read_dir(&self.dir).map_err(|e| e.to_string())? {
            let path = entry.map_err(|e| e.to_string())?.path();
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        }
        std::os::unix::fs::chown(&self.dir, Some(uid), Some(gid)).map_err(|e| e.to_string())
    }

    /// `program`, run as the directory's owner.
    fn as_owner(&self, program: &Path) -> Command {
        match self.owner {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    /// The shared cluster outlives every test: a small shell loop stops it
    /// and removes its files once this process is gone.
    fn watch_for_exit(&self) -> Result<(), String> {
        let Some(pid) = self.child.as_ref().map(GroupChild::id) else {
            return Err("postgres is not running".to_owned());
        };
        let script = format!(
            "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; kill -INT {pid}; \
             for i in $(seq 50); do kill -0 {pid} 2>/dev/null || break; sleep 0.1; done; \
             kill -KILL -{pid} 2>/dev/null; rm -rf '{dir}'",
            me = std::process::id(),
            dir = self.dir.display()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("watchdog: {e}"))?;
        Ok(())
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The newest installed server's binaries.
fn bin_dir() -> Result<PathBuf, String> {
    let mut dirs: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| {
            format!(
                "no PostgreSQL server installed ({e}); {}",
                process::INSTALL_HINT
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
        .ok_or_else(|| format!("no PostgreSQL server binaries; {}", process::INSTALL_HINT))
        .and_then(|d| find_binary("psql").map(|_| d))
}
