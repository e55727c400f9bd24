//! mailgate: a local authentication proxy. Legacy mail software logs in with a
//! user name and password over IMAP, POP3 or SMTP; mailgate checks the local
//! password, obtains an OAuth 2.0 access token for the mailbox, logs in to the
//! provider with SASL XOAUTH2, and then relays the session byte for byte.
//!
//! The modules below are listed in layer order, top to bottom: a module uses
//! only modules listed after it (the test `tests/it/layers.rs` checks this on
//! the source; docs/design.md §2 explains the layers and the seams).
//!
//! A connection takes this path through them: [`listener`] accepts it →
//! [`session`] runs the client's login dialogue through [`net::drive`] and a
//! [`proto`] machine → [`guard`] refuses locked-out logins → [`token`] turns
//! the credentials into an access token, on [`accounts`] (which account, is
//! the password right) on [`store`] (the sealed token records) and [`oauth`]
//! (refreshes) → [`gate`] holds a per-mailbox slot → [`upstream`] connects to
//! the provider and logs in with XOAUTH2 through the same driver → [`relay`]
//! copies bytes both ways. SMTP sessions pass through [`submit`], the seam
//! for ways of submitting mail other than relaying to an SMTP upstream.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "tests fail loudly by design"
    )
)]

// Commands: what an administrator runs.
pub mod cli;
pub mod serve;
pub mod console;
pub mod service;
pub mod admin;
pub mod enrol;

// A connection's path.
pub mod listener;
pub mod session;
pub mod submit;
pub mod upstream;
pub mod relay;
pub mod guard;
pub mod gate;

// Tokens.
pub mod token;
pub mod accounts;
pub mod store;
pub mod oauth;

// Ground: streams and the driver, TLS, configuration, protocol machines,
// small shared types.
pub mod net;
pub mod tls;
pub mod config;
pub mod proto;
pub mod secret;
pub mod audit;
pub mod fsutil;
pub mod logging;
pub mod metrics;
pub mod base;
