//! The console's GET pages. They read; every change is a POST
//! ([`super::actions`]).

use std::time::SystemTime;

use hyper::StatusCode;

use super::flows::View;
use super::pages::{self, Row};
use super::web::{Answer, Ctx, flash_text, html, login_cookie, redirect};
use crate::token::ProviderHealth;

/// States the accounts page filters on.
pub const STATES: &[&str] = &["active", "needs login", "refresh failing", "locked out"];
/// Columns the accounts page sorts by.
pub const SORTS: &[&str] = &["mailbox", "state", "expiry"];

pub async fn public_get(ctx: &Ctx<'_>) -> Answer {
    let path = ctx.req.path.as_str();
    if path == "/login" {
        if ctx.session.is_some() {
            return redirect("/accounts", None);
        }
        return login_page(ctx, None);
    }
    let rest = path.trim_start_matches("/self/");
    if let Some(token) = rest.strip_suffix("/flow") {
        return match ctx
            .probes
            .web
            .self_flows
            .lock()
            .ok()
            .and_then(|m| m.get(token).cloned())
        {
            Some(id) => flow_page(ctx, &id),
            None => self_page(ctx, token),
        };
    }
    self_page(ctx, rest)
}

/// The sign-in page with its double-submit token: the browser's existing
/// `mailgate_login` cookie when it is one the console minted (so a second
/// tab or a stray request does not invalidate a form already shown), a
/// fresh one otherwise.
pub fn login_page(ctx: &Ctx<'_>, error: Option<&str>) -> Answer {
    let existing = ctx
        .req
        .cookie(super::session::LOGIN_COOKIE)
        .filter(|c| super::session::is_token(c));
    let Some(csrf) = existing.or_else(super::session::token) else {
        return super::web::text(StatusCode::SERVICE_UNAVAILABLE, "no randomness\n");
    };
    let mut f = ctx.frame("Sign in");
    f.error = error.map(str::to_owned);
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let page = html(
        status,
        &pages::Login {
            f,
            csrf: csrf.clone(),
        },
    );
    super::web::with_cookie(page, &login_cookie(&csrf, ctx.req.tls))
}

fn self_page(ctx: &Ctx<'_>, token: &str) -> Answer {
    let mut f = ctx.frame("Enrol your mailbox");
    let account = match ctx.probes.web.links.check(token) {
        Ok(account) => Some(account),
        Err(refused) => {
            f.error = Some(refused.words().to_owned());
            None
        }
    };
    let status = if account.is_some() {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    html(
        status,
        &pages::SelfService {
            f,
            token: token.to_owned(),
            account,
        },
    )
}

pub async fn get(ctx: &Ctx<'_>) -> Answer {
    let path = ctx.req.path.as_str();
    match path {
        "/" => redirect("/accounts", None),
        "/accounts" => accounts(ctx).await,
        "/enrol" => enrol(ctx),
        "/links" => super::actions::links_page(ctx, None),
        "/health" => super::health::page(ctx).await,
        "/events" => events(ctx).await,
        _ => match path.strip_prefix("/enrol/") {
            Some(id) => flow_page(ctx, id),
            None => super::web::text(StatusCode::NOT_FOUND, "not found\n"),
        },
    }
}

fn enrol(ctx: &Ctx<'_>) -> Answer {
    let config = ctx.probes.config();
    html(
        StatusCode::OK,
        &pages::Enrol {
            f: ctx.frame("Enrol an account"),
            csrf: ctx.csrf(),
            account: ctx.req.query().get("account").to_owned(),
            providers: config.providers.iter().map(|p| p.name.clone()).collect(),
        },
    )
}

/// The enrolment page of flow `id` (admin or self-service).
pub fn flow_page(ctx: &Ctx<'_>, id: &str) -> Answer {
    let mut f = ctx.frame("Enrolment");
    let Some(view) = ctx.probes.web.flows.view(id) else {
        f.error = Some("This enrolment is not known (it may have ended long ago).".to_owned());
        return html(StatusCode::NOT_FOUND, &pages::Message { f });
    };
    let mut page = pages::Flow {
        f,
        account: String::new(),
        waiting: false,
        uri: String::new(),
        user_code: String::new(),
        qr: String::new(),
        enrolled: false,
        password: None,
        generated: false,
        graph: None,
    };
    match view {
        View::Waiting {
            account,
            user_code,
            verification_uri,
        } => {
            page.account = account;
            page.waiting = true;
            page.qr = pages::qr_svg(&verification_uri);
            page.uri = verification_uri;
            page.user_code = user_code;
        }
        View::Enrolled {
            account,
            password,
            generated,
            graph,
        } => {
            page.account = account;
            page.enrolled = true;
            page.graph = graph;
            page.password = password.map(|p| p.expose().clone());
            page.generated = generated;
        }
        View::Failed { account, reason } => {
            page.account = account;
            page.f.error = Some(format!("The enrolment failed: {reason}"));
        }
    }
    html(StatusCode::OK, &page)
}

async fn accounts(ctx: &Ctx<'_>) -> Answer {
    let admin = ctx.probes.admin();
    let query = ctx.req.query();
    let mut f = ctx.frame("Accounts");
    f.flash = flash_text(query.get("flash")).map(str::to_owned);
    let summaries = match admin.accounts().await {
        Ok(s) => s,
        Err(error) => {
            f.error = Some(format!("The token store cannot be read: {error}"));
            Vec::new()
        }
    };
    let sessions = ctx.probes.web.open_sessions();
    let switched = ctx.probes.web.graph_switched();
    let graph = |mailbox: &str| {
        switched
            .get(&mailbox.to_lowercase())
            .map_or(String::new(), |d| {
                format!("sends through Graph since {} ago", pages::ago(d.as_secs()))
            })
    };
    let now = SystemTime::now();
    let secs = |t: Option<SystemTime>, later: bool| {
        t.and_then(|t| {
            if later {
                t.duration_since(now).ok()
            } else {
                now.duration_since(t).ok()
            }
        })
        .map(|d| d.as_secs())
    };
    let mut rows: Vec<(Row, u64)> = summaries
        .into_iter()
        .map(|s| {
            let locked = admin.locked_out(&s.account);
            let expires_in = secs(s.access_expires_at, true);
            let row = Row {
                name: s.account.as_str().to_owned(),
                url_name: encode(s.account.as_str()),
                mailbox: s.sasl_user.clone(),
                kind: "delegated",
                provider: s.provider.clone(),
                state: if locked {
                    "locked out"
                } else {
                    state_words(s.state)
                },
                expiry: expires_in
                    .map_or("expired".to_owned(), |e| format!("in {}", pages::ago(e))),
                refresh_age: secs(s.last_refresh, false)
                    .map_or("never".to_owned(), |a| format!("{} ago", pages::ago(a))),
                last_login: secs(s.last_used, false)
                    .map_or("never".to_owned(), |a| format!("{} ago", pages::ago(a))),
                last_error: s.last_error.as_deref().map(plain_error).unwrap_or_default(),
                sessions: sessions.get(&s.account).copied().unwrap_or(0),
                graph: graph(s.account.as_str()),
                enrolled: true,
            };
            (row, expires_in.unwrap_or(0))
        })
        .collect();
    let delegates: Vec<(String, &'static str, String)> = rows
        .iter()
        .map(|(r, _)| (r.name.clone(), r.state, r.provider.clone()))
        .collect();
    rows.extend(rule_rows(ctx, &delegates));
    let q = query.get("q").to_lowercase();
    let state = query.get("state");
    rows.retain(|(r, _)| {
        (q.is_empty() || r.name.contains(&q) || r.mailbox.to_lowercase().contains(&q))
            && (state.is_empty() || r.state == state)
    });
    let sort = if SORTS.contains(&query.get("sort")) {
        query.get("sort")
    } else {
        "mailbox"
    };
    match sort {
        "state" => rows.sort_by(|a, b| a.0.state.cmp(b.0.state).then(a.0.name.cmp(&b.0.name))),
        "expiry" => rows.sort_by_key(|r| r.1),
        _ => rows.sort_by(|a, b| a.0.name.cmp(&b.0.name)),
    }
    html(
        StatusCode::OK,
        &pages::Accounts {
            f,
            csrf: ctx.csrf(),
            rows: rows.into_iter().map(|(r, _)| r).collect(),
            q,
            state: state.to_owned(),
            sort: sort.to_owned(),
            states: STATES,
            sorts: SORTS,
        },
    )
}

/// The config's app-only and shared rules: no tokens of their own, shown
/// with their kind (a shared mailbox with its delegate's state).
fn rule_rows(ctx: &Ctx<'_>, delegates: &[(String, &'static str, String)]) -> Vec<(Row, u64)> {
    let config = ctx.probes.config();
    config
        .accounts
        .iter()
        .map(|r| {
            let (kind, delegate) = match &r.kind {
                crate::config::AccountKind::AppOnly { .. } => ("app-only", None),
                crate::config::AccountKind::Shared { delegate } => (
                    "shared",
                    delegates.iter().find(|d| d.0 == delegate.to_lowercase()),
                ),
            };
            let locked = ctx
                .probes
                .web
                .guard()
                .is_some_and(|g| g.target_locked(&crate::guard::Target::Rule(r.login.clone())));
            let row = Row {
                name: r.login.clone(),
                url_name: encode(&r.login),
                mailbox: r.login.clone(),
                kind,
                provider: r
                    .provider
                    .clone()
                    .or_else(|| delegate.map(|d| d.2.clone()))
                    .unwrap_or_default(),
                state: match (locked, kind, delegate) {
                    (true, _, _) => "locked out",
                    (false, "shared", Some(d)) => d.1,
                    (false, "shared", None) => "needs login",
                    _ => "active",
                },
                expiry: String::new(),
                refresh_age: String::new(),
                last_login: String::new(),
                last_error: match (kind, delegate) {
                    ("shared", Some(d)) => format!("through {}'s sign-in", d.0),
                    ("shared", None) => "its delegate is not enrolled: enrol it".to_owned(),
                    _ => String::new(),
                },
                sessions: 0,
                graph: String::new(),
                enrolled: false,
            };
            (row, u64::MAX)
        })
        .collect()
}

fn state_words(state: crate::store::AccountState) -> &'static str {
    match state {
        crate::store::AccountState::Active => "active",
        crate::store::AccountState::NeedsLogin => "needs login",
        crate::store::AccountState::RefreshFailing => "refresh failing",
    }
}

/// The stored error with what to do about it.
fn plain_error(error: &str) -> String {
    let lower = error.to_lowercase();
    let fix = if lower.contains("invalid_grant")
        || lower.contains("expired")
        || lower.contains("revoked")
    {
        "The sign-in expired or was revoked: re-authorise the account."
    } else if lower.contains("invalid_client") || lower.contains("unauthorized_client") {
        "The provider refuses the app registration: check client_id and the secret (see Health)."
    } else {
        "Usually temporary; if it persists, re-authorise the account."
    };
    format!("{error} — {fix}")
}

/// `name` percent-encoded for a URL path segment.
pub fn encode(name: &str) -> String {
    form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

async fn events(ctx: &Ctx<'_>) -> Answer {
    let events = ctx.probes.admin().events(500).await;
    let rows = events
        .into_iter()
        .map(|e| {
            (
                pages::utc_seconds(e.when),
                e.who,
                e.what,
                e.account.unwrap_or_default(),
                e.from.unwrap_or_default(),
            )
        })
        .collect();
    html(
        StatusCode::OK,
        &pages::Events {
            f: ctx.frame("Events"),
            events: rows,
        },
    )
}

/// Names the health page uses for a provider's state.
pub fn provider_words(health: &ProviderHealth) -> String {
    match health {
        ProviderHealth::ConfigFault { error, fix } => {
            format!("configuration fault: {fix} ({error})")
        }
        _ => "ok".to_owned(),
    }
}
