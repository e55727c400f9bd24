//! Volume through the relay: 200 logins at once to an account whose token
//! has expired (one refresh for all of them), 25 MB messages both ways, and
//! an IMAP IDLE that hears about new mail delivered through mailgate.

use std::fmt::Write as _;
use std::time::Duration;

use super::harness::{ALICE, BOB, Env, Options, PASSWORD, write};

/// Simultaneous logins in the burst test.
const BURST: u32 = 200;
/// Size of the large messages (Microsoft accepts up to about 35 MB).
const LARGE_LEN: usize = 25 * 1024 * 1024;
/// Upper bound for a large message to reach the maildir.
const LARGE_DELIVERY_TIMEOUT: Duration = Duration::from_secs(90);

const BURST_SCRIPT: &str = r#"
import imaplib, sys, threading
port, user, pw, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
barrier = threading.Barrier(n, timeout=30)
results, lock = [], threading.Lock()
def one():
    try:
        barrier.wait()
        m = imaplib.IMAP4("127.0.0.1", int(port), timeout=60)
        typ, _ = m.login(user, pw)
        sel, data = m.select("INBOX")
        m.logout()
        r = "%s %s" % (typ, sel)
    except Exception as e:
        r = "FAIL %r" % (e,)
    with lock:
        results.append(r)
threads = [threading.Thread(target=one) for _ in range(n)]
for t in threads: t.start()
for t in threads: t.join(90)
ok = sum(1 for r in results if r == "OK OK")
print("ok", ok, "of", n)
for r in sorted(set(results)):
    if r != "OK OK": print("other", r)
"#;

#[test]
fn two_hundred_simultaneous_logins_with_an_expired_token_share_one_refresh() {
    let env = Env::start_with(Options {
        refresh_margin_secs: 1,
        enrol_lifetime: Some(Duration::from_secs(1)),
        mailbox_cap: Some(256),
        max_connections_per_ip: 1024,
        max_sessions: Some(256),
        ..Options::default()
    });
    std::thread::sleep(Duration::from_millis(1100));
    let port = env.port("imap-none").to_string();
    let out = env.python(BURST_SCRIPT, &[&port, ALICE, PASSWORD, &BURST.to_string()]);
    let context = format!("{out}\n{}", env.logs());
    assert!(out.contains(&format!("ok {BURST} of {BURST}")), "{context}");
    assert_eq!(env.refreshes(), 1, "exactly one refresh\n{context}");
}

/// A message of `len` bytes with numbered lines, some starting with a dot
/// (SMTP dot-stuffing) and some long, CRLF line ends.
fn large_message(from: &str, to: &str, len: usize) -> Vec<u8> {
    let mut text = format!("From: {from}\r\nTo: {to}\r\nSubject: large\r\n\r\n");
    let mut n = 0u64;
    while text.len() < len {
        match n % 7 {
            0 => write!(text, ".{n} dot-stuffed line\r\n"),
            3 => write!(text, "{n} {}\r\n", "y".repeat(900)),
            _ => write!(text, "{n} the quick brown fox jumps over the lazy dog\r\n"),
        }
        .expect("write");
        n += 1;
    }
    text.into_bytes()
}

#[test]
fn a_25_mb_message_through_imap_fetch_is_intact() {
    let env = Env::start();
    let message = large_message("carol@example.test", ALICE, LARGE_LEN);
    env.servers.seed_message(ALICE, &message).expect("seed");
    let ca = env.ca();
    let user = format!("{ALICE}:{PASSWORD}");
    let url = format!(
        "imaps://127.0.0.1:{}/INBOX/;UID=1",
        env.port("imap-implicit")
    );
    let out = env.run(
        "curl",
        &[
            "-sS",
            "--max-time",
            "25",
            "--cacert",
            &ca,
            "--user",
            &user,
            &url,
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        env.logs()
    );
    assert_eq!(out.stdout.len(), message.len(), "{}", env.logs());
    assert!(out.stdout == message, "25 MB message changed on the way");
}

const SEND_FILE: &str = r#"
import smtplib, ssl, sys
port, ca, user, pw, rcpt, path = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)
s = smtplib.SMTP("127.0.0.1", int(port), timeout=60)
s.starttls(context=ctx)
s.login(user, pw)
print("refused", s.sendmail(user, [rcpt], open(path, "rb").read()))
s.quit()
"#;

#[test]
fn a_25_mb_message_through_smtp_data_is_delivered_intact() {
    let env = Env::start();
    let message = large_message(ALICE, BOB, LARGE_LEN);
    let path = write(&env.dir, "large.eml", &message);
    let port = env.port("smtp-starttls").to_string();
    let out = env.python(SEND_FILE, &[&port, &env.ca(), ALICE, PASSWORD, BOB, &path]);
    assert!(out.contains("refused {}"), "{out}\n{}", env.logs());
    let delivered = env
        .servers
        .wait_for_delivery(BOB, LARGE_DELIVERY_TIMEOUT)
        .unwrap_or_else(|| panic!("25 MB message not delivered\n{}", env.logs()));
    let sent = String::from_utf8(message).expect("ascii");
    let sent_body = sent
        .split_once("\r\n\r\n")
        .expect("body")
        .1
        .replace("\r\n", "\n");
    let got = String::from_utf8_lossy(&delivered);
    let got_body = got.split_once("\n\n").expect("delivered body").1;
    assert_eq!(got_body.len(), sent_body.len(), "body length");
    assert!(got_body == sent_body, "25 MB body changed on the way");
}

const IDLE: &str = r#"
import imaplib, smtplib, ssl, sys, time
imap_port, smtp_port, ca, user, pw = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
m = imaplib.IMAP4_SSL("127.0.0.1", int(imap_port), ssl_context=ctx, timeout=20)
print("login", m.login(user, pw)[0])
typ, data = m.select("INBOX")
print("select", typ, data[0].decode())
tag = m._new_tag()
m.send(tag + b" IDLE\r\n")
print("idle", m.readline().decode().strip())
s = smtplib.SMTP("127.0.0.1", int(smtp_port), timeout=20)
s.login(user, pw)
s.sendmail(user, [user], b"Subject: wake up\r\n\r\nnew mail while idling\r\n")
s.quit()
m.sock.settimeout(15)
print("event", m.readline().decode().strip())
m.send(b"DONE\r\n")
for _ in range(10):
    line = m.readline().decode().strip()
    if line.startswith(tag.decode() + " "):
        print("done", line)
        break
m.logout()
"#;

#[test]
fn imap_idle_through_the_proxy_hears_of_mail_sent_through_it() {
    let env = Env::start();
    let imap = env.port("imap-implicit").to_string();
    let smtp = env.port("smtp-none").to_string();
    let out = env.python(IDLE, &[&imap, &smtp, &env.ca(), ALICE, PASSWORD]);
    let context = format!("{out}\n{}", env.logs());
    assert!(out.contains("login OK"), "{context}");
    assert!(out.contains("select OK 0"), "{context}");
    assert!(out.contains("idle + idling"), "{context}");
    assert!(out.contains("event * 1 EXISTS"), "{context}");
    assert!(
        out.contains("done") && out.contains("OK Idle completed"),
        "{context}"
    );
}
