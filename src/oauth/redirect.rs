//! The one-shot redirect listener for the browser flow (RFC 8252 §7.3: a
//! native app receives the authorization response on a loopback port).
//!
//! It listens on the loopback addresses only (127.0.0.1, and ::1 when
//! available), serves HTTP/1 with hyper, answers the first
//! request to `/` that carries `code` or `error` and then stops. Browsers open
//! spare connections and ask for `/favicon.ico`, so several connections are
//! served side by side, each bounded in time, and anything but `/` gets 404.

use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Connections served at once while waiting for the redirect.
pub const MAX_CONNECTIONS: usize = 8;
/// Longest a single browser connection may stay open.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest request target accepted.
pub const MAX_TARGET: usize = 16 * 1024;
/// Time given to the last connection to deliver the closing page.
const FLUSH_GRACE: Duration = Duration::from_secs(2);

const PAGE_DONE: &str = "<!doctype html><meta charset=utf-8><title>mailgate</title>\
<p>Sign-in received. You can close this window and return to mailgate.</p>";
const PAGE_FAILED: &str = "<!doctype html><meta charset=utf-8><title>mailgate</title>\
<p>Sign-in did not complete. Return to mailgate for details.</p>";

/// What arrived on the redirect URI (RFC 6749 §4.1.2 and §4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    Code {
        code: String,
        state: String,
    },
    Error {
        error: String,
        description: String,
        state: String,
    },
}

/// Serves the listeners until one redirect arrives or `wait` passes (`None`).
/// `v6` is the same port on `[::1]`, for browsers that resolve `localhost`
/// to the IPv6 loopback first.
pub async fn receive(v4: TcpListener, v6: Option<TcpListener>, wait: Duration) -> Option<Redirect> {
    let (tx, mut rx) = mpsc::channel::<Redirect>(1);
    let mut conns = JoinSet::new();
    let deadline = tokio::time::Instant::now() + wait;
    let outcome = loop {
        tokio::select! {
            got = rx.recv() => break got,
            () = tokio::time::sleep_until(deadline) => break None,
            accepted = accept_either(&v4, v6.as_ref()), if conns.len() < MAX_CONNECTIONS => {
                let Ok(stream) = accepted else { continue };
                let tx = tx.clone();
                conns.spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(req, tx.clone()));
                    let conn = hyper::server::conn::http1::Builder::new()
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(stream), service);
                    let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    };
    let _ = tokio::time::timeout(FLUSH_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    outcome
}

async fn accept_either(v4: &TcpListener, v6: Option<&TcpListener>) -> std::io::Result<TcpStream> {
    match v6 {
        None => v4.accept().await.map(|(s, _)| s),
        Some(v6) => tokio::select! {
            r = v4.accept() => r.map(|(s, _)| s),
            r = v6.accept() => r.map(|(s, _)| s),
        },
    }
}

async fn handle(
    req: Request<Incoming>,
    tx: mpsc::Sender<Redirect>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let target_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if req.uri().path() != "/" || target_len > MAX_TARGET {
        return Ok(page(StatusCode::NOT_FOUND, "not found"));
    }
    let Some(redirect) = parse(req.uri().query().unwrap_or("")) else {
        return Ok(page(StatusCode::BAD_REQUEST, PAGE_FAILED));
    };
    let ok = matches!(redirect, Redirect::Code { .. });
    let _ = tx.try_send(redirect);
    Ok(if ok {
        page(StatusCode::OK, PAGE_DONE)
    } else {
        page(StatusCode::OK, PAGE_FAILED)
    })
}

fn page(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    r
}

/// The authorization response parameters, or `None` if neither `code` nor
/// `error` is present.
pub fn parse(query: &str) -> Option<Redirect> {
    let mut code = None;
    let mut error = None;
    let mut description = String::new();
    let mut state = String::new();
    for (k, v) in oauth2::url::form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "code" => code = Some(v.into_owned()),
            "error" => error = Some(v.into_owned()),
            "error_description" => description = v.into_owned(),
            "state" => state = v.into_owned(),
            _ => {}
        }
    }
    match (code, error) {
        (_, Some(error)) => Some(Redirect::Error {
            error,
            description,
            state,
        }),
        (Some(code), None) => Some(Redirect::Code { code, state }),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_code_error_and_nothing() {
        assert_eq!(
            parse("code=abc%2Fd&state=s1&session_state=x"),
            Some(Redirect::Code {
                code: "abc/d".into(),
                state: "s1".into()
            })
        );
        assert_eq!(
            parse("error=access_denied&error_description=AADSTS65004%3A+declined&state=s"),
            Some(Redirect::Error {
                error: "access_denied".into(),
                description: "AADSTS65004: declined".into(),
                state: "s".into()
            })
        );
        assert_eq!(parse(""), None);
        assert_eq!(parse("state=s"), None);
    }
}
