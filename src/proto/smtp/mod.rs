//! SMTP: the client-side machine answers a legacy client (EHLO, STARTTLS,
//! AUTH PLAIN/LOGIN) until it presents credentials; the upstream-side machine
//! logs in to the provider with `AUTH XOAUTH2`. When mailgate itself is the
//! server after AUTH (a backend that is not an SMTP relay), the server
//! machine in [`server`] runs the mail transactions. All are sans-I/O: bytes
//! in, [`crate::proto::ClientStep`] / [`crate::proto::UpstreamStep`] /
//! [`server::ServerStep`] out.

mod client;
mod reply;
pub mod server;
mod upstream;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod upstream_tests;

pub use client::{MAX_CLIENT_NAME, SmtpClient};
pub use upstream::SmtpUpstream;
