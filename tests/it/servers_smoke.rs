//! Proves with real clients (curl, Python's imaplib/smtplib, swaks) that the
//! private test servers behave like Microsoft 365 as far as mailgate cares:
//! implicit-TLS IMAP and POP3 with SASL XOAUTH2, submission with STARTTLS
//! required before AUTH, and tokens checked on every login by introspection
//! against the test identity provider (tests/support/idp), the same one the
//! interop suite and the OAuth tests use.

use crate::support::idp::BlockingIdp;
use crate::support::servers;

use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use servers::{INSTALL_HINT, MailServers, StartOptions};

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";
/// Upper bound for a message to travel submission → queue → LMTP → maildir.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound for one client program run.
const CLIENT_TIMEOUT_SECS: &str = "20";
/// Length of a Microsoft-sized access token (theirs are JWTs of 1.5–3 KB).
const LONG_TOKEN_LEN: usize = 3000;

const SEEDED: &[u8] = b"From: carol@example.test\r\nTo: alice@example.test\r\n\
Subject: seeded for the smoke test\r\nMessage-ID: <seed-1@example.test>\r\n\r\n\
line one\r\nline two with trailing spaces   \r\n\r\nlast line\r\n";

/// A fresh access token for `user` from the test IdP.
fn token(idp: &BlockingIdp, user: &str) -> String {
    idp.mint(user).access_token
}

/// The test IdP that the servers ask about every token (RFC 7662).
fn identity_provider() -> BlockingIdp {
    let idp = BlockingIdp::start();
    idp.add_user(ALICE);
    idp.add_user(BOB);
    idp
}

fn require(binaries: &[&str]) {
    for binary in binaries {
        if let Err(missing) = servers::find_binary(binary) {
            panic!("{missing}");
        }
    }
}

fn start(idp: &BlockingIdp, options: &StartOptions) -> MailServers {
    require(&["dovecot", "postconf", "curl", "python3", "swaks", "timeout"]);
    MailServers::start_with(&idp.introspect_url(), &[ALICE, BOB], options)
        .unwrap_or_else(|e| panic!("mail servers did not start:\n{e}"))
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg(CLIENT_TIMEOUT_SECS)
        .arg(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}; {INSTALL_HINT}"))
}

fn python(script: &str, args: &[&str]) -> String {
    let mut all = vec!["-c", script];
    all.extend_from_slice(args);
    let out = run("python3", &all);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn curl(servers: &MailServers, url: &str, bearer: &str) -> Output {
    let ca = servers.ca_pem_path().display().to_string();
    run(
        "curl",
        &[
            "-sS",
            "--cacert",
            &ca,
            "--user",
            &format!("{ALICE}:"),
            "--oauth2-bearer",
            bearer,
            "--login-options",
            "AUTH=XOAUTH2",
            url,
        ],
    )
}

#[test]
fn curl_imap_xoauth2_fetches_seeded_message_byte_for_byte() {
    let idp = identity_provider();
    let options = StartOptions {
        no_oauthbearer: true,
        ..StartOptions::default()
    };
    let servers = start(&idp, &options);
    servers.seed_message(ALICE, SEEDED).expect("seed");
    let base = format!("imaps://127.0.0.1:{}/INBOX", servers.imaps_port());

    let list = curl(&servers, &base, &token(&idp, ALICE));
    let listing = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success() && listing.contains("INBOX"),
        "{list:?}\n{}",
        servers.logs()
    );

    let fetch = curl(&servers, &format!("{base}/;UID=1"), &token(&idp, ALICE));
    assert!(fetch.status.success(), "{fetch:?}\n{}", servers.logs());
    assert_eq!(fetch.stdout, SEEDED, "{}", servers.logs());
    assert!(
        servers.logs().contains("method=XOAUTH2"),
        "{}",
        servers.logs()
    );

    let refused = curl(&servers, &base, &token(&idp, BOB));
    assert!(
        !refused.status.success(),
        "token of another mailbox accepted"
    );
}

#[test]
fn curl_pop3_xoauth2_retrieves_seeded_message() {
    let idp = identity_provider();
    let options = StartOptions {
        no_oauthbearer: true,
        ..StartOptions::default()
    };
    let servers = start(&idp, &options);
    servers.seed_message(ALICE, SEEDED).expect("seed");
    let url = format!("pop3s://127.0.0.1:{}/1", servers.pop3s_port());

    let retr = curl(&servers, &url, &token(&idp, ALICE));
    assert!(retr.status.success(), "{retr:?}\n{}", servers.logs());
    assert_eq!(retr.stdout, SEEDED, "{}", servers.logs());
    assert!(
        servers.logs().contains("pop3-login: Info: Login"),
        "{}",
        servers.logs()
    );

    let refused = curl(&servers, &url, "at-nobody");
    assert!(!refused.status.success(), "unknown token accepted");
}

const IMAPLIB: &str = r#"
import imaplib, ssl, sys, os, time
port, ca, user, good, bad, long_tok, maildir = sys.argv[1:8]
ctx = ssl.create_default_context(cafile=ca)
def login(token):
    m = imaplib.IMAP4_SSL("127.0.0.1", int(port), ssl_context=ctx, timeout=10)
    calls = []
    def xoauth2(challenge):
        calls.append(challenge)
        return ("user=%s\x01auth=Bearer %s\x01\x01" % (user, token)).encode() if len(calls) == 1 else b""
    try:
        typ, _ = m.authenticate("XOAUTH2", xoauth2)
        return m, typ
    except imaplib.IMAP4.error as e:
        return m, "NO " + str(e)
m, typ = login(good)
print("good", typ)
print("capability", m.capability()[1][0].decode())
typ, data = m.select("INBOX")
print("select", typ, data[0].decode())
tag = m._new_tag()
m.send(tag + b" IDLE\r\n")
print("idle", m.readline().decode().strip())
with open(os.path.join(maildir, "tmp", "idle.1"), "wb") as f:
    f.write(b"Subject: idle\r\n\r\nwake up\r\n")
os.rename(os.path.join(maildir, "tmp", "idle.1"), os.path.join(maildir, "new", "idle.1"))
m.sock.settimeout(10)
print("idle-event", m.readline().decode().strip())
m.send(b"DONE\r\n")
for _ in range(10):
    line = m.readline().decode().strip()
    if line.startswith(tag.decode() + " "):
        print("idle-done", line)
        break
m.logout()
for name, token in (("bad", bad), ("long", long_tok)):
    m, typ = login(token)
    print(name, typ)
    m.shutdown()
import base64
m = imaplib.IMAP4_SSL("127.0.0.1", int(port), ssl_context=ctx, timeout=10)
ir = base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01" % (user, bad)).encode())
m.send(b"x1 AUTHENTICATE XOAUTH2 " + ir + b"\r\n")
print("sasl-ir-challenge", m.readline().decode().strip()[:2])
m.send(b"\r\n")
print("sasl-ir-final", m.readline().decode().strip())
m.shutdown()
"#;

#[test]
fn imaplib_xoauth2_accepts_good_and_long_tokens_refuses_bad_and_idles() {
    let idp = identity_provider();
    let servers = start(&idp, &StartOptions::default());
    servers.seed_message(ALICE, SEEDED).expect("seed");
    let long = idp.mint_long_access_token(ALICE, LONG_TOKEN_LEN);
    let port = servers.imaps_port().to_string();
    let ca = servers.ca_pem_path().display().to_string();
    let maildir = servers.maildir(ALICE).display().to_string();
    let out = python(
        IMAPLIB,
        &[
            &port,
            &ca,
            ALICE,
            &token(&idp, ALICE),
            "at-bad",
            &long,
            &maildir,
        ],
    );
    let context = format!("{out}\n{}", servers.logs());

    assert!(out.contains("good OK"), "{context}");
    assert!(
        out.contains("AUTH=XOAUTH2") || out.contains("IDLE"),
        "{context}"
    );
    assert!(out.contains("select OK 1"), "{context}");
    assert!(out.contains("idle + idling"), "{context}");
    assert!(out.contains("idle-event * 2 EXISTS"), "{context}");
    assert!(
        out.contains("idle-done") && out.contains("OK Idle completed"),
        "{context}"
    );
    assert!(out.contains("bad NO"), "{context}");
    assert!(out.contains("long OK"), "{context}");
    assert!(out.contains("sasl-ir-challenge +"), "{context}");
    assert!(out.contains("sasl-ir-final x1 NO"), "{context}");
}

#[test]
fn revoked_token_is_refused_on_next_login() {
    let idp = identity_provider();
    let options = StartOptions {
        no_oauthbearer: true,
        ..StartOptions::default()
    };
    let servers = start(&idp, &options);
    let url = format!("imaps://127.0.0.1:{}/INBOX", servers.imaps_port());

    let alice = token(&idp, ALICE);
    assert!(
        curl(&servers, &url, &alice).status.success(),
        "{}",
        servers.logs()
    );
    assert!(idp.invalidate_access_token(&alice));
    assert!(
        !curl(&servers, &url, &alice).status.success(),
        "revoked token still works"
    );
    assert!(
        idp.introspections() >= 2,
        "Dovecot did not ask the introspection endpoint each time"
    );
}

const SMTPLIB: &str = r#"
import smtplib, ssl, sys, base64
port, ca, user, good, bad, long_tok, rcpt = sys.argv[1:8]
ctx = ssl.create_default_context(cafile=ca)
def xoauth2(token):
    return base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01" % (user, token)).encode()).decode()
def session():
    s = smtplib.SMTP("127.0.0.1", int(port), timeout=10)
    code, text = s.ehlo("client.example.test")
    print("plain-ehlo", code, text.decode().replace("\n", "|"))
    print("plain-auth", s.docmd("AUTH", "XOAUTH2 " + xoauth2(good))[0])
    s.starttls(context=ctx)
    code, text = s.ehlo("client.example.test")
    print("tls-ehlo", code, text.decode().replace("\n", "|"))
    return s
s = session()
code, text = s.docmd("AUTH", "XOAUTH2 " + xoauth2(bad))
print("bad-first", code)
if code == 334:
    print("bad-final", s.docmd("")[0])
s.close()
for name, token in (("good", good), ("long", long_tok)):
    s = session()
    print(name, s.docmd("AUTH", "XOAUTH2 " + xoauth2(token))[0])
    msg = "From: %s\r\nTo: %s\r\nSubject: via %s token\r\n\r\nhello over submission\r\n" % (user, rcpt, name)
    print(name + "-refused", s.sendmail(user, [rcpt], msg.encode()))
    s.quit()
"#;

#[test]
fn smtp_requires_starttls_before_auth_and_delivers_with_xoauth2() {
    let idp = identity_provider();
    let servers = start(&idp, &StartOptions::default());
    let long = idp.mint_long_access_token(ALICE, LONG_TOKEN_LEN);
    let port = servers.submission_port().to_string();
    let ca = servers.ca_pem_path().display().to_string();
    let out = python(
        SMTPLIB,
        &[&port, &ca, ALICE, &token(&idp, ALICE), "at-bad", &long, BOB],
    );
    let context = format!("{out}\n{}", servers.logs());

    let plain_ehlo = out
        .lines()
        .find(|l| l.starts_with("plain-ehlo"))
        .unwrap_or_default();
    assert!(
        plain_ehlo.contains("STARTTLS") && !plain_ehlo.contains("AUTH"),
        "{context}"
    );
    assert!(out.contains("plain-auth 530"), "{context}");
    assert!(out.contains("AUTH PLAIN LOGIN XOAUTH2"), "{context}");
    assert!(out.contains("bad-final 535"), "{context}");
    assert!(
        out.contains("good 235") && out.contains("long 235"),
        "{context}"
    );
    assert!(
        out.contains("good-refused {}") && out.contains("long-refused {}"),
        "{context}"
    );

    for name in ["good", "long"] {
        let message = servers
            .wait_for_delivery(BOB, DELIVERY_TIMEOUT)
            .unwrap_or_else(|| panic!("no delivery for {name}\n{context}"));
        let text = String::from_utf8_lossy(&message);
        assert!(text.contains("hello over submission"), "{text}");
    }
}

const LARGE: &str = r#"
import smtplib, ssl, sys, base64
port, ca, user, tok, rcpt, size = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)
s = smtplib.SMTP("127.0.0.1", int(port), timeout=60)
s.starttls(context=ctx)
s.ehlo("client.example.test")
print("size", s.esmtp_features.get("size"))
xo = base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01" % (user, tok)).encode()).decode()
print("auth", s.docmd("AUTH", "XOAUTH2 " + xo)[0])
line = b"x" * 76 + b"\r\n"
body = line * (int(size) // len(line) + 1)
msg = b"Subject: large\r\n\r\n" + body
print("refused", s.sendmail(user, [rcpt], msg))
s.quit()
"#;

/// Microsoft accepts messages up to about 35 MB; mailgate must relay them.
const LARGE_MESSAGE_LEN: usize = 30 * 1024 * 1024;

#[test]
fn submission_accepts_and_delivers_a_30_mb_message() {
    let idp = identity_provider();
    let servers = start(&idp, &StartOptions::default());
    let port = servers.submission_port().to_string();
    let ca = servers.ca_pem_path().display().to_string();
    let size = LARGE_MESSAGE_LEN.to_string();
    let out = python(LARGE, &[&port, &ca, ALICE, &token(&idp, ALICE), BOB, &size]);
    let context = format!("{out}\n{}", servers.logs());
    assert!(
        out.contains("auth 235") && out.contains("refused {}"),
        "{context}"
    );
    let message = servers
        .wait_for_delivery(BOB, DELIVERY_TIMEOUT)
        .unwrap_or_else(|| panic!("30 MB message not delivered\n{context}"));
    let body_bytes = message.iter().filter(|b| **b == b'x').count();
    assert!(
        body_bytes >= LARGE_MESSAGE_LEN / 78 * 76,
        "{body_bytes} body bytes"
    );
}

#[test]
fn swaks_sends_with_password_after_starttls() {
    let idp = identity_provider();
    let servers = start(&idp, &StartOptions::default());
    let server = format!("127.0.0.1:{}", servers.submission_port());
    let out = run(
        "swaks",
        &[
            "--server",
            &server,
            "--tls",
            "--tls-verify",
            "--tls-ca-path",
            &servers.ca_pem_path().display().to_string(),
            "--auth",
            "PLAIN",
            "--auth-user",
            ALICE,
            "--auth-password",
            &servers.password(ALICE),
            "--from",
            ALICE,
            "--to",
            BOB,
            "--header",
            "Subject: swaks smoke",
            "--body",
            "sent by swaks",
        ],
    );
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{transcript}\n{}", servers.logs());
    let message = servers
        .wait_for_delivery(BOB, DELIVERY_TIMEOUT)
        .expect("delivered");
    assert!(String::from_utf8_lossy(&message).contains("sent by swaks"));
}

#[test]
fn start_failure_reports_the_dovecot_log() {
    let idp = identity_provider();
    let squatter = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = squatter.local_addr().expect("addr").port();
    let options = StartOptions {
        imaps_port: Some(taken),
        ..StartOptions::default()
    };
    require(&["dovecot", "postconf"]);
    let error = match MailServers::start_with(&idp.introspect_url(), &[ALICE], &options) {
        Ok(_) => panic!("started although port {taken} is taken"),
        Err(e) => e,
    };
    assert!(error.contains("dovecot failed to start"), "{error}");
    assert!(error.contains("--- dovecot.log ---"), "{error}");
    assert!(error.contains("Address already in use"), "{error}");
}

#[test]
fn parallel_instances_start_quickly_and_stay_apart() {
    let idp = identity_provider();
    let url = idp.introspect_url();
    require(&["dovecot", "postconf"]);
    let began = Instant::now();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || MailServers::start(&url, &[ALICE]))
        })
        .collect();
    let started: Vec<MailServers> = handles
        .into_iter()
        .map(|h| h.join().expect("thread").unwrap_or_else(|e| panic!("{e}")))
        .collect();
    eprintln!("two instances started in {:?}", began.elapsed());
    assert_ne!(started[0].imaps_port(), started[1].imaps_port());
    assert_ne!(started[0].dir(), started[1].dir());
    let dirs: Vec<_> = started.iter().map(|s| s.dir().to_path_buf()).collect();
    drop(started);
    assert!(
        dirs.iter().all(|d| !d.exists()),
        "temporary directories left behind"
    );
}
