//! The fake POP3 server: STLS, AUTH XOAUTH2, then RETR, QUIT and RAW (record
//! everything that follows).

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use super::{Mode, State, Verdict, judge, record_rest, upgrade};
use crate::support::lines::{Conn, read_line as line, write as send};

pub(super) async fn serve(
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
