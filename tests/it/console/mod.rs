//! The web console over HTTP against the real binary: sign-in, sessions,
//! CSRF, every page and action. A small cookie-keeping client stands in for
//! the browser (the headless-browser tests drive the same pages).

mod access;
mod accounts;
mod enrol;
mod pages;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::hardening::binary::{self, Enrolled, Serve};
use crate::support::config::free_port;
use crate::support::fake_upstream::{FakeUpstream, Mode, Proto};

pub const ADMIN_PASSWORD: &str = "console-admin-pass-71";
const WAIT: Duration = Duration::from_secs(30);

/// An enrolled account, `serve` with one IMAP listener and the admin
/// listener with a console password and the `extra` `[admin]` keys.
pub struct Gateway {
    pub enrolled: Enrolled,
    pub serve: Serve,
    pub imap: u16,
    pub admin: u16,
    pub upstream: FakeUpstream,
}

impl Gateway {
    pub async fn start(tag: &str, extra: &str) -> Self {
        let upstream = FakeUpstream::start(Proto::Imap, Mode::Plain, None).await;
        let imap = free_port();
        let listener = binary::listener("imap", "imap", imap, upstream.port);
        let enrolled = Enrolled::new(tag, "console.test", std::slice::from_ref(&listener)).await;
        upstream.accept_token(&enrolled.access_token);
        let hash = mailgate::admin::Admin::hash_password(mailgate::secret::Secret::new(
            ADMIN_PASSWORD.to_owned(),
        ))
        .await
        .unwrap();
        let admin = free_port();
        let text = binary::config(
            &enrolled.idp,
            &enrolled.scratch.state(),
            "console.test",
            std::slice::from_ref(&listener),
        )
        .admin(&format!(
            "bind = \"127.0.0.1:{admin}\"\npassword_hash = \"{}\"\n{extra}",
            hash.expose()
        ))
        .toml();
        enrolled.scratch.write(&text);
        let serve = Serve::start(&enrolled.scratch);
        serve.wait_for("admin listener listening", 1).await;
        let _ = binary::connect(imap).await;
        Self {
            enrolled,
            serve,
            imap,
            admin,
            upstream,
        }
    }

    pub fn browser(&self) -> Browser {
        Browser::new(self.admin)
    }
}

/// An HTTP client that keeps cookies and never follows redirects.
pub struct Browser {
    pub http: reqwest::Client,
    base: String,
    pub cookies: HashMap<String, String>,
}

/// Status, `Location`, `Set-Cookie` headers and body of one answer.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: String,
    pub set_cookies: Vec<String>,
    pub body: String,
}

impl Browser {
    pub fn new(port: u16) -> Self {
        Self {
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            base: format!("http://127.0.0.1:{port}"),
            cookies: HashMap::new(),
        }
    }

    /// A client of the admin listener's TLS, trusting `pem` only.
    pub fn tls(port: u16, pem: &[u8]) -> Self {
        Self {
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .tls_certs_only([reqwest::Certificate::from_pem(pem).unwrap()])
                .build()
                .unwrap(),
            base: format!("https://127.0.0.1:{port}"),
            cookies: HashMap::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = if cookie.is_empty() {
            req
        } else {
            req.header("cookie", cookie)
        };
        let r = req.send().await.unwrap();
        let set_cookies: Vec<String> = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for c in &set_cookies {
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        Page {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default(),
            set_cookies,
            body: r.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(self.url(path));
        self.send(req).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let req = self
            .http
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }

    /// Posts a form of the page at `from` with its own `csrf` value.
    pub async fn submit(&mut self, from: &str, path: &str, fields: &[(&str, &str)]) -> Page {
        let page = self.get(from).await;
        let csrf = csrf_of(&page.body);
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all).await
    }

    pub async fn sign_in(&mut self, password: &str) -> Page {
        self.submit("/login", "/login", &[("password", password)])
            .await
    }

    /// GETs `path` until `done` holds for the body (at most [`WAIT`]).
    pub async fn get_until(&mut self, path: &str, done: impl Fn(&str) -> bool) -> Page {
        let deadline = Instant::now() + WAIT;
        loop {
            let page = self.get(path).await;
            if done(&page.body) || Instant::now() > deadline {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The first `name="csrf" value="…"` of a page.
pub fn csrf_of(body: &str) -> String {
    attr_after(body, "name=\"csrf\" value=\"").unwrap_or_default()
}

/// The text up to the next `"` after `marker`.
pub fn attr_after(body: &str, marker: &str) -> Option<String> {
    let start = body.find(marker)? + marker.len();
    Some(body[start..].split('"').next()?.to_owned())
}

/// The text of the element whose opening tag ends with `open` (e.g.
/// `id="user-code">`), up to the next `<`.
pub fn text_of(body: &str, open: &str) -> Option<String> {
    let start = body.find(open)? + open.len();
    Some(body[start..].split('<').next()?.to_owned())
}
