//! [`GraphSubmitter`]: the submission backend of `submit = "graph"`
//! listeners. Opening a submission proves the grant usable for Graph (it
//! gets a Graph token; a refusal goes back to the session as `AuthFailed`
//! so it refreshes once) and then mailgate plays the SMTP server
//! ([`crate::submit::accept`]) with a [`GraphSink`] behind it.

use std::sync::Arc;

use super::sink::{GraphShared, GraphSink};
use crate::base::{AccountName, BoxFuture};
use crate::config::{AccountKind, AccountRule};
use crate::proto::{UpstreamLogin, UpstreamRejection, UpstreamSuccess};
use crate::submit::accept::{Accepting, ServerLimits};
use crate::submit::{Submission, Submitter};
use crate::token::TokenError;
use crate::upstream::UpstreamError;

/// The line the client's AUTH is answered with.
pub const SUCCESS_235: &[u8] = b"235 2.7.0 Authentication successful";

/// Submits through Graph.
pub struct GraphSubmitter {
    shared: Arc<GraphShared>,
    rules: Vec<AccountRule>,
    limits: ServerLimits,
    hostname: String,
}

impl GraphSubmitter {
    /// `rules` are the account rules: `shared` rules name who may send as
    /// which shared mailbox.
    pub fn new(shared: Arc<GraphShared>, rules: Vec<AccountRule>, limits: ServerLimits) -> Self {
        Self {
            shared,
            rules,
            limits,
            hostname: "mailgate".into(),
        }
    }

    /// The name given in EHLO and 421 replies (the config's `hostname`).
    pub fn with_hostname(mut self, hostname: &str) -> Self {
        hostname.clone_into(&mut self.hostname);
        self
    }

    /// The signed-in mailbox and every shared mailbox with it as delegate.
    fn senders(&self, user: &str) -> Vec<AccountName> {
        let Ok(me) = AccountName::parse(user) else {
            return Vec::new();
        };
        let mut out: Vec<AccountName> = self
            .rules
            .iter()
            .filter(|r| !r.login.starts_with("*@"))
            .filter(|r| match &r.kind {
                AccountKind::Shared { delegate } => {
                    AccountName::parse(delegate).is_ok_and(|d| d == me)
                }
                AccountKind::AppOnly { .. } => false,
            })
            .filter_map(|r| AccountName::parse(&r.login).ok())
            .collect();
        out.push(me);
        out
    }
}

impl Submitter for GraphSubmitter {
    fn open<'a>(
        &'a self,
        login: UpstreamLogin,
        _client_name: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Box<dyn Submission>, UpstreamError>> {
        Box::pin(async move {
            let token = self
                .shared
                .tokens
                .graph_token(&login.user, None)
                .await
                .map_err(|e| rejected(&e))?;
            let sink = GraphSink::new(
                self.shared.clone(),
                login.user.clone(),
                self.senders(&login.user),
                token,
            );
            let success = UpstreamSuccess {
                line: SUCCESS_235.to_vec(),
                capabilities: None,
            };
            Ok(Box::new(
                Accepting::new(Arc::new(sink), success, self.limits.clone())
                    .with_hostname(&self.hostname),
            ) as Box<dyn Submission>)
        })
    }

    /// The pre-AUTH EHLO offers Graph's SIZE: what can really be sent.
    fn extensions(&self) -> Option<Vec<String>> {
        Some(crate::submit::accept::extensions(self.shared.max_size))
    }
}

/// A Graph token failure in the terms of an upstream login.
fn rejected(e: &TokenError) -> UpstreamError {
    let rejection = match e {
        TokenError::Temporary { reason, .. } => UpstreamRejection::Unavailable(format!(
            "454 4.7.0 Cannot get a Microsoft Graph token now: {reason}"
        )),
        _ => UpstreamRejection::AuthFailed(
            "535 5.7.8 No Microsoft Graph token for this account".into(),
        ),
    };
    UpstreamError::Rejected {
        addr: "Microsoft Graph".into(),
        rejection,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::submit::graph::api::Api;
    use crate::token::{Grant, TokenRequest, TokenSource};
    use std::time::Duration;

    struct NoTokens;
    impl TokenSource for NoTokens {
        fn grant<'a>(&'a self, _: TokenRequest<'a>) -> BoxFuture<'a, Result<Grant, TokenError>> {
            Box::pin(async { Err(TokenError::BadCredentials) })
        }
        fn rejected<'a>(&'a self, _: &'a Grant) -> BoxFuture<'a, bool> {
            Box::pin(async { false })
        }
    }

    #[test]
    fn shared_rules_name_the_extra_senders() {
        let rule = |login: &str, delegate: &str| AccountRule {
            login: login.into(),
            provider: None,
            kind: AccountKind::Shared {
                delegate: delegate.into(),
            },
        };
        let shared = Arc::new(GraphShared {
            api: Api::new("http://127.0.0.1:9", Duration::from_secs(1)).unwrap(),
            max_size: 1000,
            slots: crate::gate::MailboxGate::new(4, Duration::from_secs(1)),
            tokens: Arc::new(NoTokens),
            volume: crate::submit::graph::UploadWindow::new(1000, Duration::from_secs(300)),
        });
        let s = GraphSubmitter::new(
            shared,
            vec![
                rule("sales@x", "Alice@x"),
                rule("*@y", "alice@x"),
                rule("hr@x", "bob@x"),
            ],
            ServerLimits {
                command_timeout: Duration::from_secs(1),
                data_timeout: Duration::from_secs(1),
            },
        );
        let names: Vec<String> = s
            .senders("alice@x")
            .iter()
            .map(|n| n.as_str().to_owned())
            .collect();
        assert_eq!(names, ["sales@x", "alice@x"]);
    }
}
