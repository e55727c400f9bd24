//! The plain-relay baseline: socat (OpenSSL, from Debian) with no logic,
//! between the bench client and the same Dovecot and Postfix. It shows what
//! the simplest TLS-terminating relay costs on this machine, so mailgate's
//! figures can be read against a relay's floor and not only against a
//! direct connection.
//!
//! socat forks one child per connection, and that child does the session's
//! work: its CPU is read from the child's own /proc entry while the session
//! is open (see [`Relay::session_pid`]), as mailgate's is from its process.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Upper bound for socat to listen, and for its children to be reaped.
const WAIT: Duration = Duration::from_secs(10);

/// One socat relay process (the listening parent).
pub struct Relay {
    pub addr: SocketAddr,
    child: Child,
}

/// The three relays: plaintext client → TLS to Dovecot, TLS client → TLS to
/// Dovecot, and a plain TCP relay to Postfix's submission port (SMTP
/// upgrades with STARTTLS, which socat cannot terminate: the client's TLS
/// passes through end to end).
pub struct Socat {
    pub imap_plain: Relay,
    pub imap_tls: Relay,
    pub smtp: Relay,
}

impl Socat {
    pub fn start(ports: &[u16], imaps: u16, submission: u16, cert: &str, key: &str) -> Socat {
        let upstream = format!("OPENSSL:127.0.0.1:{imaps},verify=0,nodelay");
        let imap_plain = Relay::start(
            ports[0],
            format!(
                "TCP-LISTEN:{},bind=127.0.0.1,fork,reuseaddr,nodelay",
                ports[0]
            ),
            &upstream,
        );
        let imap_tls = Relay::start(
            ports[1],
            format!(
                "OPENSSL-LISTEN:{},bind=127.0.0.1,cert={cert},key={key},verify=0,fork,reuseaddr,nodelay",
                ports[1]
            ),
            &upstream,
        );
        let smtp = Relay::start(
            ports[2],
            format!(
                "TCP-LISTEN:{},bind=127.0.0.1,fork,reuseaddr,nodelay",
                ports[2]
            ),
            &format!("TCP:127.0.0.1:{submission},nodelay"),
        );
        Socat {
            imap_plain,
            imap_tls,
            smtp,
        }
    }
}

impl Relay {
    fn start(port: u16, listen: String, connect: &str) -> Relay {
        let child = Command::new("socat")
            .args(["-b", "65536", &listen, connect])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn socat (see scripts/install-test-deps.sh)");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "socat is not listening on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The probe connection forked a child; let it go before measuring.
        let relay = Relay { addr, child };
        relay.wait_children();
        relay
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (bounded) until the parent has no live child, so every
    /// finished session's CPU is in its `cutime`/`cstime`.
    fn wait_children(&self) {
        let path = format!("/proc/{0}/task/{0}/children", self.pid());
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let live = std::fs::read_to_string(&path).unwrap_or_default();
            if live.trim().is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The child serving the one open session (the bench opens one at a
    /// time through a relay while it measures).
    pub fn session_pid(&self) -> Option<u32> {
        let path = format!("/proc/{0}/task/{0}/children", self.pid());
        let live = std::fs::read_to_string(path).unwrap_or_default();
        let mut pids = live.split_whitespace().filter_map(|p| p.parse().ok());
        match (pids.next(), pids.next()) {
            (Some(pid), None) => Some(pid),
            _ => None,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
