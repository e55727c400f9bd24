//! Microsoft's "SMTP AUTH is disabled" answer from the test Postfix, for
//! chosen mailboxes, so that `submit = "auto"` meets the real thing.
//!
//! Postfix has no hook that refuses one SASL user with a reply of our
//! choosing, but it can rewrite a command before it reads it
//! (`smtpd_command_filter`) and it evaluates ETRN's restrictions at once,
//! even with `smtpd_delay_reject = yes`. mailgate sends
//! `AUTH XOAUTH2 <base64>` in one line (SASL-IR), and that base64 starts
//! with the encoding of `user=<address>\x01`; so a line starting with a
//! disabled mailbox's fixed prefix becomes `ETRN auth-disabled.invalid`,
//! and `check_etrn_access` answers it with code `535` and enhanced code
//! `5.7.139`. Postfix frames an access-map reply as
//! `535 5.7.139 <auth-disabled.invalid>: ... rejected: <text>`; the code,
//! enhanced code and Microsoft's text are kept, which is what mailgate
//! sorts on (`proto::smtp::upstream`). `regexp:` is used because it is
//! built into Postfix (`pcre:` is a separate package).

use base64::Engine as _;

/// The domain the rewritten command names; never resolves.
const MARKER: &str = "auth-disabled.invalid";

/// Microsoft's text after `535 5.7.139` (see docs/design.md).
pub const TEXT: &str = "Authentication unsuccessful, SmtpClientAuthentication is disabled \
for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.";

/// `main.cf` lines, empty when no mailbox is disabled (stock behaviour).
pub fn main_cf_lines(conf_dir: &str, disabled: &[String]) -> String {
    if disabled.is_empty() {
        return String::new();
    }
    format!(
        "smtpd_command_filter = regexp:{conf_dir}/command_filter\n\
         smtpd_etrn_restrictions = check_etrn_access texthash:{conf_dir}/etrn_access\n"
    )
}

/// The `regexp:` table: one line per disabled mailbox. The `i` flag turns
/// Postfix's default case folding off (base64 is case-sensitive); the
/// command words are matched in either case by hand.
pub fn command_filter(disabled: &[String]) -> String {
    disabled
        .iter()
        .map(|address| {
            format!(
                "/^[Aa][Uu][Tt][Hh] +[Xx][Oo][Aa][Uu][Tt][Hh]2 +{}/i ETRN {MARKER}\n",
                regexp_escape(&prefix(address))
            )
        })
        .collect()
}

/// The `texthash:` table for `check_etrn_access`.
pub fn etrn_access() -> String {
    format!("{MARKER} 535 5.7.139 {TEXT}\n")
}

/// Base64 of the whole 3-byte groups of `user=<address>\x01`: the
/// characters every XOAUTH2 string for this mailbox starts with, whatever
/// follows.
pub fn prefix(address: &str) -> String {
    let head = format!("user={address}\x01");
    let whole = head.len() / 3 * 3;
    base64::engine::general_purpose::STANDARD.encode(&head.as_bytes()[..whole])
}

fn regexp_escape(base64: &str) -> String {
    base64.replace('+', "\\+").replace('/', "\\/")
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefix_is_the_start_of_every_xoauth2_string_for_the_mailbox() {
        let address = "bob@example.test";
        let full = format!("user={address}\x01auth=Bearer abc\x01\x01");
        let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, full);
        assert!(encoded.starts_with(&super::prefix(address)));
        assert!(!encoded.starts_with(&super::prefix("alice@example.test")));
    }
}
