//! A TokenSource for core proxy tests: fixed accounts, switchable failures,
//! and counters. The real token service has its own tests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use mailgate::token::{BoxFuture, Grant, TokenError, TokenRequest, TokenSource};

#[derive(Default)]
pub struct StaticTokens {
    accounts: Mutex<HashMap<String, (String, String, String)>>,
    pub fail_with: Mutex<Option<TokenError>>,
    /// What `graph_token` answers (a token minted by the test IdP).
    pub graph: Mutex<Option<String>>,
    pub grants: AtomicUsize,
    pub rejected: AtomicUsize,
}

impl StaticTokens {
    /// `login` with `password` gets `token`, used upstream as `user=mailbox`.
    pub fn add(&self, login: &str, password: &str, mailbox: &str, token: &str) {
        self.accounts.lock().unwrap().insert(
            login.to_owned(),
            (password.to_owned(), mailbox.to_owned(), token.to_owned()),
        );
    }

    pub fn set_token(&self, login: &str, token: &str) {
        if let Some(a) = self.accounts.lock().unwrap().get_mut(login) {
            a.2 = token.to_owned();
        }
    }

    pub fn fail(&self, error: Option<TokenError>) {
        *self.fail_with.lock().unwrap() = error;
    }
}

impl TokenSource for StaticTokens {
    fn grant<'a>(&'a self, request: TokenRequest<'a>) -> BoxFuture<'a, Result<Grant, TokenError>> {
        Box::pin(async move {
            self.grants.fetch_add(1, Ordering::SeqCst);
            if let Some(e) = self.fail_with.lock().unwrap().clone() {
                return Err(e);
            }
            let accounts = self.accounts.lock().unwrap();
            match accounts.get(request.username.as_sent()) {
                Some((pw, mailbox, token)) if pw == request.password.expose() => Ok(Grant {
                    account: request.username.as_sent().to_owned(),
                    sasl_user: mailbox.clone(),
                    access_token: token.clone().into(),
                    expires_at: SystemTime::now() + Duration::from_secs(3600),
                }),
                _ => Err(TokenError::BadCredentials),
            }
        })
    }

    fn rejected<'a>(&'a self, _grant: &'a Grant) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            self.rejected.fetch_add(1, Ordering::SeqCst);
            true
        })
    }

    fn graph_token<'a>(
        &'a self,
        _user: &'a str,
        _refused: Option<&'a mailgate::secret::Secret<String>>,
    ) -> BoxFuture<'a, Result<mailgate::secret::Secret<String>, TokenError>> {
        let token = self.graph.lock().unwrap().clone();
        Box::pin(async move {
            token
                .map(mailgate::secret::Secret::new)
                .ok_or(TokenError::Temporary {
                    reason: "no Graph token in this test".into(),
                    retry_after: None,
                })
        })
    }
}
