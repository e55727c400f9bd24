//! Serving admin connections: the allow-list, the connection cap, optional
//! TLS, then HTTP/1.1 through hyper with a bounded request head, no request
//! body (a bounded form body for console POSTs) and one request per
//! connection. Every limit is a constant here.

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

use http_body_util::BodyExt as _;

use super::{Probes, Settings};
use super::{form, routes, web};

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
    let tls = settings.acceptor.is_some();
    let config = settings.clone();
    let service = hyper::service::service_fn(move |req| {
        let probes = probes.clone();
        let settings = config.clone();
        async move {
            Ok::<_, std::convert::Infallible>(answer(req, &probes, &settings, peer, tls).await)
        }
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

/// The response to one request. The probes take no body; a console form
/// body is read up to [`form::MAX_BODY`] (a larger one is refused unread).
async fn answer(
    req: Request<Incoming>,
    probes: &Arc<Probes>,
    settings: &Settings,
    peer: SocketAddr,
    tls: bool,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    if routes::is_probe(&path) {
        if !req.body().is_end_stream() {
            return routes::text(
                hyper::StatusCode::PAYLOAD_TOO_LARGE,
                "request bodies are not accepted\n",
            );
        }
        let per_account = settings.admin.per_account_metrics;
        return routes::route(req.method(), &path, probes, per_account).await;
    }
    let (parts, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, form::MAX_BODY);
    let body = match limited.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return routes::text(
                hyper::StatusCode::PAYLOAD_TOO_LARGE,
                "the form is too large\n",
            );
        }
    };
    let req = web::Req {
        method: parts.method,
        path,
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers,
        body,
        peer,
        tls,
    };
    web::handle(probes, &settings.admin, req).await
}
