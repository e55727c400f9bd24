//! The real `mailgate` binary as a child process: `login` (device flow,
//! password on stdin), `accounts`, and `serve` behind a guard that stops it
//! on drop and prints its log when the test is failing.

use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Upper bound for `mailgate login` (the device flow polls once a second).
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Upper bound for `serve` to bind its listeners.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `serve` gets after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(20);
/// Log filter for `serve`: login decisions, refreshes and upstream errors.
const LOG_FILTER: &str = "info";

/// `mailgate ARGS --config CONFIG` with an environment that cannot steer it:
/// no state dir or log filter override, no proxies, no colours.
pub fn command(args: &[&str], config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailgate"));
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .env_remove("MAILGATE_STATE_DIR")
        .env_remove("MAILGATE_LOG")
        .env("NO_COLOR", "1")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy");
    cmd
}

/// `cmd` run by `sh -c` after `prefix` (e.g. "ulimit -S -n 256"), with the
/// same program, arguments and environment.
pub fn in_shell(prefix: &str, cmd: Command) -> Command {
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg(format!("{prefix} && exec \"$0\" \"$@\""))
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => shell.env(key, value),
            None => shell.env_remove(key),
        };
    }
    shell
}

/// Waits for `child` at most `timeout`, killing it then; returns its status.
fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(POLL);
    }
}

/// `mailgate login ACCOUNT --device --password-stdin`; `Err` carries its output.
pub fn login(config: &Path, account: &str, password: &str) -> Result<(), String> {
    let dir = config.parent().unwrap_or(Path::new("."));
    let out_path = dir.join(format!("login-{account}.out"));
    let out = std::fs::File::create(&out_path).map_err(|e| format!("create output: {e}"))?;
    let err = out.try_clone().map_err(|e| format!("dup output: {e}"))?;
    let mut child = command(&["login", account, "--device", "--password-stdin"], config)
        .stdin(Stdio::piped())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("spawn mailgate login: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{password}").map_err(|e| format!("password: {e}"))?;
    }
    let status = wait_bounded(&mut child, LOGIN_TIMEOUT);
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    match status {
        Some(s) if s.success() => Ok(()),
        Some(s) => Err(format!("mailgate login {account}: {s}\n{output}")),
        None => Err(format!(
            "mailgate login {account}: no exit within {LOGIN_TIMEOUT:?}\n{output}"
        )),
    }
}

/// The `mailgate accounts` table.
pub fn accounts(config: &Path) -> String {
    let out = command(&["accounts"], config)
        .stdin(Stdio::null())
        .output()
        .expect("run mailgate accounts");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A running `mailgate serve`. TEST ONLY.
pub struct Serve {
    child: Option<Child>,
    log: PathBuf,
}

impl Serve {
    /// Starts `serve --config config` and waits until every port in `ports`
    /// accepts connections on 127.0.0.1.
    pub fn start(config: &Path, ports: &[u16]) -> Result<Serve, String> {
        Serve::spawn(config, |cmd| cmd)?.listening(ports)
    }

    /// Starts `serve --config config` with `adjust` applied to the command
    /// (more arguments, environment, a wrapper such as [`in_shell`]), without
    /// waiting for anything.
    pub fn spawn(config: &Path, adjust: impl FnOnce(Command) -> Command) -> Result<Serve, String> {
        let dir = config.parent().unwrap_or(Path::new("."));
        let log = dir.join("mailgate-serve.log");
        let out = std::fs::File::create(&log).map_err(|e| format!("create log: {e}"))?;
        let err = out.try_clone().map_err(|e| format!("dup log: {e}"))?;
        let child = adjust(command(&["--log", LOG_FILTER, "serve"], config))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("spawn mailgate serve: {e}"))?;
        Ok(Serve {
            child: Some(child),
            log,
        })
    }

    /// Waits until every port in `ports` accepts connections on 127.0.0.1.
    pub fn listening(mut self, ports: &[u16]) -> Result<Serve, String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(format!("mailgate serve exited: {status}\n{}", self.log()));
            }
            let ready = ports
                .iter()
                .all(|p| TcpStream::connect((Ipv4Addr::LOCALHOST, *p)).is_ok());
            if ready {
                return Ok(self);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "mailgate serve not listening after {START_TIMEOUT:?}\n{}",
                    self.log()
                ));
            }
            thread::sleep(POLL);
        }
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` (a kill(1) name such as "HUP") to the process.
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([format!("-{signal}"), child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Waits at most `timeout` for the log to contain `needle`; returns the
    /// log either way.
    pub fn log_until(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log.contains(needle) || Instant::now() >= deadline {
                return log;
            }
            thread::sleep(POLL);
        }
    }

    /// Everything `serve` wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("({e})"));
        format!("--- mailgate serve ---\n{text}\n")
    }

    /// SIGKILL at once: no shutdown code runs (crash tests).
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, a bounded wait, then SIGKILL.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if wait_bounded(&mut child, STOP_GRACE).is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.stop();
        if thread::panicking() {
            eprintln!("{}", self.log());
        }
    }
}
