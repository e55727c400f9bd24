//! The one place integration tests write a mailgate config. Tests name what
//! they need (a provider, listeners, limits, account rules) and get TOML
//! back, so the config file format is spelled out once here and a renamed
//! key breaks one file, not every test. Tests whose subject is an exact or
//! malformed config text (`config_files.rs`) keep their literal text.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A whole config file: top-level keys, `[limits]`, providers, listeners and
/// account rules, rendered by [`ConfigBuilder::toml`].
#[derive(Clone, Debug, Default)]
pub struct ConfigBuilder {
    state_dir: Option<PathBuf>,
    top: Vec<String>,
    limits: Vec<String>,
    providers: Vec<String>,
    listeners: Vec<Listener>,
    accounts: Vec<String>,
    admin: Vec<String>,
    store: Vec<String>,
}

/// The endpoints of a `kind = "generic"` identity provider.
#[derive(Clone, Debug)]
pub struct IdpUrls {
    pub authorize: String,
    pub token: String,
    pub device: String,
}

impl IdpUrls {
    /// Endpoints on the discard port: for configs whose token source is
    /// replaced in-process, so the provider is never contacted.
    pub fn unused() -> Self {
        Self {
            authorize: "http://127.0.0.1:9/authorize".into(),
            token: "http://127.0.0.1:9/token".into(),
            device: "http://127.0.0.1:9/devicecode".into(),
        }
    }
}

impl ConfigBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn state_dir(mut self, dir: &Path) -> Self {
        self.state_dir = Some(dir.to_owned());
        self
    }

    pub fn hostname(self, name: &str) -> Self {
        self.top(&format!("hostname = \"{name}\""))
    }

    /// Raw top-level lines (keys before the first table).
    pub fn top(mut self, lines: &str) -> Self {
        if !lines.trim().is_empty() {
            self.top.push(lines.to_owned());
        }
        self
    }

    /// Raw lines inside `[limits]`.
    pub fn limits(mut self, lines: &str) -> Self {
        if !lines.trim().is_empty() {
            self.limits.push(lines.to_owned());
        }
        self
    }

    /// One `[limits]` key.
    pub fn limit(self, key: &str, value: impl std::fmt::Display) -> Self {
        self.limits(&format!("{key} = {value}"))
    }

    /// A `kind = "generic"` provider; `extra` holds further raw keys.
    pub fn provider_generic(
        mut self,
        name: &str,
        client_id: &str,
        urls: &IdpUrls,
        scopes: &[&str],
        extra: &str,
    ) -> Self {
        let scopes: Vec<String> = scopes.iter().map(|s| format!("\"{s}\"")).collect();
        self.providers.push(format!(
            "name = \"{name}\"\nkind = \"generic\"\nclient_id = \"{client_id}\"\n\
             authorize_url = \"{}\"\ntoken_url = \"{}\"\ndevice_code_url = \"{}\"\n\
             scopes = [{}]\n{extra}",
            urls.authorize,
            urls.token,
            urls.device,
            scopes.join(", "),
        ));
        self
    }

    /// The never-contacted generic provider of in-process tests.
    pub fn provider_unused(self) -> Self {
        self.provider_generic("test", "test-client", &IdpUrls::unused(), &["mail"], "")
    }

    /// A `kind = "microsoft"` provider; `extra` holds further raw keys.
    pub fn provider_microsoft(
        mut self,
        name: &str,
        authority: &str,
        tenant: &str,
        client_id: &str,
        extra: &str,
    ) -> Self {
        self.providers.push(format!(
            "name = \"{name}\"\nkind = \"microsoft\"\nauthority = \"{authority}\"\n\
             tenant = \"{tenant}\"\nclient_id = \"{client_id}\"\n{extra}"
        ));
        self
    }

    pub fn listener(mut self, listener: Listener) -> Self {
        self.listeners.push(listener);
        self
    }

    /// Raw lines inside `[admin]` (the table is written when any are given).
    pub fn admin(mut self, lines: &str) -> Self {
        if !lines.trim().is_empty() {
            self.admin.push(lines.to_owned());
        }
        self
    }

    /// Raw lines inside `[store]` (the table is written when any are given).
    pub fn store(mut self, lines: &str) -> Self {
        if !lines.trim().is_empty() {
            self.store.push(lines.to_owned());
        }
        self
    }

    /// An `[[accounts]]` rule from `(key, string value)` pairs.
    pub fn account(mut self, keys: &[(&str, &str)]) -> Self {
        let mut table = String::new();
        for (key, value) in keys {
            let _ = writeln!(table, "{key} = \"{value}\"");
        }
        self.accounts.push(table);
        self
    }

    pub fn toml(&self) -> String {
        let mut text = String::new();
        if let Some(dir) = &self.state_dir {
            let _ = writeln!(text, "state_dir = \"{}\"", dir.display());
        }
        for lines in &self.top {
            let _ = writeln!(text, "{lines}");
        }
        if !self.limits.is_empty() {
            let _ = writeln!(text, "\n[limits]\n{}", self.limits.join("\n"));
        }
        for provider in &self.providers {
            let _ = writeln!(text, "\n[[providers]]\n{provider}");
        }
        for listener in &self.listeners {
            let _ = writeln!(text, "\n[[listeners]]\n{}", listener.keys());
        }
        for account in &self.accounts {
            let _ = writeln!(text, "\n[[accounts]]\n{account}");
        }
        if !self.admin.is_empty() {
            let _ = writeln!(text, "\n[admin]\n{}", self.admin.join("\n"));
        }
        if !self.store.is_empty() {
            let _ = writeln!(text, "\n[store]\n{}", self.store.join("\n"));
        }
        text
    }
}

/// One `[[listeners]]` table.
#[derive(Clone, Debug)]
pub struct Listener {
    name: Option<String>,
    protocol: String,
    bind: String,
    tls: Option<String>,
    cert_key: Option<(PathBuf, PathBuf)>,
    extra: Vec<String>,
    upstream: Upstream,
}

impl Listener {
    /// A listener for `protocol` ("imap", "pop3", "smtp") on `bind`, with the
    /// default local TLS mode unless [`Listener::tls`] is called.
    pub fn new(protocol: &str, bind: &str, upstream: Upstream) -> Self {
        Self {
            name: None,
            protocol: protocol.to_owned(),
            bind: bind.to_owned(),
            tls: None,
            cert_key: None,
            extra: Vec::new(),
            upstream,
        }
    }

    /// On `127.0.0.1:port` (0: the OS picks).
    pub fn local(protocol: &str, port: u16, upstream: Upstream) -> Self {
        Self::new(protocol, &format!("127.0.0.1:{port}"), upstream)
    }

    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// The local TLS mode, written even when it is "none".
    pub fn tls(mut self, mode: &str) -> Self {
        self.tls = Some(mode.to_owned());
        self
    }

    pub fn cert(mut self, cert: &Path, key: &Path) -> Self {
        self.cert_key = Some((cert.to_owned(), key.to_owned()));
        self
    }

    /// Raw extra keys of the listener table.
    pub fn keys_raw(mut self, lines: &str) -> Self {
        if !lines.trim().is_empty() {
            self.extra.push(lines.to_owned());
        }
        self
    }

    fn keys(&self) -> String {
        let mut text = String::new();
        if let Some(name) = &self.name {
            let _ = writeln!(text, "name = \"{name}\"");
        }
        let _ = writeln!(text, "protocol = \"{}\"", self.protocol);
        let _ = writeln!(text, "bind = \"{}\"", self.bind);
        if let Some(tls) = &self.tls {
            let _ = writeln!(text, "tls = \"{tls}\"");
        }
        if let Some((cert, key)) = &self.cert_key {
            let _ = writeln!(text, "cert = \"{}\"", cert.display());
            let _ = writeln!(text, "key = \"{}\"", key.display());
        }
        for lines in &self.extra {
            let _ = writeln!(text, "{lines}");
        }
        let _ = write!(text, "upstream = {}", self.upstream.inline());
        text
    }
}

/// A listener's `upstream = { ... }`, always on 127.0.0.1.
#[derive(Clone, Debug)]
pub struct Upstream {
    port: u16,
    tls: String,
    server_name: Option<String>,
    ca_file: Option<PathBuf>,
}

impl Upstream {
    /// `tls` is "none", "implicit" or "starttls".
    pub fn new(port: u16, tls: &str) -> Self {
        Self {
            port,
            tls: tls.to_owned(),
            server_name: None,
            ca_file: None,
        }
    }

    pub fn server_name(mut self, name: &str) -> Self {
        self.server_name = Some(name.to_owned());
        self
    }

    pub fn ca_file(mut self, path: &Path) -> Self {
        self.ca_file = Some(path.to_owned());
        self
    }

    fn inline(&self) -> String {
        let mut text = format!(
            "{{ host = \"127.0.0.1\", port = {}, tls = \"{}\"",
            self.port, self.tls
        );
        if let Some(name) = &self.server_name {
            let _ = write!(text, ", server_name = \"{name}\"");
        }
        if let Some(ca) = &self.ca_file {
            let _ = write!(text, ", ca_file = \"{}\"", ca.display());
        }
        text.push_str(" }");
        text
    }
}

/// A free loopback port (bound, then released) for a listener of the real
/// binary, which must be told its port in advance.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `count` distinct free ports on 127.0.0.1 (see `servers::free_ports`).
pub fn free_ports(count: usize) -> Vec<u16> {
    super::servers::free_ports(count).expect("free loopback ports")
}
