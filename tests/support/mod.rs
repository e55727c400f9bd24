//! Shared test support: certificates, fake upstreams, a static token source,
//! a line client, an in-process proxy harness and the real binary as a
//! child process.
#![allow(dead_code)]

pub mod certs;
pub mod client;
pub mod fake_upstream;
pub mod idp;
pub mod mailgate;
pub mod proxy;
pub mod servers;
pub mod tokens;
