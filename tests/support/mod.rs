//! Shared test support: certificates, fake upstreams, a static token source,
//! a line client and an in-process proxy harness.
#![allow(dead_code)]

pub mod certs;
pub mod client;
pub mod fake_upstream;
pub mod idp;
pub mod proxy;
pub mod servers;
pub mod tokens;
