//! Brute-force protection for local passwords. Failed logins are counted per
//! client address and per account; past a few free attempts each further
//! failure doubles a lock-out window, during which logins are refused at once
//! (no Argon2 work, no provider traffic, nothing held while waiting).
//!
//! An attacker hammering one account from elsewhere must not lock out its
//! owner: an address that has logged in to an account successfully is exempt
//! from that account's lock-out (not from its own address's).
//!
//! Accounts are [`AccountName`]s, the same folded names the token store
//! uses, so no spelling of a name escapes its account's lock-out. A login
//! name that cannot be an account at all counts against the address only.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::base::AccountName;

/// Failures allowed before lock-outs start.
pub const FREE_FAILURES: u32 = 3;
/// First lock-out; doubles with each further failure.
pub const BASE_LOCKOUT: Duration = Duration::from_secs(2);
/// Longest lock-out.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Entries kept per table before expired ones are swept.
pub const MAX_ENTRIES: usize = 100_000;
/// How long an address stays trusted for an account after a success.
pub const TRUST_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    locked_until: Instant,
    last: Instant,
}

#[derive(Default)]
struct Tables {
    by_ip: HashMap<IpAddr, Failures>,
    by_account: HashMap<AccountName, Failures>,
    trusted: HashMap<(AccountName, IpAddr), Instant>,
}

#[derive(Default)]
pub struct LoginGuard {
    tables: Mutex<Tables>,
}

impl LoginGuard {
    /// `Err(wait)` while `ip` or (for untrusted addresses) `account` is locked out.
    pub fn check(&self, ip: IpAddr, account: Option<&AccountName>) -> Result<(), Duration> {
        let now = Instant::now();
        let t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let ip_wait = t
            .by_ip
            .get(&ip)
            .map(|f| f.locked_until.saturating_duration_since(now));
        let account_wait = account
            .filter(|a| !t.trusts(a, ip, now))
            .and_then(|a| t.by_account.get(a))
            .map(|f| f.locked_until.saturating_duration_since(now));
        match ip_wait.into_iter().chain(account_wait).max() {
            Some(wait) if !wait.is_zero() => Err(wait),
            _ => Ok(()),
        }
    }

    pub fn failed(&self, ip: IpAddr, account: Option<&AccountName>) {
        let now = Instant::now();
        let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        bump(&mut t.by_ip, ip, now);
        if let Some(a) = account.filter(|a| !t.trusts(a, ip, now)) {
            bump(&mut t.by_account, a.clone(), now);
        }
    }

    pub fn succeeded(&self, ip: IpAddr, account: &AccountName) {
        let now = Instant::now();
        let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let key = account.clone();
        t.by_ip.remove(&ip);
        if t.trusted.len() >= MAX_ENTRIES {
            t.trusted.retain(|_, until| *until > now);
        }
        if t.trusted.len() < MAX_ENTRIES {
            t.trusted.insert((key, ip), now + TRUST_TTL);
        }
    }
}

impl Tables {
    fn trusts(&self, account: &AccountName, ip: IpAddr, now: Instant) -> bool {
        self.trusted
            .get(&(account.clone(), ip))
            .is_some_and(|&until| until > now)
    }
}

fn bump<K: std::hash::Hash + Eq>(table: &mut HashMap<K, Failures>, key: K, now: Instant) {
    if table.len() >= MAX_ENTRIES {
        table.retain(|_, f| now.saturating_duration_since(f.last) < MAX_LOCKOUT);
    }
    if table.len() >= MAX_ENTRIES {
        return;
    }
    let f = table.entry(key).or_insert(Failures {
        count: 0,
        locked_until: now,
        last: now,
    });
    if now.saturating_duration_since(f.last) > MAX_LOCKOUT {
        f.count = 0;
    }
    f.count += 1;
    f.last = now;
    if f.count > FREE_FAILURES {
        let doublings = (f.count - FREE_FAILURES - 1).min(16);
        f.locked_until = now + (BASE_LOCKOUT * 2u32.pow(doublings)).min(MAX_LOCKOUT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> AccountName {
        AccountName::parse(s).unwrap()
    }

    const ATTACKER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 9, 9, 9));
    const OWNER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));

    #[tokio::test(start_paused = true)]
    async fn lockout_grows_and_expires() {
        let g = LoginGuard::default();
        for _ in 0..FREE_FAILURES {
            assert!(g.check(ATTACKER, Some(&name("a"))).is_ok());
            g.failed(ATTACKER, Some(&name("a")));
        }
        assert!(g.check(ATTACKER, Some(&name("a"))).is_ok());
        g.failed(ATTACKER, Some(&name("a")));
        assert_eq!(g.check(ATTACKER, Some(&name("a"))), Err(BASE_LOCKOUT));
        assert_eq!(
            g.check(ATTACKER, Some(&name("other"))).unwrap_err(),
            BASE_LOCKOUT,
            "the address is locked for every account"
        );
        tokio::time::sleep(BASE_LOCKOUT).await;
        g.failed(ATTACKER, Some(&name("a")));
        assert_eq!(g.check(ATTACKER, Some(&name("a"))), Err(BASE_LOCKOUT * 2));
    }

    #[tokio::test(start_paused = true)]
    async fn owner_keeps_working_while_attacked() {
        let g = LoginGuard::default();
        g.succeeded(OWNER, &name("alice"));
        for i in 0..20u8 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, i));
            g.failed(ip, Some(&name("alice")));
        }
        assert!(
            g.check(
                IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 1, 1)),
                Some(&name("alice"))
            )
            .is_err(),
            "account locked for strangers"
        );
        assert!(
            g.check(OWNER, Some(&name("alice"))).is_ok(),
            "but not for the owner's address"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn every_spelling_of_an_account_shares_its_lockout_and_its_record() {
        let g = LoginGuard::default();
        for spelling in [
            "\u{212A}im@example.com",
            "KIM@example.com",
            "Kim@Example.com",
        ] {
            for _ in 0..2 {
                g.failed(ATTACKER, Some(&name(spelling)));
            }
        }
        let stranger = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 2, 2));
        assert!(g.check(stranger, Some(&name("kim@example.com"))).is_err());
        assert!(g.check(stranger, Some(&name("other@example.com"))).is_ok());
        let dir = crate::store::testutil::TempDir::new("guard-names");
        let record = |s: &str| crate::store::testutil::record_path(dir.path(), s);
        assert_eq!(
            record("\u{212A}im@example.com"),
            record("kim@example.com"),
            "the store files the same account the guard locks"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_name_that_is_no_account_counts_against_the_address() {
        let g = LoginGuard::default();
        for _ in 0..=FREE_FAILURES {
            g.failed(ATTACKER, None);
        }
        assert_eq!(g.check(ATTACKER, None), Err(BASE_LOCKOUT));
        assert!(g.check(OWNER, Some(&name("a@x"))).is_ok());
    }
}
