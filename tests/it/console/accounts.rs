//! The accounts page: one row per account with its state in words, a
//! locked-out account and its unlock, signing an account out, filters.

use super::{ADMIN_PASSWORD, Gateway};
use crate::hardening::binary::{self, LOCAL_PASSWORD, MAILBOX};

const ROW: &str = "<tr data-account=\"alice@example.test\">";

/// The text of cell `class` in the row that starts at `ROW` (inside the
/// state cell's badge).
fn cell(body: &str, class: &str) -> String {
    let row = &body[body.find(ROW).unwrap_or(0)..];
    let open = format!("class=\"{class}\">");
    let Some(start) = row.find(&open).map(|i| i + open.len()) else {
        return String::new();
    };
    let inner = row[start..]
        .strip_prefix("<span class=\"badge ")
        .and_then(|rest| Some(&rest[rest.find('>')? + 1..]))
        .unwrap_or(&row[start..]);
    inner.split('<').next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_show_the_account_lock_outs_unlock_and_sign_out() {
    let gw = Gateway::start("console-accounts", "").await;
    let mut b = gw.browser();
    assert_eq!(b.sign_in(ADMIN_PASSWORD).await.status, 303);

    // Wrong passwords from a mail client until the account is locked out
    // (before any success: a source that logged in is exempt).
    let mut locked = None;
    for _ in 0..8 {
        let mut c = binary::connect(gw.imap).await;
        let _ = binary::imap_login(&mut c, "wrong password").await;
        let page = b.get("/accounts").await;
        if cell(&page.body, "state") == "locked out" {
            locked = Some(page);
            break;
        }
    }
    let locked = locked.expect("the account shows as locked out");
    assert!(
        locked
            .body
            .contains("action=\"/accounts/alice%40example.test/unlock\"")
    );
    let unlock = b
        .submit("/accounts", "/accounts/alice%40example.test/unlock", &[])
        .await;
    assert_eq!(
        (unlock.status, unlock.location.as_str()),
        (303, "/accounts?flash=unlocked")
    );
    let after = b.get(&unlock.location).await;
    assert!(
        after
            .body
            .contains("<p class=\"flash\" id=\"flash\">The account is unlocked.")
    );
    assert_eq!(cell(&after.body, "state"), "active");

    // The source is locked out too for a moment: retry the right password.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let session = loop {
        let mut c = binary::connect(gw.imap).await;
        let ok = binary::imap_login(&mut c, LOCAL_PASSWORD).await;
        if ok.starts_with("t OK") {
            break c;
        }
        assert!(std::time::Instant::now() < deadline, "{ok}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    let page = b
        .get_until("/accounts", |body| cell(body, "sessions") == "1")
        .await;
    assert!(page.body.contains("<table id=\"accounts\">"));
    assert!(page.body.contains(ROW), "{}", page.body);
    assert_eq!(cell(&page.body, "mailbox"), MAILBOX);
    assert_eq!(cell(&page.body, "kind"), "delegated");
    assert_eq!(cell(&page.body, "provider"), "test");
    assert_eq!(cell(&page.body, "state"), "active");
    assert!(
        cell(&page.body, "expiry").starts_with("in "),
        "{}",
        page.body
    );
    assert!(cell(&page.body, "last-login").ends_with(" ago"));
    assert_eq!(cell(&page.body, "sessions"), "1");
    assert!(
        page.body
            .contains("class=\"reauthorise\" href=\"/enrol?account=alice%40example.test\"")
    );
    assert!(
        page.body
            .contains("action=\"/accounts/alice%40example.test/signout\"")
    );
    drop(session);

    let none = b.get("/accounts?q=nobody").await;
    assert!(!none.body.contains(ROW));
    let filtered = b.get("/accounts?state=needs+login").await;
    assert!(!filtered.body.contains(ROW));

    let out = b
        .submit("/accounts", "/accounts/alice%40example.test/signout", &[])
        .await;
    assert_eq!(out.location, "/accounts?flash=signed-out");
    let after = b.get(&out.location).await;
    assert!(after.body.contains("id=\"flash\""));
    assert!(!after.body.contains(ROW), "tokens removed");
    let events = b.get("/events").await.body;
    for what in [
        "unlocked",
        "locked out after repeated wrong passwords",
        "signed out (tokens removed)",
    ] {
        assert!(events.contains(what), "{what}: {events}");
    }
    assert!(
        events.contains("<tr class=\"event\">") && events.contains("class=\"from\">127.0.0.1<")
    );
}
