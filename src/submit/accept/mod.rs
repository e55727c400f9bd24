//! mailgate as the SMTP server: after a local AUTH, a submission backend
//! that is not an SMTP relay (an HTTP mail API) needs someone to speak the
//! rest of SMTP to the client, collect each message and answer it only once
//! the backend has really taken it. This module is that someone; the backend
//! plugs in as a [`MessageSink`].
//!
//! The contract with a sink:
//! - [`MessageSink::max_size`] is what EHLO advertises as SIZE and what DATA
//!   enforces: a sink must be able to send every message up to it.
//! - [`MessageSink::check_sender`] runs at MAIL FROM, so a forbidden sender
//!   is refused before the client sends any data.
//! - [`MessageSink::send`] returns only once the message is accepted
//!   (`Ok`, the client then gets `250`) or refused (`Err` carries the full
//!   reply the client gets). There is no local queue: a client that got no
//!   `250` still has its message.
//!
//! The SMTP itself is the sans-I/O machine `proto::smtp::server`; the I/O
//! loop around it, with the timeouts per phase, is in `serve.rs`.

mod serve;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::Submission;
use crate::net::Stream;
use crate::proto::UpstreamSuccess;
use crate::relay::{RelayError, RelayStats};
use crate::token::BoxFuture;

/// What the pre-AUTH EHLO must offer on a listener whose backend accepts
/// messages of up to `max_size` bytes (see [`super::Submitter::extensions`]):
/// the SIZE a client is told is what can really be sent.
pub fn extensions(max_size: usize) -> Vec<String> {
    crate::proto::smtp::server::extensions(max_size)
}

/// The envelope of one message, as the client gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse-path without angle brackets; empty for the null sender.
    pub from: String,
    /// Forward-paths without angle brackets, in the order given.
    pub recipients: Vec<String>,
    /// `BODY=8BITMIME` was given.
    pub eight_bit: bool,
    /// `SMTPUTF8` was given.
    pub smtputf8: bool,
}

/// One message: its envelope and its content, dot-unstuffed, lines ending in
/// CRLF, without the terminating `.` line.
#[derive(Debug, Clone)]
pub struct Message {
    pub envelope: Envelope,
    pub content: Bytes,
}

/// A complete SMTP reply: `code` and text that starts with the enhanced
/// status code (`"5.7.60 Not allowed to send as x@y"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

/// Where accepted messages go.
pub trait MessageSink: Send + Sync {
    /// The largest message content, in bytes, this sink can send.
    fn max_size(&self) -> usize;
    /// Whether the authenticated user may send as `from`.
    fn check_sender<'a>(&'a self, from: &'a str) -> BoxFuture<'a, Result<(), Reply>>;
    /// Sends `message`; `Ok` only once the backend accepted it.
    fn send(&self, message: Message) -> BoxFuture<'_, Result<(), Reply>>;
}

/// Bounds of the server side of a session.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// How long the client may stay silent between commands.
    pub command_timeout: Duration,
    /// How long DATA may take from `354` to the final `.`.
    pub data_timeout: Duration,
}

impl Default for ServerLimits {
    /// RFC 5321 §4.5.3.2.7 asks a server to wait at least 5 minutes for a
    /// command; §4.5.3.2.5 gives a client 3 minutes per data block, which
    /// this allows for the whole of a large message on a slow link.
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_secs(5 * 60),
            data_timeout: Duration::from_secs(10 * 60),
        }
    }
}

/// A [`Submission`] that plays the SMTP server and hands each message to a
/// sink.
pub struct Accepting {
    sink: Arc<dyn MessageSink>,
    success: UpstreamSuccess,
    limits: ServerLimits,
    hostname: String,
}

impl Accepting {
    /// `success` is what the client's AUTH is answered with.
    pub fn new(sink: Arc<dyn MessageSink>, success: UpstreamSuccess, limits: ServerLimits) -> Self {
        Self {
            sink,
            success,
            limits,
            hostname: "mailgate".into(),
        }
    }

    /// The name mailgate gives itself in EHLO and 421 replies (the
    /// listener's hostname; `mailgate` unless set).
    pub fn with_hostname(mut self, hostname: &str) -> Self {
        hostname.clone_into(&mut self.hostname);
        self
    }
}

impl Submission for Accepting {
    fn success(&self) -> &UpstreamSuccess {
        &self.success
    }

    fn run(
        self: Box<Self>,
        client: Stream,
        leftover: BytesMut,
    ) -> BoxFuture<'static, Result<RelayStats, RelayError>> {
        let Self {
            sink,
            limits,
            hostname,
            ..
        } = *self;
        Box::pin(serve::serve(client, leftover, sink, limits, hostname))
    }
}
