//! The one shape every machine has, so one driver (`net::drive`) serves the
//! client dialogue and the upstream login of every protocol, and the
//! transcript tests and fuzz targets step machines exactly as it does.
//!
//! A machine is stepped over the caller's buffer; each step says what the
//! driver must do ([`Action`]): read more, write bytes and step again, write
//! bytes and upgrade to TLS, or stop and hand the step to the caller (a login
//! to run, a close, a verdict).

use bytes::BytesMut;

use super::{ClientStep, LoginFailure, UpstreamStep, UpstreamSuccess};

/// What the driver does with one step.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Read more bytes into the buffer, then step again.
    Read,
    /// Write these bytes, then step again.
    Write(&'a [u8]),
    /// Write these bytes (possibly none), drop every buffered byte (they
    /// arrived in clear and could have been injected, RFC 3207 §4.2), start
    /// TLS, tell the machine, then step again.
    StartTls(&'a [u8]),
    /// Stop driving and give the step to the caller.
    Yield,
}

/// A step the driver can act on.
pub trait Step {
    fn action(&self) -> Action<'_>;
}

/// A sans-I/O machine stepped over a byte buffer.
pub trait Machine: Send {
    type Step: Step;
    /// Takes at most one unit (line, command, reply) off the front of `input`;
    /// later bytes stay there for the next step or for the relay.
    fn step(&mut self, input: &mut BytesMut) -> Self::Step;
    /// TLS is now active after an [`Action::StartTls`].
    fn tls_established(&mut self) {}
}

/// The legacy client's side, up to the moment it presented credentials.
pub trait ClientMachine: Machine<Step = ClientStep> {
    fn greeting(&self) -> Vec<u8>;
    /// Answers a failed login; closes after `max_auth_failures`.
    fn login_failed(&mut self, failure: &LoginFailure) -> ClientStep;
    /// The success line for the client; the relay takes over after it.
    fn login_succeeded(&mut self, upstream: &UpstreamSuccess) -> Vec<u8>;
    fn timeout_reply(&self) -> Vec<u8>;
    fn shutdown_reply(&self) -> Vec<u8>;
    /// SMTP: the client's EHLO name, replayed upstream.
    fn client_name(&self) -> Option<&str> {
        None
    }
}

/// The provider's side: logs in with XOAUTH2.
pub trait UpstreamMachine: Machine<Step = UpstreamStep> {}

impl Step for ClientStep {
    fn action(&self) -> Action<'_> {
        match self {
            Self::NeedMore => Action::Read,
            Self::Reply(bytes) => Action::Write(bytes),
            Self::StartTls(bytes) => Action::StartTls(bytes),
            Self::Login(_) | Self::Close { .. } => Action::Yield,
        }
    }
}

impl Step for UpstreamStep {
    fn action(&self) -> Action<'_> {
        match self {
            Self::NeedMore => Action::Read,
            Self::Send(bytes) => Action::Write(bytes.expose()),
            Self::StartTls => Action::StartTls(&[]),
            Self::Authenticated(_) | Self::Rejected(_) => Action::Yield,
        }
    }
}
