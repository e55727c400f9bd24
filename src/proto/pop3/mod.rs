//! POP3: the client-side machine answers a legacy client until it presents
//! credentials; the upstream-side machine logs in to the provider with
//! `AUTH XOAUTH2`. Both are sans-I/O: bytes in, [`crate::proto::ClientStep`] /
//! [`crate::proto::UpstreamStep`] out.

mod client;
mod upstream;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
pub(crate) mod transcript;
#[cfg(test)]
mod upstream_tests;

pub use client::Pop3Client;
pub use upstream::Pop3Upstream;
