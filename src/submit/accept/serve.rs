//! The I/O loop around the server machine: reads only when the machine
//! needs more, writes its batched replies, asks the sink at MAIL and after
//! the final `.`, and applies the timeout of the phase the machine is in.
//! It is not `net::drive`: that loop has one deadline for a whole dialogue,
//! and here the deadline restarts with every command and once for the
//! message text (`ServerLimits`).

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::time::{Instant, timeout, timeout_at};
use tracing::{debug, info};

use super::{Envelope, Message, MessageSink, Reply, ServerLimits};
use crate::net::{Interrupted, Stream, write_all};
use crate::proto::smtp::server::{Refusal, ServerStep, SmtpServer, Transaction};
use crate::relay::{RelayError, RelayStats};

/// Largest single read from the client; the machine bounds what it keeps.
const READ_CHUNK: usize = 16 * 1024;

/// How long the sink may take over one call. RFC 5321 §4.5.3.2.6 has the
/// client wait 10 minutes for the answer to the final `.`; answering a
/// little earlier means the client hears `451` instead of timing out.
const SINK_TIMEOUT: Duration = Duration::from_secs(9 * 60);

/// Time allowed for a last reply (timeout, QUIT) to drain.
const FINAL_WRITE_GRACE: Duration = Duration::from_secs(5);

/// Speaks SMTP to `client` until QUIT, an error or a timeout.
pub(super) async fn serve(
    client: Stream,
    leftover: BytesMut,
    sink: Arc<dyn MessageSink>,
    limits: ServerLimits,
    hostname: String,
) -> Result<RelayStats, RelayError> {
    serve_with(client, leftover, sink, limits, hostname, SINK_TIMEOUT).await
}

/// [`serve`] with the sink's time bound given (the tests shorten it).
pub(super) async fn serve_with(
    client: Stream,
    leftover: BytesMut,
    sink: Arc<dyn MessageSink>,
    limits: ServerLimits,
    hostname: String,
    sink_timeout: Duration,
) -> Result<RelayStats, RelayError> {
    let mut conn = Conn {
        machine: SmtpServer::new(&hostname, sink.max_size()),
        stream: client,
        stats: RelayStats {
            client_to_upstream: leftover.len() as u64,
            upstream_to_client: 0,
        },
        sink,
        sink_timeout,
        limits,
    };
    conn.run(leftover).await
}

struct Conn {
    machine: SmtpServer,
    stream: Stream,
    stats: RelayStats,
    sink: Arc<dyn MessageSink>,
    sink_timeout: Duration,
    limits: ServerLimits,
}

impl Conn {
    async fn run(&mut self, mut buf: BytesMut) -> Result<RelayStats, RelayError> {
        let limits = self.limits.clone();
        let mut deadline = Instant::now() + limits.command_timeout;
        let mut in_data = false;
        loop {
            let step = self.machine.step(&mut buf);
            let now_in_data = self.machine.in_data();
            if now_in_data && !in_data {
                deadline = Instant::now() + limits.data_timeout;
            } else if !now_in_data && step != ServerStep::NeedMore {
                deadline = Instant::now() + limits.command_timeout;
            }
            in_data = now_in_data;
            match step {
                ServerStep::NeedMore => {
                    if !self.read(&mut buf, deadline).await? {
                        debug!("client closed the connection without QUIT");
                        return Ok(self.stats);
                    }
                }
                ServerStep::Reply(bytes) => self.write(&bytes, deadline).await?,
                ServerStep::CheckSender(from) => {
                    let verdict = self.check_sender(&from).await;
                    self.machine.sender_checked(verdict);
                }
                ServerStep::Deliver(transaction) => {
                    let verdict = self.deliver(transaction).await;
                    self.machine.delivered(verdict);
                }
                ServerStep::Close { reply, reason } => {
                    debug!(reason, "SMTP server side closing");
                    let grace = Instant::now() + FINAL_WRITE_GRACE;
                    self.write(&reply, grace).await?;
                    return Ok(self.stats);
                }
            }
        }
    }

    /// Reads more into `buf`; `false` when the client hung up. A timeout
    /// says 421 (RFC 5321 §4.5.3.2) and ends the session.
    async fn read(&mut self, buf: &mut BytesMut, deadline: Instant) -> Result<bool, RelayError> {
        buf.reserve(READ_CHUNK);
        let mut chunk = AsyncReadExt::take(&mut self.stream, READ_CHUNK as u64);
        match timeout_at(deadline, chunk.read_buf(buf)).await {
            Ok(Ok(0)) => Ok(false),
            Ok(Ok(n)) => {
                self.stats.client_to_upstream += n as u64;
                Ok(true)
            }
            Ok(Err(e)) => Err(RelayError::Io(e)),
            Err(_) => {
                let (waited, limit) = if self.machine.in_data() {
                    ("the message", self.limits.data_timeout)
                } else {
                    ("a command", self.limits.command_timeout)
                };
                debug!(waited, "SMTP server side timed out");
                let reply = self.machine.timeout_reply();
                let grace = Instant::now() + FINAL_WRITE_GRACE;
                // The session ends on the timeout whether or not this lands.
                let _ = self.write(&reply, grace).await;
                Err(RelayError::Idle(limit))
            }
        }
    }

    async fn write(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), RelayError> {
        write_all(&mut self.stream, bytes, deadline)
            .await
            .map_err(io_error)?;
        self.stats.upstream_to_client += bytes.len() as u64;
        Ok(())
    }

    async fn check_sender(&self, from: &str) -> Result<(), Refusal> {
        match timeout(self.sink_timeout, self.sink.check_sender(from)).await {
            Ok(verdict) => verdict.map_err(refusal),
            Err(_) => Err(sink_timed_out()),
        }
    }

    /// Hands one message to the sink; logs one line when it is accepted.
    async fn deliver(&self, transaction: Transaction) -> Result<(), Refusal> {
        let size = transaction.content.len();
        let recipients = transaction.recipients.len();
        debug!(from = %transaction.from, to = ?transaction.recipients, "submitting a message");
        let message = Message {
            envelope: Envelope {
                from: transaction.from,
                recipients: transaction.recipients,
                eight_bit: transaction.eight_bit,
                smtputf8: transaction.smtputf8,
            },
            content: transaction.content,
        };
        let verdict = match timeout(self.sink_timeout, self.sink.send(message)).await {
            Ok(verdict) => verdict.map_err(refusal),
            Err(_) => Err(sink_timed_out()),
        };
        match &verdict {
            Ok(()) => info!(size, recipients, "message accepted"),
            Err(r) => info!(size, recipients, code = r.code, "message refused"),
        }
        verdict
    }
}

fn refusal(reply: Reply) -> Refusal {
    Refusal {
        code: reply.code,
        text: reply.text,
    }
}

/// The message may still arrive: the client keeps it and tries again, so
/// at worst it is sent twice, never lost.
fn sink_timed_out() -> Refusal {
    Refusal {
        code: 451,
        text: "4.4.1 The mail service did not answer in time, try again later".into(),
    }
}

fn io_error(interrupted: Interrupted) -> RelayError {
    match interrupted {
        Interrupted::Io { source, .. } => RelayError::Io(source),
        Interrupted::TimedOut(_) => RelayError::Idle(Duration::ZERO),
        other => RelayError::Io(std::io::Error::other(other.to_string())),
    }
}
