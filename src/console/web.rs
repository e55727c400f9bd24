//! The console's request handling: who may see what, before any page runs.
//! Without a configured `password_hash` every console page answers 404 with
//! the fix. Otherwise a GET without a live session goes to `/login` and a
//! POST without one is refused (403); every POST must carry the session's
//! CSRF token in its `csrf` field, and an `Origin` (or `Referer`) header,
//! when present, must name this listener. `/favicon.ico` answers 204
//! without a redirect. Self-service pages (`/self/…`) need no session: the
//! link's token is their credential.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, SET_COOKIE};
use hyper::{Method, Response, StatusCode};

use super::form::{self, Form};
use super::pages::{Frame, Message};
use super::session::{self, COOKIE, LOGIN_COOKIE, Session};
use super::{Probes, actions, views};
use crate::config::Admin as AdminConfig;

/// One console request, read and bounded by the HTTP layer.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub peer: SocketAddr,
    pub tls: bool,
}

impl Req {
    pub fn cookie(&self, name: &str) -> Option<String> {
        let header = self.headers.get(hyper::header::COOKIE)?;
        form::cookie(header.as_bytes(), name).map(str::to_owned)
    }

    pub fn query(&self) -> Form {
        Form::parse(self.query.as_bytes()).unwrap_or_default()
    }

    /// The absolute base URL the browser used (for self-service links).
    pub fn base_url(&self) -> String {
        let host = self
            .headers
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
            .map_or_else(|| self.peer.to_string(), str::to_owned);
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{host}")
    }

    /// Whether `Origin`/`Referer`, when present, point at this listener.
    fn same_origin(&self) -> bool {
        let base = self.base_url();
        let header = |name| {
            self.headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        if let Some(origin) = header(hyper::header::ORIGIN) {
            return origin == base;
        }
        if let Some(referer) = header(hyper::header::REFERER) {
            return referer == base || referer.starts_with(&format!("{base}/"));
        }
        true
    }
}

pub type Answer = Response<Full<Bytes>>;

/// The request's signed-in session, if any.
pub struct Ctx<'a> {
    pub probes: &'a Arc<Probes>,
    pub admin: &'a AdminConfig,
    pub req: &'a Req,
    pub session: Option<(String, Session)>,
}

impl Ctx<'_> {
    pub fn frame(&self, title: &'static str) -> Frame {
        Frame {
            title,
            gateway: self.probes.config().hostname.clone(),
            nav_csrf: self.session.as_ref().map(|(_, s)| s.csrf.clone()),
            flash: None,
            error: None,
        }
    }

    pub fn csrf(&self) -> String {
        self.session
            .as_ref()
            .map(|(_, s)| s.csrf.clone())
            .unwrap_or_default()
    }

    pub fn actor(&self, who: &str) -> crate::admin::Actor {
        crate::admin::Actor {
            who: who.to_owned(),
            from: Some(self.req.peer.ip().to_string()),
        }
    }
}

/// Answers a console request (anything but the probes).
pub async fn handle(probes: &Arc<Probes>, admin: &AdminConfig, req: Req) -> Answer {
    if admin.password_hash.is_none() {
        return text(
            StatusCode::NOT_FOUND,
            "The web console is off: set [admin] password_hash (from `mailgate hash-password`) to turn it on.\n",
        );
    }
    let session = req.cookie(COOKIE).and_then(|id| {
        let s = probes
            .web
            .sessions
            .find(&id, admin.session_idle, admin.session_max)?;
        Some((id, s))
    });
    let ctx = Ctx {
        probes,
        admin,
        req: &req,
        session,
    };
    let path = req.path.as_str();
    if path == "/favicon.ico" {
        return no_content();
    }
    let post = req.method == Method::POST;
    if req.method != Method::GET && !post {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and POST\n");
    }
    if path == "/login" || path.starts_with("/self/") {
        return if post {
            if !req.same_origin() {
                return forbidden(&ctx, "This form came from another site.");
            }
            actions::public_post(&ctx).await
        } else {
            views::public_get(&ctx).await
        };
    }
    let Some((_, s)) = &ctx.session else {
        return if post {
            forbidden(
                &ctx,
                "You are not signed in (or your session ended). Sign in again.",
            )
        } else {
            redirect("/login", None)
        };
    };
    if post {
        let Ok(form) = Form::parse(&req.body) else {
            return forbidden(&ctx, "The form was too large.");
        };
        if !session::same_token(form.get("csrf"), &s.csrf) || !req.same_origin() {
            return forbidden(
                &ctx,
                "This form has expired or came from another site. Go back, reload the page and try again.",
            );
        }
        return actions::post(&ctx, &form).await;
    }
    views::get(&ctx).await
}

/// 204 for the icon browsers ask for by themselves: the console has none,
/// and sending it to `/login` would mint a sign-in cookie per request.
fn no_content() -> Answer {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("max-age=86400"));
    r
}

/// 403 with the reason as the page's error.
pub fn forbidden(ctx: &Ctx<'_>, why: &str) -> Answer {
    let mut frame = ctx.frame("Refused");
    frame.error = Some(why.to_owned());
    html(StatusCode::FORBIDDEN, &Message { f: frame })
}

/// A page with `status`; a template that fails to render is a 500.
pub fn html(status: StatusCode, page: &impl askama::Template) -> Answer {
    match page.render() {
        Ok(body) => typed(status, body.into(), "text/html; charset=utf-8"),
        Err(error) => {
            tracing::warn!(%error, "console page failed to render");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render\n",
            )
        }
    }
}

pub fn text(status: StatusCode, body: &'static str) -> Answer {
    typed(
        status,
        Bytes::from_static(body.as_bytes()),
        "text/plain; charset=utf-8",
    )
}

fn typed(status: StatusCode, body: Bytes, content_type: &'static str) -> Answer {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"),
    );
    r
}

/// 303 to `to`, optionally setting a cookie.
pub fn redirect(to: &str, cookie: Option<String>) -> Answer {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(SET_COOKIE, c);
    }
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Adds a `Set-Cookie` to `r`.
pub fn with_cookie(mut r: Answer, cookie: &str) -> Answer {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(SET_COOKIE, v);
    }
    r
}

/// The flash message after an action. It travels through the 303 as a key
/// in the query (`?flash=unlocked`), and the page shows only the text the
/// console chose for that key: nothing from the URL is echoed.
pub fn flash_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "signed-out" => "The account was signed out: its tokens are removed.",
        "unlocked" => "The account is unlocked.",
        "not-locked" => "The account was not locked out.",
        "unknown" => "No such enrolled account.",
        "failed" => "The action failed; see the events page.",
        _ => return None,
    })
}

/// The session cookie for a fresh sign-in.
pub fn session_cookie(id: &str, tls: bool, max: Duration) -> String {
    session::set_cookie(COOKIE, id, tls, Some(max))
}

pub fn login_cookie(value: &str, tls: bool) -> String {
    session::set_cookie(LOGIN_COOKIE, value, tls, None)
}
