//! TEST-ONLY: headless Chromium driven over WebDriver, so tests can use the
//! web console as a person would (click, type, read, screenshot).
//!
//! Debian's `chromedriver` runs privately on a free 127.0.0.1 port, one per
//! test binary while any test holds a [`Browser`] (the last one to finish
//! stops it); each [`Browser`] is its own Chromium with a temporary profile.
//! Chromium is kept on loopback: every non-loopback request goes to a proxy
//! address where nothing listens, and its background services are off.
//! Everything started here is killed on drop, also when a test panics.
//!
//! Without `chromium` and `chromium-driver` the tests fail, naming
//! `scripts/install-test-deps.sh`: a console that was never looked at must
//! not pass as tested.

use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use super::scratch::Scratch;
use super::servers::{GroupChild, find_binary, free_ports, wait_until};

/// Upper bound for one browser step (a page load, an element to appear).
/// Chromium is slow on a loaded machine, so it is generous.
pub const STEP: Duration = Duration::from_secs(20);
/// Upper bound for chromedriver to accept connections.
const DRIVER_START: Duration = Duration::from_secs(20);
/// Start attempts when a freshly picked port was taken in the meantime.
const DRIVER_ATTEMPTS: usize = 3;
/// Starting Chromium and its session: seconds when the machine is idle,
/// much longer when the whole suite runs on two cores beside it.
const SESSION_START: Duration = Duration::from_secs(90);
/// Window sizes: a laptop and a phone (CSS pixels).
pub const DESKTOP: (u32, u32) = (1280, 900);
pub const PHONE: (u32, u32) = (390, 844);
/// How long a killed Chromium gets to disappear.
const KILL_WAIT: Duration = Duration::from_secs(3);
/// Tallest full-page screenshot, so a runaway page cannot make a huge PNG.
const MAX_SHOT_HEIGHT: u32 = 4000;

pub const BROWSER_HINT: &str = "the browser tests need Debian's `chromium` and \
     `chromium-driver`: run `sudo scripts/install-test-deps.sh`";

/// The shared chromedriver; see [`driver`].
struct Driver {
    port: u16,
    _child: GroupChild,
    _dir: Scratch,
}

static DRIVER: Mutex<Weak<Driver>> = Mutex::new(Weak::new());

/// The running chromedriver, started if no test holds one.
fn driver() -> Result<Arc<Driver>, String> {
    let mut shared = DRIVER.lock().map_err(|e| e.to_string())?;
    if let Some(driver) = shared.upgrade() {
        return Ok(driver);
    }
    let binary = find_binary("chromedriver").map_err(|e| format!("{e}\n{BROWSER_HINT}"))?;
    let mut last = String::new();
    for _ in 0..DRIVER_ATTEMPTS {
        match start_driver(&binary) {
            Ok(driver) => {
                let driver = Arc::new(driver);
                *shared = Arc::downgrade(&driver);
                return Ok(driver);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn start_driver(binary: &Path) -> Result<Driver, String> {
    let dir = Scratch::new("chromedriver");
    let port = free_ports(1)?[0];
    let log = dir.dir.join("chromedriver.log");
    let mut command = std::process::Command::new(binary);
    command
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .arg(format!(
            "--log-path={}",
            dir.dir.join("verbose.log").display()
        ))
        // Chromium's own temporary files land here and go with the driver.
        .env("TMPDIR", &dir.dir);
    let mut child = GroupChild::spawn("chromedriver", command, &log)?;
    wait_until(&mut child, DRIVER_START, || {
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
    })
    .map_err(|e| {
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        format!("chromedriver: {e}\n{output}\n{BROWSER_HINT}")
    })?;
    Ok(Driver {
        port,
        _child: child,
        _dir: dir,
    })
}

/// Where a test's screenshots go: `target/console-screenshots/<test>/`.
pub fn screenshot_dir(test: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or(Path::new("target"));
    target.join("console-screenshots").join(test)
}

/// The Chromium switches: headless, no sandbox (tests run as root in CI),
/// its own profile, and nothing but loopback reachable.
fn chromium_args(profile: &Path) -> Vec<String> {
    let (w, h) = DESKTOP;
    [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-domain-reliability",
        "--no-pings",
        "--hide-scrollbars",
        "--proxy-server=http://127.0.0.1:9",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([
        format!("--user-data-dir={}", profile.display()),
        format!("--window-size={w},{h}"),
    ])
    .collect()
}

/// One headless Chromium with its own profile, at `base` (the console's
/// `http://127.0.0.1:PORT`).
pub struct Browser {
    client: Option<Client>,
    base: String,
    shots: PathBuf,
    profile: Scratch,
    _driver: Arc<Driver>,
}

impl Browser {
    /// A fresh browser for `test` (names its screenshot directory); panics
    /// with the install hint when Chromium or its driver is missing.
    pub async fn open(test: &str, base: &str) -> Browser {
        let driver = tokio::task::spawn_blocking(driver)
            .await
            .expect("driver start task")
            .unwrap_or_else(|e| panic!("{e}"));
        let profile = Scratch::new("chromium-profile");
        let chromium = find_binary("chromium").unwrap_or_else(|e| panic!("{e}\n{BROWSER_HINT}"));
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium, "args": chromium_args(&profile.dir) }),
        );
        let url = format!("http://127.0.0.1:{}", driver.port);
        let connect = async {
            ClientBuilder::rustls()
                .expect("rustls connector")
                .capabilities(caps)
                .connect(&url)
                .await
        };
        let client = tokio::time::timeout(SESSION_START, connect)
            .await
            .unwrap_or_else(|_| {
                panic!("no Chromium session within {SESSION_START:?}\n{BROWSER_HINT}")
            })
            .unwrap_or_else(|e| panic!("Chromium session: {e}\n{BROWSER_HINT}"));
        let shots = screenshot_dir(test);
        std::fs::create_dir_all(&shots).expect("screenshot directory");
        Browser {
            client: Some(client),
            base: base.trim_end_matches('/').to_owned(),
            shots,
            profile,
            _driver: driver,
        }
    }

    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("browser is open")
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Loads `path` (relative to the console) and waits for it.
    pub async fn goto(&self, path: &str) {
        let url = self.url(path);
        step(&format!("load {url}"), self.client().goto(&url)).await;
    }

    /// The path (and query) of the page shown now.
    pub async fn path(&self) -> String {
        let url = step("current url", self.client().current_url()).await;
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The element matching `css`, waiting for it at most [`STEP`].
    pub async fn find(&self, css: &str) -> Element {
        let wait = self
            .client()
            .wait()
            .at_most(STEP)
            .for_element(Locator::Css(css));
        match wait.await {
            Ok(element) => element,
            Err(e) => panic!(
                "{css}: {e}\non {}\n{}",
                self.path().await,
                self.body().await
            ),
        }
    }

    /// Every element matching `css` now (no waiting).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        step(css, self.client().find_all(Locator::Css(css))).await
    }

    /// Whether something matches `css` now (no waiting).
    pub async fn exists(&self, css: &str) -> bool {
        !self.find_all(css).await.is_empty()
    }

    /// The visible text of the element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        step(css, element.text()).await
    }

    /// The page's visible text, for failure messages and negative checks.
    pub async fn body(&self) -> String {
        let Ok(body) = self.client().find(Locator::Css("body")).await else {
            return String::from("(no body)");
        };
        body.text().await.unwrap_or_default()
    }

    /// Types `value` into the field matching `css` (cleared first).
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        step(css, field.clear()).await;
        step(css, field.send_keys(value)).await;
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        step(css, element.click()).await;
    }

    /// Runs `script` in the page with `args` (`arguments[0]`, ...).
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        step(script, self.client().execute(script, args)).await
    }

    /// Waits at most [`STEP`] until the page's path starts with `prefix`.
    pub async fn wait_for_path(&self, prefix: &str) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let path = self.path().await;
            if path.starts_with(prefix) {
                return path;
            }
            assert!(
                Instant::now() < deadline,
                "still on {path}, expected {prefix}\n{}",
                self.body().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A full-page screenshot at desktop width: `<dir>/<page>.png`.
    pub async fn screenshot(&self, page: &str) -> PathBuf {
        self.screenshot_at(page, DESKTOP.0).await
    }

    /// The same at phone width.
    pub async fn phone_screenshot(&self, page: &str) -> PathBuf {
        self.screenshot_at(page, PHONE.0).await
    }

    /// Resizes to `width` and the page's height (at least the window's,
    /// at most [`MAX_SHOT_HEIGHT`]), saves the PNG, restores the window.
    async fn screenshot_at(&self, page: &str, width: u32) -> PathBuf {
        let min_height = if width == PHONE.0 { PHONE.1 } else { DESKTOP.1 };
        let client = self.client();
        step("resize", client.set_window_size(width, min_height)).await;
        // The window's size includes the browser's own frame, even headless.
        let frame = self
            .js_u32("return window.outerHeight - window.innerHeight;")
            .await;
        let content = self
            .js_u32("return document.documentElement.scrollHeight;")
            .await;
        let height = content.clamp(min_height, MAX_SHOT_HEIGHT) + frame;
        step("resize", client.set_window_size(width, height)).await;
        let png = step("screenshot", client.screenshot()).await;
        step(
            "resize",
            client.set_window_size(DESKTOP.0, DESKTOP.1 + frame),
        )
        .await;
        let path = self.shots.join(format!("{page}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        println!("screenshot: {}", path.display());
        path
    }

    /// A script's numeric answer (0 when it is none).
    async fn js_u32(&self, script: &str) -> u32 {
        let value = self.execute(script, vec![]).await;
        value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0)
    }

    /// Ends the WebDriver session (Chromium exits); [`Drop`] does the rest.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = tokio::time::timeout(STEP, client.close()).await;
        }
    }
}

impl Drop for Browser {
    /// A session that was not closed (a failing test) leaves Chromium
    /// running: kill the processes of this browser's own profile.
    fn drop(&mut self) {
        let needle = format!("--user-data-dir={}", self.profile.dir.display());
        for pid in processes_with_arg(&needle) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        // Gone before the profile is removed, or a dying process writes
        // into it again.
        let deadline = Instant::now() + KILL_WAIT;
        while !processes_with_arg(&needle).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Pids whose command line has exactly the argument `arg`.
fn processes_with_arg(arg: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
        })
        .collect()
}

/// Awaits one WebDriver command at most [`STEP`]; panics naming `what`.
async fn step<T, E: std::fmt::Display>(
    what: &str,
    command: impl std::future::Future<Output = Result<T, E>>,
) -> T {
    match tokio::time::timeout(STEP, command).await {
        Ok(Ok(value)) => value,
        Ok(Err(e)) => panic!("{what}: {e}"),
        Err(_) => panic!("{what}: no answer within {STEP:?}"),
    }
}
