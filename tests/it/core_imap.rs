//! IMAP through mailgate against a fake XOAUTH2 upstream: every login form,
//! every local TLS mode, the error mapping, and the relay.

use crate::support::client::Client;
use crate::support::config::{ConfigBuilder, Listener, Upstream};
use crate::support::fake_upstream::{Mode, Proto, Verdict};
use crate::support::proxy::Proxy;
use mailgate::serve::Server;
use mailgate::token::TokenError;

async fn fetch_after_login(c: &mut Client, tag: &str) {
    let ok = c.until(tag).await;
    let last = ok.last().unwrap();
    assert!(last.starts_with(&format!("{tag} OK")), "{ok:?}");
    assert!(
        last.contains("[CAPABILITY IMAP4rev1 IDLE"),
        "upstream capabilities must reach the client: {last}"
    );
    c.send("f1 FETCH 1 BODY[]\r\n").await;
    let head = c.line().await;
    assert_eq!(head, "* 1 FETCH (BODY[] {22}");
    assert_eq!(c.read_exact(22).await, b"Subject: hi\r\n\r\nhello\r\n");
    assert_eq!(c.line().await, ")");
    assert!(c.line().await.starts_with("f1 OK"));
    c.send("z LOGOUT\r\n").await;
    assert!(c.until("z OK").await.last().unwrap().starts_with("z OK"));
}

const LOGIN_FORMS: &[&str] = &[
    "a LOGIN alice \"correct horse\"\r\n",
    "a LOGIN \"alice\" {13+}\r\ncorrect horse\r\n",
    // base64("\0alice\0correct horse")
    "a AUTHENTICATE PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2U=\r\n",
];

#[tokio::test]
async fn every_login_form_over_every_local_tls_mode() {
    for local_tls in ["none", "starttls", "implicit"] {
        let p = Proxy::with(Proto::Imap, local_tls, Mode::Implicit).await;
        for form in LOGIN_FORMS {
            let mut c = p.connect().await;
            c.send(form).await;
            fetch_after_login(&mut c, "a").await;
        }
        // Synchronising literal: wait for the continuation.
        let mut c = p.connect().await;
        c.send("a LOGIN {5}\r\n").await;
        assert!(c.line().await.starts_with('+'));
        c.send("alice {13}\r\n").await;
        assert!(c.line().await.starts_with('+'));
        c.send("correct horse\r\n").await;
        fetch_after_login(&mut c, "a").await;
        // AUTHENTICATE PLAIN without initial response.
        let mut c = p.connect().await;
        c.send("a AUTHENTICATE PLAIN\r\n").await;
        assert!(c.line().await.starts_with('+'));
        c.send("AGFsaWNlAGNvcnJlY3QgaG9yc2U=\r\n").await;
        fetch_after_login(&mut c, "a").await;
        // AUTHENTICATE LOGIN.
        let mut c = p.connect().await;
        c.send("a AUTHENTICATE LOGIN\r\n").await;
        assert_eq!(c.line().await, "+ VXNlcm5hbWU6");
        c.send("YWxpY2U=\r\n").await;
        assert_eq!(c.line().await, "+ UGFzc3dvcmQ6");
        c.send("Y29ycmVjdCBob3JzZQ==\r\n").await;
        fetch_after_login(&mut c, "a").await;
        assert_eq!(p.upstream.logins(), 6, "local TLS {local_tls}");
        assert!(
            p.upstream
                .state
                .users
                .lock()
                .unwrap()
                .iter()
                .all(|u| u == "alice@example.test")
        );
    }
}

#[tokio::test]
async fn upstream_starttls_and_plain_modes() {
    for mode in [Mode::StartTls, Mode::Plain] {
        let p = Proxy::with(Proto::Imap, "none", mode).await;
        let mut c = p.connect().await;
        c.send(LOGIN_FORMS[0]).await;
        fetch_after_login(&mut c, "a").await;
    }
}

#[tokio::test]
async fn wrong_password_is_an_authentication_failure_and_nothing_reaches_upstream() {
    let p = Proxy::with(Proto::Imap, "none", Mode::Implicit).await;
    let mut c = p.connect().await;
    c.send("a LOGIN alice wrong\r\n").await;
    let l = c.line().await;
    assert!(l.starts_with("a NO [AUTHENTICATIONFAILED]"), "{l}");
    assert_eq!(p.upstream.logins(), 0);
    c.send("b LOGIN alice \"correct horse\"\r\n").await;
    fetch_after_login(&mut c, "b").await;
}

#[tokio::test]
async fn token_failures_map_to_the_documented_answers() {
    let p = Proxy::with(Proto::Imap, "none", Mode::Implicit).await;
    p.tokens.fail(Some(TokenError::Temporary {
        reason: "idp down".into(),
        retry_after: None,
    }));
    let mut c = p.connect().await;
    c.send(LOGIN_FORMS[0]).await;
    let l = c.line().await;
    assert!(
        l.starts_with("a NO [UNAVAILABLE]") && l.contains("idp down"),
        "{l}"
    );
    p.tokens.fail(Some(TokenError::NeedsAuthorisation {
        account: "alice".into(),
        hint: "run mailgate login alice".into(),
    }));
    c.send("b LOGIN alice \"correct horse\"\r\n").await;
    let l = c.line().await;
    assert!(
        l.starts_with("b NO [AUTHENTICATIONFAILED]") && l.contains("run mailgate login alice"),
        "{l}"
    );
    assert_eq!(p.upstream.logins(), 0);
}

#[tokio::test]
async fn upstream_rejection_of_a_fresh_token_refreshes_once() {
    let p = Proxy::with(Proto::Imap, "none", Mode::Implicit).await;
    p.upstream.script(vec![Verdict::Refuse { challenge: true }]);
    let mut c = p.connect().await;
    c.send(LOGIN_FORMS[0]).await;
    fetch_after_login(&mut c, "a").await;
    assert_eq!(
        p.tokens.rejected.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(p.upstream.logins(), 2);
}

#[tokio::test]
async fn persistent_upstream_rejection_passes_the_reason_on() {
    let p = Proxy::with(Proto::Imap, "none", Mode::Implicit).await;
    p.upstream.script(vec![
        Verdict::Refuse { challenge: false },
        Verdict::Refuse { challenge: false },
    ]);
    let mut c = p.connect().await;
    c.send(LOGIN_FORMS[0]).await;
    let l = c.line().await;
    assert!(
        l.starts_with("a NO") && l.contains("AUTHENTICATE failed"),
        "{l}"
    );
}

#[tokio::test]
async fn throttling_is_temporary_and_remembered_per_mailbox() {
    let p = Proxy::with(Proto::Imap, "none", Mode::Implicit).await;
    p.upstream.script(vec![Verdict::Throttle]);
    let mut c = p.connect().await;
    c.send(LOGIN_FORMS[0]).await;
    let l = c.line().await;
    assert!(l.starts_with("a NO [UNAVAILABLE]"), "{l}");
    c.send("b LOGIN alice \"correct horse\"\r\n").await;
    let l = c.line().await;
    assert!(l.starts_with("b NO [UNAVAILABLE]"), "{l}");
    assert_eq!(
        p.upstream.logins(),
        1,
        "back-off must keep new logins away from the provider"
    );
}

/// The answer to a LOGIN through a second mailgate with `p`'s tokens whose
/// IMAP listener expects implicit TLS from 127.0.0.1:`upstream_port`.
async fn login_via_implicit_upstream(p: &Proxy, upstream_port: u16) -> String {
    let upstream = Upstream::new(upstream_port, "implicit");
    let toml = ConfigBuilder::new()
        .provider_unused()
        .listener(Listener::local("imap", 0, upstream))
        .toml();
    let config = mailgate::config::parse(&toml, "t.toml", &p.dir).unwrap();
    let server = Server::start(&config, p.tokens.clone()).await.unwrap();
    let mut c = Client::connect(server.local_addrs()[0].1).await;
    c.line().await;
    c.send(LOGIN_FORMS[0]).await;
    c.line().await
}

#[tokio::test]
async fn unreachable_upstream_is_temporary() {
    let p = Proxy::with(Proto::Imap, "none", Mode::Implicit).await;
    // A port that was free a moment ago: nothing listens there.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let l = login_via_implicit_upstream(&p, dead_port).await;
    assert!(l.starts_with("a NO [UNAVAILABLE]"), "{l}");
}

#[tokio::test]
async fn upstream_without_tls_when_tls_is_required_is_temporary() {
    // The fake speaks plain IMAP; mailgate expects implicit TLS.
    let p = Proxy::with(Proto::Imap, "none", Mode::Plain).await;
    let l = login_via_implicit_upstream(&p, p.upstream.port).await;
    assert!(l.starts_with("a NO [UNAVAILABLE]"), "{l}");
}

#[tokio::test]
async fn pipelined_bytes_after_login_reach_upstream() {
    let p = Proxy::with(Proto::Imap, "none", Mode::Implicit).await;
    let mut c = p.connect().await;
    c.send("a LOGIN alice \"correct horse\"\r\nb NOOP\r\n")
        .await;
    let lines = c.until("b ").await;
    assert!(lines.iter().any(|l| l.starts_with("a OK")), "{lines:?}");
    assert!(lines.last().unwrap().starts_with("b OK NOOP"), "{lines:?}");
}

#[tokio::test]
async fn large_message_is_relayed_intact() {
    let p = Proxy::with(Proto::Imap, "implicit", Mode::Implicit).await;
    let body: Vec<u8> = (0..20 * 1024 * 1024u32)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz\r\n"[(i % 28) as usize])
        .collect();
    *p.upstream.state.message.lock().unwrap() = body.clone();
    let mut c = p.connect().await;
    c.send(LOGIN_FORMS[0]).await;
    c.until("a OK").await;
    c.send("f FETCH 1 BODY[]\r\n").await;
    assert_eq!(
        c.line().await,
        format!("* 1 FETCH (BODY[] {{{}}}", body.len())
    );
    let got = c.read_exact(body.len()).await;
    assert!(got == body, "20 MiB message corrupted in transit");
    assert_eq!(c.line().await, ")");
    assert!(c.line().await.starts_with("f OK"));
    // And the other way: APPEND a large literal.
    c.send(&format!("g APPEND INBOX {{{}+}}\r\n", body.len()))
        .await;
    c.send_bytes(&body).await;
    c.send("\r\n").await;
    assert!(c.line().await.starts_with("g OK"));
    assert!(p.upstream.state.messages.lock().unwrap()[0] == body);
}

#[tokio::test]
async fn graceful_shutdown_tells_waiting_clients_and_lets_relays_finish() {
    let mut p = Proxy::with(Proto::Imap, "none", Mode::Implicit).await;
    let mut waiting = p.connect().await;
    let mut relaying = p.connect().await;
    relaying.send(LOGIN_FORMS[0]).await;
    relaying.until("a OK").await;
    let server = p.server.take().unwrap();
    let shutdown = tokio::spawn(server.shutdown());
    let bye = waiting.line().await;
    assert!(bye.starts_with("* BYE"), "{bye}");
    relaying.send("n NOOP\r\n").await;
    assert!(
        relaying.line().await.starts_with("n OK"),
        "an established session keeps working during the grace period"
    );
    relaying.send("z LOGOUT\r\n").await;
    relaying.until("z OK").await;
    drop(relaying);
    assert!(
        tokio::time::timeout(std::time::Duration::from_secs(10), shutdown)
            .await
            .unwrap()
            .unwrap()
    );
    assert!(
        tokio::net::TcpStream::connect(p.addr).await.is_err(),
        "no longer accepting"
    );
}
