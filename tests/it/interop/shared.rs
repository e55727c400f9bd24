//! Shared mailboxes through real servers: the delegate's token opens a shared
//! mailbox over IMAP and POP3 where the delegate has full access, and SMTP
//! sends as the shared address where the delegate has send-as. Without full
//! access or send-as the servers refuse, and the provider's reason reaches
//! the client instead of a "wrong password".

use super::harness::{
    ALICE, BOB, DELIVERY_TIMEOUT, Env, Options, PASSWORD, assert_refused_with_reason,
};
use crate::support::idp::TestIdp;

/// Alice has full access and send-as.
const INFO: &str = "info@example.test";
/// Alice has full access, no send-as.
const SALES: &str = "sales@example.test";
/// Alice has neither.
const BOARD: &str = "board@example.test";

const READ: &str = r#"
import imaplib, poplib, sys
imap_port, pop_port, box, pw = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
marker = ("for the shared mailbox " + box).encode()
m = imaplib.IMAP4("127.0.0.1", imap_port, timeout=25)
try:
    m.login(box, pw)
    typ, _ = m.select("INBOX", readonly=True)
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    print("imap", "read" if marker in data[0][1] else "differs")
    m.logout()
except imaplib.IMAP4.error as e:
    print("imap refused:", e)
p = poplib.POP3("127.0.0.1", pop_port, timeout=25)
p.user(box)
try:
    p.pass_(pw)
    _, lines, _ = p.retr(1)
    print("pop3", "read" if marker in b"\r\n".join(lines) else "differs")
    p.quit()
except poplib.error_proto as e:
    print("pop3 refused:", e)
"#;

const SEND_AS: &str = r#"
import smtplib, ssl, sys
port, ca, login, pw, sender, rcpt = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)
s = smtplib.SMTP("127.0.0.1", int(port), timeout=25)
s.starttls(context=ctx)
s.login(login, pw)
msg = "From: %s\r\nTo: %s\r\nSubject: sent as %s\r\n\r\nsent as the shared address\r\n" % (sender, rcpt, sender)
try:
    print("smtp refused", s.sendmail(sender, [rcpt], msg.encode()))
except smtplib.SMTPException as e:
    print("smtp error:", e)
s.quit()
"#;

fn grants(idp: &TestIdp) {
    idp.grant_full_access(INFO, ALICE);
    idp.grant_send_as(INFO, ALICE);
    idp.grant_full_access(SALES, ALICE);
}

fn shared_env() -> Env {
    let rule = |login: &str| {
        vec![
            ("login", login.to_owned()),
            ("kind", "shared".to_owned()),
            ("delegate", ALICE.to_owned()),
        ]
    };
    let env = Env::start_with(Options {
        mailboxes: [INFO, SALES, BOARD].map(str::to_owned).to_vec(),
        accounts: [INFO, SALES, BOARD].map(rule).to_vec(),
        grants: Some(grants),
        ..Options::default()
    });
    for box_ in [INFO, SALES, BOARD] {
        let message = format!("Subject: shared\r\n\r\nfor the shared mailbox {box_}\r\n");
        env.servers
            .seed_message(box_, message.as_bytes())
            .expect("seed");
    }
    env
}

fn read(env: &Env, box_: &str) -> String {
    let ports = [env.port("imap-none"), env.port("pop3-none")].map(|p| p.to_string());
    env.python(READ, &[&ports[0], &ports[1], box_, PASSWORD])
}

fn send_as(env: &Env, shared: &str) -> String {
    let port = env.port("smtp-starttls").to_string();
    env.python(SEND_AS, &[&port, &env.ca(), shared, PASSWORD, shared, BOB])
}

#[test]
fn a_delegate_reads_and_sends_as_a_shared_mailbox() {
    let env = shared_env();
    let out = read(&env, INFO);
    let context = format!("{out}\n{}", env.logs());
    assert!(out.contains("imap read"), "{context}");
    assert!(out.contains("pop3 read"), "{context}");

    let out = send_as(&env, INFO);
    assert!(out.contains("smtp refused {}"), "{out}\n{}", env.logs());
    let delivered = String::from_utf8_lossy(&env.delivered(BOB, DELIVERY_TIMEOUT)).into_owned();
    assert!(delivered.contains(&format!("From: {INFO}")), "{delivered}");
}

#[test]
fn without_full_access_or_send_as_the_providers_reason_is_passed_on() {
    let env = shared_env();
    let out = read(&env, BOARD);
    let context = format!("{out}\n{}", env.logs());
    assert_refused_with_reason(
        &out,
        "has no FullAccess permission on mailbox board@example.test",
        &context,
    );

    let out = read(&env, SALES);
    assert!(
        out.contains("imap read"),
        "full access suffices to read\n{out}"
    );
    let out = send_as(&env, SALES);
    let context = format!("{out}\n{}", env.logs());
    assert!(out.contains("smtp error"), "send-as is required\n{context}");
    assert!(
        out.contains("not owned by user alice@example.test"),
        "the server's reason is passed on\n{context}"
    );
}

/// POSTs `body` to `url` on the test IdP; the JSON answer.
async fn post(url: String, content_type: &str, body: String) -> serde_json::Value {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .expect("IdP answers");
    serde_json::from_slice(&r.bytes().await.expect("body")).expect("json")
}

/// The IdP's answer to Dovecot's policy question for `token` and `mailbox`:
/// `Ok` or the provider's reason.
async fn may_open(idp: &TestIdp, token: &str, mailbox: &str) -> Result<(), String> {
    let form = "application/x-www-form-urlencoded";
    let jti = post(idp.introspect_url(), form, format!("token={token}")).await["jti"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let request = serde_json::json!({"login": mailbox, "jti": jti, "protocol": "imap"});
    let answer = post(idp.policy_url(), "application/json", request.to_string()).await;
    match answer["status"].as_i64() {
        Some(0) => Ok(()),
        _ => Err(answer["msg"].as_str().unwrap_or_default().to_owned()),
    }
}

/// The rules themselves, without mail servers: what `/policy` answers.
#[tokio::test]
async fn the_identity_provider_applies_the_providers_mailbox_rules() {
    let idp = TestIdp::start().await;
    let alice = idp.mint(ALICE).access_token;
    assert_eq!(may_open(&idp, &alice, ALICE).await, Ok(()));
    let refused = may_open(&idp, &alice, INFO).await.unwrap_err();
    assert!(
        refused.contains("no FullAccess permission on mailbox info@"),
        "{refused}"
    );
    idp.grant_full_access(INFO, ALICE);
    assert_eq!(may_open(&idp, &alice, INFO).await, Ok(()));
    assert!(may_open(&idp, &alice, BOB).await.is_err());

    let form = "grant_type=client_credentials&client_id=c&client_secret=s&scope=x";
    let app = post(
        idp.token_url(),
        "application/x-www-form-urlencoded",
        form.into(),
    )
    .await;
    let app = app["access_token"].as_str().expect("app token").to_owned();
    let refused = may_open(&idp, &app, "m1@archive.test").await.unwrap_err();
    assert!(
        refused.contains("not granted access to mailbox m1@"),
        "{refused}"
    );
    idp.grant_app("m1@archive.test");
    assert_eq!(may_open(&idp, &app, "m1@archive.test").await, Ok(()));
    assert!(may_open(&idp, &app, "m2@archive.test").await.is_err());
    idp.grant_app("@archive.test");
    assert_eq!(may_open(&idp, &app, "M2@Archive.test").await, Ok(()));
    assert!(may_open(&idp, &app, "m2@other.test").await.is_err());
    assert!(
        may_open(&idp, &app, ALICE).await.is_err(),
        "an app token opens no user's mailbox by itself"
    );
    let unknown = serde_json::json!({"login": ALICE, "jti": "0123abcd", "protocol": "imap"});
    let answer = post(idp.policy_url(), "application/json", unknown.to_string()).await;
    assert_eq!(answer["status"], -1, "an unknown token id opens nothing");
    let password = serde_json::json!({"login": ALICE, "jti": "", "protocol": "imap"});
    let answer = post(idp.policy_url(), "application/json", password.to_string()).await;
    assert_eq!(
        answer["status"], 0,
        "no token id: a password login, not the provider's"
    );
}
