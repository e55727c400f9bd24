//! The life of one connection: optional implicit TLS, the pre-auth dialogue
//! with the client machine (through `net::drive`, bounded by one deadline, so
//! a client sending a byte a second is still dropped), the login, then the
//! hand-off to the relay or the submission backend.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

use super::context::SessionContext;
use super::end::End;
use super::login::{Handoff, LoginOutcome, login};
use super::machine::client_machine;
use crate::config::LocalTls;
use crate::metrics::{self, LoginOutcome as Counted};
use crate::net::{Dialogue, Interrupted, Phase, Stream, Tls, drive, leftover, write_all};
use crate::proto::proxy_refusal::SPOOFED_HEADER;
use crate::proto::{ClientMachine, ClientOptions, ClientStep, LoginFailure};

/// Largest read from a client before login; the machines bound whole commands.
const READ_CHUNK: usize = 4096;

/// Time allowed for a last reply (timeout, shutdown, login success) to drain.
const FINAL_WRITE_GRACE: Duration = Duration::from_secs(5);

/// Runs one connection to completion. Never panics on client input; every
/// exit path is logged once. `peer` is the client: the TCP peer, or the
/// address the PROXY header of `via`, a listed load balancer, named.
pub async fn run(
    ctx: Arc<SessionContext>,
    tcp: TcpStream,
    peer: SocketAddr,
    via: Option<SocketAddr>,
) {
    let span = info_span!("conn", %peer, via = tracing::field::Empty, listener = %ctx.listener.name, proto = ctx.listener.protocol.as_str(), account = tracing::field::Empty);
    if let Some(via) = via {
        span.record("via", tracing::field::display(via));
    }
    async move {
        let _ = tcp.set_nodelay(true);
        let active = metrics::global().session(&ctx.listener.name);
        let end = session(&ctx, tcp, peer).await;
        drop(active);
        if end.is_clean() {
            info!(%end, "session closed");
        } else {
            info!(reason = %end, "session ended");
        }
    }
    .instrument(span)
    .await;
}

async fn session(ctx: &SessionContext, tcp: TcpStream, peer: SocketAddr) -> End {
    let dialogue = Dialogue {
        deadline: Instant::now() + ctx.limits.preauth_timeout,
        read_chunk: READ_CHUNK,
        tls: Tls::Accept {
            acceptor: ctx.acceptor.as_ref(),
            within: ctx.limits.tls_handshake_timeout,
        },
        shutdown: Some(ctx.shutdown.clone()),
    };
    let mut client = Stream::Plain(tcp);
    if ctx.listener.tls == LocalTls::Implicit {
        client = match dialogue.tls.upgrade(client, dialogue.deadline).await {
            Ok(stream) => stream,
            Err(interrupted) => return ended(interrupted),
        };
    }
    let extensions = ctx.submitter.as_ref().and_then(|s| s.extensions());
    let mut machine = client_machine(
        ctx.listener.protocol,
        options(ctx, &client, peer),
        extensions,
    );
    if let Err(interrupted) = write_all(&mut client, &machine.greeting(), dialogue.deadline).await {
        return ended(interrupted);
    }
    converse(ctx, peer, machine.as_mut(), client, dialogue).await
}

/// What the client machine must know of this listener and connection.
fn options(ctx: &SessionContext, client: &Stream, peer: SocketAddr) -> ClientOptions {
    ClientOptions {
        hostname: ctx.hostname.clone(),
        tls_active: client.is_tls(),
        starttls_available: ctx.listener.tls == LocalTls::StartTls && ctx.acceptor.is_some(),
        require_tls_for_auth: !ctx.listener.plaintext_auth_ok(peer.ip()),
        limits: ctx.limits.client,
    }
}

/// The pre-auth dialogue after the greeting, until a close, an interruption
/// or a successful login (then the hand-off).
async fn converse(
    ctx: &SessionContext,
    peer: SocketAddr,
    machine: &mut dyn ClientMachine,
    mut client: Stream,
    mut dialogue: Dialogue<'_>,
) -> End {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        let step = match drive(machine, &mut client, &mut buf, &mut dialogue).await {
            Ok(step) => step,
            Err(interrupted) => {
                let farewell = farewell(machine, &interrupted);
                let _ = write_all(&mut client, &farewell, Instant::now() + FINAL_WRITE_GRACE).await;
                return ended(interrupted);
            }
        };
        let step = match step {
            ClientStep::Login(credentials) => {
                tracing::Span::current().record("account", credentials.username.as_str());
                let name = machine.client_name().map(str::to_owned);
                match login(ctx, peer, name.as_deref(), &credentials).await {
                    LoginOutcome::Failed(failure) => {
                        count_login(ctx, counted(&failure));
                        machine.login_failed(&failure)
                    }
                    LoginOutcome::Ok(handoff) => {
                        count_login(ctx, Counted::ok);
                        return hand_off(machine, client, leftover(buf), handoff).await;
                    }
                }
            }
            other => other,
        };
        match step {
            ClientStep::Reply(bytes) => {
                if let Err(interrupted) = write_all(&mut client, &bytes, dialogue.deadline).await {
                    return ended(interrupted);
                }
            }
            ClientStep::Close { reply, reason } => {
                if reason == SPOOFED_HEADER {
                    warn!(
                        reason,
                        "refused a PROXY header from the client: a spoofing attempt, or a balancer missing from proxy_protocol_from"
                    );
                }
                let _ = write_all(&mut client, &reply, dialogue.deadline).await;
                let _ = client.shutdown().await;
                return End::Closed(reason);
            }
            // A failed login answers with a reply or a close; the driver
            // handles every other step before yielding.
            ClientStep::NeedMore | ClientStep::StartTls(_) | ClientStep::Login(_) => {}
        }
    }
}

fn count_login(ctx: &SessionContext, outcome: Counted) {
    metrics::global().login(ctx.listener.protocol, outcome);
}

/// A failed login as `mailgate_logins_total` counts it.
fn counted(failure: &LoginFailure) -> Counted {
    match failure {
        LoginFailure::BadCredentials => Counted::wrong_password,
        LoginFailure::NeedsAuthorisation(_) => Counted::needs_login,
        LoginFailure::Temporary(_) => Counted::temporary,
        LoginFailure::UpstreamRejected(_) => Counted::upstream_rejected,
    }
}

/// The last word to a client the dialogue is giving up on (none when the
/// connection itself failed).
fn farewell(machine: &dyn ClientMachine, interrupted: &Interrupted) -> Vec<u8> {
    match interrupted {
        Interrupted::TimedOut(Phase::Reading) => machine.timeout_reply(),
        Interrupted::Shutdown => machine.shutdown_reply(),
        _ => Vec::new(),
    }
}

/// The dialogue's interruption in the session's terms.
fn ended(interrupted: Interrupted) -> End {
    match interrupted {
        Interrupted::Closed => End::ClientClosed,
        Interrupted::Shutdown => End::Shutdown,
        Interrupted::TimedOut(Phase::Reading) => End::PreauthTimeout,
        Interrupted::TimedOut(Phase::Writing) => End::ClientStalled,
        Interrupted::TimedOut(Phase::TlsHandshake) => {
            warn!("client TLS handshake timed out");
            End::TlsTimedOut
        }
        Interrupted::NoCertificate => End::NoCertificate,
        Interrupted::Io { phase, source } => match phase {
            Phase::Reading if source.kind() == std::io::ErrorKind::UnexpectedEof => {
                End::ClientClosed
            }
            Phase::Reading => End::ClientRead(source),
            Phase::Writing => End::ClientWrite(source),
            Phase::TlsHandshake => {
                let described = crate::tls::local::describe_handshake_error(&source);
                debug!(error = %described, "client TLS handshake failed");
                End::TlsFailed(std::io::Error::new(source.kind(), described))
            }
        },
    }
}

/// Answers the client's login with the upstream's success, then lets the
/// submission take over; the mailbox slot is held until it is done.
async fn hand_off(
    machine: &mut dyn ClientMachine,
    mut client: Stream,
    leftover: BytesMut,
    handoff: Handoff,
) -> End {
    let Handoff { submission, permit } = handoff;
    let reply = machine.login_succeeded(submission.success());
    if let Err(interrupted) =
        write_all(&mut client, &reply, Instant::now() + FINAL_WRITE_GRACE).await
    {
        return ended(interrupted);
    }
    let started = SystemTime::now();
    let result = submission.run(client, leftover).await;
    drop(permit);
    let after = started.elapsed().unwrap_or_default();
    match result {
        Ok(stats) => End::Relayed { after, stats },
        Err(error) => End::RelayFailed { after, error },
    }
}
