//! SIGHUP with the real binary: a new listener starts, an established relayed
//! session survives, and an invalid config is rejected with the reason while
//! the running listeners keep serving.

use super::binary::{self, LOCAL_PASSWORD, Listener, MAILBOX, Scratch, Serve};
use crate::support::client::Client;
use crate::support::fake_upstream::{FakeUpstream, Mode, Proto};
use crate::support::idp::TestIdp;

const SHARED: &str = "shared@example.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_adds_a_listener_keeps_sessions_and_rejects_a_bad_config() {
    let idp = TestIdp::start().await;
    idp.add_user(MAILBOX);
    let imap_up = FakeUpstream::start(Proto::Imap, Mode::Plain, None).await;
    let pop_up = FakeUpstream::start(Proto::Pop3, Mode::Plain, None).await;
    let s = Scratch::new("reload");
    let imap = Listener {
        name: "imap",
        protocol: "imap",
        port: binary::free_port(),
        upstream_port: imap_up.port,
    };
    s.write(&binary::config_text(
        &idp,
        &s.state(),
        "before.test",
        &[imap],
    ));
    let config = s.config.clone();
    tokio::task::spawn_blocking(move || binary::enrol(&config))
        .await
        .unwrap();
    let (_, at) = binary::stored_tokens(&s);
    let at = at.expect("access token");
    imap_up.accept_token(&at);
    pop_up.accept_token(&at);

    let serve = Serve::start(&s);
    let imap_port = imap_port(&s);
    let mut session = binary::connect(imap_port).await;
    let ok = binary::imap_login(&mut session, LOCAL_PASSWORD).await;
    assert!(ok.starts_with("t OK"), "{ok}\n{}", serve.log());

    // No rule for the shared mailbox yet: an unknown account.
    let mut shared = binary::connect(imap_port).await;
    let no = binary::imap_login_as(&mut shared, SHARED, LOCAL_PASSWORD).await;
    assert!(no.starts_with("t NO"), "{no}");

    // A second listener, a changed hostname and a new account rule.
    let pop_port = binary::free_port();
    let listeners = [
        Listener {
            name: "imap",
            protocol: "imap",
            port: imap_port,
            upstream_port: imap_up.port,
        },
        Listener {
            name: "pop3",
            protocol: "pop3",
            port: pop_port,
            upstream_port: pop_up.port,
        },
    ];
    let config = binary::config(&idp, &s.state(), "after.test", &listeners).account(&[
        ("login", SHARED),
        ("kind", "shared"),
        ("delegate", MAILBOX),
    ]);
    s.write(&config.toml());
    serve.signal("HUP");
    serve.wait_for("configuration reloaded", 1).await;
    let mut pop = binary::connect(pop_port).await;
    let greeting = pop.line().await;
    assert!(greeting.starts_with("+OK"), "{greeting}");
    pop.send(&format!("USER {MAILBOX}\r\n")).await;
    assert!(pop.line().await.starts_with("+OK"));
    pop.send(&format!("PASS {LOCAL_PASSWORD}\r\n")).await;
    let ok = pop.line().await;
    assert!(ok.starts_with("+OK"), "{ok}\n{}", serve.log());
    assert_session_alive(&mut session, "n1").await;
    let mut shared = binary::connect(imap_port).await;
    let ok = binary::imap_login_as(&mut shared, SHARED, LOCAL_PASSWORD).await;
    assert!(
        ok.starts_with("t OK"),
        "account rules reloaded: {ok}\n{}",
        serve.log()
    );
    assert!(
        imap_up
            .state
            .users
            .lock()
            .unwrap()
            .iter()
            .any(|u| u == SHARED)
    );

    // An invalid config: rejected with its reason, everything keeps serving.
    s.write("this is = not [valid toml\n");
    serve.signal("HUP");
    serve.wait_for("new configuration rejected", 1).await;
    let log = serve.log();
    let rejected = log
        .lines()
        .find(|l| l.contains("new configuration rejected"))
        .unwrap();
    assert!(
        rejected.contains("mailgate.toml"),
        "the reason names the file: {rejected}"
    );
    assert_session_alive(&mut session, "n2").await;
    let mut again = binary::connect(imap_port).await;
    let ok = binary::imap_login(&mut again, LOCAL_PASSWORD).await;
    assert!(ok.starts_with("t OK"), "{ok}");
    let mut pop = binary::connect(pop_port).await;
    assert!(pop.line().await.starts_with("+OK"));
    // A valid config whose new listener cannot bind: not applied, old kept.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let blocked = [
        Listener {
            name: "imap",
            protocol: "imap",
            port: imap_port,
            upstream_port: imap_up.port,
        },
        Listener {
            name: "blocked",
            protocol: "imap",
            port: taken_port,
            upstream_port: imap_up.port,
        },
    ];
    s.write(&binary::config_text(
        &idp,
        &s.state(),
        "blocked.test",
        &blocked,
    ));
    serve.signal("HUP");
    serve.wait_for("could not be applied", 1).await;
    let mut pop = binary::connect(pop_port).await;
    assert!(pop.line().await.starts_with("+OK"), "pop3 listener kept");
    assert_session_alive(&mut session, "n3").await;
    let _ = serve.stop().await;
}

fn imap_port(s: &Scratch) -> u16 {
    let text = std::fs::read_to_string(&s.config).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("bind = \"127.0.0.1:"))
        .and_then(|p| p.trim_end_matches('"').parse().ok())
        .unwrap()
}

async fn assert_session_alive(c: &mut Client, tag: &str) {
    c.send(&format!("{tag} NOOP\r\n")).await;
    let lines = c.until(&format!("{tag} ")).await;
    assert!(
        lines.last().unwrap().starts_with(&format!("{tag} OK")),
        "{lines:?}"
    );
}
