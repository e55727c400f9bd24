//! Private Dovecot: IMAP and POP3 over implicit TLS on loopback, LMTP and
//! the SASL auth service on unix sockets inside the run directory.
//!
//! PLAIN/LOGIN check a passwd-file; XOAUTH2/OAUTHBEARER go to the `oauth2`
//! passdb, which POSTs `token=...` to the test identity provider's
//! introspection endpoint (RFC 7662) on every login, and then the policy
//! check asks the provider whether that token may open the mailbox (see
//! `access.rs`): no auth cache, so a revoked token or a withdrawn grant fails
//! at once. The brute-force penalty and failure delay are
//! off so that tests which expect a refusal stay fast.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::access;
use super::process::{self, GroupChild};
use super::tls::write_file;

/// Upper bound for Dovecot to bind its listeners.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Log line the master writes once all listeners are bound.
const STARTED_MARKER: &str = "starting up for";

pub struct DovecotPlan<'a> {
    pub dir: &'a Path,
    pub instance: &'a str,
    pub introspect_url: &'a str,
    pub users: &'a [(String, PathBuf)],
    pub mail_ids: (u32, u32),
    pub imaps_port: u16,
    pub pop3s_port: u16,
    pub oauthbearer: bool,
    pub max_sessions: Option<u32>,
    pub max_imap_sessions: Option<u32>,
    pub cert: &'a Path,
    pub key: &'a Path,
}

impl DovecotPlan<'_> {
    pub fn lmtp_socket(&self) -> PathBuf {
        self.dir.join("lmtp")
    }

    pub fn auth_socket(&self) -> PathBuf {
        self.dir.join("auth")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("dovecot.log")
    }

    pub fn output_path(&self) -> PathBuf {
        self.dir.join("dovecot.out")
    }

    pub fn password(user: &str) -> String {
        format!("pw-{user}")
    }

    /// Writes the configuration and starts `dovecot -F`, waiting until its
    /// listeners accept connections.
    pub fn start(&self) -> Result<GroupChild, String> {
        let binary = process::find_binary("dovecot")?;
        for stale in [self.log_path(), self.lmtp_socket(), self.auth_socket()] {
            let _ = std::fs::remove_file(stale);
        }
        for sub in ["run", "state"] {
            std::fs::create_dir_all(self.dir.join(sub)).map_err(|e| format!("mkdir: {e}"))?;
        }
        write_file(&self.dir.join("passwd"), self.passwd().as_bytes(), 0o644)?;
        write_file(
            &self.dir.join("oauth2.conf"),
            access::oauth2_conf(self.introspect_url).as_bytes(),
            0o600,
        )?;
        let conf = self.dir.join("dovecot.conf");
        write_file(&conf, self.dovecot_conf().as_bytes(), 0o600)?;
        let mut command = Command::new(binary);
        command.arg("-F").arg("-c").arg(&conf);
        let mut child = GroupChild::spawn("dovecot", command, &self.output_path())?;
        process::wait_until(&mut child, START_TIMEOUT, || self.is_ready())?;
        Ok(child)
    }

    fn is_ready(&self) -> bool {
        let started = std::fs::read_to_string(self.log_path())
            .map(|log| log.contains(STARTED_MARKER))
            .unwrap_or(false);
        started
            && self.lmtp_socket().exists()
            && self.auth_socket().exists()
            && [self.imaps_port, self.pop3s_port]
                .iter()
                .all(|port| TcpStream::connect((Ipv4Addr::LOCALHOST, *port)).is_ok())
    }

    fn passwd(&self) -> String {
        let (uid, gid) = self.mail_ids;
        self.users
            .iter()
            .fold(String::new(), |mut out, (user, home)| {
                let password = Self::password(user);
                let _ = writeln!(
                    out,
                    "{user}:{{PLAIN}}{password}:{uid}:{gid}::{}::",
                    home.display()
                );
                out
            })
    }

    fn dovecot_conf(&self) -> String {
        let dir = self.dir.display();
        let oauth_mechs = if self.oauthbearer {
            "xoauth2 oauthbearer"
        } else {
            "xoauth2"
        };
        let conf = format!(
            r#"# TEST ONLY: private instance written by tests/support/servers.
instance_name = {instance}
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = imap pop3 lmtp
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = yes
auth_mechanisms = plain login {oauth_mechs}
auth_cache_size = 0
auth_failure_delay = 0
auth_verbose = yes
first_valid_uid = 1
mail_location = maildir:~/Maildir
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
passdb {{
  driver = oauth2
  mechanisms = {oauth_mechs}
  args = {dir}/oauth2.conf
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {dir}/passwd
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {pop3s}
    ssl = yes
  }}
}}
service lmtp {{
  unix_listener {lmtp} {{
    mode = 0666
  }}
}}
service auth {{
  unix_listener {auth} {{
    mode = 0666
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"#,
            instance = self.instance,
            cert = self.cert.display(),
            key = self.key.display(),
            imaps = self.imaps_port,
            pop3s = self.pop3s_port,
            lmtp = self.lmtp_socket().display(),
            auth = self.auth_socket().display(),
        );
        let conf = match access::policy_url(self.introspect_url) {
            Some(url) => conf + &access::policy_conf(&url),
            None => conf,
        };
        let conf = match self.max_sessions {
            Some(n) => conf + &Self::session_limits(n),
            None => conf,
        };
        conf + &self.scale_conf()
    }

    /// Limits for `n` simultaneous sessions of one user from one address:
    /// login and mail processes, anvil's tracking, and the per-user-and-IP cap.
    fn session_limits(n: u32) -> String {
        let processes = n + n / 2 + 16;
        format!(
            "default_process_limit = {processes}\n\
             default_client_limit = {clients}\n\
             mail_max_userip_connections = {n}\n",
            clients = processes * 4
        )
    }

    /// High-performance mode (Dovecot's "Login processes" documentation):
    /// a few login processes that each proxy many TLS clients, and imap
    /// processes serving many sessions each, instead of one process per
    /// connection.
    fn scale_conf(&self) -> String {
        let Some(sessions) = self.max_imap_sessions else {
            return String::new();
        };
        const LOGIN_PROCESSES: u32 = 8;
        const IMAP_PROCESSES: u32 = 16;
        let per_login = sessions.div_ceil(LOGIN_PROCESSES) + 100;
        let per_imap = sessions.div_ceil(IMAP_PROCESSES) + 100;
        format!(
            r#"default_vsz_limit = 2G
mail_max_userip_connections = {max}
service imap-login {{
  service_count = 0
  process_min_avail = {LOGIN_PROCESSES}
  process_limit = {LOGIN_PROCESSES}
  client_limit = {per_login}
}}
service imap {{
  service_count = 0
  process_limit = {IMAP_PROCESSES}
  client_limit = {per_imap}
}}
service anvil {{
  client_limit = {anvil}
}}
service auth {{
  client_limit = {anvil}
}}
"#,
            max = sessions + 100,
            anvil = 500,
        )
    }
}
