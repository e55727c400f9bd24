use std::net::Ipv4Addr;

use super::*;

fn name(s: &str) -> AccountName {
    AccountName::parse(s).unwrap()
}

fn acct(s: &str) -> Target {
    Target::Account(name(s))
}

/// Whether a check may start now (the reservation is given back at once).
fn check(g: &LoginGuard, ip: IpAddr, target: Option<&Target>) -> Result<(), Duration> {
    g.try_begin(ip, target).map(drop).map_err(Refusal::wait)
}

/// A wrong password, if the guard lets the check run at all.
fn fail(g: &LoginGuard, ip: IpAddr, target: Option<&Target>) {
    if let Ok(attempt) = g.try_begin(ip, target) {
        attempt.failed();
    }
}

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9));
const OWNER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

#[tokio::test(start_paused = true)]
async fn lockout_grows_and_expires() {
    let g = LoginGuard::default();
    let a = acct("a");
    for _ in 0..FREE_FAILURES {
        assert!(check(&g, ATTACKER, Some(&a)).is_ok());
        fail(&g, ATTACKER, Some(&a));
    }
    assert!(check(&g, ATTACKER, Some(&a)).is_ok());
    fail(&g, ATTACKER, Some(&a));
    assert_eq!(check(&g, ATTACKER, Some(&a)), Err(BASE_LOCKOUT));
    assert_eq!(
        check(&g, ATTACKER, Some(&acct("other"))).unwrap_err(),
        BASE_LOCKOUT,
        "the address is locked for every account"
    );
    tokio::time::sleep(BASE_LOCKOUT).await;
    fail(&g, ATTACKER, Some(&a));
    assert_eq!(check(&g, ATTACKER, Some(&a)), Err(BASE_LOCKOUT * 2));
}

#[tokio::test(start_paused = true)]
async fn owner_keeps_working_while_attacked() {
    let g = LoginGuard::default();
    g.try_begin(OWNER, Some(&acct("alice")))
        .unwrap()
        .succeeded();
    for i in 0..20u8 {
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
        fail(&g, ip, Some(&acct("alice")));
    }
    assert!(
        check(
            &g,
            IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1)),
            Some(&acct("alice"))
        )
        .is_err(),
        "account locked for strangers"
    );
    assert!(
        check(&g, OWNER, Some(&acct("alice"))).is_ok(),
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
            fail(&g, ATTACKER, Some(&acct(spelling)));
        }
    }
    let stranger = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2));
    assert!(check(&g, stranger, Some(&acct("kim@example.com"))).is_err());
    assert!(check(&g, stranger, Some(&acct("other@example.com"))).is_ok());
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
        fail(&g, ATTACKER, None);
    }
    assert_eq!(check(&g, ATTACKER, None), Err(BASE_LOCKOUT));
    assert!(check(&g, OWNER, Some(&acct("a@x"))).is_ok());
}

#[tokio::test(start_paused = true)]
async fn invented_names_under_one_rule_share_its_count() {
    let rules = vec![crate::config::AccountRule {
        login: "*@apps.example".into(),
        provider: None,
        kind: crate::config::AccountKind::AppOnly {
            password_hash: "$argon2id$x".into(),
            mailbox: None,
        },
    }];
    let g = LoginGuard::default();
    let mut checked = 0;
    for i in 0..20u8 {
        let login = name(&format!("a{i}@apps.example"));
        let resolved =
            crate::accounts::resolve(&rules, &login, None, crate::base::Protocol::Imap).unwrap();
        let target = Target::of(&resolved);
        assert_eq!(target, Target::Rule("*@apps.example".into()));
        // Each invented name comes from its own address: only the rule's
        // count can stop them.
        let ip = IpAddr::V4(Ipv4Addr::new(10, 1, 0, i));
        if let Ok(attempt) = g.try_begin(ip, Some(&target)) {
            checked += 1;
            attempt.failed();
        }
    }
    assert_eq!(checked, FREE_FAILURES + 1, "guesses at the rule's password");
}

#[tokio::test(start_paused = true)]
async fn parallel_guesses_are_counted_before_they_are_checked() {
    let g = LoginGuard::default();
    let a = acct("a");
    let admitted: Vec<_> = (0..256)
        .filter_map(|_| g.try_begin(ATTACKER, Some(&a)).ok())
        .collect();
    assert_eq!(admitted.len(), FREE_FAILURES as usize + 1);
    for attempt in admitted {
        attempt.failed();
    }
    assert!(check(&g, ATTACKER, None).is_err());
    let stranger = IpAddr::V4(Ipv4Addr::new(10, 0, 3, 3));
    assert!(check(&g, stranger, Some(&a)).is_err());
}

#[tokio::test(start_paused = true)]
async fn a_check_that_ends_without_a_verdict_gives_its_reservation_back() {
    let g = LoginGuard::default();
    for _ in 0..10 {
        drop(g.try_begin(ATTACKER, Some(&acct("a"))).unwrap());
    }
    assert_eq!(g.sizes(), [0; 4], "nothing left behind");
}

#[tokio::test(start_paused = true)]
async fn a_success_elsewhere_keeps_the_address_count() {
    let g = LoginGuard::default();
    for _ in 0..FREE_FAILURES {
        fail(&g, ATTACKER, Some(&acct("victim")));
    }
    g.try_begin(ATTACKER, Some(&acct("mine")))
        .unwrap()
        .succeeded();
    fail(&g, ATTACKER, Some(&acct("victim2")));
    assert_eq!(check(&g, ATTACKER, None), Err(BASE_LOCKOUT));
}

#[tokio::test(start_paused = true)]
async fn ipv6_sources_are_grouped_by_prefix() {
    let g = LoginGuard::default();
    for i in 0..=FREE_FAILURES {
        let ip: IpAddr = format!("2001:db8:0:1::{}", i + 1).parse().unwrap();
        fail(&g, ip, None);
    }
    let sibling: IpAddr = "2001:db8:0:1:ffff::9".parse().unwrap();
    assert!(check(&g, sibling, None).is_err(), "same /64");
    let other: IpAddr = "2001:db8:0:2::1".parse().unwrap();
    assert!(check(&g, other, None).is_ok(), "another /64");
}

#[tokio::test(start_paused = true)]
async fn a_flood_keeps_tables_bounded_and_full_tables_fail_closed() {
    let cap = 10_000;
    let g = LoginGuard::new(GuardSettings {
        capacity: cap,
        ..GuardSettings::default()
    });
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..200_000 {
        let r = next();
        let ip = if r & 1 == 0 {
            IpAddr::V4(Ipv4Addr::from((r >> 8) as u32))
        } else {
            IpAddr::V6(std::net::Ipv6Addr::from(u128::from(r) << 64 | 1))
        };
        let target = acct(&format!("{:x}@flood.example", next()));
        fail(&g, ip, Some(&target));
    }
    let [sources, targets, trusted, pairs] = g.sizes();
    assert!(sources <= cap && targets <= cap && trusted <= cap && pairs <= cap);
    assert_eq!(sources, cap, "the flood filled the table");
    let fresh = IpAddr::V4(Ipv4Addr::new(172, 16, 0, 1));
    assert_eq!(
        check(&g, fresh, None),
        Err(TABLE_FULL_WAIT),
        "a new source is refused, not waved through"
    );
    tokio::time::sleep(MAX_LOCKOUT * 2).await;
    assert!(
        check(&g, fresh, None).is_ok(),
        "room again once the flood has aged"
    );
}

#[tokio::test(start_paused = true)]
async fn lockouts_and_trust_survive_a_restart() {
    let dir = crate::store::testutil::TempDir::new("guard-persist");
    let g = LoginGuard::default();
    g.try_begin(OWNER, Some(&acct("alice")))
        .unwrap()
        .succeeded();
    for i in 0..=FREE_FAILURES {
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8));
        fail(&g, ip, Some(&acct("alice")));
        fail(&g, ATTACKER, Some(&Target::Rule("*@apps.example".into())));
    }
    persist::save_if_changed(&g, dir.path()).unwrap();
    let bytes = std::fs::read(persist::path(dir.path())).unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains("password"));

    let restarted = LoginGuard::default();
    assert!(persist::load(&restarted, dir.path()).unwrap() > 0);
    let stranger = IpAddr::V4(Ipv4Addr::new(10, 0, 9, 9));
    assert!(check(&restarted, stranger, Some(&acct("alice"))).is_err());
    assert!(check(&restarted, OWNER, Some(&acct("alice"))).is_ok());
    assert!(restarted.source_locked(ATTACKER));
    let rule = Target::Rule("*@apps.example".into());
    assert!(check(&restarted, stranger, Some(&rule)).is_err());

    std::fs::write(persist::path(dir.path()), b"{not json").unwrap();
    assert!(persist::load(&LoginGuard::default(), dir.path()).is_err());
    std::fs::remove_file(persist::path(dir.path())).unwrap();
    assert_eq!(
        persist::load(&LoginGuard::default(), dir.path()).unwrap(),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_out_the_longest_lockout_gives_no_fresh_free_attempts() {
    let g = LoginGuard::default();
    let a = acct("a");
    for _ in 0..=FREE_FAILURES {
        fail(&g, ATTACKER, Some(&a));
    }
    tokio::time::sleep(BASE_LOCKOUT).await;
    fail(&g, ATTACKER, Some(&a));
    tokio::time::sleep(MAX_LOCKOUT + Duration::from_secs(1)).await;
    fail(&g, ATTACKER, Some(&a));
    assert_eq!(check(&g, ATTACKER, Some(&a)), Err(BASE_LOCKOUT * 4));
    tokio::time::sleep(FORGET_AFTER + Duration::from_secs(1)).await;
    for _ in 0..FREE_FAILURES {
        fail(&g, ATTACKER, Some(&a));
    }
    assert!(
        check(&g, ATTACKER, Some(&a)).is_ok(),
        "forgotten after a day"
    );
}

/// Guesses a patient attacker gets at one account within `within`, each
/// from a fresh address (the README's Security section quotes these).
async fn guesses_in(within: Duration) -> u32 {
    let g = LoginGuard::default();
    let a = acct("a");
    let end = Instant::now() + within;
    let mut guesses = 0u32;
    for i in 0..100_000u32 {
        if Instant::now() >= end {
            break;
        }
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        match g.try_begin(ip, Some(&a)) {
            Ok(attempt) => {
                guesses += 1;
                attempt.failed();
            }
            Err(refusal) => tokio::time::sleep(refusal.wait().min(end - Instant::now())).await,
        }
    }
    guesses
}

#[tokio::test(start_paused = true)]
async fn the_guarantees_the_readme_states() {
    let hour = Duration::from_secs(3600);
    assert_eq!(guesses_in(hour).await, 15, "first hour");
    assert_eq!(
        guesses_in(hour * 2).await,
        19,
        "two hours: 4 per hour after the first"
    );
    assert_eq!(guesses_in(hour * 24).await, 107, "one day");
}

/// `n` logins at once from one address to one account, each settled by
/// `verdict` after a slow check; how many checks ran.
async fn at_once(n: usize, right_password: bool) -> (usize, usize) {
    let g = std::sync::Arc::new(LoginGuard::default());
    let checks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (g, checks) = (g.clone(), checks.clone());
            tokio::spawn(async move {
                let a = acct("a");
                let Ok(attempt) = g.begin(ATTACKER, Some(&a), Duration::from_secs(30)).await else {
                    return false;
                };
                checks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                if right_password {
                    attempt.succeeded();
                } else {
                    attempt.failed();
                }
                true
            })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        admitted += usize::from(t.await.unwrap());
    }
    (admitted, checks.load(std::sync::atomic::Ordering::SeqCst))
}

#[tokio::test(start_paused = true)]
async fn parallel_wrong_guesses_wait_for_verdicts_and_meet_the_lockout() {
    let (_, checks) = at_once(256, false).await;
    assert_eq!(checks, FREE_FAILURES as usize + 1, "256 guesses, 4 checked");
}

#[tokio::test(start_paused = true)]
async fn parallel_right_logins_all_go_through() {
    let (admitted, checks) = at_once(256, true).await;
    assert_eq!((admitted, checks), (256, 256));
}

#[tokio::test(start_paused = true)]
async fn typos_before_the_right_password_are_taken_back() {
    let g = LoginGuard::default();
    let mine = acct("mine");
    for _ in 0..FREE_FAILURES {
        fail(&g, ATTACKER, Some(&mine));
    }
    g.try_begin(ATTACKER, Some(&mine)).unwrap().succeeded();
    for _ in 0..FREE_FAILURES {
        fail(&g, ATTACKER, Some(&acct("victim")));
    }
    assert!(
        check(&g, ATTACKER, None).is_ok(),
        "the typos no longer count"
    );
    fail(&g, ATTACKER, Some(&acct("victim")));
    assert!(check(&g, ATTACKER, None).is_err(), "the guesses do");
}
