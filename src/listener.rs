//! Accepting connections: the allow-list, the total and per-address
//! connection limits (IPv6 addresses counted per prefix, `base::source_of`), and a refusal line in the client's own protocol when a
//! limit is hit (so a client logs "too many connections", not a mystery
//! reset).
//!
//! A connection from a load balancer listed in `proxy_protocol_from` first
//! has its PROXY header read (under the TLS handshake timeout, holding only
//! a slot of the total cap, which bounds how many wait for one): the real
//! client's address it names is what the allow-list, the per-address cap
//! and the session (guard, plaintext decision, logs) see. Each accepted connection gets its own task running the session
//! driver; the listener reads its session context from a watch channel so a
//! reload takes effect for new connections without touching live ones.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::base::{Protocol, source_of};
use crate::net::{ProxyHeader, read_proxy_header, stopped};
use crate::session::context::SessionContext;

/// Pause after an accept error (e.g. out of file descriptors) before retrying.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// Time allowed for writing the refusal line to a turned-away client.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Connection counts shared by every listener of the process.
pub struct ConnectionLimits {
    total: Arc<Semaphore>,
    max_total: usize,
    per_ip_max: usize,
    ipv6_prefix: u8,
    /// Open connections per source; an entry lives only while its source
    /// has one, so the table never outgrows `max_total`.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection let in under the limits, held by its session for its
/// lifetime; releases both counts on drop.
pub struct Admission {
    _total: OwnedSemaphorePermit,
    ip: IpAddr,
    limits: Arc<ConnectionLimits>,
}

/// A slot of the total cap, taken before the client's address is known
/// (a balancer's connection, until its PROXY header is read).
pub struct Reservation {
    total: OwnedSemaphorePermit,
    limits: Arc<ConnectionLimits>,
}

impl Reservation {
    /// Counts the connection against `ip`'s per-address cap too.
    pub fn admit(self, ip: IpAddr) -> Option<Admission> {
        let ip = source_of(ip, self.limits.ipv6_prefix);
        let mut map = self.limits.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= self.limits.per_ip_max {
            if *n == 0 {
                map.remove(&ip);
            }
            return None;
        }
        *n += 1;
        drop(map);
        Some(Admission {
            _total: self.total,
            ip,
            limits: self.limits,
        })
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut map = self.limits.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl ConnectionLimits {
    /// `ipv6_prefix`: how many leading bits of an IPv6 address name its source.
    pub fn new(max_total: usize, per_ip_max: usize, ipv6_prefix: u8) -> Arc<Self> {
        Arc::new(Self {
            total: Arc::new(Semaphore::new(max_total)),
            max_total,
            per_ip_max,
            ipv6_prefix,
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admission> {
        self.reserve()?.admit(ip)
    }

    /// A slot of the total cap only; see [`Reservation::admit`].
    pub fn reserve(self: &Arc<Self>) -> Option<Reservation> {
        let total = self.total.clone().try_acquire_owned().ok()?;
        Some(Reservation {
            total,
            limits: self.clone(),
        })
    }

    pub fn active(&self) -> usize {
        self.max_total - self.total.available_permits()
    }

    /// Waits until every session has ended or `grace` has passed.
    pub async fn drain(&self, grace: Duration) -> bool {
        let all = u32::try_from(self.max_total).unwrap_or(u32::MAX);
        tokio::time::timeout(grace, self.total.acquire_many(all))
            .await
            .is_ok()
    }
}

/// Accepts on `socket` until `stop` becomes true.
pub async fn accept_loop(
    socket: TcpListener,
    contexts: watch::Receiver<Arc<SessionContext>>,
    limits: Arc<ConnectionLimits>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = socket.accept() => accepted,
            () = stopped(&mut stop) => return,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                warn!(%error, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let ctx = contexts.borrow().clone();
        if ctx.listener.expects_proxy_header(peer.ip()) {
            let Some(reservation) = limits.reserve() else {
                warn!(via = %peer, listener = %ctx.listener.name, "connection limit reached; refusing");
                tokio::spawn(refuse(tcp, ctx.listener.protocol));
                continue;
            };
            tokio::spawn(proxied(ctx, tcp, peer, reservation));
            continue;
        }
        if !ctx.listener.admits(peer.ip()) {
            debug!(%peer, listener = %ctx.listener.name, "connection from outside allowed_networks dropped");
            continue;
        }
        let Some(admission) = limits.admit(peer.ip()) else {
            warn!(%peer, listener = %ctx.listener.name, "connection limit reached; refusing");
            tokio::spawn(refuse(tcp, ctx.listener.protocol));
            continue;
        };
        tokio::spawn(async move {
            crate::session::driver::run(ctx, tcp, peer, None).await;
            drop(admission);
        });
    }
}

/// A connection from a listed balancer: its PROXY header first, then the
/// checks on the client it names, then the session. A missing or bad header
/// closes the connection without a greeting.
async fn proxied(
    ctx: Arc<SessionContext>,
    mut tcp: TcpStream,
    balancer: std::net::SocketAddr,
    reservation: Reservation,
) {
    let listener = &ctx.listener.name;
    let deadline = Instant::now()
        + ctx
            .limits
            .tls_handshake_timeout
            .min(ctx.limits.preauth_timeout);
    let mut shutdown = ctx.shutdown.clone();
    let read = tokio::select! {
        read = read_proxy_header(&mut tcp, deadline) => read,
        () = stopped(&mut shutdown) => return,
    };
    let peer = match read {
        Ok(ProxyHeader::Proxied { source }) => source,
        Ok(ProxyHeader::Local) => balancer,
        Err(error) => {
            warn!(via = %balancer, %listener, %error, "balancer connection without a valid PROXY header; closing");
            return;
        }
    };
    if !ctx.listener.admits(peer.ip()) {
        debug!(%peer, via = %balancer, %listener, "connection from outside allowed_networks dropped");
        return;
    }
    let Some(admission) = reservation.admit(peer.ip()) else {
        warn!(%peer, via = %balancer, %listener, "connection limit reached; refusing");
        refuse(tcp, ctx.listener.protocol).await;
        return;
    };
    crate::session::driver::run(ctx, tcp, peer, Some(balancer)).await;
    drop(admission);
}

async fn refuse(mut tcp: TcpStream, protocol: Protocol) {
    let line: &[u8] = match protocol {
        Protocol::Imap => b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n",
        Protocol::Pop3 => b"-ERR [SYS/TEMP] Too many connections, try again later\r\n",
        Protocol::Smtp => b"421 4.7.0 Too many connections, try again later\r\n",
    };
    let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, tcp.write_all(line)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_and_per_ip_limits() {
        let limits = ConnectionLimits::new(3, 2, 64);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = limits.admit(a).unwrap();
        let _s2 = limits.admit(a).unwrap();
        assert!(limits.admit(a).is_none(), "per-address limit");
        let _s3 = limits.admit(b).unwrap();
        assert!(limits.admit(b).is_none(), "total limit");
        drop(s1);
        assert_eq!(limits.active(), 2);
        assert!(limits.admit(a).is_some());
    }

    #[test]
    fn a_reservation_holds_a_total_slot_until_its_client_is_known() {
        let limits = ConnectionLimits::new(2, 1, 64);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let waiting = limits.reserve().unwrap();
        let _held = limits.admit(a).unwrap();
        assert!(limits.reserve().is_none(), "the waiting header counts");
        assert!(
            waiting.admit(a).is_none(),
            "per-address cap of the named client"
        );
        assert_eq!(limits.active(), 1, "a refused reservation frees its slot");
        assert!(limits.per_ip.lock().unwrap().len() == 1);
        let b = limits.reserve().unwrap().admit("10.0.0.2".parse().unwrap());
        assert!(b.is_some());
        assert_eq!(limits.active(), 2);
    }

    #[test]
    fn ipv6_clients_count_per_prefix() {
        let limits = ConnectionLimits::new(10, 2, 64);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let _a = limits.admit(ip("2001:db8:0:1::1")).unwrap();
        let _b = limits.admit(ip("2001:db8:0:1::2")).unwrap();
        assert!(
            limits.admit(ip("2001:db8:0:1:ffff::3")).is_none(),
            "a third address of the same /64 is the same source"
        );
        assert!(limits.admit(ip("2001:db8:0:2::1")).is_some());
    }
}
