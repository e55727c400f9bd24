//! Real SMTP clients through a `submit = "graph"` listener: mailgate plays
//! the SMTP server and sends through the test Graph, which delivers into
//! the test Dovecot.
//!
//! `auto` is exercised here against a fake SMTP upstream (the switch
//! itself, counted at the upstream), and in `auto_real.rs` against the test
//! Postfix, which answers chosen mailboxes with Microsoft's `535 5.7.139`
//! (tests/support/servers/auth_disabled.rs).

use crate::support::fake_upstream::{Proto, Verdict};
use crate::support::proxy::{PASSWORD, Proxy, Setup, USER};

use super::send::{Send, assert_sent};
use super::*;
use crate::support::idp::graph::GraphFault;

const SMTPLIB: &str = r#"
import smtplib, sys
port = int(sys.argv[1])
user, password = sys.argv[2], sys.argv[3]
s = smtplib.SMTP("127.0.0.1", port, timeout=60)
s.ehlo("client.test")
print("size", s.esmtp_features.get("size"))
s.login(user, password)
msg = ("From: alice@example.test\r\nTo: Bob <bob@example.test>\r\nCc: sales@example.test\r\n"
       "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMIME-Version: 1.0\r\n"
       "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
       "K\u00f6ln\r\n.leading dot\r\n").encode("utf-8")
s.sendmail("alice@example.test", ["bob@example.test", "carol@example.test"], msg,
           mail_options=["BODY=8BITMIME"])
print("sent")
try:
    s.sendmail("boss@example.test", ["bob@example.test"], b"Subject: x\r\n\r\nx\r\n")
except smtplib.SMTPSenderRefused as e:
    print("refused", e.smtp_code, e.smtp_error.decode())
s.quit()
"#;

/// One message from Alice (the proxy's account) to Bob through `proxy`.
fn alice_to_bob(proxy: &Proxy) -> Send<'static> {
    Send {
        port: proxy.addr.port(),
        user: USER,
        password: PASSWORD,
        from: ALICE,
        to: BOB,
    }
}

/// A `submit = "graph"` listener whose Graph is the test IdP, its one
/// account (`alice`) sending as ALICE with a Graph token from the IdP.
fn graph_proxy(world: &World, runtime: &tokio::runtime::Runtime) -> Proxy {
    let proxy = runtime.block_on(Proxy::start(Setup {
        listener: "submit = \"graph\"",
        provider: format!("graph_endpoint = \"{}\"", world.idp.graph_url()),
        ..Setup::new(Proto::Smtp)
    }));
    *proxy.tokens.graph.lock().unwrap() = Some(world.graph_token(ALICE));
    proxy
}

#[test]
fn smtplib_and_swaks_send_through_graph() {
    let world = World::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = graph_proxy(&world, &runtime);
    let port = proxy.addr.port().to_string();

    let out = python(SMTPLIB, &[&port, USER, PASSWORD]);
    assert!(out.contains("size 36700160"), "{out}");
    assert!(out.contains("sent"), "{out}");
    assert!(out.contains("refused 550 5.7.60"), "{out}");

    let send = alice_to_bob(&proxy);
    assert_sent(&send.swaks("from swaks", "swaks body"), "swaks");

    let bob = world.fetch(BOB, "INBOX");
    assert_eq!(bob.len(), 2, "{}", world.servers.logs());
    let first = String::from_utf8_lossy(&bob[0]);
    assert!(first.contains("K\u{f6}ln\r\n.leading dot"), "{first}");
    assert!(!first.contains(CAROL), "Bcc visible: {first}");
    assert!(String::from_utf8_lossy(&bob[1]).contains("swaks body"));
    assert_eq!(
        world.fetch(CAROL, "INBOX").len(),
        1,
        "envelope-only recipient"
    );
    assert!(
        world.fetch(SHARED, "INBOX").is_empty(),
        "header-only recipient"
    );
    assert_eq!(world.fetch(ALICE, "Sent").len(), 2);
}

#[test]
fn throttling_reaches_the_client_as_451_with_the_wait() {
    let world = World::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = graph_proxy(&world, &runtime);
    world.idp.graph_fail_next(vec![GraphFault::Status {
        status: 429,
        retry_after: Some(17),
        code: "ApplicationThrottled".into(),
        message: "throttled".into(),
    }]);
    let script = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
s.login(sys.argv[2], sys.argv[3])
try:
    s.sendmail("alice@example.test", ["bob@example.test"], b"To: bob@example.test\r\n\r\nx\r\n")
except smtplib.SMTPDataError as e:
    print("data", e.smtp_code, e.smtp_error.decode())
big = b"To: bob@example.test\r\n\r\n" + (b"a" * 998 + b"\r\n") * 40500
try:
    s.sendmail("alice@example.test", ["bob@example.test"], big)
except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as e:
    print("big", e.smtp_code)
s.quit()
"#;
    let out = python(script, &[&proxy.addr.port().to_string(), USER, PASSWORD]);
    assert!(out.contains("data 451 4.7.0"), "{out}");
    assert!(out.contains("retry in 17 s"), "{out}");
    assert!(out.contains("big 552"), "{out}");
    assert!(world.fetch(BOB, "INBOX").is_empty());
}

#[test]
fn auto_switches_to_graph_when_smtp_auth_is_disabled() {
    let world = World::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = runtime.block_on(Proxy::start(Setup {
        listener: "submit = \"auto\"",
        provider: format!("graph_endpoint = \"{}\"", world.idp.graph_url()),
        ..Setup::new(Proto::Smtp)
    }));
    *proxy.tokens.graph.lock().unwrap() = Some(world.graph_token(ALICE));
    proxy.upstream.script(vec![Verdict::SmtpAuthDisabled]);
    let script = r#"
import smtplib, sys
for n in (1, 2):
    s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
    s.login(sys.argv[2], sys.argv[3])
    s.sendmail("alice@example.test", ["bob@example.test"],
               b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: auto %d\r\n\r\nvia graph\r\n" % n)
    s.quit()
    print("sent", n)
"#;
    let out = python(script, &[&proxy.addr.port().to_string(), USER, PASSWORD]);
    assert!(out.contains("sent 1") && out.contains("sent 2"), "{out}");
    assert_eq!(
        proxy.upstream.logins(),
        1,
        "the second session went straight to Graph"
    );
    assert_eq!(world.fetch(BOB, "INBOX").len(), 2);
}

const BIG_ATTACHMENT: &str = r#"
import smtplib, sys, os
from email.message import EmailMessage
port, user, password, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
data = os.urandom(10 * 1024 * 1024)
open(path, "wb").write(data)
m = EmailMessage()
m["From"], m["To"], m["Subject"] = "alice@example.test", "bob@example.test", "ten megabytes"
m.set_content("see attached")
m.add_attachment(data, maintype="application", subtype="octet-stream", filename="data.bin")
s = smtplib.SMTP("127.0.0.1", port, timeout=120)
s.login(user, password)
s.send_message(m)
s.quit()
print("sent")
"#;

#[test]
fn msmtp_and_a_ten_megabyte_attachment_arrive_intact() {
    let world = World::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = graph_proxy(&world, &runtime);
    let port = proxy.addr.port().to_string();

    let send = alice_to_bob(&proxy);
    let message =
        b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: msmtp\r\n\r\nfrom msmtp\r\n";
    assert_sent(&send.msmtp(message), "msmtp");

    let path = crate::support::scratch::temp_dir("graph-big").join("data.bin");
    let out = python(
        BIG_ATTACHMENT,
        &[&port, USER, PASSWORD, &path.display().to_string()],
    );
    assert!(out.contains("sent"), "{out}");
    let original = std::fs::read(&path).unwrap();

    let bob = world.fetch(BOB, "INBOX");
    assert_eq!(bob.len(), 2, "{}", world.servers.logs());
    assert!(String::from_utf8_lossy(&bob[0]).contains("from msmtp"));
    let delivered = String::from_utf8_lossy(&bob[1]).replace("\r\n", "\n");
    let at = delivered.find("filename=\"data.bin\"").expect("attachment");
    let start = at + delivered[at..].find("\n\n").unwrap() + 2;
    let end = start + delivered[start..].find("\n--").unwrap();
    let b64: String = delivered[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    assert!(
        STANDARD.decode(b64).unwrap() == original,
        "attachment bytes differ"
    );
}

#[test]
fn mutt_sends_through_graph() {
    let world = World::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = graph_proxy(&world, &runtime);
    let send = alice_to_bob(&proxy);
    let home = crate::support::scratch::temp_dir("mutt-graph");
    let out = send.mutt(&home, "mutt through graph", b"sent by mutt through Graph\n");
    assert_sent(&out, "mutt");
    let bob = world.fetch(BOB, "INBOX");
    assert_eq!(bob.len(), 1, "{}", world.servers.logs());
    let text = String::from_utf8_lossy(&bob[0]);
    assert!(text.contains("Subject: mutt through graph"), "{text}");
    assert!(text.contains("sent by mutt through Graph"), "{text}");
}
