//! The command-line mail clients the Graph tests send with, each run once
//! against a plaintext SMTP listener with `AUTH PLAIN` and bounded by
//! `timeout`: one place for their flags, so every listener kind is driven
//! the same way.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Seconds any one client may take.
const CLIENT_SECS: &str = "60";

/// One login and one message on a listener.
pub struct Send<'a> {
    pub port: u16,
    pub user: &'a str,
    pub password: &'a str,
    pub from: &'a str,
    pub to: &'a str,
}

impl Send<'_> {
    /// swaks with `Subject: subject` and `body`.
    pub fn swaks(&self, subject: &str, body: &str) -> Output {
        Command::new("timeout")
            .args([CLIENT_SECS, "swaks", "--server"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["--auth", "PLAIN", "--auth-user", self.user])
            .args(["--auth-password", self.password])
            .args(["--from", self.from, "--to", self.to])
            .args(["--header", &format!("Subject: {subject}")])
            .args(["--body", body])
            .output()
            .unwrap()
    }

    /// msmtp, reading the whole `message` from stdin.
    pub fn msmtp(&self, message: &[u8]) -> Output {
        let mut command = Command::new("timeout");
        command
            .args([CLIENT_SECS, "msmtp", "--host=127.0.0.1"])
            .arg(format!("--port={}", self.port))
            .args(["--auth=plain", "--tls=off"])
            .arg(format!("--user={}", self.user))
            .arg(format!("--passwordeval=echo '{}'", self.password))
            .args([&format!("--from={}", self.from), self.to]);
        feed(&mut command, message)
    }

    /// mutt in batch mode (`-s subject`, body on stdin), with its own
    /// `home` holding a muttrc and nothing else.
    pub fn mutt(&self, home: &Path, subject: &str, body: &[u8]) -> Output {
        let _ = std::fs::remove_dir_all(home);
        std::fs::create_dir_all(home).unwrap();
        let rc = home.join("muttrc");
        std::fs::write(
            &rc,
            format!(
                "set from=\"{from}\"\nset realname=\"Sender\"\n\
                 set smtp_url=\"smtp://{user}@127.0.0.1:{port}/\"\nset smtp_pass=\"{password}\"\n\
                 set smtp_authenticators=\"plain\"\nset ssl_starttls=no\nset ssl_force_tls=no\n\
                 set record=\"\"\nset copy=no\nset folder=\"{home}\"\nset spoolfile=\"{home}/inbox\"\n",
                from = self.from,
                user = self.user.replace('@', "%40"),
                port = self.port,
                password = self.password,
                home = home.display(),
            ),
        )
        .unwrap();
        let mut command = Command::new("timeout");
        command
            .args([CLIENT_SECS, "env"])
            .arg(format!("HOME={}", home.display()))
            .args(["mutt", "-n", "-F"])
            .arg(&rc)
            .args(["-s", subject, self.to]);
        let out = feed(&mut command, body);
        let _ = std::fs::remove_dir_all(home);
        out
    }
}

fn feed(command: &mut Command, input: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Panics with the client's output unless it exited with success.
pub fn assert_sent(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
