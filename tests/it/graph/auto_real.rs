//! `submit = "auto"` end to end on the real servers: the real `mailgate
//! serve` in front of the test Postfix, which answers Alice's XOAUTH2 login
//! with Microsoft's `535 5.7.139` (tests/support/servers/auth_disabled.rs),
//! the test Graph behind it.

use std::time::Duration;

use crate::graph::fetch;
use crate::graph::send::{Send, assert_sent};
use crate::interop::harness::{ALICE, BOB, Env, Options, PASSWORD};
use crate::support::servers::auth_disabled;
use mailgate::submit::graph::DEFAULT_MAX_MESSAGE;

/// How long a message that should not arrive over SMTP is waited for.
const NO_DELIVERY: Duration = Duration::from_secs(3);
/// Upper bound for a message to reach a maildir over SMTP → LMTP.
const DELIVERY: Duration = Duration::from_secs(15);

const TWO_SESSIONS: &str = r#"
import smtplib, sys
for n in (1, 2):
    s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
    s.ehlo("client.test")
    print("size before auth", n, s.esmtp_features.get("size"))
    s.login(sys.argv[2], sys.argv[3])
    s.ehlo("client.test")
    print("size after auth", n, s.esmtp_features.get("size"))
    s.sendmail("alice@example.test", ["bob@example.test"],
               b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: auto %d\r\n\r\nvia graph\r\n" % n)
    s.quit()
    print("sent", n)
"#;

const BOB_SENDS: &str = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
s.login(sys.argv[2], sys.argv[3])
s.sendmail("bob@example.test", ["alice@example.test"],
           b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: from bob over smtp\r\n\r\nhello\r\n")
s.quit()
print("sent")
"#;

/// Logs in to Postfix directly with XOAUTH2 (SASL-IR, as mailgate does) and
/// prints the answer; sends one message when the login succeeded.
const DIRECT: &str = r#"
import smtplib, ssl, sys, base64
port, ca, user, token = sys.argv[1:5]
s = smtplib.SMTP("127.0.0.1", int(port), timeout=30)
s.starttls(context=ssl.create_default_context(cafile=ca))
s.ehlo("client.test")
raw = base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01" % (user, token)).encode()).decode()
code, text = s.docmd("AUTH", "XOAUTH2 " + raw)
print("auth", code, text.decode())
if code == 235:
    s.sendmail(user, ["bob@example.test"], b"Subject: direct\r\n\r\nover smtp\r\n")
    print("sent")
s.quit()
"#;

fn postfix_answers(env: &Env) -> usize {
    let log = std::fs::read_to_string(env.servers.dir().join("postfix.log")).unwrap_or_default();
    log.lines().filter(|l| l.contains("5.7.139")).count()
}

#[test]
fn auto_sends_through_graph_when_postfix_says_smtp_auth_is_disabled() {
    let env = Env::start_with(Options {
        smtp_auth_disabled: vec![ALICE.into()],
        listener_settings: vec![("smtp-none", "submit = \"auto\"")],
        graph: true,
        ..Options::default()
    });
    let port = env.port("smtp-none").to_string();
    let out = env.python(TWO_SESSIONS, &[&port, ALICE, PASSWORD]);
    assert!(out.contains("sent 1") && out.contains("sent 2"), "{out}");
    // Before AUTH nobody knows which way the message will go: no SIZE is
    // promised. After it the client learns the limit of the path taken,
    // Graph's, both when the switch happens and when it is remembered.
    let graph_size = DEFAULT_MAX_MESSAGE.to_string();
    for n in [1, 2] {
        assert!(out.contains(&format!("size before auth {n} None")), "{out}");
        assert!(
            out.contains(&format!("size after auth {n} {graph_size}")),
            "{out}"
        );
    }

    let sent = env.idp.graph_sent();
    assert_eq!(sent.len(), 2, "{}", env.logs());
    for s in &sent {
        assert_eq!(s.mailbox, ALICE);
        assert_eq!(s.recipients, vec![BOB.to_owned()]);
    }
    assert_eq!(
        postfix_answers(&env),
        1,
        "one refused AUTH, the second session went straight to Graph\n{}",
        env.logs()
    );
    assert!(
        env.servers.wait_for_delivery(BOB, NO_DELIVERY).is_none(),
        "nothing went through Postfix"
    );
    // What Graph accepted is in Bob's INBOX and Alice's Sent Items, read
    // back over IMAP from Dovecot.
    for (user, folder) in [(BOB, "INBOX"), (ALICE, "Sent")] {
        let subjects: Vec<String> = fetch(&env.idp, &env.servers, user, folder)
            .iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .filter(|m| m.contains("via graph"))
            .collect();
        assert_eq!(subjects.len(), 2, "{user} {folder}: {subjects:?}");
        assert!(subjects.iter().any(|m| m.contains("Subject: auto 1")));
        assert!(subjects.iter().any(|m| m.contains("Subject: auto 2")));
    }
    // A mailbox whose SMTP AUTH works keeps sending over SMTP through the
    // same `auto` listener.
    env.idp.set_default_user(BOB);
    crate::support::mailgate::login(&env.config, BOB, PASSWORD)
        .unwrap_or_else(|e| panic!("enrolment of Bob failed:\n{e}"));
    let out = env.python(BOB_SENDS, &[&port, BOB, PASSWORD]);
    assert!(out.contains("sent"), "{out}");
    let delivered = env
        .servers
        .wait_for_delivery(ALICE, DELIVERY)
        .unwrap_or_else(|| panic!("Bob's message over SMTP\n{}", env.logs()));
    assert!(String::from_utf8_lossy(&delivered).contains("Subject: from bob over smtp"));
    assert_eq!(
        env.idp.graph_sent().len(),
        2,
        "Bob's message went through Postfix"
    );
    let accounts = env.accounts();
    assert!(
        accounts.contains(&format!("{ALICE}: smtp auth disabled \u{2192} graph until")),
        "{accounts}"
    );
    assert!(
        !accounts.contains(&format!("{BOB}: smtp auth disabled")),
        "{accounts}"
    );

    let ca = env.ca();
    let alice = env.idp.mint(ALICE).access_token;
    let out = env.python(
        DIRECT,
        &[
            &env.servers.submission_port().to_string(),
            &ca,
            ALICE,
            &alice,
        ],
    );
    assert!(
        out.contains("auth 535 5.7.139") && out.contains(auth_disabled::TEXT),
        "{out}"
    );
    let bob = env.idp.mint(BOB).access_token;
    let out = env.python(
        DIRECT,
        &[&env.servers.submission_port().to_string(), &ca, BOB, &bob],
    );
    assert!(out.contains("auth 235") && out.contains("sent"), "{out}");
    let delivered = env
        .servers
        .wait_for_delivery(BOB, DELIVERY)
        .expect("over smtp");
    assert!(String::from_utf8_lossy(&delivered).contains("over smtp"));
}

/// swaks, msmtp and mutt each meet the switch in the middle of their own
/// session: three mailboxes whose SMTP AUTH Postfix refuses, one client
/// each, every message read back from Bob's INBOX over IMAP.
#[test]
fn every_client_continues_through_graph_when_smtp_auth_is_disabled() {
    const SENDERS: [&str; 3] = [
        "carol@example.test",
        "dave@example.test",
        "erin@example.test",
    ];
    let env = Env::start_with(Options {
        mailboxes: SENDERS.iter().map(|m| m.to_string()).collect(),
        smtp_auth_disabled: SENDERS.iter().map(|m| m.to_string()).collect(),
        listener_settings: vec![("smtp-none", "submit = \"auto\"")],
        graph: true,
        ..Options::default()
    });
    for mailbox in SENDERS {
        env.idp.add_user(mailbox);
        env.idp.set_default_user(mailbox);
        crate::support::mailgate::login(&env.config, mailbox, PASSWORD)
            .unwrap_or_else(|e| panic!("enrolment of {mailbox} failed:\n{e}"));
    }
    let send = |from| Send {
        port: env.port("smtp-none"),
        user: from,
        password: PASSWORD,
        from,
        to: BOB,
    };
    assert_sent(&send(SENDERS[0]).swaks("auto swaks", "body"), "swaks");
    let message =
        b"From: dave@example.test\r\nTo: bob@example.test\r\nSubject: auto msmtp\r\n\r\nbody\r\n";
    assert_sent(&send(SENDERS[1]).msmtp(message), "msmtp");
    let home = crate::support::scratch::temp_dir("mutt-auto");
    assert_sent(
        &send(SENDERS[2]).mutt(&home, "auto mutt", b"body\n"),
        "mutt",
    );

    assert_eq!(postfix_answers(&env), 3, "{}", env.logs());
    let inbox: Vec<String> = fetch(&env.idp, &env.servers, BOB, "INBOX")
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    for (subject, from) in ["auto swaks", "auto msmtp", "auto mutt"]
        .iter()
        .zip(SENDERS)
    {
        assert!(
            inbox
                .iter()
                .any(|m| m.contains(&format!("Subject: {subject}")) && m.contains(from)),
            "{subject} from {from} not in Bob's INBOX: {inbox:?}"
        );
    }
    assert!(
        env.servers.wait_for_delivery(BOB, NO_DELIVERY).is_none(),
        "nothing went through Postfix"
    );
    let accounts = env.accounts();
    for mailbox in SENDERS {
        assert!(
            accounts.contains(&format!(
                "{mailbox}: smtp auth disabled \u{2192} graph until"
            )),
            "{accounts}"
        );
    }
}
