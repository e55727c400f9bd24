//! The integration test binary: one module per area.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly by design"
)]

#[path = "../support/mod.rs"]
mod support;

mod admin;
mod core_imap;
mod core_pop3;
mod config_files;
mod core_smtp;
mod cluster;
mod crash;
mod interop;
mod oauth_flows;
mod servers_smoke;
mod hardening;
mod layers;
mod service;
mod store_postgres;
