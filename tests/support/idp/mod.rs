//! A test identity provider speaking the Microsoft identity platform v2.0
//! dialect (string `expires_in`, `AADSTS` codes, device code `message`,
//! refresh token rotation), on 127.0.0.1 with an OS-chosen port.
//!
//! It auto-approves: `/authorize` redirects straight back with a code for the
//! `login_hint` user (or the default user), and a device code is approved
//! after a configurable number of `authorization_pending` (and `slow_down`)
//! answers. `/introspect` (RFC 7662) maps each access token to the mailbox it
//! was issued for, so a mail server that validates tokens by introspection
//! (Dovecot's oauth2 passdb) knows whose token it holds; `/policy` then says
//! whether that token may open the mailbox asked for (the XOAUTH2 `user=`),
//! by the provider's rules in `grants.rs`.
//!
//! Self-contained on purpose (std, tokio, hyper, serde_json, base64,
//! aws-lc-rs) so any integration test binary can include it with `#[path]`.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the IdP"
)]

mod grants;
pub mod graph;
mod id_token;
mod server;
mod state;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use state::random as random_token;
pub use state::{Failure, OAuthFault};

/// Tenant segment of every endpoint path.
pub const TENANT: &str = "test-tenant";
/// Longest a test connection may stay open.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 64;

/// Tokens minted directly, bypassing every grant.
#[derive(Debug, Clone)]
pub struct Minted {
    pub access_token: String,
    pub refresh_token: String,
}

pub struct TestIdp {
    addr: SocketAddr,
    state: Arc<Mutex<state::State>>,
    task: JoinHandle<()>,
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestIdp {
    pub async fn start() -> TestIdp {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind test IdP");
        let addr = listener.local_addr().expect("test IdP address");
        let state = Arc::new(Mutex::new(state::State::new()));
        let task = tokio::spawn(serve(listener, state.clone()));
        TestIdp { addr, state, task }
    }

    fn with<T>(&self, f: impl FnOnce(&mut state::State) -> T) -> T {
        f(&mut self.state.lock().expect("idp state"))
    }

    /// `http://127.0.0.1:<port>` (the `authority` of a Microsoft provider).
    pub fn authority(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn tenant(&self) -> &'static str {
        TENANT
    }

    /// `http://127.0.0.1:<port>/<tenant>/oauth2/v2.0`; endpoints hang below it.
    pub fn base_url(&self) -> String {
        format!("{}/{TENANT}/oauth2/v2.0", self.authority())
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url())
    }

    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.base_url())
    }

    pub fn device_code_url(&self) -> String {
        format!("{}/devicecode", self.base_url())
    }

    /// RFC 7662 endpoint: POST `token=...`.
    pub fn introspect_url(&self) -> String {
        format!("{}/introspect", self.base_url())
    }

    /// A user the authorize endpoint signs in when named in `login_hint`;
    /// the first one added becomes the default user.
    pub fn add_user(&self, mailbox: &str) {
        self.with(|s| {
            s.users.push(mailbox.to_owned());
            s.default_user.get_or_insert_with(|| mailbox.to_owned());
        });
    }

    /// Who approves device codes and authorizations without a known `login_hint`.
    pub fn set_default_user(&self, mailbox: &str) {
        self.with(|s| s.default_user = Some(mailbox.to_owned()));
    }

    /// Mailbox that client-credentials tokens introspect as.
    pub fn set_app_mailbox(&self, mailbox: &str) {
        self.with(|s| s.app_mailbox = Some(mailbox.to_owned()));
    }

    /// Require this client secret for client credentials (default: any non-empty).
    pub fn set_client_secret(&self, secret: &str) {
        self.with(|s| s.client_secret = Some(secret.to_owned()));
    }

    /// Accept client assertions signed by this RSA key (PKCS#1 DER) whose
    /// header names certificate thumbprint `x5t`.
    pub fn set_client_certificate(&self, public_key: &[u8], x5t: &str) {
        self.with(|s| s.client_key = Some((public_key.to_vec(), x5t.to_owned())));
    }

    /// Whether sign-ins that ask for `openid` get an id token (default: yes).
    pub fn set_id_tokens(&self, on: bool) {
        self.with(|s| s.no_id_token = !on);
    }

    pub fn set_latency(&self, latency: Duration) {
        self.with(|s| s.latency = latency);
    }

    /// The next `times` token/devicecode requests fail with `failure`.
    pub fn fail_next(&self, failure: Failure, times: u32) {
        self.with(|s| s.failure = (times > 0).then_some((failure, times)));
    }

    pub fn clear_failures(&self) {
        self.with(|s| s.failure = None);
    }

    /// Every refresh token issued so far for `mailbox` answers AADSTS50173.
    pub fn revoke(&self, mailbox: &str) {
        self.with(|s| s.revoke(mailbox));
    }

    /// Redeemed refresh tokens stay valid (as Microsoft's do) instead of
    /// working once.
    pub fn set_keep_redeemed(&self, keep: bool) {
        self.with(|s| s.keep_redeemed = keep);
    }

    /// How many refresh tokens were issued to `mailbox` after `rt`
    /// (0: `rt` is the newest); `None` if `rt` was never issued to it.
    pub fn refresh_token_age(&self, mailbox: &str, rt: &str) -> Option<usize> {
        self.with(|s| {
            let issued = s.issued.get(mailbox)?;
            let at = issued.iter().position(|t| t == rt)?;
            Some(issued.len() - 1 - at)
        })
    }

    pub fn set_access_lifetime(&self, lifetime: Duration) {
        self.with(|s| s.access_lifetime = lifetime);
    }

    /// `/introspect` reports `token` inactive from now on. False if unknown.
    pub fn invalidate_access_token(&self, token: &str) -> bool {
        self.with(|s| s.invalidate_access(token))
    }

    pub fn invalidate_access_tokens_for(&self, mailbox: &str) {
        self.with(|s| s.invalidate_access_for(mailbox));
    }

    /// Answers every refresh with `fault` (`None`: normally again).
    pub fn fail_refreshes_with(&self, fault: Option<OAuthFault>) {
        self.with(|s| s.refresh_fault = fault);
    }

    /// `/introspect` reports every token of `mailbox` inactive, also the
    /// ones issued later: an upstream that refuses the mailbox outright.
    pub fn refuse_tokens_for(&self, mailbox: &str) {
        self.with(|s| s.refused.push(mailbox.to_owned()));
    }

    /// Device codes answer `authorization_pending` this many times, then
    /// `slow_down` `slow_downs` times, then succeed.
    pub fn set_device_polls(&self, pending: u32, slow_downs: u32) {
        self.with(|s| {
            s.device_pending = pending;
            s.device_slow_down = slow_downs;
        });
    }

    pub fn set_device_expires_in(&self, secs: u64) {
        self.with(|s| s.device_expires_in = secs);
    }

    /// An access + refresh token pair for `mailbox`, as if it had signed in.
    pub fn mint(&self, mailbox: &str) -> Minted {
        self.with(|s| {
            let (access_token, refresh_token, _) = s.mint(
                mailbox,
                "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
                false,
            );
            Minted {
                access_token,
                refresh_token: refresh_token.unwrap_or_default(),
            }
        })
    }

    /// A delegated access token for `mailbox` with `scope` (e.g. the Graph
    /// `Mail.Send` scope), as if it had signed in.
    pub fn mint_scoped(&self, mailbox: &str, scope: &str) -> Minted {
        self.with(|s| {
            let (access_token, refresh_token, _) = s.mint(mailbox, scope, false);
            Minted {
                access_token,
                refresh_token: refresh_token.unwrap_or_default(),
            }
        })
    }

    /// The test Graph's root (`graph_endpoint` of a provider).
    /// Refuses Graph scopes for `mailbox`'s grants with AADSTS65001, as
    /// Entra does when the app has no consent for Microsoft Graph.
    pub fn refuse_graph_consent(&self, mailbox: &str) {
        self.with(|s| s.graph_unconsented.push(mailbox.to_owned()));
    }

    /// The `scope` of every authorize request so far.
    pub fn authorize_scopes(&self) -> Vec<String> {
        self.with(|s| s.authorize_scopes.clone())
    }

    pub fn graph_url(&self) -> String {
        self.authority()
    }

    /// Answers the next Graph requests with `faults`, in order.
    pub fn graph_fail_next(&self, faults: Vec<graph::GraphFault>) {
        self.with(|s| s.graph.faults.extend(faults));
    }

    /// Messages the test Graph sent, oldest first.
    pub fn graph_sent(&self) -> Vec<graph::Sent> {
        self.with(|s| s.graph.sent.clone())
    }

    /// Graph requests served (faults included).
    pub fn graph_requests(&self) -> u64 {
        self.with(|s| s.graph.requests)
    }

    /// Hands every message the test Graph sends to `deliver` (e.g. into the
    /// test Dovecot's mailboxes).
    pub fn deliver_graph_mail(&self, deliver: graph::Deliver) {
        self.with(|s| s.graph.deliver = Some(deliver));
    }

    /// An access token for `mailbox` at least `len` characters long
    /// (Microsoft's are JWTs of 1.5-3 KB), active like a minted one.
    pub fn mint_long_access_token(&self, mailbox: &str, len: usize) -> String {
        let base = random_token("at-long-");
        let token = format!("{base}{}", "x".repeat(len.saturating_sub(base.len())));
        self.with(|s| {
            s.insert_access(
                &token,
                mailbox,
                "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
            )
        });
        token
    }

    /// Token requests attributed to `mailbox` (refresh, code, device grants).
    pub fn token_requests_for(&self, mailbox: &str) -> u64 {
        self.with(|s| s.per_account.get(mailbox).copied().unwrap_or_default())
    }

    /// Token requests per `grant_type` (failed and injected ones included).
    pub fn token_requests_by_grant(&self) -> HashMap<String, u64> {
        self.with(|s| s.per_grant.clone())
    }

    pub fn token_requests(&self, grant_type: &str) -> u64 {
        self.with(|s| s.per_grant.get(grant_type).copied().unwrap_or_default())
    }

    /// `user` has full access to the shared mailbox `shared`.
    pub fn grant_full_access(&self, shared: &str, user: &str) {
        self.with(|s| s.grants.grant_full_access(shared, user));
    }

    /// `user` may send as `shared`; the SMTP server enforces it, from
    /// [`Self::send_as_grants`].
    pub fn grant_send_as(&self, shared: &str, user: &str) {
        self.with(|s| s.grants.grant_send_as(shared, user));
    }

    /// Shared address → users who may send as it.
    pub fn send_as_grants(&self) -> Vec<(String, Vec<String>)> {
        self.with(|s| s.grants.send_as())
    }

    /// Client-credentials tokens may open `target`: an address, or a whole
    /// domain as `@example.test` or `*@example.test`.
    pub fn grant_app(&self, target: &str) {
        self.with(|s| s.grants.grant_app(target));
    }

    pub fn introspections(&self) -> u64 {
        self.with(|s| s.introspections)
    }

    /// Dovecot's authentication policy endpoint, which answers whether a
    /// token may open a mailbox (see `server.rs`).
    pub fn policy_url(&self) -> String {
        format!("{}/policy", self.base_url())
    }

    /// Questions "may this token open this mailbox?" answered so far.
    pub fn authorisations(&self) -> u64 {
        self.with(|s| s.authorisations)
    }
}

async fn serve(listener: TcpListener, state: Arc<Mutex<state::State>>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept(), if conns.len() < MAX_CONNECTIONS => {
                let Ok((stream, _)) = accepted else { continue };
                let state = state.clone();
                conns.spawn(async move {
                    let service = hyper::service::service_fn(move |req| server::handle(req, state.clone()));
                    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// A [`TestIdp`] on its own runtime, for tests that drive blocking clients
/// (child processes) and must not hold a tokio context themselves.
pub struct BlockingIdp {
    idp: Option<TestIdp>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl BlockingIdp {
    pub fn start() -> BlockingIdp {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("test IdP runtime");
        let idp = runtime.block_on(TestIdp::start());
        BlockingIdp {
            idp: Some(idp),
            runtime: Some(runtime),
        }
    }
}

impl std::ops::Deref for BlockingIdp {
    type Target = TestIdp;

    fn deref(&self) -> &TestIdp {
        self.idp.as_ref().expect("test IdP running")
    }
}

impl Drop for BlockingIdp {
    fn drop(&mut self) {
        drop(self.idp.take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
