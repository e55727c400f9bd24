//! The process's metrics, in one registry that every layer records into and
//! the admin listener's `/metrics` renders (Prometheus/OpenMetrics text).
//!
//! It sits at the bottom of the layer order so that `session`, `relay`,
//! `token`, `guard` and `gate` can all count without reaching upwards, and it
//! is one process-wide value because what it counts (sessions, logins, bytes)
//! belongs to the process, not to one configuration: a reload keeps the
//! counts. Labels are fixed, small sets (listener names, protocols,
//! outcomes); account names never appear here. The per-account token gauges
//! are built at scrape time from the token service, and only when the admin
//! allows it (`[admin] per_account_metrics`), so no label here ever carries
//! a name, let alone a secret.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::base::Protocol;

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the latency histograms: from a fast local
/// upstream to the login timeout's order of magnitude.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabel {
    pub listener: String,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(
    non_camel_case_types,
    reason = "the variant names are the label values Prometheus shows"
)]
pub enum LoginOutcome {
    ok,
    wrong_password,
    needs_login,
    temporary,
    upstream_rejected,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoginLabels {
    pub protocol: &'static str,
    pub outcome: LoginOutcome,
}

/// Whether a login found a prewarmed upstream connection.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(
    non_camel_case_types,
    reason = "the variant names are the label values Prometheus shows"
)]
pub enum PrewarmOutcome {
    hit,
    miss,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PrewarmLabels {
    pub listener: String,
    pub outcome: PrewarmOutcome,
}

/// The OAuth grants mailgate uses while serving.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(
    non_camel_case_types,
    reason = "the variant names are the label values Prometheus shows"
)]
pub enum GrantKind {
    refresh_token,
    client_credentials,
}

/// How a token request ended, by what it means (`oauth::Fault`).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(
    non_camel_case_types,
    reason = "the variant names are the label values Prometheus shows"
)]
pub enum TokenOutcome {
    ok,
    temporary,
    config_fault,
    needs_login,
    save_failed,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub grant: GrantKind,
    pub outcome: TokenOutcome,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(
    non_camel_case_types,
    reason = "the variant names are the label values Prometheus shows"
)]
pub enum Direction {
    client_to_upstream,
    upstream_to_client,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabel {
    pub direction: Direction,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabel {
    pub protocol: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Adds `bytes` to a byte counter (saturating a count no `usize` reaches).
pub fn count_bytes(counter: &Counter, bytes: usize) {
    if bytes > 0 {
        counter.inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
    }
}

/// Every metric the process records.
pub struct Metrics {
    registry: Registry,
    sessions_active: Family<ListenerLabel, Gauge>,
    logins: Family<LoginLabels, Counter>,
    token_requests: Family<TokenLabels, Counter>,
    relayed_bytes: Family<DirectionLabel, Counter>,
    upstream_login_seconds: Histograms<ProtocolLabel>,
    lockout_refusals: Counter,
    mailbox_queue_wait_seconds: Histogram,
    prewarm_pooled: Family<ListenerLabel, Gauge>,
    prewarm_takes: Family<PrewarmLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("mailgate");
        let m = Self {
            registry: Registry::default(),
            sessions_active: Family::default(),
            logins: Family::default(),
            token_requests: Family::default(),
            relayed_bytes: Family::default(),
            upstream_login_seconds: Family::new_with_constructor(latency_histogram),
            lockout_refusals: Counter::default(),
            mailbox_queue_wait_seconds: latency_histogram(),
            prewarm_pooled: Family::default(),
            prewarm_takes: Family::default(),
        };
        registry.register(
            "sessions_active",
            "Client connections being served, per listener",
            m.sessions_active.clone(),
        );
        registry.register(
            "logins",
            "Client logins by protocol and outcome",
            m.logins.clone(),
        );
        registry.register(
            "token_requests",
            "Requests to the identity provider's token endpoint, by grant and outcome",
            m.token_requests.clone(),
        );
        registry.register(
            "relayed_bytes",
            "Bytes relayed after login, per direction, counted as they pass",
            m.relayed_bytes.clone(),
        );
        registry.register(
            "upstream_login_seconds",
            "Time from connecting to the provider to its XOAUTH2 answer",
            m.upstream_login_seconds.clone(),
        );
        registry.register(
            "lockout_refusals",
            "Logins refused at once because their source or account is locked out",
            m.lockout_refusals.clone(),
        );
        registry.register(
            "mailbox_queue_wait_seconds",
            "Time a login waited for a free per-mailbox upstream slot",
            m.mailbox_queue_wait_seconds.clone(),
        );
        registry.register(
            "prewarm_pooled",
            "Upstream connections connected ahead of logins and waiting, per listener",
            m.prewarm_pooled.clone(),
        );
        registry.register(
            "prewarm_takes",
            "Upstream logins that found a prewarmed connection (hit) or connected (miss)",
            m.prewarm_takes.clone(),
        );
        Self { registry, ..m }
    }

    /// Counts a session of `listener` as active until the guard drops.
    pub fn session(&self, listener: &str) -> SessionGuard {
        let gauge = self
            .sessions_active
            .get_or_create(&ListenerLabel {
                listener: listener.to_owned(),
            })
            .clone();
        gauge.inc();
        SessionGuard(gauge)
    }

    /// Sessions of `listener` being served now (the console's health page).
    pub fn sessions_now(&self, listener: &str) -> i64 {
        let label = ListenerLabel {
            listener: listener.to_owned(),
        };
        self.sessions_active.get(&label).map_or(0, |g| g.get())
    }

    pub fn login(&self, protocol: Protocol, outcome: LoginOutcome) {
        let labels = LoginLabels {
            protocol: protocol.as_str(),
            outcome,
        };
        self.logins.get_or_create(&labels).inc();
    }

    pub fn token_request(&self, grant: GrantKind, outcome: TokenOutcome) {
        let labels = TokenLabels { grant, outcome };
        self.token_requests.get_or_create(&labels).inc();
    }

    /// The counter of one direction, for a relay to hold for its whole
    /// session: the hot path then adds to an atomic, without looking the
    /// label up in the shared family on every read.
    pub fn relayed_counter(&self, direction: Direction) -> Counter {
        self.relayed_bytes
            .get_or_create(&DirectionLabel { direction })
            .clone()
    }

    pub fn upstream_login(&self, protocol: Protocol, took: Duration) {
        let labels = ProtocolLabel {
            protocol: protocol.as_str(),
        };
        self.upstream_login_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    pub fn lockout_refusal(&self) {
        self.lockout_refusals.inc();
    }

    /// The gauge of `listener`'s waiting prewarmed connections, for its
    /// pool to hold.
    pub fn prewarm_pooled(&self, listener: &str) -> Gauge {
        self.prewarm_pooled
            .get_or_create(&ListenerLabel {
                listener: listener.to_owned(),
            })
            .clone()
    }

    pub fn prewarm_take(&self, listener: &str, outcome: PrewarmOutcome) {
        let labels = PrewarmLabels {
            listener: listener.to_owned(),
            outcome,
        };
        self.prewarm_takes.get_or_create(&labels).inc();
    }

    pub fn mailbox_queue_wait(&self, took: Duration) {
        self.mailbox_queue_wait_seconds.observe(took.as_secs_f64());
    }
}

/// Keeps one session counted in `mailgate_sessions_active`.
pub struct SessionGuard(Gauge);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// The text exposition of the process's metrics followed by `extra`, a
/// registry built for this scrape (the token gauges).
pub fn render(extra: &Registry) -> String {
    use prometheus_client::encoding::text;
    let mut out = String::new();
    // Writing into a String cannot fail; an encoder error would only cut
    // the page short, which the scraper reports.
    let _ = text::encode_registry(&mut out, &global().registry)
        .and_then(|()| text::encode_registry(&mut out, extra))
        .and_then(|()| text::encode_eof(&mut out));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_recorded_values_with_their_labels() {
        let m = global();
        let guard = m.session("imap-test-render");
        m.login(Protocol::Pop3, LoginOutcome::wrong_password);
        count_bytes(&m.relayed_counter(Direction::upstream_to_client), 7);
        m.upstream_login(Protocol::Imap, Duration::from_millis(20));
        let text = render(&Registry::default());
        assert!(
            text.contains("mailgate_sessions_active{listener=\"imap-test-render\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("mailgate_logins_total{protocol=\"pop3\",outcome=\"wrong_password\"}"),
            "{text}"
        );
        assert!(
            text.contains("mailgate_relayed_bytes_total{direction=\"upstream_to_client\"}"),
            "{text}"
        );
        assert!(
            text.contains("mailgate_upstream_login_seconds_bucket{"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        drop(guard);
        let text = render(&Registry::default());
        assert!(
            text.contains("mailgate_sessions_active{listener=\"imap-test-render\"} 0"),
            "{text}"
        );
    }
}
