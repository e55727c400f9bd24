//! curl against every listener: each login form curl offers for the
//! protocol, over each local TLS mode (plain, STARTTLS via `--ssl-reqd`,
//! implicit via the `s` scheme), trusting the test CA that issued
//! mailgate's certificate. `-v` shows which command really went out.

use super::harness::{ALICE, BOB, DELIVERY_TIMEOUT, Env, MODES, PASSWORD, SEEDED, write};

/// `(scheme, --ssl-reqd)` for a protocol and local TLS mode.
fn scheme(protocol: &str, mode: &str) -> (String, bool) {
    match mode {
        "implicit" => (format!("{protocol}s"), false),
        "starttls" => (protocol.to_owned(), true),
        _ => (protocol.to_owned(), false),
    }
}

/// curl (with `--login-options` when given) against listener `protocol-mode`.
fn curl(
    env: &Env,
    protocol: &str,
    mode: &str,
    path: &str,
    options: Option<&str>,
    extra: &[&str],
) -> (bool, Vec<u8>, String) {
    let (scheme, ssl_reqd) = scheme(protocol, mode);
    let url = format!(
        "{scheme}://127.0.0.1:{}{path}",
        env.port(&format!("{protocol}-{mode}"))
    );
    let ca = env.ca();
    let user = format!("{ALICE}:{PASSWORD}");
    let mut args = vec![
        "-sS",
        "-v",
        "--max-time",
        "20",
        "--cacert",
        &ca,
        "--user",
        &user,
    ];
    if let Some(options) = options {
        args.extend(["--login-options", options]);
    }
    if ssl_reqd {
        args.push("--ssl-reqd");
    }
    args.extend_from_slice(extra);
    args.push(&url);
    let out = env.run("curl", &args, None);
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts that curl's verbose transcript shows `command` going out and,
/// for the TLS modes, a TLS handshake with mailgate.
fn assert_transcript(env: &Env, mode: &str, verbose: &str, command: &str) {
    assert!(
        verbose.contains(&format!("> {command}")) || verbose.contains(&format!(" {command}")),
        "{command} not sent:\n{verbose}\n{}",
        env.logs()
    );
    assert_eq!(
        verbose.contains("SSL connection using"),
        mode != "none",
        "TLS use does not match mode {mode}:\n{verbose}"
    );
}

#[test]
fn curl_imap_fetches_a_seeded_message_with_every_login_form_and_tls_mode() {
    let env = Env::start();
    env.servers.seed_message(ALICE, SEEDED).expect("seed");
    let forms = [
        (None, "AUTHENTICATE "),
        (Some("AUTH=PLAIN"), "AUTHENTICATE PLAIN"),
        (Some("AUTH=LOGIN"), "AUTHENTICATE LOGIN"),
    ];
    for mode in MODES {
        for (options, command) in forms {
            let (ok, body, verbose) = curl(&env, "imap", mode, "/INBOX/;UID=1", options, &[]);
            let case = format!("imap {mode} {options:?}");
            assert!(ok, "{case}:\n{verbose}\n{}", env.logs());
            assert_eq!(body, SEEDED, "{case}: not byte for byte\n{}", env.logs());
            assert_transcript(&env, mode, &verbose, command);
        }
    }
}

#[test]
fn curl_pop3_retrieves_a_seeded_message_with_every_login_form_and_tls_mode() {
    let env = Env::start();
    env.servers.seed_message(ALICE, SEEDED).expect("seed");
    let forms = [
        (Some("AUTH=PLAIN"), "AUTH PLAIN"),
        (Some("AUTH=LOGIN"), "AUTH LOGIN"),
    ];
    for mode in MODES {
        for (options, command) in forms {
            let (ok, body, verbose) = curl(&env, "pop3", mode, "/1", options, &[]);
            let case = format!("pop3 {mode} {options:?}");
            assert!(ok, "{case}:\n{verbose}\n{}", env.logs());
            assert_eq!(body, SEEDED, "{case}: not byte for byte\n{}", env.logs());
            assert_transcript(&env, mode, &verbose, command);
        }
    }
}

#[test]
fn curl_smtp_sends_with_every_login_form_and_tls_mode() {
    let env = Env::start();
    let forms = [
        (Some("AUTH=PLAIN"), "AUTH PLAIN"),
        (Some("AUTH=LOGIN"), "AUTH LOGIN"),
    ];
    for mode in MODES {
        for (options, command) in forms {
            let case = format!("smtp {mode} {}", options.unwrap_or_default());
            let message = format!(
                "From: {ALICE}\r\nTo: {BOB}\r\nSubject: curl {case}\r\n\r\nsent by curl, {case}\r\n"
            );
            let file = write(&env.dir, "curl-message.eml", message.as_bytes());
            let extra = [
                "--mail-from",
                ALICE,
                "--mail-rcpt",
                BOB,
                "--upload-file",
                &file,
            ];
            let (ok, _, verbose) = curl(&env, "smtp", mode, "", options, &extra);
            assert!(ok, "{case}:\n{verbose}\n{}", env.logs());
            assert_transcript(&env, mode, &verbose, command);
            let delivered = env.delivered(BOB, DELIVERY_TIMEOUT);
            let text = String::from_utf8_lossy(&delivered);
            assert!(
                text.contains(&format!("Subject: curl {case}\n"))
                    && text.contains(&format!("\n\nsent by curl, {case}\n")),
                "{case}: wrong delivery:\n{text}"
            );
        }
    }
}
