//! Token life cycle through the real binary: expiry during a session, a
//! token the server stops accepting early, a revoked sign-in, an identity
//! provider that is down, and a wrong local password. The IdP's counters
//! prove how many refreshes mailgate made.

use std::time::{Duration, Instant};

use super::attempt::{attempt, succeeded};
use super::harness::{ALICE, Env, Options, PASSWORD};
use crate::support::idp::{Failure, OAuthFault};
use crate::support::mailgate;

/// How long a test waits for mailgate to recover once the IdP is back
/// (mailgate backs off 2 s, doubling, after a failed refresh).
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(20);
const RECOVERY_POLL: Duration = Duration::from_millis(300);
const PROTOCOLS: [&str; 3] = ["imap", "pop3", "smtp"];

const LONG_SESSION: &str = r#"
import imaplib, sys, time
port, user, pw, wait = sys.argv[1:5]
a = imaplib.IMAP4("127.0.0.1", int(port), timeout=20)
print("a-login", a.login(user, pw)[0])
print("a-select", a.select("INBOX")[0])
time.sleep(float(wait))
try:
    print("a-noop", a.noop()[0])
except (imaplib.IMAP4.abort, OSError) as e:
    print("a-ended", e)
b = imaplib.IMAP4("127.0.0.1", int(port), timeout=20)
print("b-login", b.login(user, pw)[0])
print("b-select", b.select("INBOX")[0])
b.logout()
"#;

#[test]
fn token_expiring_during_a_session_then_a_new_login_refreshes_once() {
    let lifetime = Duration::from_secs(6);
    let env = Env::start_with(Options {
        refresh_margin_secs: 1,
        enrol_lifetime: Some(lifetime),
        ..Options::default()
    });
    let enrolled = Instant::now();
    let port = env.port("imap-none").to_string();
    let wait = (lifetime + Duration::from_millis(1500))
        .as_secs_f64()
        .to_string();
    let out = env.python(LONG_SESSION, &[&port, ALICE, PASSWORD, &wait]);
    let context = format!("{out}\n{}", env.logs());
    assert!(
        enrolled.elapsed() > lifetime,
        "the session did not outlive its token"
    );
    assert!(
        out.contains("a-login OK") && out.contains("a-select OK"),
        "{context}"
    );
    assert!(
        out.contains("a-noop OK") || out.contains("a-ended"),
        "{context}"
    );
    assert!(
        out.contains("b-login OK") && out.contains("b-select OK"),
        "{context}"
    );
    assert_eq!(
        env.refreshes(),
        1,
        "one refresh for the new login\n{context}"
    );
}

#[test]
fn token_rejected_before_expiry_is_refreshed_once_per_rejection() {
    let env = Env::start();
    let first = attempt(&env, "imap", ALICE, PASSWORD);
    assert!(succeeded(&first), "{first}\n{}", env.logs());
    assert_eq!(env.refreshes(), 0, "the enrolment's token was fresh");
    for (n, protocol) in PROTOCOLS.into_iter().enumerate() {
        env.idp.invalidate_access_tokens_for(ALICE);
        let answer = attempt(&env, protocol, ALICE, PASSWORD);
        assert!(succeeded(&answer), "{protocol}: {answer}\n{}", env.logs());
        assert_eq!(
            env.refreshes(),
            n as u64 + 1,
            "{protocol}: exactly one refresh\n{}",
            env.logs()
        );
    }
    assert!(
        env.logs().contains("provider refused an unexpired token"),
        "{}",
        env.logs()
    );
}

#[test]
fn an_upstream_refusing_every_token_costs_one_refresh_not_one_per_login() {
    const LOGINS: usize = 6;
    let env = Env::start();
    let first = attempt(&env, "imap", ALICE, PASSWORD);
    assert!(succeeded(&first), "{first}\n{}", env.logs());
    env.idp.refuse_tokens_for(ALICE);
    for n in 0..LOGINS {
        let answer = attempt(&env, "imap", ALICE, PASSWORD);
        assert!(
            answer.starts_with("NO") && answer.contains("AUTHENTICATIONFAILED"),
            "login {n}: {answer}\n{}",
            env.logs()
        );
        assert!(
            !answer.contains("mailgate login"),
            "login {n}: the sign-in is not at fault: {answer}"
        );
    }
    assert!(
        env.refreshes() <= 1,
        "{} refreshes for {LOGINS} refused logins\n{}",
        env.refreshes(),
        env.logs()
    );
}

#[test]
fn an_expired_client_secret_leaves_accounts_signed_in_and_is_logged_once() {
    let env = Env::start();
    env.idp.invalidate_access_tokens_for(ALICE);
    env.idp.fail_refreshes_with(Some(OAuthFault::invalid_client(
        7000222,
        "The provided client secret keys for app 'mailgate' are expired.",
    )));
    let temporary = [
        ("imap", "[UNAVAILABLE]"),
        ("pop3", "-ERR [SYS/TEMP]"),
        ("smtp", "ERR 454"),
    ];
    for (protocol, expected) in temporary {
        let answer = attempt(&env, protocol, ALICE, PASSWORD);
        assert!(
            answer.contains(expected) && !answer.contains("mailgate login"),
            "{protocol}: {answer}\n{}",
            env.logs()
        );
    }
    let accounts = env.accounts();
    assert!(!accounts.contains("needs-login"), "{accounts}");
    let logs = env.logs();
    let said = logs.matches("refused mailgate's configuration").count();
    assert_eq!(said, 1, "{logs}");
    assert!(logs.contains("client secret"), "{logs}");

    env.idp.fail_refreshes_with(None);
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    loop {
        let answer = attempt(&env, "imap", ALICE, PASSWORD);
        if succeeded(&answer) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery within {RECOVERY_TIMEOUT:?}: {answer}\n{}",
            env.logs()
        );
        std::thread::sleep(RECOVERY_POLL);
    }
    assert!(env.accounts().contains("active"), "{}", env.accounts());
}

#[test]
fn revoked_refresh_token_asks_for_mailgate_login_until_enrolled_again() {
    let env = Env::start();
    env.idp.revoke(ALICE);
    env.idp.invalidate_access_tokens_for(ALICE);
    let imap = attempt(&env, "imap", ALICE, PASSWORD);
    assert!(
        imap.starts_with("NO") && imap.contains("[AUTHENTICATIONFAILED]"),
        "{imap}\n{}",
        env.logs()
    );
    assert!(imap.contains(&format!("mailgate login {ALICE}")), "{imap}");
    let pop3 = attempt(&env, "pop3", ALICE, PASSWORD);
    assert!(pop3.contains("-ERR [AUTH]"), "{pop3}\n{}", env.logs());
    let smtp = attempt(&env, "smtp", ALICE, PASSWORD);
    assert!(smtp.starts_with("ERR 535"), "{smtp}\n{}", env.logs());
    let accounts = env.accounts();
    let row = accounts
        .lines()
        .find(|l| l.starts_with(ALICE))
        .unwrap_or_default();
    assert!(row.contains("needs-login"), "{accounts}");

    mailgate::login(&env.config, ALICE, PASSWORD).expect("enrol again");
    let again = attempt(&env, "imap", ALICE, PASSWORD);
    assert!(succeeded(&again), "{again}\n{}", env.logs());
    assert!(env.accounts().contains("active"), "{}", env.accounts());
}

#[test]
fn identity_provider_down_is_a_temporary_failure_until_it_is_back() {
    let env = Env::start();
    env.idp.invalidate_access_tokens_for(ALICE);
    env.idp.fail_next(Failure::Drop, 10_000);
    let imap = attempt(&env, "imap", ALICE, PASSWORD);
    assert!(
        imap.starts_with("NO") && imap.contains("[UNAVAILABLE]"),
        "{imap}\n{}",
        env.logs()
    );
    let pop3 = attempt(&env, "pop3", ALICE, PASSWORD);
    assert!(pop3.contains("-ERR [SYS/TEMP]"), "{pop3}\n{}", env.logs());
    let smtp = attempt(&env, "smtp", ALICE, PASSWORD);
    assert!(smtp.starts_with("ERR 454"), "{smtp}\n{}", env.logs());
    for answer in [&imap, &pop3, &smtp] {
        assert!(
            !answer.contains("AUTHENTICATIONFAILED")
                && !answer.contains("[AUTH]")
                && !answer.contains("535"),
            "a temporary fault looked like a bad password: {answer}"
        );
    }
    assert!(
        env.accounts().contains("refresh-failing"),
        "{}",
        env.accounts()
    );

    env.idp.clear_failures();
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    loop {
        let answer = attempt(&env, "imap", ALICE, PASSWORD);
        if succeeded(&answer) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery within {RECOVERY_TIMEOUT:?}: {answer}\n{}",
            env.logs()
        );
        assert!(answer.contains("[UNAVAILABLE]"), "{answer}");
        std::thread::sleep(RECOVERY_POLL);
    }
    assert!(env.accounts().contains("active"), "{}", env.accounts());
}

#[test]
fn wrong_local_password_fails_and_the_account_keeps_working() {
    let env = Env::start();
    let refused = [
        ("imap", "[AUTHENTICATIONFAILED]"),
        ("pop3", "-ERR [AUTH]"),
        ("smtp", "ERR 535"),
    ];
    for (protocol, answer) in refused {
        let wrong = attempt(&env, protocol, ALICE, "not-the-password");
        assert!(
            wrong.contains(answer),
            "{protocol}: {wrong}\n{}",
            env.logs()
        );
        assert!(
            !wrong.contains(&format!("mailgate login {ALICE}")),
            "{protocol}: a wrong password is not a needed sign-in: {wrong}"
        );
        let right = attempt(&env, protocol, ALICE, PASSWORD);
        assert!(succeeded(&right), "{protocol}: {right}\n{}", env.logs());
    }
    assert_eq!(env.refreshes(), 0, "a wrong password never reaches the IdP");
    let unknown = attempt(&env, "imap", "nobody@example.test", PASSWORD);
    assert!(unknown.contains("[AUTHENTICATIONFAILED]"), "{unknown}");
}
