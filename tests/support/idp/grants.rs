//! The provider's authorisation rules, as Exchange Online applies them when a
//! mail server is handed a token and a mailbox (the XOAUTH2 `user=`):
//!
//! - a delegated token opens its own user's mailbox, and a shared mailbox
//!   where that user has full access (`Add-MailboxPermission -AccessRights
//!   FullAccess`);
//! - an app-only token (client credentials) opens the mailboxes its app is
//!   granted, by address or by domain, and nothing else;
//! - sending as a shared address needs send-as, which the SMTP server
//!   enforces itself (see `servers/postfix.rs`): it is listed here only so a
//!   test states every grant in one place.
//!
//! The reasons are worded like Exchange's so a test can check that the
//! provider's answer, not a guess, reaches the mail client.

use std::collections::{BTreeMap, BTreeSet};

/// Who a token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A signed-in user (authorization code, device code, refresh).
    User(String),
    /// The app itself (client credentials); `mailbox` is what the token
    /// introspects as when no mailbox is asked about.
    App { mailbox: String },
}

#[derive(Debug, Default)]
pub struct Grants {
    /// Shared mailbox → users with full access.
    full_access: BTreeMap<String, BTreeSet<String>>,
    /// Shared address → users allowed to send as it.
    send_as: BTreeMap<String, BTreeSet<String>>,
    /// Addresses (`info@example.test`) and domains (`@example.test`) the
    /// app may open.
    app: BTreeSet<String>,
}

impl Grants {
    pub fn grant_full_access(&mut self, shared: &str, user: &str) {
        let users = self.full_access.entry(lower(shared)).or_default();
        users.insert(lower(user));
    }

    pub fn grant_send_as(&mut self, shared: &str, user: &str) {
        let users = self.send_as.entry(lower(shared)).or_default();
        users.insert(lower(user));
    }

    /// `target` is an address or a domain (`@example.test` or `*@example.test`).
    pub fn grant_app(&mut self, target: &str) {
        self.app.insert(lower(target.trim_start_matches('*')));
    }

    /// Shared address → users who may send as it, for the SMTP server.
    pub fn send_as(&self) -> Vec<(String, Vec<String>)> {
        self.send_as
            .iter()
            .map(|(shared, users)| (shared.clone(), users.iter().cloned().collect()))
            .collect()
    }

    /// `Ok(())` when a token for `principal` may open `mailbox`, else the
    /// provider's reason.
    pub fn may_open(&self, principal: &Principal, mailbox: &str) -> Result<(), String> {
        let mailbox = lower(mailbox);
        match principal {
            Principal::User(user) if lower(user) == mailbox => Ok(()),
            Principal::User(user) => {
                let full = self
                    .full_access
                    .get(&mailbox)
                    .is_some_and(|users| users.contains(&lower(user)));
                if full {
                    Ok(())
                } else {
                    Err(format!(
                        "AccessDenied: {user} has no FullAccess permission on mailbox {mailbox}"
                    ))
                }
            }
            Principal::App { mailbox: own } => {
                let domain = mailbox
                    .rsplit_once('@')
                    .map(|(_, d)| format!("@{d}"))
                    .unwrap_or_default();
                if lower(own) == mailbox
                    || self.app.contains(&mailbox)
                    || self.app.contains(&domain)
                {
                    Ok(())
                } else {
                    Err(format!(
                        "AccessDenied: the application is not granted access to mailbox {mailbox}"
                    ))
                }
            }
        }
    }
}

fn lower(s: &str) -> String {
    s.to_lowercase()
}
