//! Private Postfix for SMTP submission, shaped like Microsoft's
//! `smtp.office365.com:587`: STARTTLS is required and AUTH is offered only
//! after it (RFC 3207 section 4, RFC 4954 section 4). SASL is Dovecot's, so
//! the same XOAUTH2 tokens work as for IMAP; accepted mail goes to Dovecot
//! over LMTP and shows up in the recipient's maildir. `MAIL FROM` a mailbox's
//! address needs that login or send-as, like Exchange's `SendAsDenied`: each
//! mailbox is listed in `smtpd_sender_login_maps` with the users who may send
//! as it, and `reject_known_sender_login_mismatch` refuses everyone else;
//! addresses outside the test's mailboxes are not checked.
//!
//! The master runs in the foreground (`master -d -c <dir>`) as a direct
//! child, with its own config, queue and data directories. No `postfix`
//! wrapper command is used: it would run the slow `postfix-script` checks and
//! wants /etc/postfix/main.cf, which a system without Postfix configured
//! does not have. Queue directories are created here with the owners and
//! modes `postfix-files` prescribes. Logging goes to `maillog_file` through
//! `postlogd`, because test machines rarely run syslog.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use super::access;
use super::auth_disabled;
use super::process::{self, GroupChild};
use super::tls::write_file;

/// Upper bound for Postfix to answer its first SMTP greeting.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Read timeout for the greeting probe.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How far in the past the config files' mtime is set, see [`backdate`].
const CONFIG_BACKDATE: Duration = Duration::from_secs(60);
/// Room for 30 MB messages after base64 and headers.
pub const MESSAGE_SIZE_LIMIT: u64 = 60 * 1024 * 1024;
/// Long enough for an `AUTH XOAUTH2 <base64>` line carrying a large JWT;
/// Postfix's default of 2048 is below what Microsoft tokens need.
const LINE_LENGTH_LIMIT: u32 = 65_536;

/// Queue subdirectories: name, mode, group is `postdrop` (else `postfix`'s own).
const QUEUE_DIRS: &[(&str, u32, bool)] = &[
    ("active", 0o700, false),
    ("bounce", 0o700, false),
    ("corrupt", 0o700, false),
    ("defer", 0o700, false),
    ("deferred", 0o700, false),
    ("flush", 0o700, false),
    ("hold", 0o700, false),
    ("incoming", 0o700, false),
    ("private", 0o700, false),
    ("saved", 0o700, false),
    ("trace", 0o700, false),
    ("maildrop", 0o730, true),
    ("public", 0o710, true),
    ("pid", 0o755, false),
];

const MASTER_CF_SERVICES: &str = "\
pickup    unix n - n 60 1 pickup
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
tlsmgr    unix - - n 1000? 1 tlsmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
lmtp      unix - - n - - lmtp
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
";

pub struct PostfixPlan<'a> {
    pub dir: &'a Path,
    pub instance: &'a str,
    pub users: &'a [(String, PathBuf)],
    pub submission_port: u16,
    pub cert: &'a Path,
    pub key: &'a Path,
    pub lmtp_socket: &'a Path,
    pub auth_socket: &'a Path,
    /// Shared address → users who may send as it.
    pub send_as: &'a [(String, Vec<String>)],
    /// Mailboxes answered `535 5.7.139` at AUTH.
    pub smtp_auth_disabled: &'a [String],
}

impl PostfixPlan<'_> {
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("postfix.log")
    }

    pub fn output_path(&self) -> PathBuf {
        self.dir.join("postfix.out")
    }

    fn conf_dir(&self) -> PathBuf {
        self.dir.join("conf")
    }

    fn queue_dir(&self) -> PathBuf {
        self.dir.join("queue")
    }

    /// Writes config and queue, starts the master and waits for our banner.
    pub fn start(&self) -> Result<GroupChild, String> {
        let daemon_dir = daemon_directory()?;
        self.prepare_dirs()?;
        let _ = fs::remove_file(self.log_path());
        let conf = self.conf_dir();
        let files = [
            ("main.cf", self.main_cf()),
            ("master.cf", self.master_cf()),
            (
                "sender_logins",
                access::sender_logins(self.users, self.send_as),
            ),
            (
                "command_filter",
                auth_disabled::command_filter(self.smtp_auth_disabled),
            ),
            ("etrn_access", auth_disabled::etrn_access()),
        ];
        for (name, text) in files {
            let path = conf.join(name);
            write_file(&path, text.as_bytes(), 0o644)?;
            backdate(&path)?;
        }
        let mut command = Command::new(daemon_dir.join("master"));
        command
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .env("MAIL_CONFIG", &conf);
        let mut child = GroupChild::spawn("postfix", command, &self.output_path())?;
        process::wait_until(&mut child, START_TIMEOUT, || self.greets())?;
        Ok(child)
    }

    fn prepare_dirs(&self) -> Result<(), String> {
        let postfix_uid = process::system_id("/etc/passwd", "postfix")?;
        let postfix_gid = process::system_id("/etc/group", "postfix")?;
        let postdrop_gid = process::system_id("/etc/group", "postdrop")?;
        let queue = self.queue_dir();
        for (name, mode, postdrop) in QUEUE_DIRS {
            let gid = if *postdrop { postdrop_gid } else { postfix_gid };
            make_dir(&queue.join(name), *mode, Some((postfix_uid, gid)))?;
        }
        make_dir(&queue, 0o755, None)?;
        make_dir(
            &self.dir.join("data"),
            0o700,
            Some((postfix_uid, postfix_gid)),
        )?;
        make_dir(&self.conf_dir(), 0o755, None)
    }

    /// True once the submission port greets with this instance's banner
    /// (and not some other process that grabbed the port).
    fn greets(&self) -> bool {
        let Ok(stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, self.submission_port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(PROBE_TIMEOUT));
        let mut line = String::new();
        let _ = BufReader::new(&stream).read_line(&mut line);
        line.starts_with("220 ") && line.contains(self.instance)
    }

    fn master_cf(&self) -> String {
        format!(
            "# TEST ONLY: private instance written by tests/support/servers.\n\
             127.0.0.1:{} inet n - n - - smtpd\n{MASTER_CF_SERVICES}",
            self.submission_port
        )
    }

    fn main_cf(&self) -> String {
        let dir = self.dir.display();
        let domains = domains(self.users);
        let mailboxes = self
            .users
            .iter()
            .map(|(user, _)| format!("{user}=ok"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            r#"# TEST ONLY: private instance written by tests/support/servers.
compatibility_level = 3.6
config_directory = {dir}/conf
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
import_environment = MAIL_CONFIG MAIL_DEBUG TZ LANG=C
maillog_file = {dir}/postfix.log
maillog_file_prefixes = {dir}
myhostname = mail.example.test
mydomain = example.test
myorigin = $mydomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_banner = $myhostname ESMTP {instance}
smtpd_peername_lookup = no
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes
smtpd_tls_chain_files = {key}, {cert}
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = {auth}
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
smtpd_sender_login_maps = texthash:{dir}/conf/sender_logins
smtpd_sender_restrictions = reject_known_sender_login_mismatch
virtual_mailbox_domains = {domains}
virtual_mailbox_maps = inline:{{ {mailboxes} }}
virtual_transport = lmtp:unix:{lmtp}
default_transport = discard:outside the test domains
relay_transport = discard:outside the test domains
message_size_limit = {size}
mailbox_size_limit = 0
line_length_limit = {lines}
smtputf8_enable = no
biff = no
append_dot_mydomain = no
alias_maps =
alias_database =
local_recipient_maps =
{auth_disabled}"#,
            instance = self.instance,
            key = self.key.display(),
            cert = self.cert.display(),
            auth = self.auth_socket.display(),
            lmtp = self.lmtp_socket.display(),
            size = MESSAGE_SIZE_LIMIT,
            lines = LINE_LENGTH_LIMIT,
            auth_disabled =
                auth_disabled::main_cf_lines(&format!("{dir}/conf"), self.smtp_auth_disabled),
        )
    }
}

fn domains(users: &[(String, PathBuf)]) -> String {
    let mut domains: Vec<&str> = users
        .iter()
        .filter_map(|(user, _)| user.rsplit_once('@').map(|(_, d)| d))
        .collect();
    domains.sort_unstable();
    domains.dedup();
    domains.join(", ")
}

fn daemon_directory() -> Result<PathBuf, String> {
    let postconf = process::find_binary("postconf")?;
    let out = Command::new(postconf)
        .args(["-d", "-h", "daemon_directory"])
        .output()
        .map_err(|e| format!("postconf: {e}"))?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if dir.join("master").is_file() {
        Ok(dir)
    } else {
        Err(format!(
            "postfix master not found in {}; {}",
            dir.display(),
            process::INSTALL_HINT
        ))
    }
}

/// Postfix reads a dictionary file only once its mtime is over a second old
/// (`dict_load_file`), dozing 300 ms at a time until then: backdating the
/// freshly written config saves about two seconds per start.
fn backdate(path: &Path) -> Result<(), String> {
    let then = SystemTime::now()
        .checked_sub(CONFIG_BACKDATE)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(then))
        .map_err(|e| format!("set mtime of {}: {e}", path.display()))
}

fn make_dir(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<(), String> {
    fs::create_dir_all(path).map_err(|e| format!("mkdir {}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    if let Some((uid, gid)) = owner {
        chown(path, Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", path.display()))?;
    }
    Ok(())
}
