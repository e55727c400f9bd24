//! Scripted in-process upstream servers (IMAP, POP3, SMTP) that accept
//! XOAUTH2 the way Microsoft's do, for core tests that must not depend on
//! Dovecot/Postfix. Each records what it saw so tests can check the server
//! side, and has switches for the rejections mailgate must handle.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::lines::{Conn, Io};

mod imap;
mod pop3;
mod smtp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Imap,
    Pop3,
    Smtp,
}

impl Proto {
    /// The protocol's name in a listener table.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Imap => "imap",
            Proto::Pop3 => "pop3",
            Proto::Smtp => "smtp",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Implicit,
    StartTls,
}

/// What the fake does with a login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Refuse with an authentication failure (optionally with a `+ <json>` challenge first).
    Refuse {
        challenge: bool,
    },
    /// Throttle (IMAP NO ... Suggested Backoff Time, SMTP 4xx).
    Throttle,
    /// SMTP 535 5.7.139.
    SmtpAuthDisabled,
}

pub struct State {
    pub valid_tokens: Mutex<Vec<String>>,
    /// Verdicts to apply to the next logins before falling back to token checks.
    pub script: Mutex<Vec<Verdict>>,
    pub logins: AtomicUsize,
    pub users: Mutex<Vec<String>>,
    /// Bytes received after a successful login, per connection.
    pub after_login: Mutex<Vec<Vec<u8>>>,
    /// SMTP: messages received with DATA.
    pub messages: Mutex<Vec<Vec<u8>>>,
    /// IMAP FETCH / POP3 RETR body.
    pub message: Mutex<Vec<u8>>,
    pub ehlo_names: Mutex<Vec<String>>,
}

pub struct FakeUpstream {
    pub port: u16,
    pub state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeUpstream {
    pub async fn start(proto: Proto, mode: Mode, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake upstream");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(State {
            valid_tokens: Mutex::new(Vec::new()),
            script: Mutex::new(Vec::new()),
            logins: AtomicUsize::new(0),
            users: Mutex::new(Vec::new()),
            after_login: Mutex::new(Vec::new()),
            messages: Mutex::new(Vec::new()),
            message: Mutex::new(b"Subject: hi\r\n\r\nhello\r\n".to_vec()),
            ehlo_names: Mutex::new(Vec::new()),
        });
        let st = state.clone();
        let acceptor = tls.map(TlsAcceptor::from);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(120),
                        serve(proto, mode, tcp, acceptor, st),
                    )
                    .await;
                });
            }
        });
        Self { port, state, task }
    }

    pub fn accept_token(&self, token: &str) {
        self.state
            .valid_tokens
            .lock()
            .unwrap()
            .push(token.to_owned());
    }

    pub fn script(&self, verdicts: Vec<Verdict>) {
        *self.state.script.lock().unwrap() = verdicts;
    }

    pub fn logins(&self) -> usize {
        self.state.logins.load(Ordering::SeqCst)
    }
}

async fn serve(
    proto: Proto,
    mode: Mode,
    tcp: tokio::net::TcpStream,
    acceptor: Option<TlsAcceptor>,
    st: Arc<State>,
) -> std::io::Result<()> {
    let io: Box<dyn Io> = match (mode, &acceptor) {
        (Mode::Implicit, Some(a)) => Box::new(a.accept(tcp).await?),
        _ => Box::new(tcp),
    };
    let conn = BufReader::new(io);
    match proto {
        Proto::Imap => imap::serve(conn, mode, acceptor, st).await,
        Proto::Pop3 => pop3::serve(conn, mode, acceptor, st).await,
        Proto::Smtp => smtp::serve(conn, mode, acceptor, st).await,
    }
}

pub(super) async fn upgrade(conn: Conn, acceptor: &Option<TlsAcceptor>) -> std::io::Result<Conn> {
    let a = acceptor
        .as_ref()
        .ok_or_else(|| std::io::Error::other("no tls"))?;
    let inner = conn.into_inner();
    Ok(BufReader::new(
        Box::new(a.accept(inner).await?) as Box<dyn Io>
    ))
}

/// Decides a login from the XOAUTH2 initial response.
pub(super) fn judge(st: &State, b64: &str) -> Verdict {
    st.logins.fetch_add(1, Ordering::SeqCst);
    let scripted = {
        let mut s = st.script.lock().unwrap();
        if s.is_empty() {
            None
        } else {
            Some(s.remove(0))
        }
    };
    if let Some(v) = scripted {
        return v;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap_or_default();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let mut parts = raw.split('\x01');
    let user = parts
        .next()
        .and_then(|p| p.strip_prefix("user="))
        .unwrap_or("")
        .to_owned();
    let token = parts
        .next()
        .and_then(|p| p.strip_prefix("auth=Bearer "))
        .unwrap_or("")
        .to_owned();
    let ok = raw.ends_with("\x01\x01") && st.valid_tokens.lock().unwrap().contains(&token);
    st.users.lock().unwrap().push(user);
    if ok {
        Verdict::Accept
    } else {
        Verdict::Refuse { challenge: false }
    }
}

pub(super) async fn record_rest(conn: &mut Conn, st: &State) {
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_millis(300), conn.read_to_end(&mut rest)).await;
    st.after_login.lock().unwrap().push(rest);
}
