//! The integration test binary: one module per area.

#[path = "../support/mod.rs"]
mod support;

mod core_imap;
mod core_pop3;
mod core_smtp;
