//! Redaction proven: full sessions of every protocol and login form, wrong
//! passwords and the refresh-once path included, logged at TRACE for every
//! target into a buffer; no password, token or XOAUTH2 string (nor their
//! base64 forms) may appear in it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use mailgate::proto::sasl::encode;

use crate::support::client::Client;
use crate::support::fake_upstream::{Proto, Verdict};
use crate::support::proxy::{PASSWORD, Proxy, Setup, TOKEN, USER, login_ok};

pub const WRONG: &str = "wrong-secret-guess-41";

#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Every form in which `secret` could leak: itself, and its base64 at each
/// of the three alignments it can have inside a longer base64 string.
pub fn forms(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_owned(), encode(secret.as_bytes())];
    for pad in 0..3 {
        let mut raw = vec![b'\0'; pad];
        raw.extend_from_slice(secret.as_bytes());
        let b64 = encode(&raw);
        // Drop the characters touched by the padding and the trailing group.
        let skip = if pad == 0 { 0 } else { 4 };
        let end = b64.len().saturating_sub(4);
        if end > skip + 8 {
            out.push(b64[skip..end].to_owned());
        }
    }
    out
}

pub fn assert_clean(log: &str, secrets: &[&str]) {
    for secret in secrets {
        for form in forms(secret) {
            assert!(!log.contains(&form), "log leaks {secret:?} as {form:?}");
        }
    }
}

async fn sessions(proto: Proto) {
    let g = Proxy::start(Setup::new(proto)).await;
    let plain = encode(format!("\0{USER}\0{PASSWORD}").as_bytes());
    let wrong = encode(format!("\0{USER}\0{WRONG}").as_bytes());
    let (user64, pass64) = (encode(USER.as_bytes()), encode(PASSWORD.as_bytes()));
    let mut c = g.client().await;
    login_ok(proto, &mut c).await;
    // The refresh-once path: the upstream refuses the first token.
    g.upstream.script(vec![Verdict::Refuse { challenge: true }]);
    let mut c = g.client().await;
    login_ok(proto, &mut c).await;
    let script: Vec<String> = match proto {
        Proto::Imap => vec![
            format!("a LOGIN {USER} {WRONG}\r\n"),
            format!("b AUTHENTICATE PLAIN {plain}\r\n"),
            format!("c LOGIN {USER} {{{}+}}\r\n{PASSWORD}\r\n", PASSWORD.len()),
            format!("d AUTHENTICATE PLAIN {wrong}\r\n"),
            format!("e AUTHENTICATE LOGIN\r\n{user64}\r\n{pass64}\r\n"),
        ],
        Proto::Pop3 => vec![
            format!("USER {USER}\r\nPASS {WRONG}\r\n"),
            format!("AUTH PLAIN {plain}\r\n"),
            format!("AUTH PLAIN {wrong}\r\n"),
            format!("AUTH LOGIN\r\n{user64}\r\n{pass64}\r\n"),
        ],
        Proto::Smtp => vec![
            format!("EHLO c\r\nAUTH PLAIN {wrong}\r\n"),
            format!("EHLO c\r\nAUTH PLAIN {plain}\r\n"),
            format!("EHLO c\r\nAUTH LOGIN {user64}\r\n{pass64}\r\n"),
            format!("EHLO c\r\nAUTH PLAIN\r\n{plain}\r\n"),
        ],
    };
    for commands in script {
        let mut c = g.client().await;
        c.send(&commands).await;
        c.send(match proto {
            Proto::Imap => "z LOGOUT\r\n",
            _ => "QUIT\r\n",
        })
        .await;
        let _ = read_all(&mut c).await;
    }
}

async fn read_all(c: &mut Client) -> Vec<String> {
    let mut lines = Vec::new();
    for _ in 0..50 {
        let l = c.line().await;
        if l.is_empty() {
            break;
        }
        lines.push(l);
    }
    lines
}

/// Runs `test` on a current-thread runtime with every log line up to
/// `level` captured, bounded by `limit`; returns what was logged.
pub fn with_logs<F: std::future::Future<Output = ()>>(
    level: tracing::Level,
    limit: std::time::Duration,
    test: impl FnOnce(Captured) -> F,
) -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(limit, test(captured.clone()))
            .await
            .expect("the test finished in time");
    });
    drop(runtime);
    captured
}

#[test]
fn trace_logs_of_full_sessions_hold_no_secret() {
    let limit = std::time::Duration::from_secs(240);
    let captured = with_logs(tracing::Level::TRACE, limit, |_| async {
        for proto in [Proto::Imap, Proto::Pop3, Proto::Smtp] {
            sessions(proto).await;
        }
    });
    let log = captured.text();
    assert!(log.contains("refreshing once"), "the refresh path ran");
    assert!(log.contains("wrong local password"), "failures were logged");
    assert!(
        log.contains(USER),
        "sessions were logged: {}",
        &log[..log.len().min(2000)]
    );
    let xoauth2 =
        mailgate::proto::sasl::encode_xoauth2("alice@example.test", &TOKEN.to_owned().into());
    let raw_xoauth2 = format!("user=alice@example.test\x01auth=Bearer {TOKEN}\x01\x01");
    assert_clean(
        &log,
        &[
            PASSWORD,
            WRONG,
            TOKEN,
            xoauth2.expose(),
            &raw_xoauth2,
            "auth=Bearer",
        ],
    );
    println!("{} bytes of TRACE log scanned", log.len());
}

/// IdP-issued tokens look like `at-<32 base64url>` / `rt-<32 base64url>`:
/// any such string in the output is a leak, whichever token it was.
fn idp_token_in(log: &str) -> Option<String> {
    let bytes = log.as_bytes();
    for (i, w) in bytes.windows(3).enumerate() {
        if w == b"at-" || w == b"rt-" {
            let tail: String = log[i + 3..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            if tail.len() >= 32 {
                return Some(format!("{}{tail}", &log[i..i + 3]));
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_at_trace_level_logs_no_secret() {
    use super::binary::{self, Enrolled, LOCAL_PASSWORD, MAILBOX, Serve};
    use crate::support::fake_upstream::{FakeUpstream, Mode};

    let upstream = FakeUpstream::start(Proto::Imap, Mode::Plain, None).await;
    let port = binary::free_port();
    let listeners = [binary::listener("imap", "imap", port, upstream.port)];
    let enrolled = Enrolled::new("redact-bin", "mailgate.test", &listeners).await;
    let (enrol_out, rt1, at1) = (
        enrolled.output.clone(),
        enrolled.refresh_token.clone(),
        enrolled.access_token.clone(),
    );
    let s = &enrolled.scratch;
    upstream.accept_token(&at1);

    let serve = Serve::start(s);
    let mut c = binary::connect(port).await;
    let ok = binary::imap_login(&mut c, LOCAL_PASSWORD).await;
    assert!(ok.starts_with("t OK"), "{ok}\n{}", serve.log());
    let mut c = binary::connect(port).await;
    let no = binary::imap_login(&mut c, "wrong-local-guess-17").await;
    assert!(no.starts_with("t NO"), "{no}");
    // Refresh-once: the upstream refuses the cached token, mailgate refreshes.
    upstream.script(vec![Verdict::Refuse { challenge: true }]);
    let mut c = binary::connect(port).await;
    let _ = binary::imap_login(&mut c, LOCAL_PASSWORD).await;
    serve.wait_for("refreshing once", 1).await;
    drop(c);
    let serve_log = serve.stop().await;
    let (rt2, at2) = binary::stored_tokens(s);

    let log = format!("{enrol_out}\n{serve_log}");
    assert!(log.contains("TRACE"), "trace level was on");
    let xoauth2 = mailgate::proto::sasl::encode_xoauth2(MAILBOX, &at1.clone().into());
    let mut secrets = vec![
        LOCAL_PASSWORD.to_owned(),
        "wrong-local-guess-17".to_owned(),
        rt1,
        at1,
        rt2,
        xoauth2.expose().clone(),
        format!("user={MAILBOX}\x01auth=Bearer"),
    ];
    secrets.extend(at2);
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_clean(&log, &refs);
    assert_eq!(idp_token_in(&log), None, "an IdP token in the output");
    println!("{} bytes of binary TRACE output scanned", log.len());
}
