//! IMAP: the legacy client's side until it has logged in ([`ImapClient`]), and
//! mailgate's XOAUTH2 login to the provider ([`ImapUpstream`]). Both are
//! sans-I/O: bytes in, [`ClientStep`](crate::proto::ClientStep) /
//! [`UpstreamStep`](crate::proto::UpstreamStep) out.
//!
//! `command` assembles client commands across literals, `response` reads the
//! provider's responses, and `text` keeps whatever crosses from one side to the
//! other within what IMAP allows on the wire.

mod client;
mod command;
mod response;
mod text;
#[cfg(test)]
mod transcript;
mod upstream;

pub use client::ImapClient;
pub use upstream::ImapUpstream;
