//! [`AccountName`]: who a login is about, decided once from what the client
//! sent. The brute-force guard, the per-mailbox gate, the account rules and
//! the token store all key on it, so they can never disagree about whether
//! two spellings are the same account.
//!
//! Mail addresses compare case-insensitively in practice (Exchange Online
//! does), so the name is folded with Unicode lowercase: `Alice@Example.COM`
//! and `alice@example.com` are one account, and so are U+212A KELVIN SIGN and
//! `k`. The token store has always named its files after this folded form,
//! so existing state directories keep working.

use std::fmt;
use std::sync::Arc;

/// Longest account name accepted (an e-mail address is at most 254 bytes).
pub const MAX_ACCOUNT_LEN: usize = 320;

/// A login or mailbox name that cannot name an account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid account name {shown:?}: use the mailbox address, without spaces")]
pub struct InvalidName {
    /// The start of the refused name, for messages.
    pub shown: String,
}

/// A validated, folded account name. Cheap to clone.
#[derive(Clone)]
pub struct AccountName {
    folded: Arc<str>,
    /// The spelling the client sent, for places that echo it upstream.
    sent: Arc<str>,
}

impl AccountName {
    /// Refuses empty names, names longer than [`MAX_ACCOUNT_LEN`] bytes,
    /// control characters and whitespace; folds the rest to lowercase.
    pub fn parse(name: &str) -> Result<AccountName, InvalidName> {
        if name.is_empty()
            || name.len() > MAX_ACCOUNT_LEN
            || name.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(InvalidName {
                shown: name.chars().take(64).collect(),
            });
        }
        Ok(AccountName {
            folded: name.to_lowercase().into(),
            sent: name.into(),
        })
    }

    /// The folded name: the account's identity.
    pub fn as_str(&self) -> &str {
        &self.folded
    }

    /// The name as the client spelled it.
    pub fn as_sent(&self) -> &str {
        &self.sent
    }
}

impl PartialEq for AccountName {
    fn eq(&self, other: &Self) -> bool {
        self.folded == other.folded
    }
}

impl Eq for AccountName {}

impl std::hash::Hash for AccountName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.folded.hash(state);
    }
}

impl PartialOrd for AccountName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AccountName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.folded.cmp(&other.folded)
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.folded)
    }
}

impl fmt::Debug for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.folded, f)
    }
}

impl PartialEq<str> for AccountName {
    fn eq(&self, other: &str) -> bool {
        &*self.folded == other
    }
}

impl PartialEq<&str> for AccountName {
    fn eq(&self, other: &&str) -> bool {
        &*self.folded == *other
    }
}

impl serde::Serialize for AccountName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.folded)
    }
}

impl<'de> serde::Deserialize<'de> for AccountName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        AccountName::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> AccountName {
        AccountName::parse(s).unwrap()
    }

    #[test]
    fn folds_unicode_case() {
        assert_eq!(name("\u{212A}im@example.com").as_str(), "kim@example.com");
        assert_eq!(name("\u{212A}im@example.com"), name("Kim@Example.com"));
        assert_eq!(name("Alice@Example.COM").as_str(), "alice@example.com");
        assert_eq!(name("Alice@Example.COM").as_sent(), "Alice@Example.COM");
        assert_eq!(name("Alice@Example.COM").to_string(), "alice@example.com");
    }

    #[test]
    fn refuses_what_cannot_be_an_account() {
        for bad in ["", "a\x01b@x", "a b@x", "a\tb", "tab\u{85}"] {
            assert!(AccountName::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@x", "a".repeat(MAX_ACCOUNT_LEN));
        assert!(AccountName::parse(&long).is_err());
        let just = "a".repeat(MAX_ACCOUNT_LEN);
        assert!(AccountName::parse(&just).is_ok());
        let err = AccountName::parse(&"\x01".repeat(100)).unwrap_err();
        assert_eq!(err.shown.chars().count(), 64);
    }

    #[test]
    fn serde_round_trips_the_folded_form() {
        let json = serde_json::to_string(&name("Bob@X")).unwrap();
        assert_eq!(json, "\"bob@x\"");
        let back: AccountName = serde_json::from_str(&json).unwrap();
        assert_eq!(back, name("bob@x"));
        assert!(serde_json::from_str::<AccountName>("\"a b\"").is_err());
    }
}
