//! Why a session ended, as one typed value logged once when it does. A clean
//! end (the client left, a normal close, a relay that finished) is logged as
//! "session closed", anything else as "session ended".

use std::fmt;
use std::io;
use std::time::Duration;

use crate::relay::{RelayError, RelayStats};

#[derive(Debug)]
pub enum End {
    /// The client hung up before logging in.
    ClientClosed,
    /// The process is shutting down.
    Shutdown,
    /// The client machine closed the connection (QUIT, too many failures...).
    Closed(&'static str),
    /// No login before the pre-auth deadline.
    PreauthTimeout,
    /// The client did not take our replies before the deadline.
    ClientStalled,
    ClientRead(io::Error),
    ClientWrite(io::Error),
    NoCertificate,
    TlsTimedOut,
    TlsFailed(io::Error),
    /// Both sides were relayed until one of them was done.
    Relayed {
        after: Duration,
        stats: RelayStats,
    },
    RelayFailed {
        after: Duration,
        error: RelayError,
    },
}

impl End {
    /// A normal end rather than a fault or a timeout.
    pub fn is_clean(&self) -> bool {
        matches!(
            self,
            Self::ClientClosed | Self::Shutdown | Self::Closed(_) | Self::Relayed { .. }
        )
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientClosed => f.write_str("client closed before login"),
            Self::Shutdown => f.write_str("shutting down"),
            Self::Closed(reason) => f.write_str(reason),
            Self::PreauthTimeout => f.write_str("no login before the pre-auth deadline"),
            Self::ClientStalled => f.write_str("client stopped reading before login"),
            Self::ClientRead(e) => write!(f, "client read: {e}"),
            Self::ClientWrite(e) => write!(f, "client write: {e}"),
            Self::NoCertificate => f.write_str("TLS requested but no certificate is loaded"),
            Self::TlsTimedOut => f.write_str("client TLS handshake timed out"),
            Self::TlsFailed(e) => write!(f, "client TLS handshake failed: {e}"),
            Self::Relayed { after, stats } => write!(
                f,
                "relay done after {}s: {} bytes up, {} bytes down",
                after.as_secs(),
                stats.client_to_upstream,
                stats.upstream_to_client
            ),
            Self::RelayFailed { after, error } => {
                write!(f, "relay ended after {}s: {error}", after.as_secs())
            }
        }
    }
}
