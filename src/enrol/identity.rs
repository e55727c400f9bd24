//! The check that the right person signed in. A browser already signed in to
//! another account (a colleague's, the admin's own) hands the sign-in page
//! that account without asking, and the tokens would then open the wrong
//! mailbox under this account's name. So the user named in the answer must
//! be the account being enrolled, or the mailbox given for its XOAUTH2
//! `user=`, compared as [`AccountName`]s (case-insensitively).
//!
//! Some providers name nobody in a token mailgate can read (no id token,
//! opaque access tokens): then the enrolment goes ahead and says that the
//! identity was not checked (docs/design.md §4, "Provider facts").

use super::EnrolError;
use crate::base::AccountName;
use crate::oauth::SignedIn;

/// Shown after an enrolment whose signed-in user could not be read.
pub const UNCHECKED: &str = "could not check who signed in: the provider's answer names no user \
     (no id token, and the access token is not a readable JWT). Make sure the account that \
     signed in is the one being enrolled; if not, run `mailgate login` again in a private \
     browser window";

/// The signed-in user (`None`: nobody could be read), or the refusal when it
/// is neither `account` nor `mailbox`.
pub(super) fn check(
    signed_in: &SignedIn,
    account: &str,
    mailbox: &str,
) -> Result<Option<String>, EnrolError> {
    let Some(user) = signed_in.user() else {
        tracing::warn!(account, "{UNCHECKED}");
        return Ok(None);
    };
    let same = |a: &str| matches!((AccountName::parse(&user), AccountName::parse(a)), (Ok(u), Ok(a)) if u == a);
    if same(account) || same(mailbox) {
        return Ok(Some(user));
    }
    tracing::warn!(account, signed_in = %user, "enrolment refused: another user signed in");
    Err(EnrolError::WrongUser {
        signed_in: user,
        enrolling: mailbox.to_owned(),
        account: account.to_owned(),
    })
}
