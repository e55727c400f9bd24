//! `submit = "auto"`: SMTP first, Graph for mailboxes whose SMTP AUTH is
//! switched off. The provider says so in its answer to the XOAUTH2 login
//! (`535 5.7.139`, sorted by `proto::smtp::upstream` into
//! [`UpstreamRejection::SmtpAuthDisabled`]); the same client session then
//! continues through Graph, and the mailbox goes straight to Graph for
//! [`REMEMBER`] (the switch is an admin's setting, rarely undone).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::{Submission, Submitter};
use crate::base::{AccountName, BoxFuture};
use crate::proto::{UpstreamLogin, UpstreamRejection};
use crate::upstream::UpstreamError;

/// How long a mailbox found with SMTP AUTH disabled goes straight to Graph.
pub const REMEMBER: Duration = Duration::from_secs(24 * 3600);
/// Mailboxes remembered at most; the oldest are forgotten first.
pub const MAX_REMEMBERED: usize = 100_000;

/// Tries `smtp`, falls back to `graph` (see the module docs).
pub struct AutoSubmitter {
    smtp: Arc<dyn Submitter>,
    graph: Arc<dyn Submitter>,
    disabled: Mutex<HashMap<AccountName, Instant>>,
}

impl AutoSubmitter {
    pub fn new(smtp: Arc<dyn Submitter>, graph: Arc<dyn Submitter>) -> Self {
        Self {
            smtp,
            graph,
            disabled: Mutex::new(HashMap::new()),
        }
    }

    /// Mailboxes currently sent through Graph, with the time left.
    pub fn switched(&self) -> Vec<(String, Duration)> {
        let now = Instant::now();
        let map = self.disabled.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|(_, until)| **until > now)
            .map(|(m, until)| (m.as_str().to_owned(), *until - now))
            .collect()
    }

    fn remembered(&self, mailbox: Option<&AccountName>) -> bool {
        let Some(mailbox) = mailbox else { return false };
        let mut map = self.disabled.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(mailbox) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                map.remove(mailbox);
                false
            }
            None => false,
        }
    }

    fn remember(&self, mailbox: &AccountName) {
        let now = Instant::now();
        let mut map = self.disabled.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_REMEMBERED {
            map.retain(|_, until| *until > now);
            if map.len() >= MAX_REMEMBERED
                && let Some(oldest) = map.iter().min_by_key(|(_, u)| **u).map(|(m, _)| m.clone())
            {
                map.remove(&oldest);
            }
        }
        if map.insert(mailbox.clone(), now + REMEMBER).is_none() {
            tracing::info!(
                mailbox = %mailbox.as_str(),
                "SMTP AUTH is disabled for this mailbox; sending through Microsoft Graph"
            );
        }
    }
}

impl Submitter for AutoSubmitter {
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
