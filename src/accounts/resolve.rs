//! Which account a login means. Pure: no I/O, no password check.
//!
//! A login name is, in this order: a shared mailbox named by a SASL PLAIN
//! authzid (RFC 4616 §2) that a `shared` rule lets the authenticating
//! delegate open; a config rule (`app-only`, or `shared` naming a delegate);
//! or a delegated account in the token store. For shared mailboxes
//! `docs/design.md` ("Microsoft facts") fixes the XOAUTH2 `user=`: the shared
//! address for IMAP and POP, the delegate for SMTP (the client sends MAIL
//! FROM the shared address). Every comparison is between [`AccountName`]s, so
//! a rule matches exactly the logins the store and the guard see as one.

use super::AccountError;
use crate::base::{AccountName, Protocol};
use crate::config::{AccountKind, AccountRule};

/// What a login name resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A store account; `mailbox` overrides its `user=` (shared mailboxes).
    Delegated {
        account: AccountName,
        mailbox: Option<String>,
    },
    /// Client credentials; `rule` is the matching rule's login (the cache key).
    AppOnly {
        rule: String,
        provider: Option<String>,
        password_hash: String,
        mailbox: String,
    },
}

/// Resolves a login (see module docs).
pub fn resolve(
    rules: &[AccountRule],
    login: &AccountName,
    authzid: Option<&str>,
    protocol: Protocol,
) -> Result<Resolved, AccountError> {
    let shared_user = |mailbox: &str| match protocol {
        Protocol::Smtp => None,
        Protocol::Imap | Protocol::Pop3 => Some(mailbox.to_owned()),
    };
    if let Some(z) = authzid.filter(|z| !z.is_empty()) {
        let shared = AccountName::parse(z).map_err(|_| AccountError::BadCredentials)?;
        if shared != *login {
            return match find_rule(rules, &shared).map(|r| &r.kind) {
                Some(AccountKind::Shared { delegate }) if is(delegate, login) => {
                    Ok(Resolved::Delegated {
                        account: login.clone(),
                        mailbox: shared_user(z),
                    })
                }
                _ => Err(AccountError::BadCredentials),
            };
        }
    }
    Ok(match find_rule(rules, login) {
        Some(rule) => match &rule.kind {
            AccountKind::AppOnly {
                password_hash,
                mailbox,
            } => Resolved::AppOnly {
                rule: rule.login.clone(),
                provider: rule.provider.clone(),
                password_hash: password_hash.clone(),
                mailbox: mailbox
                    .clone()
                    .unwrap_or_else(|| login.as_sent().to_owned()),
            },
            AccountKind::Shared { delegate } => Resolved::Delegated {
                account: AccountName::parse(delegate).map_err(|_| AccountError::BadCredentials)?,
                mailbox: shared_user(login.as_sent()),
            },
        },
        None => Resolved::Delegated {
            account: login.clone(),
            mailbox: None,
        },
    })
}

/// An exact rule beats a `*@domain` rule; among equals, the first one wins.
fn find_rule<'r>(rules: &'r [AccountRule], login: &AccountName) -> Option<&'r AccountRule> {
    let exact = rules
        .iter()
        .find(|r| !r.login.starts_with("*@") && r.matches(login));
    exact.or_else(|| rules.iter().find(|r| r.matches(login)))
}

/// Whether the configured `name` is the account `login`.
fn is(name: &str, login: &AccountName) -> bool {
    AccountName::parse(name).is_ok_and(|n| n == *login)
}
