//! The integration test binary: one module per area.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly by design"
)]

#[path = "../support/mod.rs"]
mod support;

mod admin;
mod console;
mod core_imap;
mod core_pop3;
mod config_files;
mod console_browser;
mod core_smtp;
mod cluster;
mod crash;
mod interop;
mod oauth_flows;
mod servers_smoke;
mod hardening;
mod graph;
mod layers;
mod service;
mod store_postgres;
