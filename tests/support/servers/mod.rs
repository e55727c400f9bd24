//! TEST-ONLY harness: real upstream mail servers from the distribution's
//! packages (Dovecot for IMAP/POP3/LMTP/SASL, Postfix for submission),
//! started privately per test on 127.0.0.1 high ports (and HAProxy, the
//! load balancer in front of mailgate for the PROXY protocol tests, and
//! PostgreSQL for the shared token store), each instance in its
//! own temporary directory so tests can run them in parallel.
//!
//! They stand in for Microsoft 365: IMAP and POP3 over implicit TLS, SMTP
//! submission with STARTTLS required and AUTH only after it, and SASL
//! XOAUTH2/OAUTHBEARER whose bearer tokens Dovecot checks against the test
//! identity provider's introspection endpoint (RFC 7662), per token and
//! mailbox, so a delegate's token opens a shared mailbox only with full
//! access and an app's token only the mailboxes it is granted; Postfix lets
//! a user send as a shared address only with send-as. PLAIN and LOGIN
//! work too, with [`MailServers::password`].
//!
//! Needs root (Postfix's master and Dovecot's privilege separation) and the
//! packages from `scripts/install-test-deps.sh`. Everything started here is
//! stopped and the directory removed on [`Drop`], also when a test panics.
//!
//! Use from an integration test:
//! `#[path = "support/servers/mod.rs"] mod servers;`
#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different part of the harness"
)]

mod access;
pub mod auth_disabled;
mod dovecot;
mod haproxy;
mod maildir;
mod postfix;
mod postgres;
mod process;
mod tls;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dovecot::DovecotPlan;
use maildir::Maildirs;
use postfix::PostfixPlan;

pub use haproxy::{Haproxy, SendProxy};
pub use postfix::MESSAGE_SIZE_LIMIT;
pub use postgres::PgCluster;
pub use process::{GroupChild, INSTALL_HINT, find_binary, free_ports, wait_until};
pub use tls::{LOCAL_NAMES, LeafCert, LeafPaths, TestCa};

/// Start attempts when a freshly picked port was taken in the meantime.
const START_ATTEMPTS: usize = 3;
/// The loopback address every server listens on.
pub const HOST: &str = "127.0.0.1";

static INSTANCES: AtomicU64 = AtomicU64::new(0);

/// Knobs for [`MailServers::start_with`]; the default suits most tests.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// Fixed ports instead of free ones (no retry if they are taken).
    pub imaps_port: Option<u16>,
    pub pop3s_port: Option<u16>,
    pub submission_port: Option<u16>,
    /// Offer XOAUTH2 but not OAUTHBEARER, like Microsoft. Clients that
    /// prefer OAUTHBEARER whenever offered (curl) then really use XOAUTH2.
    pub no_oauthbearer: bool,
    /// Room for this many simultaneous sessions of one user from one
    /// address (Dovecot's defaults allow 10 per user and IP, 100 processes).
    pub max_sessions: Option<u32>,
    /// Let Dovecot hold this many concurrent IMAP sessions of one user from
    /// one address (benchmarks, thousands of sessions): Dovecot's
    /// high-performance mode with long-lived login processes and many
    /// clients per process, instead of one process per session.
    pub max_imap_sessions: Option<u32>,
    /// Shared address → users who may send as it (`MAIL FROM`); any other
    /// authenticated user is refused that sender. Addresses not listed are
    /// not checked.
    pub send_as: Vec<(String, Vec<String>)>,
    /// Mailboxes whose XOAUTH2 login Postfix answers with Microsoft's
    /// `535 5.7.139 ... SmtpClientAuthentication is disabled` (see
    /// [`auth_disabled`]).
    pub smtp_auth_disabled: Vec<String>,
}

/// Running Dovecot + Postfix for one test. TEST ONLY.
pub struct MailServers {
    dir: PathBuf,
    instance: String,
    ca: TestCa,
    ca_path: PathBuf,
    users: Vec<(String, PathBuf)>,
    maildirs: Maildirs,
    imaps_port: u16,
    pop3s_port: u16,
    submission_port: u16,
    dovecot: Option<GroupChild>,
    postfix: Option<GroupChild>,
}

impl MailServers {
    /// Starts both servers for `users` (addresses like `alice@example.test`).
    pub fn start(introspect_url: &str, users: &[&str]) -> Result<MailServers, String> {
        Self::start_with(introspect_url, users, &StartOptions::default())
    }

    pub fn start_with(
        introspect_url: &str,
        users: &[&str],
        options: &StartOptions,
    ) -> Result<MailServers, String> {
        if process::effective_uid()? != 0 {
            return Err(format!(
                "the test mail servers need root (Postfix master, Dovecot privilege separation); {INSTALL_HINT}"
            ));
        }
        let mail_ids = (
            process::system_id("/etc/passwd", "nobody")?,
            process::system_id("/etc/group", "nogroup")?,
        );
        let mut servers = Self::prepare(users, mail_ids)?;
        servers.launch(introspect_url, options, mail_ids)?;
        Ok(servers)
    }

    pub fn host(&self) -> &'static str {
        HOST
    }

    pub fn imaps_port(&self) -> u16 {
        self.imaps_port
    }

    pub fn pop3s_port(&self) -> u16 {
        self.pop3s_port
    }

    pub fn submission_port(&self) -> u16 {
        self.submission_port
    }

    /// PEM file of the CA that issued the servers' certificate.
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca_path
    }

    /// The test CA, to issue more leaf certificates (e.g. for mailgate's
    /// own listeners) that clients trusting [`Self::ca_pem_path`] accept.
    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// The run's private directory (removed on drop).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The PLAIN/LOGIN password of `user` in the passwd-file passdb.
    pub fn password(&self, user: &str) -> String {
        DovecotPlan::password(user)
    }

    pub fn maildir(&self, user: &str) -> PathBuf {
        self.home(user).join("Maildir")
    }

    /// Drops `message` into `user`'s INBOX, visible to IMAP and POP3.
    pub fn seed_message(&self, user: &str, message: &[u8]) -> Result<PathBuf, String> {
        self.known(user)?;
        self.maildirs.seed(&self.maildir(user), message)
    }

    /// Drops `message` into `user`'s folder `folder` (created if needed),
    /// as a delivery agent would: what the test Graph does with the Sent
    /// copy.
    pub fn store_in_folder(
        &self,
        user: &str,
        folder: &str,
        message: &[u8],
    ) -> Result<PathBuf, String> {
        self.known(user)?;
        let folder = self.maildirs.folder(&self.maildir(user), folder)?;
        self.maildirs.seed(&folder, message)
    }

    /// Waits for the next message delivered (via SMTP → LMTP) to `user`,
    /// returning the maildir file: Dovecot stores it with LF line endings and
    /// its own `Return-Path`/`Received` headers on top.
    pub fn wait_for_delivery(&self, user: &str, timeout: Duration) -> Option<Vec<u8>> {
        self.maildirs
            .wait_for_delivery(&self.maildir(user), timeout)
    }

    /// Dovecot's and Postfix's logs and console output, for failure messages.
    pub fn logs(&self) -> String {
        ["dovecot.log", "dovecot.out", "postfix.log", "postfix.out"]
            .iter()
            .map(|name| section(&self.dir, name))
            .collect()
    }

    /// Stops both servers; idempotent.
    pub fn stop(&mut self) {
        if let Some(mut postfix) = self.postfix.take() {
            postfix.stop();
        }
        if let Some(mut dovecot) = self.dovecot.take() {
            dovecot.stop();
        }
    }

    fn prepare(users: &[&str], mail_ids: (u32, u32)) -> Result<MailServers, String> {
        let n = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let instance = format!("mgtest-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(&instance);
        let _ = fs::remove_dir_all(&dir);
        make_public_dir(&dir)?;
        make_public_dir(&dir.join("mail"))?;
        let ca = TestCa::generate()?;
        let ca_path = dir.join("ca.crt");
        tls::write_file(&ca_path, ca.cert_pem().as_bytes(), 0o644)?;
        let users = users
            .iter()
            .map(|u| (u.to_string(), dir.join("mail").join(u)))
            .collect();
        let servers = MailServers {
            dir,
            instance,
            ca,
            ca_path,
            users,
            maildirs: Maildirs::new(mail_ids),
            imaps_port: 0,
            pop3s_port: 0,
            submission_port: 0,
            dovecot: None,
            postfix: None,
        };
        for (_, home) in &servers.users {
            servers.maildirs.create(home)?;
        }
        Ok(servers)
    }

    fn launch(
        &mut self,
        introspect_url: &str,
        options: &StartOptions,
        mail_ids: (u32, u32),
    ) -> Result<(), String> {
        let server = self.ca.write_leaf(&self.dir, "server", LOCAL_NAMES)?;
        let fixed = options.imaps_port.is_some()
            || options.pop3s_port.is_some()
            || options.submission_port.is_some();
        let attempts = if fixed { 1 } else { START_ATTEMPTS };
        let mut last_error = String::new();
        for _ in 0..attempts {
            let free = process::free_ports(3)?;
            self.imaps_port = options.imaps_port.unwrap_or(free[0]);
            self.pop3s_port = options.pop3s_port.unwrap_or(free[1]);
            self.submission_port = options.submission_port.unwrap_or(free[2]);
            match self.launch_once(introspect_url, options, mail_ids, &server) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.stop();
                    let retry = e.contains("in use");
                    last_error = e;
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(last_error)
    }

    fn launch_once(
        &mut self,
        introspect_url: &str,
        options: &StartOptions,
        mail_ids: (u32, u32),
        server: &LeafPaths,
    ) -> Result<(), String> {
        let dovecot = DovecotPlan {
            dir: &self.dir,
            instance: &self.instance,
            introspect_url,
            users: &self.users,
            mail_ids,
            imaps_port: self.imaps_port,
            pop3s_port: self.pop3s_port,
            oauthbearer: !options.no_oauthbearer,
            max_sessions: options.max_sessions,
            max_imap_sessions: options.max_imap_sessions,
            cert: &server.cert,
            key: &server.key,
        };
        let started = dovecot.start();
        self.dovecot = Some(started.map_err(|e| self.failure("dovecot", &e))?);
        let postfix = PostfixPlan {
            dir: &self.dir,
            instance: &self.instance,
            users: &self.users,
            submission_port: self.submission_port,
            cert: &server.cert,
            key: &server.key,
            lmtp_socket: &dovecot.lmtp_socket(),
            auth_socket: &dovecot.auth_socket(),
            send_as: &options.send_as,
            smtp_auth_disabled: &options.smtp_auth_disabled,
        };
        let started = postfix.start();
        self.postfix = Some(started.map_err(|e| self.failure("postfix", &e))?);
        Ok(())
    }

    fn failure(&self, server: &str, reason: &str) -> String {
        let logs = [format!("{server}.log"), format!("{server}.out")]
            .iter()
            .map(|name| section(&self.dir, name))
            .collect::<String>();
        format!("{server} failed to start: {reason}\n{logs}")
    }

    fn home(&self, user: &str) -> PathBuf {
        self.dir.join("mail").join(user)
    }

    fn known(&self, user: &str) -> Result<(), String> {
        if self.users.iter().any(|(u, _)| u == user) {
            Ok(())
        } else {
            Err(format!("{user} is not one of this run's users"))
        }
    }
}

impl Drop for MailServers {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A fresh directory of its own for a server outside [`MailServers`].
fn instance_dir(tag: &str) -> Result<PathBuf, String> {
    let n = INSTANCES.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("{tag}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    Ok(dir)
}

fn section(dir: &Path, name: &str) -> String {
    let body = fs::read_to_string(dir.join(name)).unwrap_or_else(|e| format!("({e})"));
    format!("--- {name} ---\n{body}\n")
}

fn make_public_dir(path: &Path) -> Result<(), String> {
    fs::create_dir_all(path).map_err(|e| format!("mkdir {}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}
