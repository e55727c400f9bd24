//! SMTP: the client-side machine answers a legacy client (EHLO, STARTTLS,
//! AUTH PLAIN/LOGIN) until it presents credentials; the upstream-side machine
//! logs in to the provider with `AUTH XOAUTH2`. Both are sans-I/O: bytes in,
//! [`crate::proto::ClientStep`] / [`crate::proto::UpstreamStep`] out.

mod client;
mod reply;
mod upstream;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod upstream_tests;

pub use client::{MAX_CLIENT_NAME, SmtpClient};
pub use upstream::SmtpUpstream;
