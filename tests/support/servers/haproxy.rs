//! A private HAProxy (the Debian `haproxy` package) in TCP mode in front of
//! mailgate, sending the PROXY protocol header, as a load balancer in front
//! of several mailgate instances would. Its configuration lives in its own
//! temporary directory; it runs in the foreground (`-db`) as the leader of
//! its own process group and is stopped on drop.

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::process::{GroupChild, find_binary, free_ports, wait_until};

/// Connections HAProxy holds at once (the cluster burst needs 500).
const MAX_CONNECTIONS: usize = 2000;
/// How long HAProxy gets to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Which PROXY protocol version HAProxy sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendProxy {
    V1,
    V2,
}

impl SendProxy {
    fn keyword(self) -> &'static str {
        match self {
            Self::V1 => "send-proxy",
            Self::V2 => "send-proxy-v2",
        }
    }
}

pub struct Haproxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    dir: PathBuf,
    child: Option<GroupChild>,
}

impl Haproxy {
    /// HAProxy on 127.0.0.1 forwarding every connection to `backend` with
    /// a PROXY header of `version`.
    pub fn start(backend: SocketAddr, version: SendProxy) -> Result<Self, String> {
        Self::start_many(&[backend], version)
    }

    /// HAProxy on 127.0.0.1 balancing connections round-robin over
    /// `backends` (as many mailgate instances), each with a PROXY header of
    /// `version`. No health checks: a test that stops a backend sees the
    /// connections HAProxy still sends it fail, as a client would until a
    /// real balancer's checks notice.
    pub fn start_many(backends: &[SocketAddr], version: SendProxy) -> Result<Self, String> {
        let binary = find_binary("haproxy")?;
        let port = free_ports(1)?[0];
        let dir = super::instance_dir("mgtest-haproxy")?;
        let config = dir.join("haproxy.cfg");
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, b)| format!("    server m{} {b} {}\n", i + 1, version.keyword()))
            .collect();
        let text = format!(
            "global\n    maxconn {MAX_CONNECTIONS}\n\
             defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\
             frontend mail\n    bind 127.0.0.1:{port}\n    default_backend mailgate\n\
             backend mailgate\n    balance roundrobin\n{servers}",
        );
        fs::write(&config, text).map_err(|e| format!("write {}: {e}", config.display()))?;
        let mut command = Command::new(binary);
        command.arg("-db").arg("-f").arg(&config);
        let mut child = GroupChild::spawn("haproxy", command, &dir.join("haproxy.log"))?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let started = wait_until(&mut child, START_TIMEOUT, || {
            // A bind that fails means HAProxy holds the port.
            std::net::TcpListener::bind(addr).is_err()
        });
        let haproxy = Self {
            addr,
            dir,
            child: Some(child),
        };
        started.map_err(|e| format!("{e}\n{}", haproxy.log()))?;
        Ok(haproxy)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.stop();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}
