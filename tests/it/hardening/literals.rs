//! IMAP literals announced far beyond `max_literal` (RFC 9051 §4.3, RFC 7888):
//! refused from the announcement alone, nothing allocated for them.

use std::time::Duration;

use crate::support::fake_upstream::Proto;
use crate::support::proxy::{Proxy, Setup};

#[tokio::test]
async fn huge_synchronising_literal_gets_bad_and_the_connection_lives() {
    let g = Proxy::start(Setup::new(Proto::Imap)).await;
    let mut c = g.client().await;
    c.send("a LOGIN {4294967296}\r\n").await;
    let answer = c.line().await;
    assert!(answer.starts_with("a BAD"), "{answer}");
    assert!(answer.contains("Literal too large"), "{answer}");
    // Same connection, a normal login: the client never sent the literal.
    crate::support::proxy::login_ok(Proto::Imap, &mut c).await;
    g.assert_healthy().await;
}

#[tokio::test]
async fn huge_non_synchronising_literal_closes_the_connection() {
    let g = Proxy::start(Setup::new(Proto::Imap)).await;
    for announce in [
        "{4294967296+}",
        "{18446744073709551616+}",
        "{99999999999999999999999+}",
    ] {
        let mut c = g.client().await;
        c.send(&format!("a LOGIN alice {announce}\r\n")).await;
        // The literal is already on its way and cannot be told apart from a
        // command: an error, then the connection closes.
        c.send_bytes(&[b'z'; 4096]).await;
        let answer = c.line().await;
        assert!(
            answer.starts_with("* BYE") || answer.starts_with("a BAD"),
            "{announce}: {answer}"
        );
        assert!(answer.contains("Literal too large"), "{announce}: {answer}");
        assert!(c.closed_within(Duration::from_secs(5)).await, "{announce}");
    }
    assert_eq!(g.grants(), 0);
    g.assert_healthy().await;
}
