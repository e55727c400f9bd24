//! Who may open which mailbox, as the mail servers ask it: Dovecot checks
//! every XOAUTH2/OAUTHBEARER login by asking the test identity provider
//! whether the token may open the mailbox (the SASL `user=`), and Postfix refuses `MAIL FROM` a mailbox's address unless the
//! logged-in user is that mailbox or has send-as on it.
//!
//! Dovecot's oauth2 passdb checks the token by introspection, but in
//! Dovecot 2.3 it posts only the token (its `introspection_url` is not
//! variable-expanded; a `%u` in it makes the URL invalid and brings the auth
//! process down), and its username check compares one introspected attribute
//! with the login name: it cannot say "Alice's token opens Alice's mailbox and
//! the shared `info@` one" or "the app's token opens a whole domain". (A
//! checkpassword passdb would see both, but Dovecot caps its input at 512
//! bytes, and Microsoft's tokens are 1.5-3 KB.) So the passdb's username
//! check is switched off, it keeps the token's id (`jti`) from the
//! introspection answer, and Dovecot's authentication policy check after a
//! successful login sends that id and the login name to the provider, which
//! answers allow, or refuse with its reason; Dovecot shows the reason to the
//! client (`NO [ALERT] ...`, `-ERR [AUTH] ...`, SMTP `535 ...`).

use std::fmt::Write as _;
use std::path::PathBuf;

/// How long Dovecot waits for the policy answer.
const POLICY_TIMEOUT_MSECS: u32 = 10_000;

/// `oauth2.conf` for the oauth2 passdb: the token must be active; the
/// mailbox check is the policy's.
pub fn oauth2_conf(introspect_url: &str) -> String {
    format!(
        "introspection_mode = post\n\
         introspection_url = {introspect_url}\n\
         username_attribute = email\n\
         # Both sides expand to the same constant: the policy check decides.\n\
         username_format = token\n\
         active_attribute = active\n\
         active_value = true\n\
         pass_attrs = jti=%{{oauth2:jti}}\n"
    )
}

/// `dovecot.conf` lines for the policy check after authentication, when the
/// provider serves one at `policy_url`.
pub fn policy_conf(policy_url: &str) -> String {
    format!(
        "auth_policy_server_url = {policy_url}\n\
         auth_policy_server_timeout_msecs = {POLICY_TIMEOUT_MSECS}\n\
         auth_policy_hash_nonce = mailgate-test-only\n\
         auth_policy_check_before_auth = no\n\
         auth_policy_check_after_auth = yes\n\
         auth_policy_report_after_auth = no\n\
         auth_policy_request_attributes = login=%{{requested_username}} jti=%{{passdb:jti}} protocol=%s\n"
    )
}

/// The provider's policy endpoint, served next to its introspection endpoint.
pub fn policy_url(introspect_url: &str) -> Option<String> {
    introspect_url
        .strip_suffix("/introspect")
        .map(|base| format!("{base}/policy"))
}

/// Postfix `smtpd_sender_login_maps` lines (`texthash`, no `postmap`
/// needed): every mailbox may send as itself, and a shared one also as the
/// users granted send-as. A shared mailbox nobody may send as is listed too,
/// so that `reject_known_sender_login_mismatch` refuses it to everyone else.
pub fn sender_logins(mailboxes: &[(String, PathBuf)], send_as: &[(String, Vec<String>)]) -> String {
    mailboxes
        .iter()
        .map(|(mailbox, _)| mailbox)
        .fold(String::new(), |mut out, mailbox| {
            let mut owners = vec![mailbox.as_str()];
            send_as
                .iter()
                .filter(|(shared, _)| shared.eq_ignore_ascii_case(mailbox))
                .flat_map(|(_, users)| users)
                .for_each(|user| owners.push(user));
            let _ = writeln!(out, "{mailbox} {}", owners.join(", "));
            out
        })
}
