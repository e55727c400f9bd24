//! The admin routes. `/healthz` says the process answers; `/readyz` says it
//! can do its job (mail listeners bound, token store readable, no provider
//! in a configuration fault) and, when it cannot, lists what is wrong in
//! plain text for whoever reads the probe's log; `/metrics` is the
//! Prometheus scrape. Only GET and HEAD are served.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Response, StatusCode};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Probes;
use crate::metrics;
use crate::store::StoreError;
use crate::token::ProviderHealth;

/// What a request asks for.
enum Route {
    Health,
    Ready,
    Metrics,
}

fn find(path: &str) -> Option<Route> {
    match path {
        "/healthz" => Some(Route::Health),
        "/readyz" => Some(Route::Ready),
        "/metrics" => Some(Route::Metrics),
        _ => None,
    }
}

pub async fn route(
    method: &Method,
    path: &str,
    probes: &Probes,
    per_account: bool,
) -> Response<Full<Bytes>> {
    let Some(route) = find(path) else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    if method != Method::GET && method != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match route {
        Route::Health => text(StatusCode::OK, "ok\n"),
        Route::Ready => ready(probes).await,
        Route::Metrics => scrape(probes, per_account),
    }
}

/// A plain-text response that no cache keeps.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    with_type(status, body.into(), "text/plain; charset=utf-8")
}

fn with_type(status: StatusCode, body: Bytes, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn ready(probes: &Probes) -> Response<Full<Bytes>> {
    let problems = not_ready(probes).await;
    if problems.is_empty() {
        return text(StatusCode::OK, "ready\n");
    }
    let mut body = String::new();
    for problem in problems {
        let _ = writeln!(body, "{problem}");
    }
    text(StatusCode::SERVICE_UNAVAILABLE, body)
}

/// One line per reason the proxy is not ready; empty when it is.
async fn not_ready(probes: &Probes) -> Vec<String> {
    let mut problems = Vec::new();
    if !probes.listeners_bound.load(Ordering::Relaxed) {
        problems.push("listeners: not bound yet".to_owned());
    }
    let store = probes.tokens.store().clone();
    let read = move || {
        store.backend().check()?;
        store.list_each()
    };
    match tokio::task::spawn_blocking(read).await {
        Ok(Ok(_)) => {}
        Ok(Err(error @ StoreError::Unavailable { .. })) => {
            problems.push(format!("store: unreachable: {error}"));
        }
        Ok(Err(error)) => problems.push(format!("store: unreadable: {error}")),
        Err(_) => problems.push("store: the read did not complete".to_owned()),
    }
    let unregistered = probes
        .unregistered
        .lock()
        .map(|u| u.clone())
        .unwrap_or_default();
    for (provider, fix) in unregistered {
        problems.push(format!("provider {provider}: configuration fault: {fix}"));
    }
    for (provider, health) in probes.tokens.provider_health() {
        if let ProviderHealth::ConfigFault { error, fix } = health {
            problems.push(format!(
                "provider {provider}: configuration fault: {fix} ({error})"
            ));
        }
    }
    problems
}

fn scrape(probes: &Probes, per_account: bool) -> Response<Full<Bytes>> {
    let tokens = token_registry(probes, per_account);
    with_type(
        StatusCode::OK,
        Bytes::from(metrics::render(&tokens)),
        metrics::CONTENT_TYPE,
    )
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct AccountLabel {
    account: String,
}

type SecondsGauge = Gauge<f64, AtomicU64>;

const EXPIRES: &str = "token_expires_in_seconds";
const SINCE: &str = "token_since_refresh_seconds";

/// The token gauges of this scrape: per account when the admin allows
/// account names as labels, otherwise the worst case over all accounts
/// (the soonest expiry, the oldest refresh), which is what alerts need.
fn token_registry(probes: &Probes, per_account: bool) -> Registry {
    let ages = probes.tokens.token_ages();
    let mut registry = Registry::with_prefix("mailgate");
    if per_account {
        let expires: Family<AccountLabel, SecondsGauge> = Family::default();
        let since: Family<AccountLabel, SecondsGauge> = Family::default();
        for age in &ages {
            let label = AccountLabel {
                account: age.account.clone(),
            };
            if let Some(left) = age.expires_in_secs {
                expires.get_or_create(&label).set(left);
            }
            if let Some(d) = age.since_refresh {
                since.get_or_create(&label).set(d.as_secs_f64());
            }
        }
        registry.register(
            EXPIRES,
            "Seconds until each cached access token expires",
            expires,
        );
        registry.register(
            SINCE,
            "Seconds since each token's last successful refresh",
            since,
        );
        return registry;
    }
    let soonest = ages
        .iter()
        .filter_map(|a| a.expires_in_secs)
        .reduce(f64::min);
    let oldest = ages.iter().filter_map(|a| a.since_refresh).max();
    if let Some(left) = soonest {
        let gauge = SecondsGauge::default();
        gauge.set(left);
        registry.register(
            EXPIRES,
            "Seconds until the soonest-expiring cached access token expires",
            gauge,
        );
    }
    if let Some(d) = oldest {
        let gauge = SecondsGauge::default();
        gauge.set(d.as_secs_f64());
        registry.register(
            SINCE,
            "Seconds since the least recently refreshed token's last refresh",
            gauge,
        );
    }
    registry
}
