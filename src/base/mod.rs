//! The bottom layer: small types that several layers share and that belong to
//! none of them. Nothing here imports from the rest of the crate, so any
//! module may use it without creating an import loop.

mod account;
pub mod civil;
mod random;
mod source;

use std::future::Future;
use std::pin::Pin;

pub use account::{AccountName, InvalidName, MAX_ACCOUNT_LEN};
pub use random::{RandomError, hex, random_bytes};
pub use source::{DEFAULT_IPV6_PREFIX, source_of};

/// A boxed, sendable future: what object-safe async seams return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Which protocol a listener speaks; scopes and the SASL `user=` can differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Imap,
    Pop3,
    Smtp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Imap => "imap",
            Self::Pop3 => "pop3",
            Self::Smtp => "smtp",
        }
    }
}
