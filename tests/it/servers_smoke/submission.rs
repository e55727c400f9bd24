//! Submission: STARTTLS required before AUTH, XOAUTH2 (smtplib), a 30 MB
//! message, and swaks with a password after STARTTLS.

use super::{
    ALICE, BOB, DELIVERY_TIMEOUT, LONG_TOKEN_LEN, StartOptions, identity_provider, python, run,
    start, token,
};

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
