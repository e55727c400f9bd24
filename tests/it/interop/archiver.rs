//! An archiver through real servers: one `*@domain` app-only rule, fifty
//! mailboxes read at once over IMAP and POP3 with Python's standard library,
//! one client-credentials token for all of them, and a mailbox the app is not
//! granted refused with the provider's reason rather than "wrong password".
//! Dovecot asks the test IdP, per token and mailbox, what the token may open
//! (see `support/idp/grants.rs`).

use super::harness::{Env, Options, assert_refused_with_reason};
use crate::support::idp::TestIdp;

const DOMAIN: &str = "archive.test";
/// Mailboxes the archiver reads at once.
const MAILBOXES: usize = 50;
/// In the rule's domain, but not granted to the app.
const UNLISTED: &str = "unlisted@archive.test";
/// The local password of the app-only rule, and its Argon2id hash with small
/// costs (1 MiB, one pass): fifty first logins at once measure the relay and
/// the token service here, not the password hash on a shared test machine.
const RULE_PASSWORD: &str = "archiver-local-pw";
const RULE_HASH: &str = "$argon2id$v=19$m=1024,t=1,p=1$YXJjaGl2ZXItdGVzdC1zYWx0$3sZFny82Ie8LCLVFGIPafzBx/EV4eydsSC7Y4khSYH0";

const READ_ALL: &str = r#"
import imaplib, poplib, sys, threading
imap_port, pop_port, pw = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
boxes = sys.argv[4:]
barrier = threading.Barrier(len(boxes), timeout=20)
results, lock = [], threading.Lock()
def one(box):
    marker = ("archived message of " + box).encode()
    try:
        barrier.wait()
        m = imaplib.IMAP4("127.0.0.1", imap_port, timeout=25)
        m.login(box, pw)
        typ, _ = m.select("INBOX", readonly=True)
        typ, data = m.fetch("1", "(BODY.PEEK[])")
        imap_ok = typ == "OK" and marker in data[0][1]
        m.logout()
        p = poplib.POP3("127.0.0.1", pop_port, timeout=25)
        p.user(box)
        p.pass_(pw)
        _, lines, _ = p.retr(1)
        pop_ok = marker in b"\r\n".join(lines)
        p.quit()
        r = "ok" if imap_ok and pop_ok else "missing imap=%s pop=%s" % (imap_ok, pop_ok)
    except Exception as e:
        r = "FAIL %r" % (e,)
    with lock:
        results.append((box, r))
threads = [threading.Thread(target=one, args=(b,)) for b in boxes]
for t in threads: t.start()
for t in threads: t.join(28)
ok = sum(1 for _, r in results if r == "ok")
print("read", ok, "of", len(boxes))
for box, r in sorted(results):
    if r != "ok": print(box, r)
"#;

const REFUSED: &str = r#"
import imaplib, poplib, sys
imap_port, pop_port, box, pw = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
m = imaplib.IMAP4("127.0.0.1", imap_port, timeout=25)
try:
    m.login(box, pw)
    print("imap accepted")
except imaplib.IMAP4.error as e:
    print("imap refused:", e)
p = poplib.POP3("127.0.0.1", pop_port, timeout=25)
p.user(box)
try:
    p.pass_(pw)
    print("pop3 accepted")
except poplib.error_proto as e:
    print("pop3 refused:", e)
"#;

fn mailbox(n: usize) -> String {
    format!("m{n:02}@{DOMAIN}")
}

/// The app is granted each of the fifty mailboxes by address.
fn grant_by_address(idp: &TestIdp) {
    (0..MAILBOXES).for_each(|n| idp.grant_app(&mailbox(n)));
}

fn archiver_env() -> Env {
    let mut mailboxes: Vec<String> = (0..MAILBOXES).map(mailbox).collect();
    mailboxes.push(UNLISTED.to_owned());
    let env = Env::start_with(Options {
        mailboxes,
        accounts: vec![vec![
            ("login", format!("*@{DOMAIN}")),
            ("kind", "app-only".to_owned()),
            ("provider", "test".to_owned()),
            ("password_hash", RULE_HASH.to_owned()),
        ]],
        provider_settings: vec!["client_secret = \"archiver-secret\"".to_owned()],
        grants: Some(grant_by_address),
        max_sessions: Some(64),
        ..Options::default()
    });
    for n in 0..MAILBOXES {
        let box_ = mailbox(n);
        let message = format!(
            "From: journal@example.test\r\nTo: {box_}\r\nSubject: archive\r\n\r\narchived message of {box_}\r\n"
        );
        env.servers
            .seed_message(&box_, message.as_bytes())
            .expect("seed");
    }
    env.servers
        .seed_message(
            UNLISTED,
            b"Subject: private\r\n\r\nnot for the archiver\r\n",
        )
        .expect("seed");
    env
}

fn refused(env: &Env, box_: &str) -> String {
    let ports = [env.port("imap-none"), env.port("pop3-none")].map(|p| p.to_string());
    env.python(REFUSED, &[&ports[0], &ports[1], box_, RULE_PASSWORD])
}

#[test]
fn fifty_mailboxes_read_at_once_with_one_app_token_and_an_ungranted_one_refused() {
    let env = archiver_env();
    let imap = env.port("imap-none").to_string();
    let pop = env.port("pop3-none").to_string();
    let boxes: Vec<String> = (0..MAILBOXES).map(mailbox).collect();
    let mut args = vec![imap.as_str(), pop.as_str(), RULE_PASSWORD];
    args.extend(boxes.iter().map(String::as_str));
    let out = env.python(READ_ALL, &args);
    let context = format!("{out}\n{}", env.logs());
    assert!(
        out.contains(&format!("read {MAILBOXES} of {MAILBOXES}")),
        "{context}"
    );
    assert_eq!(
        env.idp.token_requests("client_credentials"),
        1,
        "one client-credentials request for all fifty mailboxes\n{context}"
    );

    let out = refused(&env, UNLISTED);
    let context = format!("{out}\n{}", env.logs());
    assert_refused_with_reason(
        &out,
        "not granted access to mailbox unlisted@archive.test",
        &context,
    );
}

#[test]
fn a_domain_grant_opens_every_mailbox_of_the_domain() {
    let env = archiver_env();
    let out = refused(&env, UNLISTED);
    assert!(out.contains("imap refused"), "{out}\n{}", env.logs());
    env.idp.grant_app(&format!("*@{DOMAIN}"));
    let out = refused(&env, UNLISTED);
    let context = format!("{out}\n{}", env.logs());
    assert!(out.contains("imap accepted"), "{context}");
    assert!(out.contains("pop3 accepted"), "{context}");
}

/// An upstream refusing a fresh token costs at most one refresh per account
/// (here: the app-only rule) per interval: the refusals of an ungranted
/// mailbox must not throw away the app token every granted mailbox shares
/// each time (before that bound, two refusals cost two more
/// client-credentials requests, three in all).
#[test]
fn an_ungranted_mailbox_costs_the_archiver_at_most_one_more_token() {
    let env = archiver_env();
    let imap = env.port("imap-none").to_string();
    let pop = env.port("pop3-none").to_string();
    let first = mailbox(0);
    let read = [imap.as_str(), pop.as_str(), RULE_PASSWORD, first.as_str()];
    assert!(env.python(READ_ALL, &read).contains("read 1 of 1"));
    let out = refused(&env, UNLISTED);
    assert!(out.contains("imap refused"), "{out}");
    assert!(env.python(READ_ALL, &read).contains("read 1 of 1"));
    let requests = env.idp.token_requests("client_credentials");
    assert!(
        requests <= 2,
        "{requests} client-credentials requests\n{}",
        env.logs()
    );
}
