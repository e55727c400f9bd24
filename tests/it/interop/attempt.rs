//! One login attempt per protocol with Python's standard library, reporting
//! the server's answer as one line: `OK ...` then a line proving the session
//! works, or the refusal (`NO ...`, `ERR ...`, `ERR <code> ...`).

use super::harness::Env;

const ATTEMPT: &str = r#"
import sys, imaplib, poplib, smtplib
proto, port, user, pw = sys.argv[1:5]
if proto == "imap":
    m = imaplib.IMAP4("127.0.0.1", int(port), timeout=25)
    try:
        print("OK", m.login(user, pw)[1][0].decode())
        print("SELECT", m.select("INBOX")[0])
        m.logout()
    except imaplib.IMAP4.error as e:
        print("NO", e)
elif proto == "pop3":
    p = poplib.POP3("127.0.0.1", int(port), timeout=25)
    try:
        p.user(user)
        print("OK", p.pass_(pw).decode())
        print("STAT", p.stat())
        p.quit()
    except poplib.error_proto as e:
        print("ERR", e)
else:
    s = smtplib.SMTP("127.0.0.1", int(port), timeout=25)
    s.ehlo("client.example.test")
    try:
        print("OK", s.login(user, pw)[0])
        print("NOOP", s.noop()[0])
        s.quit()
    except smtplib.SMTPResponseException as e:
        print("ERR", e.smtp_code, e.smtp_error.decode())
"#;

/// A login with `user`/`password` on the plain listener of `protocol`.
pub fn attempt(env: &Env, protocol: &str, user: &str, password: &str) -> String {
    attempt_port(
        env,
        protocol,
        env.port(&format!("{protocol}-none")),
        user,
        password,
    )
}

/// A login on the listener at `port`, which speaks `protocol` without TLS.
pub fn attempt_port(env: &Env, protocol: &str, port: u16, user: &str, password: &str) -> String {
    env.python(ATTEMPT, &[protocol, &port.to_string(), user, password])
}

/// Whether `answer` (from [`attempt`]) is a working session.
pub fn succeeded(answer: &str) -> bool {
    answer.starts_with("OK")
        && ["SELECT OK", "STAT (", "NOOP 250"]
            .iter()
            .any(|s| answer.contains(s))
}
