//! `[[accounts]]`: app-only rules (password checked against an Argon2id PHC
//! string, never a plain password) and shared mailboxes.

use super::{Entry, Keywords};
use crate::config::raw::RawAccount;
use crate::config::validate::ConfigError;
use crate::config::{AccountKind, AccountRule, Provider};

#[derive(Clone, Copy)]
enum Kind {
    AppOnly,
    Shared,
}

const KINDS: Keywords<Kind> = Keywords {
    what: "account kind",
    fix: "use \"app-only\" or \"shared\"",
    choices: &[("app-only", Kind::AppOnly), ("shared", Kind::Shared)],
};

const HASH_FIX: &str = "run `mailgate hash-password` and paste the $argon2id$ string";

pub(super) fn account(
    e: &Entry<'_>,
    a: &RawAccount,
    providers: &[Provider],
) -> Result<AccountRule, ConfigError> {
    if let Some(p) = &a.provider {
        e.known_provider(p, providers)?;
    }
    let kind = match e.keyword("kind", &a.kind, &KINDS)? {
        Kind::AppOnly => {
            let hash = a
                .password_hash
                .as_ref()
                .ok_or_else(|| e.err("password_hash", "missing", HASH_FIX))?;
            if !hash.starts_with("$argon2id$")
                || argon2::password_hash::PasswordHash::new(hash).is_err()
            {
                return Err(e.err(
                    "password_hash",
                    "is not an Argon2id PHC string",
                    &format!("{HASH_FIX}; never a plain password"),
                ));
            }
            AccountKind::AppOnly {
                password_hash: hash.clone(),
                mailbox: a.mailbox.clone(),
            }
        }
        Kind::Shared => AccountKind::Shared {
            delegate: a.delegate.clone().ok_or_else(|| {
                e.err(
                    "delegate",
                    "missing",
                    "name the enrolled account whose token opens this shared mailbox",
                )
            })?,
        },
    };
    if a.login.is_empty() {
        return Err(e.err("login", "is empty", "write a login name or *@domain"));
    }
    Ok(AccountRule {
        login: a.login.clone(),
        provider: a.provider.clone(),
        kind,
    })
}
