//! One refresh across instances: several token services, each with its own
//! pool on the same database (as separate `mailgate serve` processes have),
//! an expired token and many concurrent logins spread over them. The
//! provider sees one refresh, and every instance hands out its tokens.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mailgate::oauth::{OAuthError, TokenEndpoint, TokenResponse};
use mailgate::secret::Secret;
use mailgate::store::Enrolment;
use mailgate::token::service::TokenService;
use mailgate::token::{BoxFuture, Protocol, TokenRequest, TokenSource};

use super::{Fixture, name, settings};
use crate::support::servers::PgCluster;

/// Counts refreshes; each takes a while, so the instances overlap.
struct SlowEndpoint {
    refreshes: AtomicUsize,
    seen: std::sync::Mutex<Vec<String>>,
}

impl TokenEndpoint for SlowEndpoint {
    fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret<String>,
    ) -> BoxFuture<'a, Result<TokenResponse, OAuthError>> {
        Box::pin(async move {
            let n = self.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
            self.seen
                .lock()
                .unwrap()
                .push(refresh_token.expose().clone());
            tokio::time::sleep(Duration::from_millis(1000)).await;
            Ok(TokenResponse {
                access_token: Secret::from(format!("AT-{n}").as_str()),
                refresh_token: Some(Secret::from(format!("RT-{n}").as_str())),
                expires_in: Duration::from_secs(3600),
                expires_in_assumed: false,
            })
        })
    }

    fn client_credentials(&self) -> BoxFuture<'_, Result<TokenResponse, OAuthError>> {
        Box::pin(async { Err(OAuthError::Config("not used".to_owned())) })
    }
}

const CONFIG: &str = "[[providers]]\nname = \"ms\"\nkind = \"microsoft\"\nclient_id = \"c\"\n";

#[test]
fn concurrent_logins_on_three_instances_cause_one_refresh() {
    let first = Fixture::new("refresh-1");
    // Enrolled with a token that is already inside the refresh margin.
    first
        .store()
        .enrol(Enrolment {
            account: &name("r@example.test"),
            provider: "ms",
            sasl_user: "r@example.test",
            password: &Secret::from("pw"),
            tokens: &TokenResponse {
                access_token: Secret::from("AT-old"),
                refresh_token: Some(Secret::from("RT-0")),
                expires_in: Duration::from_secs(10),
                expires_in_assumed: false,
            },
        })
        .unwrap();
    let cluster = PgCluster::shared().unwrap();
    let url = cluster.url(&first.db_name);
    let endpoint = Arc::new(SlowEndpoint {
        refreshes: AtomicUsize::new(0),
        seen: Default::default(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let instances: Vec<_> = (0..3)
        .map(|i| {
            let f = Fixture::on(
                &format!("refresh-i{i}"),
                settings(url.clone(), mailgate::config::PgTls::Disable, None),
                first.db_name.clone(),
            );
            let config = mailgate::config::parse(CONFIG, "t.toml", &f.scratch.state()).unwrap();
            let endpoints: HashMap<String, Arc<dyn TokenEndpoint>> =
                HashMap::from([("ms".to_owned(), endpoint.clone() as Arc<dyn TokenEndpoint>)]);
            let svc = TokenService::new(&config, f.store(), endpoints).unwrap();
            (f, svc)
        })
        .collect();

    let tokens: Vec<String> = rt.block_on(async {
        // Each instance checks the password once first (as the guard's
        // verdict does), so the burst meets the expired token on all three
        // at once.
        for (_, svc) in &instances {
            let (user, password) = (name("r@example.test"), Secret::from("pw"));
            let request = TokenRequest {
                username: &user,
                authzid: None,
                password: &password,
                protocol: Protocol::Imap,
                provider: "ms",
            };
            svc.verify(request)
                .expect("checks passwords")
                .await
                .unwrap();
        }
        let logins: Vec<_> = (0..30)
            .map(|i| {
                let svc = instances[i % 3].1.clone();
                tokio::spawn(async move {
                    let user = name("r@example.test");
                    let password = Secret::from("pw");
                    let grant = svc
                        .grant(TokenRequest {
                            username: &user,
                            authzid: None,
                            password: &password,
                            protocol: Protocol::Imap,
                            provider: "ms",
                        })
                        .await;
                    grant.map(|g| g.access_token.expose().clone())
                })
            })
            .collect();
        let mut out = Vec::new();
        for login in logins {
            let got = tokio::time::timeout(Duration::from_secs(60), login)
                .await
                .expect("login within a minute")
                .unwrap();
            out.push(got.expect("login succeeds"));
        }
        out
    });
    assert_eq!(
        endpoint.refreshes.load(Ordering::SeqCst),
        1,
        "{:?}",
        endpoint.seen
    );
    assert!(tokens.iter().all(|t| t == "AT-1"), "{tokens:?}");
    let stored = first
        .store()
        .unlock(&name("r@example.test"), &Secret::from("pw"))
        .unwrap();
    assert_eq!(stored.tokens.refresh_token.expose(), "RT-1");
}
