//! The life of one connection: optional implicit TLS, the pre-auth dialogue
//! with the client machine (bounded by one deadline, so a client sending a
//! byte a second is still dropped), the login, then the relay.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};
use tracing::{Instrument, debug, info, info_span, warn};

use super::context::SessionContext;
use super::login::{LoginOutcome, login};
use super::machine::client_machine;
use super::stream::Stream;
use crate::config::LocalTls;
use crate::proto::{ClientOptions, ClientStep};

/// Largest read from a client before login; the machines bound whole commands.
const READ_CHUNK: usize = 4096;

/// Time allowed for a last reply (timeout, shutdown, login success) to drain.
const FINAL_WRITE_GRACE: Duration = Duration::from_secs(5);

/// Runs one connection to completion. Never panics on client input; every
/// exit path is logged once.
pub async fn run(ctx: Arc<SessionContext>, tcp: TcpStream, peer: SocketAddr) {
    let span = info_span!("conn", %peer, listener = %ctx.listener.name, proto = ctx.listener.protocol.as_str(), account = tracing::field::Empty);
    async move {
        let _ = tcp.set_nodelay(true);
        match session(&ctx, tcp, peer).await {
            Ok(end) => info!(%end, "session closed"),
            Err(reason) => info!(%reason, "session ended"),
        }
    }
    .instrument(span)
    .await;
}

async fn session(ctx: &SessionContext, tcp: TcpStream, peer: SocketAddr) -> Result<String, String> {
    let preauth_deadline = Instant::now() + ctx.limits.preauth_timeout;
    let mut client = Stream::Plain(tcp);
    if ctx.listener.tls == LocalTls::Implicit {
        client = handshake(ctx, client).await?;
    }
    let options = ClientOptions {
        hostname: ctx.hostname.clone(),
        tls_active: client.is_tls(),
        starttls_available: ctx.listener.tls == LocalTls::StartTls && ctx.acceptor.is_some(),
        require_tls_for_auth: !ctx.listener.plaintext_auth_ok(peer.ip()),
        limits: ctx.limits.client,
    };
    let mut machine = client_machine(ctx.listener.protocol, options);
    write(&mut client, &machine.greeting(), preauth_deadline).await?;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut shutdown = ctx.shutdown.clone();
    loop {
        let step = machine.step(&mut buf);
        let step = match step {
            ClientStep::NeedMore => {
                buf.reserve(READ_CHUNK);
                tokio::select! {
                    read = timeout_at(preauth_deadline, client.read_buf(&mut buf)) => match read {
                        Ok(Ok(0)) => return Ok("client closed before login".into()),
                        Ok(Ok(_)) => continue,
                        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok("client closed before login".into()),
                        Ok(Err(e)) => return Err(format!("client read: {e}")),
                        Err(_) => {
                            let _ = write(&mut client, &machine.timeout_reply(), Instant::now() + FINAL_WRITE_GRACE).await;
                            return Err("no login before the pre-auth deadline".into());
                        }
                    },
                    () = stopped(&mut shutdown) => {
                        let _ = write(&mut client, &machine.shutdown_reply(), Instant::now() + FINAL_WRITE_GRACE).await;
                        return Ok("shutting down".into());
                    }
                }
            }
            ClientStep::Login(credentials) => {
                tracing::Span::current().record("account", credentials.username.as_str());
                match login(ctx, peer, machine.client_name(), &credentials).await {
                    LoginOutcome::Failed(failure) => machine.login_failed(&failure),
                    LoginOutcome::Ok(upstream) => {
                        let reply = machine.login_succeeded(&upstream.success);
                        write(&mut client, &reply, Instant::now() + FINAL_WRITE_GRACE).await?;
                        return relay(ctx, client, buf, upstream).await;
                    }
                }
            }
            other => other,
        };
        match step {
            ClientStep::Reply(bytes) => write(&mut client, &bytes, preauth_deadline).await?,
            ClientStep::StartTls(bytes) => {
                write(&mut client, &bytes, preauth_deadline).await?;
                // Bytes pipelined behind STARTTLS were sent in clear and could
                // have been injected (RFC 3207 §4.2): drop them.
                buf.clear();
                client = handshake(ctx, client).await?;
                machine.tls_established();
            }
            ClientStep::Close { reply, reason } => {
                let _ = write(&mut client, &reply, preauth_deadline).await;
                let _ = client.shutdown().await;
                return Ok(reason.to_owned());
            }
            ClientStep::NeedMore | ClientStep::Login(_) => {}
        }
    }
}

async fn relay(
    ctx: &SessionContext,
    mut client: Stream,
    client_leftover: BytesMut,
    upstream: super::login::Upstream,
) -> Result<String, String> {
    let super::login::Upstream {
        mut stream,
        leftover,
        permit,
        ..
    } = upstream;
    let started = SystemTime::now();
    let result = crate::relay::relay(
        &mut client,
        &mut stream,
        &client_leftover,
        &leftover,
        ctx.limits.relay_idle_timeout,
    )
    .await;
    drop(permit);
    let secs = started.elapsed().map(|d| d.as_secs()).unwrap_or(0);
    match result {
        Ok(stats) => Ok(format!(
            "relay done after {secs}s: {} bytes up, {} bytes down",
            stats.client_to_upstream, stats.upstream_to_client
        )),
        Err(e) => Err(format!("relay ended after {secs}s: {e}")),
    }
}

async fn handshake(ctx: &SessionContext, client: Stream) -> Result<Stream, String> {
    let Some(acceptor) = &ctx.acceptor else {
        return Err("TLS requested but no certificate is loaded".into());
    };
    match timeout(
        ctx.limits.tls_handshake_timeout,
        client.accept_tls(acceptor),
    )
    .await
    {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => {
            let e = crate::tls::local::describe_handshake_error(&e);
            debug!(error = %e, "client TLS handshake failed");
            Err(format!("client TLS handshake failed: {e}"))
        }
        Err(_) => {
            warn!("client TLS handshake timed out");
            Err("client TLS handshake timed out".into())
        }
    }
}

/// Writes before login share the pre-auth deadline: a client that never
/// reads cannot hold the session open by stalling our replies.
async fn write(client: &mut Stream, bytes: &[u8], deadline: Instant) -> Result<(), String> {
    let io = async {
        client.write_all(bytes).await?;
        client.flush().await
    };
    match timeout_at(deadline, io).await {
        Ok(result) => result.map_err(|e| format!("client write: {e}")),
        Err(_) => Err("client stopped reading before login".into()),
    }
}

async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
