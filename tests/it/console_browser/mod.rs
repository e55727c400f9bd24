//! The web console in a real browser (headless Chromium over WebDriver,
//! `support/browser.rs`). Every page visited is screenshotted under
//! `target/console-screenshots/<test>/`.

mod harness;
