//! Login names with control characters are refused with the bad-credentials
//! answer and never reach the token source or the upstream. `\x01` matters
//! most: it separates the fields of the XOAUTH2 string (`user=...\x01auth=
//! Bearer ...\x01\x01`), so a name carrying one could forge the `user=` sent
//! upstream. Every way a name arrives is tried: an IMAP LOGIN literal, and
//! the authcid and the authzid of SASL PLAIN on all three protocols.

use mailgate::proto::BAD_CREDENTIALS_TEXT;
use mailgate::proto::sasl::encode;

use crate::support::client::Client;
use crate::support::fake_upstream::Proto;
use crate::support::proxy::{MAILBOX, PASSWORD, Proxy, Setup, USER, login_ok};

/// Names that must never become an account, each with a control character.
fn hostile_names() -> Vec<String> {
    vec![
        format!("{USER}\x01auth=Bearer x\x01\x01"),
        format!("evil@example.test\x01user={MAILBOX}"),
        format!("{USER}\x00"),
        format!("{USER}\x7f"),
        format!("{USER}\x1b[2J"),
    ]
}

/// SASL PLAIN `authzid NUL authcid NUL passwd`, base64.
fn plain(authzid: &str, authcid: &str) -> String {
    encode(format!("{authzid}\0{authcid}\0{PASSWORD}").as_bytes())
}

/// Sends `AUTH[ENTICATE] PLAIN <initial response>` and returns the answer.
async fn auth_plain(proto: Proto, c: &mut Client, response: &str) -> String {
    match proto {
        Proto::Imap => {
            c.send(&format!("a AUTHENTICATE PLAIN {response}\r\n"))
                .await;
            c.until("a ").await.pop().expect("tagged answer")
        }
        Proto::Pop3 | Proto::Smtp => {
            c.send(&format!("AUTH PLAIN {response}\r\n")).await;
            c.line().await
        }
    }
}

fn assert_bad_credentials(proto: Proto, answer: &str, what: &str) {
    let refused = match proto {
        Proto::Imap => "a NO [AUTHENTICATIONFAILED]",
        Proto::Pop3 => "-ERR [AUTH]",
        Proto::Smtp => "535 5.7.8",
    };
    assert!(
        answer.starts_with(refused) && answer.contains(BAD_CREDENTIALS_TEXT),
        "{proto:?} {what}: {answer}"
    );
}

/// A client from its own loopback address `127.0.1.n` (so the guard, which
/// counts failures per address, stays out of the way), past the greeting
/// (and EHLO for SMTP).
async fn ready(g: &Proxy, proto: Proto, n: usize) -> Client {
    let mut c = g.client_from(&format!("127.0.1.{}", n + 1)).await;
    if proto == Proto::Smtp {
        c.send("EHLO client.test\r\n").await;
        c.until("250 ").await;
    }
    c
}

#[tokio::test]
async fn imap_login_literal_with_control_characters_is_refused() {
    let g = Proxy::start(Setup::new(Proto::Imap)).await;
    for (n, name) in hostile_names().into_iter().enumerate() {
        let mut c = ready(&g, Proto::Imap, n).await;
        c.send(&format!("a LOGIN {{{}}}\r\n", name.len())).await;
        let go_ahead = c.line().await;
        assert!(go_ahead.starts_with('+'), "{name:?}: {go_ahead}");
        c.send(&format!("{name} \"{PASSWORD}\"\r\n")).await;
        let answer = c.until("a ").await.pop().expect("tagged answer");
        assert_bad_credentials(Proto::Imap, &answer, &format!("{name:?}"));
    }
    assert_eq!(g.grants(), 0, "no name reached the token source");
    assert_eq!(g.upstream.logins(), 0, "nothing reached the upstream");
    login_ok(Proto::Imap, &mut g.client().await).await;
}

#[tokio::test]
async fn sasl_plain_with_control_characters_in_authcid_or_authzid_is_refused() {
    for proto in [Proto::Imap, Proto::Pop3, Proto::Smtp] {
        let g = Proxy::start(Setup::new(proto)).await;
        // NUL separates PLAIN's own fields: a name holding one is a
        // malformed message (answered BAD), not a name.
        let names = hostile_names().into_iter().filter(|n| !n.contains('\0'));
        for (n, name) in names.enumerate() {
            let mut c = ready(&g, proto, 2 * n).await;
            let answer = auth_plain(proto, &mut c, &plain("", &name)).await;
            assert_bad_credentials(proto, &answer, &format!("authcid {name:?}"));
            let mut c = ready(&g, proto, 2 * n + 1).await;
            let answer = auth_plain(proto, &mut c, &plain(&name, USER)).await;
            assert_bad_credentials(proto, &answer, &format!("authzid {name:?}"));
        }
        assert_eq!(g.grants(), 0, "{proto:?}: no name reached the token source");
        assert_eq!(
            g.upstream.logins(),
            0,
            "{proto:?}: nothing reached the upstream"
        );
        login_ok(proto, &mut g.client().await).await;
    }
}
