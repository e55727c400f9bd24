//! Shared test support: certificates, the config builder, fake upstreams, a
//! static token source, the line client, the in-process proxy harness and
//! the real binary as a child process, and headless Chromium.
#![allow(
    dead_code,
    reason = "each helper is used by some test modules, not all of them"
)]

pub mod browser;
pub mod certs;
pub mod client;
pub mod cluster;
pub mod config;
pub mod fake_upstream;
pub mod idp;
pub mod lines;
pub mod mailgate;
pub mod proxy;
pub mod scratch;
pub mod servers;
pub mod tokens;
