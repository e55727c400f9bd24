//! The browser harness itself, on a page that exists without the console
//! (`/healthz`): Chromium starts, loads a loopback page, reads and
//! screenshots it, and reaches nothing beyond loopback.

use crate::support::browser::Browser;
use crate::support::config::{ConfigBuilder, IdpUrls, Listener, Upstream, free_port};
use crate::support::mailgate::Serve;
use crate::support::scratch::Scratch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_reads_and_screenshots_a_loopback_page_and_nothing_else() {
    let scratch = Scratch::new("browser-harness");
    let (imap, admin) = (free_port(), free_port());
    let text = ConfigBuilder::new()
        .state_dir(&scratch.state())
        .provider_generic("test", "test-client", &IdpUrls::unused(), &["mail"], "")
        .listener(Listener::local(
            "imap",
            imap,
            Upstream::new(free_port(), "none"),
        ))
        .admin(&format!("bind = \"127.0.0.1:{admin}\""))
        .toml();
    let path = scratch.write(&text);
    let _serve = tokio::task::spawn_blocking(move || Serve::start(&path, &[imap, admin]))
        .await
        .unwrap()
        .unwrap();

    let b = Browser::open("harness", &format!("http://127.0.0.1:{admin}")).await;
    b.goto("/healthz").await;
    assert_eq!(b.body().await.trim(), "ok");
    let shot = b.screenshot("healthz").await;
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{}", shot.display());
    let phone = b.phone_screenshot("healthz-phone").await;
    assert!(std::fs::metadata(&phone).unwrap().len() > 0);

    // Every other host goes through a proxy address where nothing listens,
    // so an outside page (a device flow's verification link) never loads.
    let _ = b.client().goto("http://mailgate-outside.invalid/").await;
    assert!(!b.body().await.contains("ok"), "{}", b.body().await);
    b.close().await;
}
