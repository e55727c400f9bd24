//! Running as a system service. Three things a supervisor needs from a
//! long-running proxy, and that none of the layers below should know about:
//!
//! - [`notify`]: systemd's `Type=notify` protocol (sd_notify(3)), so that
//!   `systemctl start` returns once the listeners are bound, a reload is
//!   visible while it runs, and the watchdog restarts a runtime that stopped
//!   answering. Outside systemd (no `NOTIFY_SOCKET`) every call does nothing.
//! - [`limits`]: the open-file limit. A relayed session holds two
//!   descriptors, and the usual soft limit of 1,024 caps a proxy near 500
//!   sessions while the hard limit allows far more.
//! - [`unregistered`]: a provider still carrying the shipped placeholder
//!   `client_id` answers every login with the fix, without asking the
//!   provider for a token it cannot give.
//!
//! The unit file that uses all of this is `dist/systemd/mailgate.service`
//! (README "Running as a service").

pub mod limits;
pub mod notify;
pub mod unregistered;
