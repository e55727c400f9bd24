//! Enrolment from the browser through the device code flow against the
//! test identity provider, and self-service links: used once, then refused;
//! expired links refused (after a restart, which keeps the links).

use super::{ADMIN_PASSWORD, Browser, Gateway, attr_after, text_of};
use crate::hardening::binary::Serve;

const BOB: &str = "bob@example.test";
const CAROL: &str = "carol@example.test";

/// Follows an enrolment page at `path` until it is done; checks the
/// waiting page on the way. Returns the finished page's body.
async fn finish(b: &mut Browser, path: &str) -> String {
    let waiting = b.get(path).await;
    if !waiting.body.contains("id=\"enrolled\"") {
        assert!(
            waiting
                .body
                .contains("<meta http-equiv=\"refresh\" content=\"2\">"),
            "{}",
            waiting.body
        );
        assert!(text_of(&waiting.body, "id=\"user-code\">").is_some_and(|c| !c.is_empty()));
        assert!(attr_after(&waiting.body, "id=\"verification-uri\" href=\"").is_some());
        assert!(waiting.body.contains("<svg id=\"qr\""));
    }
    let done = b
        .get_until(path, |body| {
            body.contains("id=\"enrolled\"") || body.contains("id=\"error\"")
        })
        .await;
    assert!(done.body.contains("<p id=\"enrolled\">"), "{}", done.body);
    done.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_enrols_an_account_through_the_device_flow() {
    let gw = Gateway::start("console-enrol", "").await;
    gw.enrolled.idp.add_user(BOB);
    gw.enrolled.idp.set_default_user(BOB);
    gw.enrolled.idp.set_device_polls(1, 0);
    let mut b = gw.browser();
    assert_eq!(b.sign_in(ADMIN_PASSWORD).await.status, 303);
    let form = b.get("/enrol?account=bob%40example.test").await;
    assert!(
        form.body
            .contains("<form id=\"enrol\" method=\"post\" action=\"/enrol\">")
    );
    assert!(form.body.contains("value=\"bob@example.test\""));
    assert!(
        !form.body.contains("name=\"provider\""),
        "one provider: no choice"
    );
    let started = b
        .submit("/enrol", "/enrol", &[("account", BOB), ("password", "")])
        .await;
    assert_eq!(started.status, 303, "{}", started.body);
    assert!(
        started.location.starts_with("/enrol/"),
        "{}",
        started.location
    );
    let done = finish(&mut b, &started.location).await;
    let password = text_of(&done, "id=\"local-password\">").expect("a generated password");
    assert!(password.len() >= 16, "{password}");
    let again = b.get(&started.location).await;
    assert!(!again.body.contains("id=\"local-password\""));
    assert!(again.body.contains("already shown"));
    let accounts = b.get("/accounts").await;
    assert!(accounts.body.contains("data-account=\"bob@example.test\""));
    let events = std::fs::read_to_string(gw.enrolled.scratch.state().join("events.jsonl")).unwrap();
    assert!(
        events.contains("enrolled") && events.contains(BOB),
        "{events}"
    );
    assert!(!events.contains(&password), "no secret in the audit log");
    assert!(
        !events.contains(&gw.enrolled.access_token) && !events.contains(&gw.enrolled.refresh_token)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_service_link_is_used_once_and_an_expired_one_refused() {
    let gw = Gateway::start("console-links", "").await;
    gw.enrolled.idp.add_user(CAROL);
    gw.enrolled.idp.set_default_user(CAROL);
    gw.enrolled.idp.set_device_polls(1, 0);
    let mut admin = gw.browser();
    assert_eq!(admin.sign_in(ADMIN_PASSWORD).await.status, 303);
    let links = admin.get("/links").await;
    assert!(
        links
            .body
            .contains("<form id=\"new-link\" method=\"post\" action=\"/links\">")
    );
    assert!(links.body.contains("name=\"expires_minutes\" value=\"60\""));
    let made = admin
        .submit(
            "/links",
            "/links",
            &[("account", CAROL), ("expires_minutes", "60")],
        )
        .await;
    let url = text_of(&made.body, "<code id=\"link\">").expect("the new link");
    let path = url
        .strip_prefix(&admin.url(""))
        .expect("an absolute link")
        .to_owned();
    assert!(made.body.contains("<table id=\"links\">") && made.body.contains(CAROL));
    assert!(
        !admin.get("/links").await.body.contains(&path),
        "shown once"
    );

    let mut owner = Browser::new(gw.admin);
    let open = owner.get(&path).await;
    assert!(open.body.contains(&format!(
        "<form id=\"self-enrol\" method=\"post\" action=\"{path}\">"
    )));
    assert!(
        !open.body.contains("nav-accounts") && !open.body.contains("alice@"),
        "no other accounts"
    );
    let started = owner
        .post(&path, &[("password", "carol-own-pass-123")])
        .await;
    assert_eq!(
        (started.status, started.location.clone()),
        (303, format!("{path}/flow"))
    );
    // The same link again while its enrolment waits: never a second one.
    let twice = owner.post(&path, &[("password", "")]).await;
    assert_ne!(twice.status, 303, "{}", twice.body);
    assert!(
        twice.body.contains("already waiting for your sign-in")
            || twice.body.contains("already been used"),
        "{}",
        twice.body
    );
    let done = finish(&mut owner, &started.location).await;
    assert!(
        !done.contains("id=\"local-password\""),
        "the owner chose one"
    );
    let used = owner.get(&path).await;
    assert!(used.body.contains("id=\"error\"") && used.body.contains("already been used"));
    let again = owner.post(&path, &[("password", "")]).await;
    assert!(again.body.contains("already been used"));

    // Another link, expired while the gateway was down.
    let made = admin
        .submit("/links", "/links", &[("account", CAROL)])
        .await;
    let url = text_of(&made.body, "<code id=\"link\">").unwrap();
    let path = url.strip_prefix(&admin.url("")).unwrap().to_owned();
    let file = gw.enrolled.scratch.state().join("links.json");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(path.trim_start_matches("/self/")),
        "stored hashed"
    );
    let mut links: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(links.as_array().unwrap().len(), 2);
    for l in links.as_array_mut().unwrap() {
        l["expires"] = 1.into();
    }
    let Gateway {
        enrolled,
        serve,
        upstream: _up,
        ..
    } = gw;
    serve.stop().await;
    std::fs::write(&file, serde_json::to_vec(&links).unwrap()).unwrap();
    let serve = Serve::start(&enrolled.scratch);
    serve.wait_for("admin listener listening", 1).await;
    let page = owner.get(&path).await;
    assert!(
        page.body.contains("id=\"error\"") && page.body.contains("expired"),
        "{}",
        page.body
    );
}
