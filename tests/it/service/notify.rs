//! The sd_notify protocol, against a datagram socket the test binds as
//! systemd would: READY=1 only once the listeners accept, WATCHDOG=1 again
//! and again, RELOADING=1 (with MONOTONIC_USEC=) then READY=1 around a
//! SIGHUP reload, STOPPING=1 on SIGTERM.

use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use super::imap_config;
use crate::support::mailgate::{START_TIMEOUT, Serve};
use crate::support::scratch::Scratch;

/// The watchdog interval the test asks for: pings every half second.
const WATCHDOG_USEC: &str = "1000000";
/// Upper bound on the wait for any one expected message.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on the datagrams read while waiting for one message.
const MAX_MESSAGES: usize = 200;

/// The service manager's side of the socket.
struct Manager {
    socket: UnixDatagram,
    /// Every message received so far, for failure output.
    seen: Vec<String>,
}

impl Manager {
    fn bind(path: &std::path::Path) -> Manager {
        let socket = UnixDatagram::bind(path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Manager {
            socket,
            seen: Vec::new(),
        }
    }

    /// Reads messages until one contains `line` as a whole line; returns it.
    fn expect(&mut self, line: &str, serve: &Serve) -> String {
        let deadline = Instant::now() + MESSAGE_TIMEOUT;
        let mut buf = [0u8; 4096];
        for _ in 0..MAX_MESSAGES {
            if Instant::now() >= deadline {
                break;
            }
            let Ok(n) = self.socket.recv(&mut buf) else {
                continue;
            };
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.seen.push(message.clone());
            if message.lines().any(|l| l == line) {
                return message;
            }
        }
        panic!(
            "no {line} within {MESSAGE_TIMEOUT:?}; received {:?}\n{}",
            self.seen,
            serve.log()
        );
    }
}

#[test]
fn serve_speaks_the_notify_protocol() {
    let scratch = Scratch::new("notify");
    let (config, port) = imap_config(&scratch);
    let socket_path = scratch.dir.join("notify.sock");
    let mut manager = Manager::bind(&socket_path);
    let mut serve = Serve::spawn(&config, |mut cmd| {
        cmd.env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", WATCHDOG_USEC);
        cmd
    })
    .unwrap();

    manager.expect("READY=1", &serve);
    assert!(
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok(),
        "READY=1 came before the listener accepted\n{}",
        serve.log()
    );

    let started = Instant::now();
    manager.expect("WATCHDOG=1", &serve);
    manager.expect("WATCHDOG=1", &serve);
    manager.expect("WATCHDOG=1", &serve);
    assert!(
        started.elapsed() < START_TIMEOUT,
        "watchdog pings too slow for WATCHDOG_USEC={WATCHDOG_USEC}"
    );

    serve.signal("HUP");
    let reloading = manager.expect("RELOADING=1", &serve);
    assert!(
        reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "RELOADING=1 without MONOTONIC_USEC: {reloading:?}"
    );
    manager.expect("READY=1", &serve);
    let log = serve.log_until("configuration reloaded", MESSAGE_TIMEOUT);
    assert!(log.contains("configuration reloaded"), "{log}");

    serve.stop();
    manager.expect("STOPPING=1", &serve);
}

#[test]
fn without_a_notify_socket_serve_runs_as_before() {
    let scratch = Scratch::new("no-notify");
    let (config, port) = imap_config(&scratch);
    let serve = Serve::spawn(&config, |mut cmd| {
        cmd.env_remove("NOTIFY_SOCKET").env_remove("WATCHDOG_USEC");
        cmd
    })
    .unwrap()
    .listening(&[port])
    .unwrap();
    let log = serve.log();
    assert!(!log.contains("watchdog"), "{log}");
}
