//! A provider that is down or will not speak TLS is a temporary fault: the
//! client must hear "try later", never "wrong password", and the account
//! must not be marked as needing a new sign-in.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::attempt::{attempt, succeeded};
use super::harness::{ALICE, Env, Extra, Options, PASSWORD, free_ports};

/// Read timeout of the fake server, so its threads always end.
const FAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Lines the fake server answers per connection.
const FAKE_MAX_LINES: usize = 20;

/// A plaintext SMTP server that offers no STARTTLS and refuses it when
/// asked (a misconfigured relay, or a TLS-stripping middlebox).
struct NoTls {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl NoTls {
    fn start() -> NoTls {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        std::thread::spawn(move || answer(stream));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        NoTls { port, stop }
    }
}

impl Drop for NoTls {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn answer(stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(FAKE_TIMEOUT));
    let mut out = &stream;
    let _ = out.write_all(b"220 notls.example.test ESMTP\r\n");
    let mut reader = BufReader::new(&stream);
    for _ in 0..FAKE_MAX_LINES {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
            return;
        }
        let verb = String::from_utf8_lossy(&line).to_ascii_uppercase();
        let reply: &[u8] = if verb.starts_with("EHLO") {
            b"250-notls.example.test\r\n250 8BITMIME\r\n"
        } else if verb.starts_with("STARTTLS") {
            b"454 4.7.0 TLS not available due to local problem\r\n"
        } else if verb.starts_with("QUIT") {
            let _ = out.write_all(b"221 2.0.0 Bye\r\n");
            return;
        } else {
            b"502 5.5.1 Command not implemented\r\n"
        };
        if out.write_all(reply).is_err() {
            return;
        }
    }
}

#[test]
fn upstream_down_or_refusing_tls_is_a_temporary_failure() {
    let notls = NoTls::start();
    let closed = free_ports(1)[0];
    let extra = vec![
        Extra {
            name: "imap-down",
            protocol: "imap",
            upstream_port: closed,
            upstream_tls: "implicit",
        },
        Extra {
            name: "pop3-plaintext",
            protocol: "pop3",
            upstream_port: notls.port,
            upstream_tls: "implicit",
        },
        Extra {
            name: "smtp-notls",
            protocol: "smtp",
            upstream_port: notls.port,
            upstream_tls: "starttls",
        },
    ];
    let env = Env::start_with(Options {
        extra,
        ..Options::default()
    });
    let cases = [
        ("imap", "imap-down", "[UNAVAILABLE]"),
        ("pop3", "pop3-plaintext", "-ERR [SYS/TEMP]"),
        ("smtp", "smtp-notls", "ERR 454"),
    ];
    for (protocol, listener, temporary) in cases {
        let answer = attempt_on(&env, protocol, listener);
        assert!(
            answer.contains(temporary),
            "{listener}: {answer}\n{}",
            env.logs()
        );
        assert!(
            !answer.contains("AUTHENTICATIONFAILED")
                && !answer.contains("[AUTH]")
                && !answer.contains("535"),
            "{listener}: an unreachable provider looked like a bad password: {answer}"
        );
    }
    let healthy = attempt(&env, "imap", ALICE, PASSWORD);
    assert!(succeeded(&healthy), "{healthy}\n{}", env.logs());
    assert!(env.accounts().contains("active"), "{}", env.accounts());
}

/// [`attempt`] against a named (extra) listener.
fn attempt_on(env: &Env, protocol: &str, listener: &str) -> String {
    super::attempt::attempt_port(env, protocol, env.port(listener), ALICE, PASSWORD)
}
