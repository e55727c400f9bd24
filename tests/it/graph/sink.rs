//! What `GraphSink` sends, checked where it lands.

use std::time::Duration;

use crate::support::idp::graph::GraphFault;

use super::*;

fn text_message(from: &str, to: &str, cc: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nCc: {cc}\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@example.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Gr\u{fc}\u{df}e aus K\u{f6}ln\r\n"
    )
    .into_bytes()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn delivers_to_exactly_the_envelope() {
    let world = World::start();
    let sink = world.sink(ALICE, &world.graph_token(ALICE), &[ALICE]);
    // Bob is in To; Carol only in the envelope (Bcc); the Cc address is
    // header-only and must not be sent to.
    let content = text_message(ALICE, BOB, SHARED, "exact");
    send(&sink, message(ALICE, &[BOB, CAROL], content)).expect("sent");

    let bob = world.fetch(BOB, "INBOX");
    assert_eq!(bob.len(), 1, "{}", world.servers.logs());
    assert!(contains(&bob[0], "Gr\u{fc}\u{df}e aus K\u{f6}ln"));
    assert!(!contains(&bob[0], CAROL), "Bcc recipient visible to Bob");
    assert!(!contains(&bob[0], SHARED), "header-only address kept");
    assert_eq!(world.fetch(CAROL, "INBOX").len(), 1, "Bcc-only recipient");
    assert!(
        world.fetch(SHARED, "INBOX").is_empty(),
        "header-only delivered"
    );
    let sent = world.fetch(ALICE, "Sent");
    assert_eq!(sent.len(), 1);
    assert!(contains(&sent[0], "Bcc: <carol@example.test>"));
}

#[test]
fn ten_megabytes_go_through_an_upload_session_unchanged() {
    let world = World::start();
    let sink = world.sink(ALICE, &world.graph_token(ALICE), &[ALICE]);
    let attachment: Vec<u8> = (0..10 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let encoded: String = STANDARD
        .encode(&attachment)
        .as_bytes()
        .chunks(76)
        .map(|l| format!("{}\r\n", std::str::from_utf8(l).unwrap()))
        .collect();
    let content = format!(
        "From: {ALICE}\r\nTo: {BOB}\r\nSubject: big\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n\
         --XX\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
         --XX\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n\
         Content-Disposition: attachment; filename=\"data.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{encoded}--XX--\r\n"
    );
    send(&sink, message(ALICE, &[BOB], content)).expect("sent");

    let bob = world.fetch(BOB, "INBOX");
    assert_eq!(bob.len(), 1);
    let delivered = String::from_utf8_lossy(&bob[0]).replace("\r\n", "\n");
    let at = delivered
        .find("filename=\"data.bin\"")
        .expect("attachment part");
    let body_start = at + delivered[at..].find("\n\n").unwrap() + 2;
    let body_end = body_start + delivered[body_start..].find("--XX").unwrap();
    let b64: String = delivered[body_start..body_end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    assert!(STANDARD.decode(b64).unwrap() == attachment, "bytes differ");
    assert!(world.idp.graph_requests() >= 5, "not the upload path");
}

#[test]
fn over_the_limit_is_refused_with_552() {
    let world = World::start();
    let sink = world.sink(ALICE, &world.graph_token(ALICE), &[ALICE]);
    let content = vec![b'a'; 40 * 1024 * 1024];
    let refused = send(&sink, message(ALICE, &[BOB], content)).unwrap_err();
    assert_eq!(refused.code, 552);
    assert!(
        refused.text.contains(&DEFAULT_MAX_MESSAGE.to_string()),
        "{refused:?}"
    );
    assert_eq!(world.idp.graph_requests(), 0);
}

#[test]
fn throttling_and_refusals_mean_what_graph_meant() {
    let world = World::start();
    let sink = world.sink(ALICE, &world.graph_token(ALICE), &[ALICE, SHARED]);
    let fault = |status, retry_after, code: &str| GraphFault::Status {
        status,
        retry_after,
        code: code.into(),
        message: "injected".into(),
    };
    world.idp.graph_fail_next(vec![
        fault(429, Some(30), "ApplicationThrottled"),
        fault(503, None, "ServiceUnavailable"),
        fault(400, None, "ErrorInvalidRecipients"),
    ]);
    let m = || message(ALICE, &[BOB], text_message(ALICE, BOB, BOB, "t"));
    let r = send(&sink, m()).unwrap_err();
    assert_eq!(
        (r.code, r.text.contains("retry in 30 s")),
        (451, true),
        "{r:?}"
    );
    assert!(r.text.starts_with("4.7.0"));
    assert_eq!(send(&sink, m()).unwrap_err().code, 451);
    let r = send(&sink, m()).unwrap_err();
    assert_eq!(r.code, 554);
    assert!(r.text.contains("ErrorInvalidRecipients: injected"), "{r:?}");

    // MAIL FROM outside the allowed senders: refused before any data.
    let r = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(sink.check_sender("boss@example.test"))
        .unwrap_err();
    assert_eq!(r.code, 550);
    assert!(r.text.starts_with("5.7.60"), "{r:?}");
    // Allowed by mailgate's rules but the provider has no send-as grant.
    let r = send(
        &sink,
        message(SHARED, &[BOB], text_message(SHARED, BOB, BOB, "s")),
    )
    .unwrap_err();
    assert_eq!(r.code, 550);
    assert!(r.text.contains("ErrorSendAsDenied"), "{r:?}");
    world.idp.grant_send_as(SHARED, ALICE);
    send(
        &sink,
        message(SHARED, &[BOB], text_message(SHARED, BOB, BOB, "s2")),
    )
    .expect("send-as");
    assert!(world.idp.graph_sent().len() == 1);
}

#[test]
fn an_outlook_token_is_refused_and_one_refresh_fixes_it() {
    let world = World::start();
    let outlook = world.idp.mint(ALICE).access_token;
    let m = || message(ALICE, &[BOB], text_message(ALICE, BOB, BOB, "r"));
    let stuck = world.sink(ALICE, &outlook, &[ALICE]);
    let r = send(&stuck, m()).unwrap_err();
    assert_eq!(r.code, 454, "{r:?}");
    let fresh = world.graph_token(ALICE);
    let sink = world.sink_refreshing(ALICE, &outlook, &[ALICE], Some(fresh));
    send(&sink, m()).expect("sent after one refresh");
    world
        .idp
        .graph_fail_next(vec![GraphFault::Delay(Duration::from_millis(10))]);
    send(&sink, m()).expect("the fresh token is kept");
    assert_eq!(world.idp.graph_sent().len(), 2);
}

#[test]
fn an_app_only_token_from_client_credentials_sends_through_graph() {
    let world = World::start();
    world.idp.set_client_secret("app-secret");
    world.idp.grant_app("@example.test");
    let graph = mailgate::config::GraphSettings::for_endpoint("https://graph.microsoft.com");
    let provider = mailgate::config::Provider {
        name: "test".into(),
        client_id: "client-1".into(),
        client_secret: Some("app-secret".into()),
        client_certificate: None,
        client_key: None,
        authorize_url: world.idp.authorize_url(),
        token_url: world.idp.token_url(),
        device_code_url: world.idp.device_code_url(),
        scopes: graph.scopes.clone(),
        app_scopes: graph.app_scopes.clone(),
        redirect_port: 0,
        refresh_margin: Duration::from_secs(900),
        keep_warm_interval: Duration::from_secs(86400),
        machine_key_wrap: false,
        graph,
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = {
        let _in = runtime.enter();
        mailgate::oauth::OAuthClient::new(&provider).unwrap()
    };
    let token = runtime
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(30), client.client_credentials_token()).await
        })
        .expect("in time")
        .expect("an app-only Graph token (.default)");
    let sink = world.sink(ALICE, token.access_token.expose(), &[ALICE]);
    let content = text_message(ALICE, BOB, SHARED, "app-only");
    send(&sink, message(ALICE, &[BOB], content)).expect("sent");
    assert_eq!(
        world.fetch(BOB, "INBOX").len(),
        1,
        "{}",
        world.servers.logs()
    );
}
