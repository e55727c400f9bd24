//! A listener serves only its own provider's accounts: an account enrolled
//! with provider `p` (or an app-only rule of provider `p`) logging in on a
//! listener of provider `q` is refused before any token is fetched, so a
//! token never reaches another provider's upstream. Two test IdPs, two fake
//! upstreams, the real token service.

use std::sync::Arc;
use std::time::Duration;

use mailgate::admin::Admin;
use mailgate::base::AccountName;
use mailgate::oauth::TokenResponse;
use mailgate::secret::Secret;
use mailgate::serve::{Server, token_service};
use mailgate::store::{Enrolment, Store};

use super::ALICE;
use crate::support::client::Client;
use crate::support::config::{ConfigBuilder, Listener, Upstream};
use crate::support::fake_upstream::{FakeUpstream, Mode, Proto};
use crate::support::idp::TestIdp;
use crate::support::scratch::Scratch;

const PASSWORD: &str = "local-pass-7";
const ARCHIVE: &str = "journal@archive.test";

/// Providers `p` and `q`, each with its IdP, upstream and IMAP listener
/// (`imap-p`, `imap-q`), and `rules` as `[[accounts]]`.
struct TwoProviders {
    p: TestIdp,
    q: TestIdp,
    up_p: FakeUpstream,
    up_q: FakeUpstream,
    dir: Scratch,
    config: mailgate::config::Config,
    text: String,
}

impl TwoProviders {
    async fn new(tag: &str, rules: &[&[(&str, &str)]]) -> Self {
        let (p, q) = (TestIdp::start().await, TestIdp::start().await);
        let up_p = FakeUpstream::start(Proto::Imap, Mode::Plain, None).await;
        let up_q = FakeUpstream::start(Proto::Imap, Mode::Plain, None).await;
        let dir = Scratch::new(tag);
        // Two OS-chosen ports: one on 127.0.0.1, one on 127.0.0.2.
        let listener = |name: &str, port: u16, ip: &str| {
            Listener::new("imap", &format!("{ip}:0"), Upstream::new(port, "none"))
                .name(&format!("imap-{name}"))
                .keys_raw(&format!("provider = \"{name}\""))
        };
        let mut builder = ConfigBuilder::new()
            .state_dir(&dir.state())
            .provider_microsoft(
                "p",
                &p.authority(),
                p.tenant(),
                "client-p",
                "client_secret = \"secret-p\"",
            )
            .provider_microsoft("q", &q.authority(), q.tenant(), "client-q", "")
            .listener(listener("p", up_p.port, "127.0.0.1"))
            .listener(listener("q", up_q.port, "127.0.0.2"));
        for rule in rules {
            builder = builder.account(rule);
        }
        let text = builder.toml();
        let config = mailgate::config::parse(&text, "test.toml", &dir.dir).expect("config");
        Self {
            p,
            q,
            up_p,
            up_q,
            dir,
            config,
            text,
        }
    }

    async fn serve(&self) -> Server {
        let path = self.dir.write(&self.text);
        let tokens = token_service(&self.config, &path).expect("token service");
        Server::start(&self.config, Arc::clone(&tokens) as _)
            .await
            .expect("serve")
    }

    fn no_token_fetched(&self) {
        assert!(
            self.p.token_requests_by_grant().is_empty()
                && self.q.token_requests_by_grant().is_empty(),
            "no token was fetched: {:?} {:?}",
            self.p.token_requests_by_grant(),
            self.q.token_requests_by_grant()
        );
    }
}

async fn login(server: &Server, listener: &str, user: &str) -> String {
    let addr = server
        .local_addrs()
        .into_iter()
        .find(|(name, _)| name == listener)
        .expect("listener bound")
        .1;
    let mut c = Client::connect(addr).await;
    assert!(c.line().await.starts_with("* OK"));
    c.send(&format!("a1 LOGIN {user} {PASSWORD}\r\n")).await;
    c.until("a1 ").await.pop().expect("tagged answer")
}

fn assert_not_served(answer: &str) {
    assert!(answer.starts_with("a1 NO"), "{answer}");
    assert!(
        answer.contains("not served on this listener"),
        "the answer says why: {answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_is_served_only_on_its_providers_listeners() {
    let t = TwoProviders::new("two-providers", &[]).await;
    let minted = t.p.mint(ALICE);
    t.up_p.accept_token(&minted.access_token);
    t.up_q.accept_token(&minted.access_token);
    Store::for_config(&t.config)
        .expect("store")
        .enrol(Enrolment {
            account: &AccountName::parse(ALICE).unwrap(),
            provider: "p",
            sasl_user: ALICE,
            password: &Secret::from(PASSWORD),
            tokens: &TokenResponse {
                access_token: Secret::new(minted.access_token.clone()),
                refresh_token: Some(Secret::new(minted.refresh_token.clone())),
                expires_in: Duration::from_secs(3600),
                expires_in_assumed: false,
            },
        })
        .expect("enrol with provider p");
    let server = t.serve().await;

    assert_not_served(&login(&server, "imap-q", ALICE).await);
    assert_eq!(t.up_q.logins(), 0, "nothing reached provider q's upstream");
    t.no_token_fetched();

    let served = login(&server, "imap-p", ALICE).await;
    assert!(served.starts_with("a1 OK"), "{served}");
    assert_eq!((t.up_p.logins(), t.up_q.logins()), (1, 0));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_only_rule_is_served_only_on_its_providers_listeners() {
    let hash = Admin::hash_password(Secret::from(PASSWORD))
        .await
        .expect("hash");
    let rule: &[(&str, &str)] = &[
        ("login", "*@archive.test"),
        ("kind", "app-only"),
        ("provider", "p"),
        ("password_hash", hash.expose()),
    ];
    let t = TwoProviders::new("two-providers-app", &[rule]).await;
    let server = t.serve().await;

    assert_not_served(&login(&server, "imap-q", ARCHIVE).await);
    assert_eq!(t.up_q.logins(), 0, "nothing reached provider q's upstream");
    t.no_token_fetched();
    server.shutdown().await;
}
