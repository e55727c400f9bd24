//! The sd_notify(3) messages `serve` sends. systemd reads them from the
//! datagram socket named in `NOTIFY_SOCKET`:
//!
//! - `READY=1` once every listener is bound (a connection made after it is
//!   accepted), and again after each reload;
//! - `RELOADING=1` with `MONOTONIC_USEC=` when a SIGHUP reload begins
//!   (systemd.service(5): systemd 253 and later insist on the timestamp);
//! - `STOPPING=1` when shutdown begins;
//! - `WATCHDOG=1` at half the `WATCHDOG_USEC` interval, from a task on the
//!   same runtime as the sessions, so a stalled runtime stops the pings.
//!
//! A failed notification is logged and otherwise ignored: the proxy serves
//! mail whether or not a supervisor listens.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio::task::JoinHandle;
use tracing::{debug, info};

/// The shortest watchdog ping interval, whatever `WATCHDOG_USEC` says.
const MIN_PING: Duration = Duration::from_millis(10);

/// The listeners are bound (at start, and after a reload).
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// A configuration reload begins; [`ready`] follows when it is over,
/// whether the new configuration was taken or refused.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// Shutdown begins: sessions are draining.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Starts the watchdog pings when the service manager asked for them
/// (`WatchdogSec=` sets `WATCHDOG_USEC`); abort the task at exit.
pub fn spawn_watchdog() -> Option<JoinHandle<()>> {
    let every = (sd_notify::watchdog_enabled()? / 2).max(MIN_PING);
    info!(
        every_ms = every.as_millis() as u64,
        "service manager watchdog on"
    );
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    }))
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        debug!(error = %e, "cannot notify the service manager");
    }
}
