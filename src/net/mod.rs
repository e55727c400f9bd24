//! The network layer both sides of a session stand on: the [`Stream`] that
//! may turn into TLS half-way, the upstream TLS client that decrypts in place, TLS accept
//! and connect with their bounds, the PROXY header a load balancer sends first, and [`drive()`], the one loop that feeds a
//! protocol machine from a socket. `session` (the client side) and
//! `upstream` (the provider side) both use it; nothing here knows about
//! either, so no layer below calls back up.

pub mod drive;
pub mod proxy_header;
pub mod stream;
pub mod tls_client;

pub use drive::{Dialogue, Interrupted, Phase, Tls, drive, leftover, write_all};
pub use proxy_header::{ProxyHeader, ProxyHeaderError, read_proxy_header};
pub use stream::Stream;

use tokio::sync::watch;

/// Resolves once the process-wide shutdown flag is set (or its sender is
/// gone). Every wait that must end on shutdown selects on this.
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
