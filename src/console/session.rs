//! Console sign-in sessions. A session is a random 256-bit id in the
//! `mailgate_session` cookie (`HttpOnly; SameSite=Strict; Path=/`, plus
//! `Secure` under TLS) naming an entry in a table held only in memory: a
//! restart signs everyone out, which is the safe direction. Each entry has
//! its own CSRF token for the hidden `csrf` field of every form, ends after
//! the configured idle time or its absolute lifetime, and the table is
//! bounded ([`MAX_SESSIONS`], the oldest goes first).
//!
//! Before sign-in there is no session, so the sign-in form uses a
//! double-submit pair instead: a random `mailgate_login` cookie whose value
//! the form repeats. A page on another site can neither read the cookie nor
//! (with `SameSite=Strict`) send it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::base::{hex, random_bytes};

/// Sessions held at once; a new sign-in past this ends the oldest.
pub const MAX_SESSIONS: usize = 64;
/// The session cookie.
pub const COOKIE: &str = "mailgate_session";
/// The sign-in form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "mailgate_login";

/// A signed-in admin, as a request sees it.
#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
}

struct Entry {
    csrf: String,
    created: Instant,
    last: Instant,
}

/// The session table.
pub struct Sessions {
    table: Mutex<HashMap<String, Entry>>,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            table: Mutex::new(HashMap::new()),
        }
    }
}

/// Bytes of randomness in a [`token`].
const TOKEN_BYTES: usize = 32;

/// A fresh 256-bit random value in hex, or `None` if the system random
/// generator failed (the caller refuses the request).
pub fn token() -> Option<String> {
    random_bytes::<TOKEN_BYTES>().ok().map(|b| hex(&b))
}

/// Whether `value` has exactly the shape [`token`] gives (64 lowercase hex
/// digits). A cookie the browser sends back is reused only if it does, so
/// a value planted by anyone else cannot choose its own length or alphabet.
pub fn is_token(value: &str) -> bool {
    value.len() == 2 * TOKEN_BYTES
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Sessions {
    /// Opens a session; returns its id for the cookie.
    pub fn open(&self) -> Option<String> {
        let (id, csrf) = (token()?, token()?);
        let now = Instant::now();
        let mut t = self.lock();
        if t.len() >= MAX_SESSIONS {
            let oldest = t
                .iter()
                .min_by_key(|(_, e)| e.created)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                t.remove(&oldest);
            }
        }
        t.insert(
            id.clone(),
            Entry {
                csrf,
                created: now,
                last: now,
            },
        );
        Some(id)
    }

    /// The live session `id` names, touched; an expired one is dropped.
    pub fn find(&self, id: &str, idle: Duration, max: Duration) -> Option<Session> {
        let now = Instant::now();
        let mut t = self.lock();
        let entry = t.get_mut(id)?;
        if now.duration_since(entry.last) > idle || now.duration_since(entry.created) > max {
            t.remove(id);
            return None;
        }
        entry.last = now;
        Some(Session {
            csrf: entry.csrf.clone(),
        })
    }

    /// Signs out; whether the session existed.
    pub fn close(&self, id: &str) -> bool {
        self.lock().remove(id).is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Compares a submitted token with the expected one in time that does not
/// depend on where they differ.
pub fn same_token(given: &str, expected: &str) -> bool {
    !expected.is_empty()
        && aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), expected.as_bytes())
            .is_ok()
}

/// A `Set-Cookie` value for `name` (empty `value`: delete it).
pub fn set_cookie(name: &str, value: &str, tls: bool, max_age: Option<Duration>) -> String {
    let mut c = format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/");
    if tls {
        c.push_str("; Secure");
    }
    match (value.is_empty(), max_age) {
        (true, _) => c.push_str("; Max-Age=0"),
        (false, Some(age)) => c.push_str(&format!("; Max-Age={}", age.as_secs())),
        (false, None) => {}
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sessions_end_when_idle_at_their_limit_and_on_close() {
        let s = Sessions::default();
        let (idle, max) = (Duration::from_secs(60), Duration::from_secs(150));
        let id = s.open().unwrap();
        assert_eq!(id.len(), 64);
        assert!(s.find(&id, idle, max).is_some());
        tokio::time::advance(Duration::from_secs(50)).await;
        assert!(s.find(&id, idle, max).is_some());
        tokio::time::advance(Duration::from_secs(50)).await;
        assert!(s.find(&id, idle, max).is_some());
        tokio::time::advance(Duration::from_secs(55)).await;
        assert!(s.find(&id, idle, max).is_none(), "past the absolute limit");
        let id = s.open().unwrap();
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(s.find(&id, idle, max).is_none(), "idle too long");
        let id = s.open().unwrap();
        assert!(s.close(&id) && s.find(&id, idle, max).is_none());
    }

    #[test]
    fn the_table_is_bounded_and_tokens_compare_exactly() {
        let s = Sessions::default();
        let first = s.open().unwrap();
        for _ in 0..MAX_SESSIONS {
            s.open().unwrap();
        }
        assert_eq!(s.lock().len(), MAX_SESSIONS);
        assert!(!s.lock().contains_key(&first));
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abd", "abc") && !same_token("", "") && !same_token("ab", "abc"));
    }

    #[test]
    fn only_values_shaped_like_a_token_count_as_one() {
        for _ in 0..8 {
            assert!(is_token(&token().unwrap()));
        }
        let good = "0123456789abcdef".repeat(4);
        assert!(is_token(&good));
        for bad in [
            String::new(),
            good[..63].to_owned(),
            format!("{good}0"),
            good.to_uppercase(),
            format!("{}g", &good[..63]),
            format!("{} ", &good[..63]),
            format!("{}é", &good[..62]),
            "x".repeat(64),
        ] {
            assert!(!is_token(&bad), "{bad:?}");
        }
    }
}
