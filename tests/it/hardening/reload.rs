//! SIGHUP with the real binary: a new listener starts, an established relayed
//! session survives, and an invalid config is rejected with the reason while
//! the running listeners keep serving.

use super::binary::{self, Enrolled, LOCAL_PASSWORD, MAILBOX, Serve};
use crate::support::client::Client;
use crate::support::fake_upstream::{FakeUpstream, Mode, Proto};

const SHARED: &str = "shared@example.test";

/// `mailgate serve` with one IMAP listener, and a session relayed through it.
struct Running {
    enrolled: Enrolled,
    serve: Serve,
    imap_up: FakeUpstream,
    pop_up: FakeUpstream,
    imap_port: u16,
    session: Client,
}

impl Running {
    async fn start() -> Self {
        let imap_up = FakeUpstream::start(Proto::Imap, Mode::Plain, None).await;
        let pop_up = FakeUpstream::start(Proto::Pop3, Mode::Plain, None).await;
        let imap_port = binary::free_port();
        let imap = binary::listener("imap", "imap", imap_port, imap_up.port);
        let enrolled = Enrolled::new("reload", "before.test", &[imap]).await;
        imap_up.accept_token(&enrolled.access_token);
        pop_up.accept_token(&enrolled.access_token);
        let serve = Serve::start(&enrolled.scratch);
        let mut session = binary::connect(imap_port).await;
        let ok = binary::imap_login(&mut session, LOCAL_PASSWORD).await;
        assert!(ok.starts_with("t OK"), "{ok}\n{}", serve.log());
        Self {
            enrolled,
            serve,
            imap_up,
            pop_up,
            imap_port,
            session,
        }
    }

    /// Writes `config` and sends SIGHUP; waits for `outcome` in the log.
    async fn reload(&self, config: &str, outcome: &str) {
        self.enrolled.scratch.write(config);
        self.serve.signal("HUP");
        self.serve.wait_for(outcome, 1).await;
    }

    fn config_text(
        &self,
        hostname: &str,
        listeners: &[crate::support::config::Listener],
    ) -> String {
        let state = self.enrolled.scratch.state();
        binary::config_text(&self.enrolled.idp, &state, hostname, listeners)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_adds_a_listener_keeps_sessions_and_rejects_a_bad_config() {
    let mut r = Running::start().await;
    // No rule for the shared mailbox yet: an unknown account.
    let mut shared = binary::connect(r.imap_port).await;
    let no = binary::imap_login_as(&mut shared, SHARED, LOCAL_PASSWORD).await;
    assert!(no.starts_with("t NO"), "{no}");

    let pop_port = adds_a_listener_and_an_account_rule(&mut r).await;
    rejects_an_invalid_config(&mut r, pop_port).await;
    keeps_the_old_config_when_a_listener_cannot_bind(&mut r, pop_port).await;
    let _ = r.serve.stop().await;
}

/// A second listener, a changed hostname and a new account rule; returns
/// the new listener's port.
async fn adds_a_listener_and_an_account_rule(r: &mut Running) -> u16 {
    let pop_port = binary::free_port();
    let listeners = [
        binary::listener("imap", "imap", r.imap_port, r.imap_up.port),
        binary::listener("pop3", "pop3", pop_port, r.pop_up.port),
    ];
    let state = r.enrolled.scratch.state();
    let config = binary::config(&r.enrolled.idp, &state, "after.test", &listeners).account(&[
        ("login", SHARED),
        ("kind", "shared"),
        ("delegate", MAILBOX),
    ]);
    r.reload(&config.toml(), "configuration reloaded").await;
    let mut pop = binary::connect(pop_port).await;
    let greeting = pop.line().await;
    assert!(greeting.starts_with("+OK"), "{greeting}");
    pop.send(&format!("USER {MAILBOX}\r\n")).await;
    assert!(pop.line().await.starts_with("+OK"));
    pop.send(&format!("PASS {LOCAL_PASSWORD}\r\n")).await;
    let ok = pop.line().await;
    assert!(ok.starts_with("+OK"), "{ok}\n{}", r.serve.log());
    assert_session_alive(&mut r.session, "n1").await;
    let mut shared = binary::connect(r.imap_port).await;
    let ok = binary::imap_login_as(&mut shared, SHARED, LOCAL_PASSWORD).await;
    assert!(
        ok.starts_with("t OK"),
        "account rules reloaded: {ok}\n{}",
        r.serve.log()
    );
    assert!(
        r.imap_up
            .state
            .users
            .lock()
            .unwrap()
            .iter()
            .any(|u| u == SHARED)
    );
    pop_port
}

/// An invalid config: rejected with its reason, everything keeps serving.
async fn rejects_an_invalid_config(r: &mut Running, pop_port: u16) {
    r.reload("this is = not [valid toml\n", "new configuration rejected")
        .await;
    let log = r.serve.log();
    let rejected = log
        .lines()
        .find(|l| l.contains("new configuration rejected"))
        .unwrap();
    assert!(
        rejected.contains("mailgate.toml"),
        "the reason names the file: {rejected}"
    );
    assert_session_alive(&mut r.session, "n2").await;
    let mut again = binary::connect(r.imap_port).await;
    let ok = binary::imap_login(&mut again, LOCAL_PASSWORD).await;
    assert!(ok.starts_with("t OK"), "{ok}");
    let mut pop = binary::connect(pop_port).await;
    assert!(pop.line().await.starts_with("+OK"));
}

/// A valid config whose new listener cannot bind: not applied, old kept.
async fn keeps_the_old_config_when_a_listener_cannot_bind(r: &mut Running, pop_port: u16) {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let blocked = [
        binary::listener("imap", "imap", r.imap_port, r.imap_up.port),
        binary::listener("blocked", "imap", taken_port, r.imap_up.port),
    ];
    let config = r.config_text("blocked.test", &blocked);
    r.reload(&config, "could not be applied").await;
    let mut pop = binary::connect(pop_port).await;
    assert!(pop.line().await.starts_with("+OK"), "pop3 listener kept");
    assert_session_alive(&mut r.session, "n3").await;
}

async fn assert_session_alive(c: &mut Client, tag: &str) {
    c.send(&format!("{tag} NOOP\r\n")).await;
    let lines = c.until(&format!("{tag} ")).await;
    assert!(
        lines.last().unwrap().starts_with(&format!("{tag} OK")),
        "{lines:?}"
    );
}
