//! Graph's upload volume per mailbox (`submit::graph::volume`) as a real
//! client meets it: a `graph` listener with a small
//! `graph_upload_per_5min`, two messages from smtplib; the second is
//! answered `451 4.7.0 ... try again in N s` before any Graph request, is
//! not delivered, and stays with the client.

use crate::support::fake_upstream::Proto;
use crate::support::proxy::{PASSWORD, Proxy, Setup, USER};

use super::*;

/// The volume and size limit (the smallest the configuration allows to be
/// equal): one ~2.6 kB message fits, two do not.
const VOLUME: usize = 4096;

const TWO_MESSAGES: &str = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
s.login(sys.argv[2], sys.argv[3])
for n in (1, 2):
    body = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: volume %d\r\n\r\n" % n
    body += (b"x" * 76 + b"\r\n") * 32
    try:
        s.sendmail("alice@example.test", ["bob@example.test"], body)
        print("sent", n)
    except smtplib.SMTPDataError as e:
        print("kept", n, e.smtp_code, e.smtp_error.decode())
s.quit()
"#;

#[test]
fn a_message_beyond_the_upload_volume_is_answered_451_and_kept() {
    let world = World::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy = runtime.block_on(Proxy::start(Setup {
        listener: "submit = \"graph\"",
        provider: format!(
            "graph_endpoint = \"{}\"\ngraph_max_message_size = {VOLUME}\n\
             graph_upload_per_5min = {VOLUME}",
            world.idp.graph_url()
        ),
        ..Setup::new(Proto::Smtp)
    }));
    *proxy.tokens.graph.lock().unwrap() = Some(world.graph_token(ALICE));

    let out = python(
        TWO_MESSAGES,
        &[&proxy.addr.port().to_string(), USER, PASSWORD],
    );
    assert!(out.contains("sent 1"), "{out}");
    assert!(out.contains("kept 2 451 4.7.0"), "{out}");
    assert!(out.contains("try again in "), "{out}");
    assert_eq!(
        world.idp.graph_sent().len(),
        1,
        "no Graph request for the second"
    );
    let bob = world.fetch(BOB, "INBOX");
    assert_eq!(bob.len(), 1, "{}", world.servers.logs());
    assert!(String::from_utf8_lossy(&bob[0]).contains("Subject: volume 1"));
}
