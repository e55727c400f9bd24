//! The health page: what an admin checks first when mail stops. Listener
//! addresses and sessions come from the running server, provider state from
//! the token service, certificate expiry from the files, and upstream
//! reachability from a TCP connect bounded by [`CONNECT_CHECK`] and cached
//! for [`CHECK_CACHE`], so reloading the page never floods a provider.

use std::time::Duration;

use hyper::StatusCode;

use super::pages::{self, Section};
use super::views::provider_words;
use super::web::{Answer, Ctx, html};

/// Longest a reachability check waits for a TCP connect.
pub const CONNECT_CHECK: Duration = Duration::from_secs(2);
/// How long a reachability result is reused.
pub const CHECK_CACHE: Duration = Duration::from_secs(60);

pub async fn page(ctx: &Ctx<'_>) -> Answer {
    let config = ctx.probes.config();
    let listeners = config.listeners.iter().map(listener_row).collect();
    let mut providers: Vec<(String, String)> = config
        .providers
        .iter()
        .map(|p| (p.name.clone(), "ok".to_owned()))
        .collect();
    let last_ok = last_token_per_provider(ctx).await;
    for row in &mut providers {
        if let Some(at) = last_ok.get(&row.0) {
            row.1 = format!("{}; last token {}", row.1, at);
        }
    }
    for (name, health) in ctx.probes.tokens.provider_health() {
        if let Some(row) = providers.iter_mut().find(|r| r.0 == name) {
            row.1 = provider_words(&health);
        }
    }
    let unregistered = ctx
        .probes
        .unregistered
        .lock()
        .map(|u| u.clone())
        .unwrap_or_default();
    for (name, fix) in unregistered {
        if let Some(row) = providers.iter_mut().find(|r| r.0 == name) {
            row.1 = format!("configuration fault: {fix}");
        }
    }
    let mut upstreams = Vec::new();
    let mut seen = Vec::new();
    for l in &config.listeners {
        let target = format!("{}:{}", l.upstream.host, l.upstream.port);
        if seen.contains(&target) {
            continue;
        }
        seen.push(target.clone());
        let state = ctx.probes.web.reachable(&target).await;
        upstreams.push((target, state));
    }
    let certificates = certificates(&config);
    let sections = vec![
        Section {
            id: "listeners",
            title: "Listeners",
            head: LISTENER_HEAD,
            rows: listeners,
        },
        Section {
            id: "providers",
            title: "Providers",
            head: &[],
            rows: pairs(providers),
        },
        Section {
            id: "certificates",
            title: "Certificates",
            head: &[],
            rows: pairs(certificates),
        },
        Section {
            id: "upstreams",
            title: "Upstreams",
            head: &[],
            rows: pairs(upstreams),
        },
    ];
    html(
        StatusCode::OK,
        &pages::Health {
            f: ctx.frame("Health"),
            sections,
        },
    )
}

const LISTENER_HEAD: &[&str] = &[
    "Name",
    "Protocol",
    "Address",
    "Local TLS",
    "Sending",
    "Sessions now",
];

/// A listener in words: what it speaks, where, how clients secure it and
/// (SMTP) how it sends.
fn listener_row(l: &crate::config::Listener) -> Vec<String> {
    use crate::config::{LocalTls, SubmitMode};
    let tls = match l.tls {
        LocalTls::None => "none (plain)",
        LocalTls::StartTls => "STARTTLS",
        LocalTls::Implicit => "implicit TLS",
    };
    let sending = match (l.protocol.as_str(), l.submit) {
        ("smtp", SubmitMode::Smtp) => "SMTP relay",
        ("smtp", SubmitMode::Graph) => "Microsoft Graph",
        ("smtp", SubmitMode::Auto) => "SMTP, Graph where SMTP AUTH is off",
        _ => "—",
    };
    vec![
        l.name.clone(),
        l.protocol.as_str().to_uppercase(),
        l.bind.to_string(),
        tls.to_owned(),
        sending.to_owned(),
        crate::metrics::global().sessions_now(&l.name).to_string(),
    ]
}

fn pairs(rows: Vec<(String, String)>) -> Vec<Vec<String>> {
    rows.into_iter().map(|(k, v)| vec![k, v]).collect()
}

/// Per provider: how long ago its latest successful token request was
/// (delegated accounts' last refresh, or its app-only token's).
async fn last_token_per_provider(ctx: &Ctx<'_>) -> std::collections::HashMap<String, String> {
    let now = std::time::SystemTime::now();
    let mut newest: std::collections::HashMap<String, Duration> = std::collections::HashMap::new();
    let mut note = |provider: &str, age: Duration| {
        let e = newest.entry(provider.to_owned()).or_insert(age);
        *e = (*e).min(age);
    };
    for s in ctx.probes.admin().accounts().await.unwrap_or_default() {
        if let Some(age) = s.last_refresh.and_then(|t| now.duration_since(t).ok()) {
            note(&s.provider, age);
        }
    }
    for age in ctx.probes.tokens.token_ages() {
        if let (Some(provider), Some(d)) = (age.account.strip_prefix("app:"), age.since_refresh) {
            note(provider, d);
        }
    }
    newest
        .into_iter()
        .map(|(p, d)| (p, format!("{} ago", pages::ago(d.as_secs()))))
        .collect()
}

/// Every certificate the gateway uses, with its expiry in words.
fn certificates(config: &crate::config::Config) -> Vec<(String, String)> {
    let local = config.state_dir.join("tls").join("cert.pem");
    let mut out = vec![(
        "local certificate".to_owned(),
        if local.exists() {
            expiry_words(&local)
        } else {
            "none generated yet".to_owned()
        },
    )];
    for l in &config.listeners {
        if let Some((cert, _)) = &l.cert {
            out.push((format!("listener {}", l.name), expiry_words(cert)));
        }
    }
    if let Some((cert, _)) = config.admin.as_ref().and_then(|a| a.cert.as_ref()) {
        out.push(("admin listener".to_owned(), expiry_words(cert)));
    }
    for p in &config.providers {
        if let Some(cert) = &p.client_certificate {
            out.push((
                format!("provider {} client certificate", p.name),
                expiry_words(cert),
            ));
        } else if p.client_secret.is_some() {
            out.push((
                format!("provider {} client secret", p.name),
                "expiry not known to mailgate: see the app registration's Certificates & secrets"
                    .to_owned(),
            ));
        }
    }
    out
}

fn expiry_words(path: &std::path::Path) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match super::certs::not_after(path) {
        Ok(at) if at <= now => format!("{}: EXPIRED {} UTC", path.display(), pages::utc(at)),
        Ok(at) => format!(
            "{}: expires {} UTC (in {})",
            path.display(),
            pages::utc(at),
            pages::ago(at - now)
        ),
        Err(error) => format!("{}: cannot read: {error}", path.display()),
    }
}

/// Whether `target` accepts a TCP connection within [`CONNECT_CHECK`].
pub async fn connect_check(target: &str) -> String {
    match tokio::time::timeout(CONNECT_CHECK, tokio::net::TcpStream::connect(target)).await {
        Ok(Ok(_)) => "reachable".to_owned(),
        Ok(Err(error)) => format!("unreachable: {error}"),
        Err(_) => format!(
            "unreachable: no answer within {} s",
            CONNECT_CHECK.as_secs()
        ),
    }
}
