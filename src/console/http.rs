//! Serving admin connections: the allow-list, the connection cap, optional
//! TLS, then HTTP/1.1 through hyper with a bounded request head, no request
//! body and one request per connection. Every limit is a constant here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Body, Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tracing::{debug, warn};

use super::routes;
use super::{Probes, Settings};

/// Admin connections served at once; more are closed on accept. Probes
/// and scrapes are few; this only stops a flood from costing memory.
pub const MAX_CONNECTIONS: usize = 16;
/// Longest an admin connection may stay open, TLS handshake included.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line and headers) read; hyper's minimum.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most request headers accepted.
pub const MAX_HEADERS: usize = 32;

/// Accepts until `stop`; each connection runs in its own task.
pub async fn accept_loop(
    socket: TcpListener,
    settings: watch::Receiver<Arc<Settings>>,
    probes: Arc<Probes>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.changed() => return,
            accepted = socket.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    warn!(%error, "admin listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let current = settings.borrow().clone();
        if !current.admin.admits(peer.ip()) {
            debug!(%peer, "admin connection from outside allowed_networks dropped");
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            warn!(%peer, "admin listener: connection limit reached; refusing");
            continue;
        };
        let probes = probes.clone();
        tokio::spawn(async move {
            let served =
                tokio::time::timeout(CONNECTION_TIMEOUT, serve(tcp, peer, current, probes));
            if served.await.is_err() {
                debug!(%peer, "admin connection timed out");
            }
            drop(slot);
        });
    }
}

async fn serve(tcp: TcpStream, peer: SocketAddr, settings: Arc<Settings>, probes: Arc<Probes>) {
    let per_account = settings.admin.per_account_metrics;
    let service = hyper::service::service_fn(move |req| {
        let probes = probes.clone();
        async move { Ok::<_, std::convert::Infallible>(answer(req, &probes, per_account).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .keep_alive(false)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS);
    let result = match &settings.acceptor {
        None => builder.serve_connection(TokioIo::new(tcp), service).await,
        Some(acceptor) => match acceptor.accept(tcp).await {
            Ok(tls) => builder.serve_connection(TokioIo::new(tls), service).await,
            Err(error) => {
                debug!(%peer, %error, "admin TLS handshake failed");
                return;
            }
        },
    };
    if let Err(error) = result {
        debug!(%peer, %error, "admin connection ended with an error");
    }
}

/// The response to one request; a request that carries a body is refused
/// before routing (no admin route takes one yet).
async fn answer(
    req: Request<Incoming>,
    probes: &Probes,
    per_account: bool,
) -> Response<Full<Bytes>> {
    if !req.body().is_end_stream() {
        return routes::text(
            hyper::StatusCode::PAYLOAD_TOO_LARGE,
            "request bodies are not accepted\n",
        );
    }
    routes::route(req.method(), req.uri().path(), probes, per_account).await
}
