//! Scripted in-process upstream servers (IMAP, POP3, SMTP) that accept
//! XOAUTH2 the way Microsoft's do, for core tests that must not depend on
//! Dovecot/Postfix. Each records what it saw so tests can check the server
//! side, and has switches for the rejections mailgate must handle.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Imap,
    Pop3,
    Smtp,
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

type Conn = BufReader<Box<dyn Io>>;

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
        Proto::Imap => imap(conn, mode, acceptor, st).await,
        Proto::Pop3 => pop3(conn, mode, acceptor, st).await,
        Proto::Smtp => smtp(conn, mode, acceptor, st).await,
    }
}

async fn line(conn: &mut Conn) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = (&mut *conn)
        .take(1 << 20)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(
        String::from_utf8_lossy(&buf)
            .trim_end_matches(['\r', '\n'])
            .to_owned(),
    ))
}

async fn send(conn: &mut Conn, data: &[u8]) -> std::io::Result<()> {
    conn.get_mut().write_all(data).await?;
    conn.get_mut().flush().await
}

async fn upgrade(conn: Conn, acceptor: &Option<TlsAcceptor>) -> std::io::Result<Conn> {
    let a = acceptor
        .as_ref()
        .ok_or_else(|| std::io::Error::other("no tls"))?;
    let inner = conn.into_inner();
    Ok(BufReader::new(
        Box::new(a.accept(inner).await?) as Box<dyn Io>
    ))
}

/// Decides a login from the XOAUTH2 initial response.
fn judge(st: &State, b64: &str) -> Verdict {
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

async fn record_rest(conn: &mut Conn, st: &State) {
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_millis(300), conn.read_to_end(&mut rest)).await;
    st.after_login.lock().unwrap().push(rest);
}

async fn imap(
    mut conn: Conn,
    mode: Mode,
    acceptor: Option<TlsAcceptor>,
    st: Arc<State>,
) -> std::io::Result<()> {
    let caps = if mode == Mode::StartTls {
        "IMAP4rev1 STARTTLS LOGINDISABLED"
    } else {
        "IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=PLAIN"
    };
    send(
        &mut conn,
        format!("* OK [CAPABILITY {caps}] fake imap ready\r\n").as_bytes(),
    )
    .await?;
    loop {
        let Some(l) = line(&mut conn).await? else {
            return Ok(());
        };
        let mut it = l.splitn(3, ' ');
        let (tag, cmd, rest) = (
            it.next().unwrap_or(""),
            it.next().unwrap_or("").to_ascii_uppercase(),
            it.next().unwrap_or(""),
        );
        match cmd.as_str() {
            "STARTTLS" => {
                send(&mut conn, format!("{tag} OK begin TLS\r\n").as_bytes()).await?;
                conn = upgrade(conn, &acceptor).await?;
            }
            "AUTHENTICATE" => {
                let b64 = rest.strip_prefix("XOAUTH2 ").unwrap_or("");
                match judge(&st, b64) {
                    Verdict::Accept => {
                        send(&mut conn, format!("{tag} OK [CAPABILITY IMAP4rev1 IDLE UIDPLUS MOVE] fake: logged in\r\n").as_bytes()).await?;
                        return imap_selected(&mut conn, &st).await;
                    }
                    Verdict::Refuse { challenge } => {
                        if challenge {
                            send(&mut conn, b"+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==\r\n").await?;
                            let _ = line(&mut conn).await?;
                        }
                        send(
                            &mut conn,
                            format!("{tag} NO AUTHENTICATE failed.\r\n").as_bytes(),
                        )
                        .await?;
                    }
                    Verdict::Throttle => {
                        send(&mut conn, format!("{tag} NO Request is throttled. Suggested Backoff Time: 5000 milliseconds\r\n").as_bytes()).await?;
                    }
                    Verdict::SmtpAuthDisabled => {
                        send(
                            &mut conn,
                            format!("{tag} BAD User is authenticated but not connected.\r\n")
                                .as_bytes(),
                        )
                        .await?
                    }
                }
            }
            "LOGOUT" => {
                return send(&mut conn, format!("* BYE\r\n{tag} OK bye\r\n").as_bytes()).await;
            }
            _ => {
                send(
                    &mut conn,
                    format!("{tag} BAD unexpected before login\r\n").as_bytes(),
                )
                .await?
            }
        }
    }
}

async fn imap_selected(conn: &mut Conn, st: &State) -> std::io::Result<()> {
    loop {
        let Some(l) = line(conn).await? else {
            return Ok(());
        };
        let mut it = l.splitn(3, ' ');
        let (tag, cmd) = (
            it.next().unwrap_or(""),
            it.next().unwrap_or("").to_ascii_uppercase(),
        );
        match cmd.as_str() {
            "FETCH" => {
                let body = st.message.lock().unwrap().clone();
                send(
                    conn,
                    format!("* 1 FETCH (BODY[] {{{}}}\r\n", body.len()).as_bytes(),
                )
                .await?;
                send(conn, &body).await?;
                send(
                    conn,
                    format!(")\r\n{tag} OK FETCH completed\r\n").as_bytes(),
                )
                .await?;
            }
            "APPEND" => {
                let n: usize = l
                    .rsplit('{')
                    .next()
                    .and_then(|s| s.trim_end_matches(['}', '+']).parse().ok())
                    .unwrap_or(0);
                if !l.ends_with("+}") {
                    send(conn, b"+ go ahead\r\n").await?;
                }
                let mut body = vec![0u8; n];
                conn.read_exact(&mut body).await?;
                let _ = line(conn).await?;
                st.messages.lock().unwrap().push(body);
                send(conn, format!("{tag} OK APPEND completed\r\n").as_bytes()).await?;
            }
            "LOGOUT" => {
                return send(
                    conn,
                    format!("* BYE bye\r\n{tag} OK LOGOUT completed\r\n").as_bytes(),
                )
                .await;
            }
            _ => send(conn, format!("{tag} OK {cmd} completed\r\n").as_bytes()).await?,
        }
    }
}

async fn pop3(
    mut conn: Conn,
    mode: Mode,
    acceptor: Option<TlsAcceptor>,
    st: Arc<State>,
) -> std::io::Result<()> {
    send(&mut conn, b"+OK fake pop3 ready\r\n").await?;
    loop {
        let Some(l) = line(&mut conn).await? else {
            return Ok(());
        };
        let upper = l.to_ascii_uppercase();
        if upper == "STLS" && mode == Mode::StartTls {
            send(&mut conn, b"+OK begin TLS\r\n").await?;
            conn = upgrade(conn, &acceptor).await?;
        } else if upper == "AUTH XOAUTH2" {
            send(&mut conn, b"+ \r\n").await?;
            let b64 = line(&mut conn).await?.unwrap_or_default();
            match judge(&st, &b64) {
                Verdict::Accept => {
                    send(&mut conn, b"+OK fake: User successfully authenticated.\r\n").await?;
                    return pop3_transaction(&mut conn, &st).await;
                }
                Verdict::Throttle => {
                    send(
                        &mut conn,
                        b"-ERR Request is throttled. Suggested Backoff Time: 3000 milliseconds\r\n",
                    )
                    .await?
                }
                _ => {
                    send(
                        &mut conn,
                        b"-ERR Authentication failure: unknown user name or bad password.\r\n",
                    )
                    .await?
                }
            }
        } else if upper == "QUIT" {
            return send(&mut conn, b"+OK bye\r\n").await;
        } else {
            send(&mut conn, b"-ERR unexpected\r\n").await?;
        }
    }
}

async fn pop3_transaction(conn: &mut Conn, st: &State) -> std::io::Result<()> {
    loop {
        let Some(l) = line(conn).await? else {
            return Ok(());
        };
        let upper = l.to_ascii_uppercase();
        if upper.starts_with("RETR") {
            let body = st.message.lock().unwrap().clone();
            send(conn, format!("+OK {} octets\r\n", body.len()).as_bytes()).await?;
            send(conn, &body).await?;
            send(conn, b".\r\n").await?;
        } else if upper == "QUIT" {
            return send(conn, b"+OK bye\r\n").await;
        } else if upper == "RAW" {
            record_rest(conn, st).await;
            return Ok(());
        } else {
            send(conn, b"+OK\r\n").await?;
        }
    }
}

async fn smtp(
    mut conn: Conn,
    mode: Mode,
    acceptor: Option<TlsAcceptor>,
    st: Arc<State>,
) -> std::io::Result<()> {
    let mut tls = mode == Mode::Implicit;
    send(&mut conn, b"220 fake.smtp ESMTP ready\r\n").await?;
    loop {
        let Some(l) = line(&mut conn).await? else {
            return Ok(());
        };
        let upper = l.to_ascii_uppercase();
        if upper.starts_with("EHLO ") {
            st.ehlo_names.lock().unwrap().push(l[5..].to_owned());
            if mode == Mode::StartTls && !tls {
                send(
                    &mut conn,
                    b"250-fake.smtp Hello\r\n250-SIZE 157286400\r\n250 STARTTLS\r\n",
                )
                .await?;
            } else {
                send(&mut conn, b"250-fake.smtp Hello\r\n250-SIZE 157286400\r\n250-AUTH LOGIN XOAUTH2\r\n250 8BITMIME\r\n").await?;
            }
        } else if upper == "STARTTLS" {
            send(&mut conn, b"220 2.0.0 SMTP server ready\r\n").await?;
            conn = upgrade(conn, &acceptor).await?;
            tls = true;
        } else if let Some(b64) = l.strip_prefix("AUTH XOAUTH2 ") {
            match judge(&st, b64) {
                Verdict::Accept => {
                    send(&mut conn, b"235 2.7.0 Authentication successful\r\n").await?;
                    return smtp_mail(&mut conn, &st).await;
                }
                Verdict::SmtpAuthDisabled => send(&mut conn, b"535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.\r\n").await?,
                Verdict::Throttle => send(&mut conn, b"432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded\r\n").await?,
                Verdict::Refuse { challenge } => {
                    if challenge {
                        send(&mut conn, b"334 eyJzdGF0dXMiOiI0MDEifQ==\r\n").await?;
                        let _ = line(&mut conn).await?;
                    }
                    send(&mut conn, b"535 5.7.3 Authentication unsuccessful\r\n").await?;
                }
            }
        } else if upper == "QUIT" {
            return send(&mut conn, b"221 bye\r\n").await;
        } else {
            send(&mut conn, b"503 5.5.1 bad sequence\r\n").await?;
        }
    }
}

async fn smtp_mail(conn: &mut Conn, st: &State) -> std::io::Result<()> {
    loop {
        let Some(l) = line(conn).await? else {
            return Ok(());
        };
        let upper = l.to_ascii_uppercase();
        if upper == "DATA" {
            send(conn, b"354 go ahead\r\n").await?;
            let mut body = Vec::new();
            loop {
                let mut chunk = Vec::new();
                if (&mut *conn)
                    .take(1 << 20)
                    .read_until(b'\n', &mut chunk)
                    .await?
                    == 0
                {
                    return Ok(());
                }
                if chunk == b".\r\n" {
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            st.messages.lock().unwrap().push(body);
            send(conn, b"250 2.6.0 queued\r\n").await?;
        } else if upper == "QUIT" {
            return send(conn, b"221 2.0.0 bye\r\n").await;
        } else {
            send(conn, b"250 2.1.0 OK\r\n").await?;
        }
    }
}
