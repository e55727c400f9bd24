//! Sans-I/O protocol machines. Nothing in here touches a socket, a clock or
//! tokio: one driver (`net::drive`) feeds received bytes in and carries out
//! the [`ClientStep`] / [`UpstreamStep`] that comes back, through the
//! [`Machine`] traits every machine implements. That keeps every machine
//! testable with transcripts and fuzzable byte by byte, stepped the same way.
//!
//! Each protocol has two machines: `client` speaks to the legacy client until it
//! has presented credentials, `upstream` logs in to the provider with XOAUTH2.
//! After both are done, the session relays bytes and no machine is involved.
//! What the protocols share lives beside them: `line_client` (the POP3 and
//! SMTP client core), [`failures`], `credential` (the token and its
//! scrubbing), [`throttle`] and [`text`].

pub(crate) mod credential;
pub mod failures;
pub mod imap;
pub mod line;
pub(crate) mod line_client;
pub mod machine;
pub mod pop3;
pub mod proxy_header;
pub mod proxy_refusal;
pub mod sasl;
pub mod smtp;
pub mod text;
pub mod throttle;

use std::time::Duration;

use crate::secret::Secret;

pub use machine::{Action, ClientMachine, Machine, Step, UpstreamMachine};

/// What a legacy client presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The login name (SASL authcid).
    pub username: String,
    /// SASL PLAIN authzid when it differs from the login name.
    pub authzid: Option<String>,
    pub password: Secret<String>,
}

/// Bounds on what a client may send before it is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// Longest command line, terminator excluded.
    pub max_line: usize,
    /// Largest IMAP literal (`{n}`) accepted before login.
    pub max_literal: usize,
    /// Commands accepted before the client must have authenticated.
    pub max_commands: usize,
    /// Failed logins on one connection before it is closed.
    pub max_auth_failures: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            max_line: 8 * 1024,
            max_literal: 8 * 1024,
            max_commands: 64,
            max_auth_failures: 3,
        }
    }
}

/// How the listener is set up, as far as the client machine must know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Name mailgate uses for itself in greetings and EHLO replies.
    pub hostname: String,
    /// The connection is already encrypted (implicit TLS, or after STARTTLS).
    pub tls_active: bool,
    /// STARTTLS / STLS may be offered (a certificate is configured and TLS not yet active).
    pub starttls_available: bool,
    /// Refuse credentials until TLS is active (LOGINDISABLED, RFC 9051 §6.2.3).
    pub require_tls_for_auth: bool,
    pub limits: ClientLimits,
}

/// What the driver must do next for the client side.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientStep {
    /// No whole command in the buffer yet: read more and call `step` again.
    NeedMore,
    /// Send these bytes, then call `step` again.
    Reply(Vec<u8>),
    /// Send these bytes, then start TLS on the client connection. The driver must
    /// discard any bytes still buffered (RFC 3207 §4.2, command injection), then
    /// call `tls_established`.
    StartTls(Vec<u8>),
    /// The client presented credentials: obtain a token, log in upstream, and
    /// answer with `login_succeeded` or `login_failed`.
    Login(Credentials),
    /// Send these bytes and close the connection.
    Close {
        reply: Vec<u8>,
        reason: &'static str,
    },
}

/// The answer to a wrong password or an unknown account: the same for both,
/// so the answer does not reveal which accounts exist, and it says how
/// accounts come to exist.
pub const BAD_CREDENTIALS_TEXT: &str = "Authentication failed: unknown account or wrong local password (accounts are enrolled with: mailgate login ADDRESS)";

/// Why a login failed, in the terms of docs/design.md's error table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginFailure {
    /// Unknown account or wrong local password.
    BadCredentials,
    /// The account must be (re-)authorised; the text says how.
    NeedsAuthorisation(String),
    /// Identity provider or upstream unreachable, throttled, or busy.
    Temporary(String),
    /// The upstream refused a fresh token; the text is the upstream's reason.
    UpstreamRejected(String),
}

/// The upstream accepted XOAUTH2.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamSuccess {
    /// The upstream's final success line, without CRLF (IMAP: the tagged OK,
    /// POP3: `+OK ...`, SMTP: `235 ...`).
    pub line: Vec<u8>,
    /// IMAP only: capabilities the upstream announced with its OK (response code
    /// or untagged CAPABILITY during login), space separated.
    pub capabilities: Option<String>,
}

/// What the upstream machine needs in order to log in.
#[derive(Debug, Clone)]
pub struct UpstreamLogin {
    /// The XOAUTH2 `user=` value (the mailbox, or the delegate for SMTP).
    pub user: String,
    pub access_token: Secret<String>,
}

/// Why the upstream did not accept the login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamRejection {
    /// Authentication refused (IMAP NO/BAD, POP3 -ERR, SMTP 535 5.7.3/5.7.8).
    /// The token may be stale: drop it and retry once with a fresh one.
    AuthFailed(String),
    /// SMTP AUTH is disabled for the tenant or mailbox (SMTP 535 5.7.139).
    SmtpAuthDisabled(String),
    /// The provider asked us to back off for this mailbox.
    Throttled {
        text: String,
        backoff: Option<Duration>,
    },
    /// Temporary refusal: 4xx, BYE, `[UNAVAILABLE]`, `-ERR [SYS/TEMP]`.
    Unavailable(String),
    /// The upstream said something this machine cannot make sense of.
    Protocol(String),
}

/// What the driver must do next for the upstream side.
#[derive(Debug, PartialEq, Eq)]
pub enum UpstreamStep {
    /// Read more from upstream and call `step` again.
    NeedMore,
    /// Send these bytes upstream (they may carry the token: never log them),
    /// then call `step` again.
    Send(Secret<Vec<u8>>),
    /// Upgrade the upstream connection to TLS now, then call `step` again.
    StartTls,
    Authenticated(UpstreamSuccess),
    Rejected(UpstreamRejection),
}

/// Longest line accepted from the upstream during login (IMAP capability lists
/// can be long; this only bounds memory).
pub const MAX_UPSTREAM_LINE: usize = 64 * 1024;
