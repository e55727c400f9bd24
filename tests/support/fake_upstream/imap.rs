//! The fake IMAP server: CAPABILITY in the greeting, STARTTLS, AUTHENTICATE
//! XOAUTH2 with SASL-IR, then FETCH, APPEND and LOGOUT.

use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tokio_rustls::TlsAcceptor;

use super::{Mode, State, Verdict, judge, upgrade};
use crate::support::lines::{Conn, read_line as line, write as send};

pub(super) async fn serve(
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
                if authenticate(&mut conn, &st, tag, b64).await? {
                    return selected(&mut conn, &st).await;
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

/// Answers AUTHENTICATE XOAUTH2 as the verdict says; true once logged in.
async fn authenticate(conn: &mut Conn, st: &State, tag: &str, b64: &str) -> std::io::Result<bool> {
    match judge(st, b64) {
        Verdict::Accept => {
            send(
                conn,
                format!("{tag} OK [CAPABILITY IMAP4rev1 IDLE UIDPLUS MOVE] fake: logged in\r\n")
                    .as_bytes(),
            )
            .await?;
            return Ok(true);
        }
        Verdict::Refuse { challenge } => {
            if challenge {
                send(conn, b"+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==\r\n").await?;
                let _ = line(conn).await?;
            }
            send(
                conn,
                format!("{tag} NO AUTHENTICATE failed.\r\n").as_bytes(),
            )
            .await?;
        }
        Verdict::Throttle => {
            send(
                conn,
                format!(
                    "{tag} NO Request is throttled. Suggested Backoff Time: 5000 milliseconds\r\n"
                )
                .as_bytes(),
            )
            .await?;
        }
        Verdict::SmtpAuthDisabled => {
            send(
                conn,
                format!("{tag} BAD User is authenticated but not connected.\r\n").as_bytes(),
            )
            .await?;
        }
    }
    Ok(false)
}

async fn selected(conn: &mut Conn, st: &State) -> std::io::Result<()> {
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
