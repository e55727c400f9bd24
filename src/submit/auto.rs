//! `submit = "auto"`: SMTP first, Graph for mailboxes whose SMTP AUTH is
//! switched off. The provider says so in its answer to the XOAUTH2 login
//! (`535 5.7.139`, sorted by `proto::smtp::upstream` into
//! [`UpstreamRejection::SmtpAuthDisabled`]); the same client session then
//! continues through Graph, and the mailbox goes straight to Graph for
//! [`REMEMBER`] (the switch is an admin's setting, rarely undone), also
//! after a restart ([`super::switched`]).

use std::sync::Arc;
use std::time::Duration;

use super::switched::Switched;
use super::{Submission, Submitter};
use crate::base::{AccountName, BoxFuture};
use crate::proto::{UpstreamLogin, UpstreamRejection};
use crate::upstream::UpstreamError;

pub use super::switched::{MAX_REMEMBERED, REMEMBER};

/// Tries `smtp`, falls back to `graph` (see the module docs).
pub struct AutoSubmitter {
    smtp: Arc<dyn Submitter>,
    graph: Arc<dyn Submitter>,
    disabled: Arc<Switched>,
}

impl AutoSubmitter {
    /// Remembers switches in memory only.
    pub fn new(smtp: Arc<dyn Submitter>, graph: Arc<dyn Submitter>) -> Self {
        Self::sharing(smtp, graph, Arc::new(Switched::in_memory()))
    }

    /// Remembers switches in `disabled`, shared with other listeners and
    /// kept on disk ([`Switched::in_dir`]).
    pub fn sharing(
        smtp: Arc<dyn Submitter>,
        graph: Arc<dyn Submitter>,
        disabled: Arc<Switched>,
    ) -> Self {
        Self {
            smtp,
            graph,
            disabled,
        }
    }

    fn remembered(&self, mailbox: Option<&AccountName>) -> bool {
        mailbox.is_some_and(|m| self.disabled.contains(m))
    }

    fn remember(&self, mailbox: &AccountName) {
        if self.disabled.insert(mailbox) {
            tracing::info!(
                mailbox = %mailbox.as_str(),
                "SMTP AUTH is disabled for this mailbox; sending through Microsoft Graph"
            );
        }
    }
}

impl Submitter for AutoSubmitter {
    fn switched(&self) -> Vec<(String, Duration)> {
        self.disabled.list()
    }

    fn open<'a>(
        &'a self,
        login: UpstreamLogin,
        client_name: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Box<dyn Submission>, UpstreamError>> {
        Box::pin(async move {
            let mailbox = AccountName::parse(&login.user).ok();
            if self.remembered(mailbox.as_ref()) {
                return self.graph.open(login, client_name).await;
            }
            match self.smtp.open(login.clone(), client_name).await {
                Err(UpstreamError::Rejected {
                    rejection: UpstreamRejection::SmtpAuthDisabled(_),
                    ..
                }) => {
                    if let Some(m) = &mailbox {
                        self.remember(m);
                    }
                    self.graph.open(login, client_name).await
                }
                other => other,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::BytesMut;

    use super::*;
    use crate::net::Stream;
    use crate::proto::UpstreamSuccess;
    use crate::relay::{RelayError, RelayStats};
    use crate::secret::Secret;

    struct Done(UpstreamSuccess);
    impl Submission for Done {
        fn success(&self) -> &UpstreamSuccess {
            &self.0
        }
        fn run(
            self: Box<Self>,
            _: Stream,
            _: BytesMut,
        ) -> BoxFuture<'static, Result<RelayStats, RelayError>> {
            Box::pin(async { Ok(RelayStats::default()) })
        }
    }

    /// Answers every open with `line`, or with SMTP AUTH disabled.
    struct Fake {
        disabled: bool,
        line: &'static str,
        opens: AtomicUsize,
    }
    impl Submitter for Fake {
        fn open<'a>(
            &'a self,
            _: UpstreamLogin,
            _: Option<&'a str>,
        ) -> BoxFuture<'a, Result<Box<dyn Submission>, UpstreamError>> {
            self.opens.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if self.disabled {
                    return Err(UpstreamError::Rejected {
                        addr: "smtp".into(),
                        rejection: UpstreamRejection::SmtpAuthDisabled("535 5.7.139".into()),
                    });
                }
                Ok(Box::new(Done(UpstreamSuccess {
                    line: self.line.as_bytes().to_vec(),
                    capabilities: None,
                })) as Box<dyn Submission>)
            })
        }
    }

    fn login(user: &str) -> UpstreamLogin {
        UpstreamLogin {
            user: user.into(),
            access_token: Secret::new("t".into()),
        }
    }

    fn fake(disabled: bool, line: &'static str) -> Arc<Fake> {
        Arc::new(Fake {
            disabled,
            line,
            opens: AtomicUsize::new(0),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn smtp_auth_disabled_switches_the_mailbox_to_graph_for_a_while() {
        let (smtp, graph) = (fake(true, "smtp"), fake(false, "graph"));
        let auto = AutoSubmitter::new(smtp.clone(), graph.clone());
        let line = |s: Box<dyn Submission>| String::from_utf8(s.success().line.clone()).unwrap();
        let first = auto.open(login("a@x"), None).await.ok().unwrap();
        assert_eq!(line(first), "graph");
        assert_eq!(smtp.opens.load(Ordering::SeqCst), 1);
        let again = auto.open(login("A@x"), None).await.ok().unwrap();
        assert_eq!(line(again), "graph");
        assert_eq!(smtp.opens.load(Ordering::SeqCst), 1, "remembered");
        assert_eq!(auto.switched().len(), 1);
        tokio::time::sleep(REMEMBER + Duration::from_secs(1)).await;
        let _ = auto.open(login("a@x"), None).await;
        assert_eq!(smtp.opens.load(Ordering::SeqCst), 2, "tries SMTP again");
    }

    #[tokio::test]
    async fn smtp_that_works_is_used() {
        let (smtp, graph) = (fake(false, "smtp"), fake(false, "graph"));
        let auto = AutoSubmitter::new(smtp, graph.clone());
        let s = auto.open(login("a@x"), None).await.ok().unwrap();
        assert_eq!(s.success().line, b"smtp");
        assert_eq!(graph.opens.load(Ordering::SeqCst), 0);
    }
}
