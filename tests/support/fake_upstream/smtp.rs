//! The fake submission server: like smtp.office365.com, AUTH only after
//! STARTTLS when the upstream mode is STARTTLS; then DATA.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use super::{Mode, State, Verdict, judge, upgrade};
use crate::support::lines::{Conn, read_line as line, read_raw_line, write as send};

pub(super) async fn serve(
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
                let Some(chunk) = read_raw_line(conn).await? else {
                    return Ok(());
                };
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
