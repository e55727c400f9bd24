//! One interop environment: the test IdP, private Dovecot + Postfix that
//! validate tokens against it, an account enrolled through `mailgate login`,
//! and `mailgate serve` with an IMAP, POP3 and SMTP listener for each local
//! TLS mode, all on 127.0.0.1 with free ports and state under a temp dir.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

pub use crate::support::config::free_ports;
use crate::support::config::{ConfigBuilder, Listener, Upstream};
use crate::support::idp::{BlockingIdp, TestIdp};
use crate::support::mailgate::{self, Serve};
use crate::support::servers::{LOCAL_NAMES, LeafPaths, MailServers, StartOptions, find_binary};

pub const ALICE: &str = "alice@example.test";
pub const BOB: &str = "bob@example.test";
/// Alice's local password, set at enrolment.
pub const PASSWORD: &str = "alice-local-pw";
/// A message seeded into Alice's INBOX and fetched back byte for byte: a
/// leading dot (POP3 byte-stuffing) and trailing spaces must survive.
pub const SEEDED: &[u8] = b"From: carol@example.test\r\nTo: alice@example.test\r\n\
Subject: seeded for the interop suite\r\nMessage-ID: <seed-curl@example.test>\r\n\r\n\
line one\r\n.line starting with a dot\r\ntrailing spaces   \r\n\r\nlast line\r\n";
/// Local TLS modes of mailgate's listeners.
pub const MODES: [&str; 3] = ["none", "starttls", "implicit"];
/// Upper bound for one client program run.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound for a message to reach the recipient's maildir.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);
/// Access token lifetime the IdP issues unless a test changes it.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// A listener besides the nine standard ones, e.g. with a broken upstream.
#[derive(Clone, Debug)]
pub struct Extra {
    pub name: &'static str,
    pub protocol: &'static str,
    pub upstream_port: u16,
    pub upstream_tls: &'static str,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub refresh_margin_secs: u64,
    /// Lifetime of the access token issued at enrolment.
    pub enrol_lifetime: Option<Duration>,
    pub mailbox_cap: Option<usize>,
    pub max_connections_per_ip: usize,
    pub max_sessions: Option<u32>,
    pub extra: Vec<Extra>,
    /// TLS listeners use the certificate mailgate generates in its state
    /// directory instead of a leaf from the test CA.
    pub generated_cert: bool,
    /// Extra TOML lines for a listener, by name (e.g. `tls_min_version`).
    pub listener_settings: Vec<(&'static str, &'static str)>,
    /// Mailboxes on the mail servers besides Alice's and Bob's.
    pub mailboxes: Vec<String>,
    /// `[[accounts]]` rules, each as `(key, value)` pairs.
    pub accounts: Vec<Vec<(&'static str, String)>>,
    /// Extra TOML lines for the provider (e.g. `client_secret`).
    pub provider_settings: Vec<String>,
    /// Grants made on the IdP before the servers start: send-as grants are
    /// read then, into the SMTP server's configuration.
    pub grants: Option<fn(&TestIdp)>,
    /// The provider's `graph_endpoint` is the test IdP's Graph (with
    /// Microsoft's Graph scope, which the test IdP mints Graph tokens for).
    pub graph: bool,
    /// Mailboxes the test Postfix answers `535 5.7.139` at AUTH.
    pub smtp_auth_disabled: Vec<String>,
    /// The admin listener's port on 127.0.0.1 (`/metrics`); none by default.
    pub admin_port: Option<u16>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            refresh_margin_secs: 60,
            enrol_lifetime: None,
            mailbox_cap: None,
            max_connections_per_ip: 256,
            max_sessions: None,
            extra: Vec::new(),
            generated_cert: false,
            listener_settings: Vec::new(),
            mailboxes: Vec::new(),
            accounts: Vec::new(),
            provider_settings: Vec::new(),
            grants: None,
            graph: false,
            smtp_auth_disabled: Vec::new(),
            admin_port: None,
        }
    }
}

pub struct Env {
    pub serve: Option<Serve>,
    pub servers: Arc<MailServers>,
    pub idp: BlockingIdp,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub leaf: LeafPaths,
    ports: HashMap<String, u16>,
}

impl Env {
    pub fn start() -> Env {
        Env::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> Env {
        require(&["dovecot", "postconf", "timeout"]);
        let idp = BlockingIdp::start();
        idp.add_user(ALICE);
        idp.add_user(BOB);
        idp.set_device_polls(0, 0);
        if let Some(grants) = options.grants {
            grants(&idp);
        }
        let start = StartOptions {
            no_oauthbearer: true,
            max_sessions: options.max_sessions,
            send_as: idp.send_as_grants(),
            smtp_auth_disabled: options.smtp_auth_disabled.clone(),
            ..StartOptions::default()
        };
        let mut users = vec![ALICE, BOB];
        users.extend(options.mailboxes.iter().map(String::as_str));
        let servers = Arc::new(
            MailServers::start_with(&idp.introspect_url(), &users, &start)
                .unwrap_or_else(|e| panic!("mail servers did not start:\n{e}")),
        );
        if options.graph {
            crate::graph::deliver_into(&idp, servers.clone());
        }
        let dir = servers.dir().join("mailgate");
        std::fs::create_dir_all(&dir).expect("mailgate dir");
        let leaf = servers
            .ca()
            .write_leaf(&dir, "mailgate", LOCAL_NAMES)
            .expect("mailgate leaf certificate");
        let mut names: Vec<String> = ["imap", "pop3", "smtp"]
            .iter()
            .flat_map(|p| MODES.iter().map(move |m| format!("{p}-{m}")))
            .collect();
        names.extend(options.extra.iter().map(|e| e.name.to_owned()));
        let ports = names
            .into_iter()
            .zip(free_ports(9 + options.extra.len()))
            .collect();
        let mut env = Env {
            serve: None,
            servers,
            idp,
            config: dir.join("mailgate.toml"),
            dir,
            leaf,
            ports,
        };
        std::fs::write(&env.config, env.config_text(&options)).expect("config");
        if let Some(lifetime) = options.enrol_lifetime {
            env.idp.set_access_lifetime(lifetime);
        }
        mailgate::login(&env.config, ALICE, PASSWORD)
            .unwrap_or_else(|e| panic!("enrolment failed:\n{e}\n{}", env.servers.logs()));
        env.idp.set_access_lifetime(DEFAULT_LIFETIME);
        let ports: Vec<u16> = env.ports.values().copied().collect();
        env.serve = Some(
            Serve::start(&env.config, &ports)
                .unwrap_or_else(|e| panic!("{e}\n{}", env.servers.logs())),
        );
        env
    }

    /// The port of listener `<protocol>-<mode>` (or an extra listener's name).
    pub fn port(&self, name: &str) -> u16 {
        *self
            .ports
            .get(name)
            .unwrap_or_else(|| panic!("no listener {name}"))
    }

    pub fn ca(&self) -> String {
        self.servers.ca_pem_path().display().to_string()
    }

    /// A certificate mailgate generated in its state directory (`cert.pem`,
    /// or `legacy-cert.pem` for legacy-TLS listeners), as a trust anchor.
    #[cfg(feature = "legacy-tls")]
    pub fn generated_cert(&self, file: &str) -> String {
        self.dir.join("state/tls").join(file).display().to_string()
    }

    /// mailgate's log and the mail servers' logs, for failure messages.
    pub fn logs(&self) -> String {
        let serve = self.serve.as_ref().map(Serve::log).unwrap_or_default();
        format!("{serve}{}", self.servers.logs())
    }

    pub fn refreshes(&self) -> u64 {
        self.idp.token_requests("refresh_token")
    }

    pub fn accounts(&self) -> String {
        mailgate::accounts(&self.config)
    }

    /// Runs a client program under `timeout`, stdin from `input`.
    pub fn run(&self, program: &str, args: &[&str], input: Option<&[u8]>) -> Output {
        run(program, args, input)
    }

    /// Runs `script` with python3 (arguments after it); panics with the
    /// logs unless it exits 0.
    pub fn python(&self, script: &str, args: &[&str]) -> String {
        let mut all = vec!["-c", script];
        all.extend_from_slice(args);
        let out = run("python3", &all, None);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "python failed: {}\nstdout:\n{stdout}\nstderr:\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        stdout
    }

    /// The next message delivered to `user`, or a panic with the logs.
    pub fn delivered(&self, user: &str, timeout: Duration) -> Vec<u8> {
        self.servers
            .wait_for_delivery(user, timeout)
            .unwrap_or_else(|| panic!("nothing delivered to {user}\n{}", self.logs()))
    }

    fn config_text(&self, o: &Options) -> String {
        let mut provider = o.provider_settings.clone();
        if o.graph {
            provider.push(format!("graph_endpoint = \"{}\"", self.idp.graph_url()));
            // The test Graph takes tokens for Microsoft's Graph resource.
            provider.push("graph_scopes = [\"https://graph.microsoft.com/Mail.Send\"]".into());
        }
        let mut config = ConfigBuilder::new()
            .state_dir(&self.dir.join("state"))
            .limit("max_connections_per_ip", o.max_connections_per_ip)
            .limit("upstream_login_timeout_secs", 20)
            .provider_microsoft(
                "test",
                &self.idp.authority(),
                self.idp.tenant(),
                "client-1",
                &format!(
                    "refresh_margin_secs = {}\n{}",
                    o.refresh_margin_secs,
                    provider.join("\n")
                ),
            );
        if let Some(port) = o.admin_port {
            config = config.admin(&format!("bind = \"127.0.0.1:{port}\""));
        }
        for rule in &o.accounts {
            let keys: Vec<(&str, &str)> = rule.iter().map(|(k, v)| (*k, v.as_str())).collect();
            config = config.account(&keys);
        }
        let upstream = |protocol: &str| match protocol {
            "imap" => (self.servers.imaps_port(), "implicit"),
            "pop3" => (self.servers.pop3s_port(), "implicit"),
            _ => (self.servers.submission_port(), "starttls"),
        };
        for protocol in ["imap", "pop3", "smtp"] {
            for mode in MODES {
                let (port, tls) = upstream(protocol);
                let name = format!("{protocol}-{mode}");
                config = config.listener(self.listener(o, &name, protocol, mode, port, tls));
            }
        }
        for e in &o.extra {
            let listener = self.listener(
                o,
                e.name,
                e.protocol,
                "none",
                e.upstream_port,
                e.upstream_tls,
            );
            config = config.listener(listener);
        }
        config.toml()
    }

    fn listener(
        &self,
        o: &Options,
        name: &str,
        protocol: &str,
        mode: &str,
        upstream_port: u16,
        upstream_tls: &str,
    ) -> Listener {
        let upstream =
            Upstream::new(upstream_port, upstream_tls).ca_file(self.servers.ca_pem_path());
        let mut listener = Listener::local(protocol, self.port(name), upstream)
            .name(name)
            .tls(mode);
        if mode != "none" && !o.generated_cert {
            listener = listener.cert(&self.leaf.cert, &self.leaf.key);
        }
        for (_, settings) in o.listener_settings.iter().filter(|(n, _)| *n == name) {
            listener = listener.keys_raw(settings);
        }
        if let Some(cap) = o.mailbox_cap {
            listener = listener.keys_raw(&format!("max_upstream_per_mailbox = {cap}"));
        }
        listener
    }
}

impl Drop for Env {
    /// A failing test shows the mail servers' logs; [`Serve`] adds its own.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.servers.logs());
        }
    }
}

pub fn require(binaries: &[&str]) {
    for binary in binaries {
        if let Err(missing) = find_binary(binary) {
            panic!("{missing}");
        }
    }
}

/// Runs `program` under `timeout` with `input` on stdin.
pub fn run(program: &str, args: &[&str], input: Option<&[u8]>) -> Output {
    require(&[program]);
    let mut child = Command::new("timeout")
        .arg(CLIENT_TIMEOUT.as_secs().to_string())
        .arg(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        use std::io::Write;
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
    child.wait_with_output().expect("wait for client")
}

/// Writes `bytes` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write file");
    path.display().to_string()
}

/// Each of the IMAP and POP3 lines of a client script's `out` says the login
/// was refused, carries the provider's `reason`, and does not read as a
/// wrong password (archivers give up on accounts after those).
pub fn assert_refused_with_reason(out: &str, reason: &str, context: &str) {
    for protocol in ["imap", "pop3"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(protocol))
            .unwrap_or_default();
        assert!(line.contains("refused"), "{protocol}: {context}");
        assert!(
            line.contains(reason),
            "{protocol}: the provider's reason is passed on\n{context}"
        );
        assert!(
            !line.contains("wrong") && !line.contains("unknown account"),
            "{protocol}: not a wrong password\n{context}"
        );
    }
}
