//! POP3 through mailgate against a fake XOAUTH2 upstream.

use crate::support::client::Client;
use crate::support::fake_upstream::{Mode, Proto, Verdict};
use crate::support::proxy::Proxy;
use mailgate::token::TokenError;

async fn retr_after_login(c: &mut Client) {
    let ok = c.line().await;
    assert!(ok.starts_with("+OK"), "{ok}");
    c.send("RETR 1\r\n").await;
    assert!(c.line().await.starts_with("+OK"));
    assert_eq!(c.read_exact(22).await, b"Subject: hi\r\n\r\nhello\r\n");
    assert_eq!(c.line().await, ".");
    c.send("QUIT\r\n").await;
    assert!(c.line().await.starts_with("+OK"));
}

#[tokio::test]
async fn every_login_form_over_every_local_tls_mode() {
    for local_tls in ["none", "starttls", "implicit"] {
        let p = Proxy::with(Proto::Pop3, local_tls, Mode::Implicit).await;
        let mut c = p.connect().await;
        c.send("CAPA\r\n").await;
        let capa = c.until(".").await;
        assert!(
            capa.iter().any(|l| l == "USER")
                && capa
                    .iter()
                    .any(|l| l.starts_with("SASL") && l.contains("PLAIN")),
            "{capa:?}"
        );
        c.send("USER alice\r\n").await;
        assert!(c.line().await.starts_with("+OK"));
        c.send("PASS correct horse\r\n").await;
        retr_after_login(&mut c).await;

        let mut c = p.connect().await;
        c.send("AUTH PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2U=\r\n").await;
        retr_after_login(&mut c).await;

        let mut c = p.connect().await;
        c.send("AUTH PLAIN\r\n").await;
        assert!(c.line().await.starts_with('+'));
        c.send("AGFsaWNlAGNvcnJlY3QgaG9yc2U=\r\n").await;
        retr_after_login(&mut c).await;

        let mut c = p.connect().await;
        c.send("AUTH LOGIN\r\n").await;
        assert_eq!(c.line().await, "+ VXNlcm5hbWU6");
        c.send("YWxpY2U=\r\n").await;
        assert_eq!(c.line().await, "+ UGFzc3dvcmQ6");
        c.send("Y29ycmVjdCBob3JzZQ==\r\n").await;
        retr_after_login(&mut c).await;
        assert_eq!(p.upstream.logins(), 4);
    }
}

#[tokio::test]
async fn upstream_stls_mode() {
    let p = Proxy::with(Proto::Pop3, "none", Mode::StartTls).await;
    let mut c = p.connect().await;
    c.send("USER alice\r\nPASS correct horse\r\n").await;
    assert!(c.line().await.starts_with("+OK"));
    retr_after_login(&mut c).await;
}

#[tokio::test]
async fn error_mapping() {
    let p = Proxy::with(Proto::Pop3, "none", Mode::Implicit).await;
    let mut c = p.connect().await;
    c.send("USER alice\r\nPASS nope\r\n").await;
    c.line().await;
    let l = c.line().await;
    assert!(l.starts_with("-ERR [AUTH]"), "{l}");
    p.tokens.fail(Some(TokenError::Temporary {
        reason: "idp down".into(),
        retry_after: None,
    }));
    c.send("AUTH PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2U=\r\n").await;
    let l = c.line().await;
    assert!(l.starts_with("-ERR [SYS/TEMP]"), "{l}");
    p.tokens.fail(None);
    p.upstream.script(vec![Verdict::Throttle]);
    c.send("AUTH PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2U=\r\n").await;
    let l = c.line().await;
    assert!(l.starts_with("-ERR [SYS/TEMP]"), "{l}");
}
