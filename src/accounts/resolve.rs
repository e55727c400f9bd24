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
//!
//! The XOAUTH2 `user=` a rule produces is checked against the rule
//! ([`within`]): matching is by folded name, but `user=` goes upstream as the
//! client spelled it, and a spelling that only folds into the rule (U+212A
//! KELVIN SIGN for `k`) is another address to the provider. So a `*@domain`
//! rule never sends a `user=` outside its domain, and a shared rule sends
//! exactly its shared address, ASCII case aside.

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
            let rule = find_rule(rules, &shared).ok_or(AccountError::BadCredentials)?;
            return match &rule.kind {
                AccountKind::Shared { delegate } if is(delegate, login) => {
                    Ok(Resolved::Delegated {
                        account: login.clone(),
                        mailbox: shared_user(z).map(|m| within(rule, m)).transpose()?,
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
                mailbox: match mailbox {
                    // An exact rule's configured mailbox is the admin's choice.
                    Some(m) if !is_wildcard(rule) => m.clone(),
                    Some(m) => within(rule, m.clone())?,
                    None => within(rule, login.as_sent().to_owned())?,
                },
            },
            AccountKind::Shared { delegate } => Resolved::Delegated {
                account: AccountName::parse(delegate).map_err(|_| AccountError::BadCredentials)?,
                mailbox: (shared_user(login.as_sent()))
                    .map(|m| within(rule, m))
                    .transpose()?,
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
    let exact = rules.iter().find(|r| !is_wildcard(r) && r.matches(login));
    exact.or_else(|| rules.iter().find(|r| r.matches(login)))
}

fn is_wildcard(rule: &AccountRule) -> bool {
    rule.login.starts_with("*@")
}

/// `user` if it is the rule's address (exact rule) or an address in the
/// rule's domain (`*@domain`), comparing ASCII case-insensitively as mail
/// servers do (RFC 5321 §2.4 for domains); anything else is refused.
fn within(rule: &AccountRule, user: String) -> Result<String, AccountError> {
    let ok = match rule.login.strip_prefix("*@") {
        Some(domain) => (user.rsplit_once('@'))
            .is_some_and(|(local, d)| !local.is_empty() && d.eq_ignore_ascii_case(domain)),
        None => user.eq_ignore_ascii_case(&rule.login),
    };
    if ok {
        Ok(user)
    } else {
        tracing::warn!(rule = %rule.login, "login refused: its XOAUTH2 user would fall outside the rule");
        Err(AccountError::BadCredentials)
    }
}

/// Whether the configured `name` is the account `login`.
fn is(name: &str, login: &AccountName) -> bool {
    AccountName::parse(name).is_ok_and(|n| n == *login)
}
