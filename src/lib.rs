//! mailgate: a local authentication proxy. Legacy mail software logs in with a
//! user name and password over IMAP, POP3 or SMTP; mailgate checks the local
//! password, obtains an OAuth 2.0 access token for the mailbox, logs in to the
//! provider with SASL XOAUTH2, and then relays the session byte for byte.
//!
//! The modules follow a connection:
//! [`listener`] accepts it → [`session`] drives it with timeouts, through
//! [`net`] (streams, TLS, the one driver loop) → [`proto`] (sans-I/O
//! machines) parses the client's login → [`accounts`] / [`token`] turn
//! credentials into an access token → [`upstream`] connects to the provider
//! and [`proto`] logs in with XOAUTH2 → [`relay`] copies bytes both ways until
//! either side closes (SMTP goes through its [`submit`] backend, which today
//! is that same login and relay).
//!
//! Around them: [`config`] (two-stage loading), [`tls`] (local certificates and
//! upstream verification), [`oauth`] (the grants), [`secret`] (redacted values).

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "tests fail loudly by design"
    )
)]

// A connection's path, in order.
pub mod listener;
pub mod session;
pub mod submit;
pub mod proto;
pub mod guard;
pub mod accounts;
pub mod token;
pub mod oauth;
pub mod upstream;
pub mod relay;

// Around it.
pub mod config;
pub mod tls;
pub mod net;
pub mod secret;
pub mod fsutil;
pub mod logging;

// Commands.
pub mod cli;
pub mod serve;
pub mod enrol;
pub mod admin;
