//! SMTP submission through mailgate against a fake XOAUTH2 upstream that,
//! like smtp.office365.com, offers AUTH only after STARTTLS.

use crate::support::client::Client;
use crate::support::fake_upstream::{Mode, Proto, Verdict};
use crate::support::proxy::Proxy;

/// Past the greeting, STARTTLS when the listener wants it, and EHLO.
async fn connect(p: &Proxy) -> Client {
    let mut c = p.connect().await;
    c.send("EHLO legacy.client\r\n").await;
    let ehlo = c.until("250 ").await;
    assert!(
        ehlo.iter()
            .any(|l| l.contains("AUTH") && l.contains("PLAIN") && l.contains("LOGIN")),
        "{ehlo:?}"
    );
    c
}

async fn send_mail(p: &Proxy, c: &mut Client) {
    let l = c.line().await;
    assert!(l.starts_with("235"), "{l}");
    c.send("MAIL FROM:<alice@example.test>\r\n").await;
    assert!(c.line().await.starts_with("250"));
    c.send("RCPT TO:<bob@example.test>\r\n").await;
    assert!(c.line().await.starts_with("250"));
    c.send("DATA\r\n").await;
    assert!(c.line().await.starts_with("354"));
    c.send("Subject: test\r\n\r\nbody\r\n.\r\n").await;
    assert!(c.line().await.starts_with("250"));
    c.send("QUIT\r\n").await;
    assert!(c.line().await.starts_with("221"));
    assert!(
        p.upstream
            .state
            .messages
            .lock()
            .unwrap()
            .iter()
            .any(|m| m == b"Subject: test\r\n\r\nbody\r\n")
    );
    assert!(
        p.upstream
            .state
            .ehlo_names
            .lock()
            .unwrap()
            .iter()
            .all(|n| n == "legacy.client"),
        "client EHLO replayed upstream"
    );
}

#[tokio::test]
async fn every_login_form_over_every_local_tls_mode() {
    for local_tls in ["none", "starttls", "implicit"] {
        let p = Proxy::with(Proto::Smtp, local_tls, Mode::StartTls).await;
        let mut c = connect(&p).await;
        c.send("AUTH PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2U=\r\n").await;
        send_mail(&p, &mut c).await;

        let mut c = connect(&p).await;
        c.send("AUTH PLAIN\r\n").await;
        assert!(c.line().await.starts_with("334"));
        c.send("AGFsaWNlAGNvcnJlY3QgaG9yc2U=\r\n").await;
        send_mail(&p, &mut c).await;

        let mut c = connect(&p).await;
        c.send("AUTH LOGIN\r\n").await;
        assert_eq!(c.line().await, "334 VXNlcm5hbWU6");
        c.send("YWxpY2U=\r\n").await;
        assert_eq!(c.line().await, "334 UGFzc3dvcmQ6");
        c.send("Y29ycmVjdCBob3JzZQ==\r\n").await;
        send_mail(&p, &mut c).await;
        assert_eq!(p.upstream.logins(), 3);
    }
}

#[tokio::test]
async fn pipelined_mail_after_auth_is_forwarded() {
    let p = Proxy::with(Proto::Smtp, "none", Mode::StartTls).await;
    let mut c = connect(&p).await;
    c.send("AUTH PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2U=\r\nMAIL FROM:<alice@example.test>\r\n")
        .await;
    assert!(c.line().await.starts_with("235"));
    assert!(
        c.line().await.starts_with("250"),
        "pipelined MAIL FROM answered by upstream"
    );
}

#[tokio::test]
async fn smtp_auth_disabled_names_the_fix() {
    let p = Proxy::with(Proto::Smtp, "none", Mode::StartTls).await;
    p.upstream.script(vec![Verdict::SmtpAuthDisabled]);
    let mut c = connect(&p).await;
    c.send("AUTH PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2U=\r\n").await;
    let l = c.line().await;
    assert!(
        l.starts_with("535") && l.contains("SmtpClientAuthenticationDisabled"),
        "{l}"
    );
}

#[tokio::test]
async fn wrong_password_and_thread_limit() {
    let p = Proxy::with(Proto::Smtp, "none", Mode::StartTls).await;
    let mut c = connect(&p).await;
    c.send("AUTH PLAIN AGFsaWNlAHdyb25n\r\n").await;
    let l = c.line().await;
    assert!(l.starts_with("535 5.7.8"), "{l}");
    p.upstream.script(vec![Verdict::Throttle]);
    c.send("AUTH PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2U=\r\n").await;
    let l = c.line().await;
    assert!(l.starts_with("454 4.7.0"), "{l}");
}

#[tokio::test]
async fn mail_before_auth_is_refused() {
    let p = Proxy::with(Proto::Smtp, "none", Mode::StartTls).await;
    let mut c = connect(&p).await;
    c.send("MAIL FROM:<x@y>\r\n").await;
    assert!(c.line().await.starts_with("530"));
    assert_eq!(p.upstream.logins(), 0);
}
