//! `[[accounts]]`: app-only rules (password checked against an Argon2id PHC
//! string, never a plain password) and shared mailboxes.

use toml::Spanned;

use super::Ctx;
use crate::config::raw::RawAccount;
use crate::config::validate::ConfigError;
use crate::config::{AccountKind, AccountRule, Provider};

pub(super) fn account(
    cx: &Ctx,
    i: usize,
    sp: &Spanned<RawAccount>,
    providers: &[Provider],
) -> Result<AccountRule, ConfigError> {
    let at = sp.span().start;
    let a = sp.get_ref();
    let key = |k: &str| format!("accounts[{i}].{k}");
    if let Some(p) = &a.provider
        && !providers.iter().any(|q| &q.name == p)
    {
        return Err(cx.err(
            at,
            key("provider"),
            format!("no provider named {p:?}"),
            "name one of the [[providers]] entries",
        ));
    }
    let kind = match a.kind.as_str() {
        "app-only" => {
            let Some(hash) = &a.password_hash else {
                return Err(cx.err(
                    at,
                    key("password_hash"),
                    "missing",
                    "run `mailgate hash-password` and paste the $argon2id$ string",
                ));
            };
            if !hash.starts_with("$argon2id$")
                || argon2::password_hash::PasswordHash::new(hash).is_err()
            {
                return Err(cx.err(at, key("password_hash"), "is not an Argon2id PHC string", "run `mailgate hash-password` and paste the $argon2id$ string; never a plain password"));
            }
            AccountKind::AppOnly {
                password_hash: hash.clone(),
                mailbox: a.mailbox.clone(),
            }
        }
        "shared" => match &a.delegate {
            Some(d) => AccountKind::Shared {
                delegate: d.clone(),
            },
            None => {
                return Err(cx.err(
                    at,
                    key("delegate"),
                    "missing",
                    "name the enrolled account whose token opens this shared mailbox",
                ));
            }
        },
        other => {
            return Err(cx.err(
                at,
                key("kind"),
                format!("unknown account kind {other:?}"),
                "use \"app-only\" or \"shared\"",
            ));
        }
    };
    if a.login.is_empty() {
        return Err(cx.err(
            at,
            key("login"),
            "is empty",
            "write a login name or *@domain",
        ));
    }
    Ok(AccountRule {
        login: a.login.clone(),
        provider: a.provider.clone(),
        kind,
    })
}
