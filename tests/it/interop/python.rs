//! Python's standard library clients: `imaplib`, `poplib`, `smtplib`, each
//! with its plain login (LOGIN, USER/PASS, AUTH via `login()`), an explicit
//! SASL mechanism, and its STARTTLS call, over every local TLS mode.

use super::harness::{ALICE, BOB, DELIVERY_TIMEOUT, Env, MODES, PASSWORD, SEEDED, write};

const IMAPLIB: &str = r#"
import imaplib, ssl, sys
none, starttls, implicit, ca, user, pw, seeded = sys.argv[1:8]
expected = open(seeded, "rb").read()
ctx = ssl.create_default_context(cafile=ca)
def check(label, m):
    typ, data = m.select("INBOX")
    assert typ == "OK", (label, typ, data)
    typ, data = m.uid("FETCH", "1", "(BODY.PEEK[])")
    assert typ == "OK", (label, typ, data)
    print(label, "match" if data[0][1] == expected else "differs")
    m.logout()
m = imaplib.IMAP4("127.0.0.1", int(none), timeout=10)
print("login", m.login(user, pw)[0])
check("login", m)
m = imaplib.IMAP4("127.0.0.1", int(starttls), timeout=10)
print("starttls", m.starttls(ssl_context=ctx)[0])
print("plain", m.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (user, pw)).encode())[0])
check("plain", m)
answers = iter([user.encode(), pw.encode()])
m = imaplib.IMAP4_SSL("127.0.0.1", int(implicit), ssl_context=ctx, timeout=10)
print("sasl-login", m.authenticate("LOGIN", lambda _: next(answers))[0])
check("sasl-login", m)
m = imaplib.IMAP4_SSL("127.0.0.1", int(implicit), ssl_context=ctx, timeout=10)
try:
    m.login(user, "wrong-" + pw)
    print("wrong accepted")
except imaplib.IMAP4.error as e:
    print("wrong refused", e)
"#;

/// Seeds [`SEEDED`] into Alice's INBOX and writes it to a file the script
/// compares against; returns the file's path.
fn seeded_file(env: &Env) -> String {
    env.servers.seed_message(ALICE, SEEDED).expect("seed");
    write(&env.dir, "seeded.eml", SEEDED)
}

/// Runs `script` with the ports of `protocol`'s none, starttls and implicit
/// listeners, the CA, Alice's login and `last`; returns its output and the
/// output with the logs, for failure messages.
fn run_per_mode(env: &Env, script: &str, protocol: &str, last: &str) -> (String, String) {
    let ports = MODES.map(|m| env.port(&format!("{protocol}-{m}")).to_string());
    let out = env.python(
        script,
        &[
            &ports[0],
            &ports[1],
            &ports[2],
            &env.ca(),
            ALICE,
            PASSWORD,
            last,
        ],
    );
    let context = format!("{out}\n{}", env.logs());
    (out, context)
}

#[test]
fn python_imaplib_login_authenticate_and_starttls() {
    let env = Env::start();
    let (out, context) = run_per_mode(&env, IMAPLIB, "imap", &seeded_file(&env));
    for line in [
        "login OK",
        "login match",
        "starttls OK",
        "plain OK",
        "plain match",
        "sasl-login OK",
        "sasl-login match",
    ] {
        assert!(out.contains(line), "missing {line:?}:\n{context}");
    }
    assert!(out.contains("wrong refused"), "{context}");
    assert!(out.contains("AUTHENTICATIONFAILED"), "{context}");
}

const POPLIB: &str = r#"
import poplib, ssl, sys, base64
none, starttls, implicit, ca, user, pw, seeded = sys.argv[1:8]
expected = open(seeded, "rb").read()
ctx = ssl.create_default_context(cafile=ca)
b64 = lambda s: base64.b64encode(s.encode()).decode()
def check(label, p):
    count, _ = p.stat()
    _, lines, _ = p.retr(1)
    got = b"\r\n".join(lines) + b"\r\n"
    print(label, count, "match" if got == expected else "differs")
    p.quit()
p = poplib.POP3("127.0.0.1", int(none), timeout=10)
p.user(user)
print("userpass", p.pass_(pw).decode())
check("userpass", p)
p = poplib.POP3("127.0.0.1", int(starttls), timeout=10)
print("stls", p.stls(context=ctx).decode())
print("plain", p._shortcmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, pw))).decode())
check("plain", p)
p = poplib.POP3_SSL("127.0.0.1", int(implicit), context=ctx, timeout=10)
p._shortcmd("AUTH LOGIN")
p._shortcmd(b64(user))
print("sasl-login", p._shortcmd(b64(pw)).decode())
check("sasl-login", p)
"#;

#[test]
fn python_poplib_user_pass_auth_and_stls() {
    let env = Env::start();
    let (out, context) = run_per_mode(&env, POPLIB, "pop3", &seeded_file(&env));
    for label in ["userpass", "plain", "sasl-login"] {
        assert!(out.contains(&format!("{label} +OK")), "{label}:\n{context}");
        assert!(
            out.contains(&format!("{label} 1 match")),
            "{label}:\n{context}"
        );
    }
    assert!(out.contains("stls +OK"), "{context}");
}

const SMTPLIB: &str = r#"
import smtplib, ssl, sys
none, starttls, implicit, ca, user, pw, rcpt = sys.argv[1:8]
ctx = ssl.create_default_context(cafile=ca)
def send(label, s):
    msg = "From: %s\r\nTo: %s\r\nSubject: smtplib %s\r\n\r\nsent by smtplib %s\r\n" % (user, rcpt, label, label)
    print(label, "refused", s.sendmail(user, [rcpt], msg.encode()))
    s.quit()
s = smtplib.SMTP("127.0.0.1", int(none), timeout=10)
print("login", s.login(user, pw)[0])
send("login", s)
s = smtplib.SMTP("127.0.0.1", int(starttls), timeout=10)
s.ehlo("client.example.test")
print("starttls", s.starttls(context=ctx)[0])
s.ehlo("client.example.test")
s.user, s.password = user, pw
print("sasl-login", s.auth("LOGIN", s.auth_login, initial_response_ok=False)[0])
send("sasl-login", s)
s = smtplib.SMTP_SSL("127.0.0.1", int(implicit), context=ctx, timeout=10)
s.ehlo("client.example.test")
s.user, s.password = user, pw
print("plain", s.auth("PLAIN", s.auth_plain)[0])
send("plain", s)
"#;

#[test]
fn python_smtplib_login_auth_and_starttls_deliver() {
    let env = Env::start();
    let (out, context) = run_per_mode(&env, SMTPLIB, "smtp", BOB);
    assert!(out.contains("starttls 220"), "{context}");
    for label in ["login", "sasl-login", "plain"] {
        assert!(out.contains(&format!("{label} 235")), "{label}:\n{context}");
        assert!(
            out.contains(&format!("{label} refused {{}}")),
            "{label}:\n{context}"
        );
        let delivered = env.delivered(BOB, DELIVERY_TIMEOUT);
        let text = String::from_utf8_lossy(&delivered);
        assert!(
            text.contains(&format!("\n\nsent by smtplib {label}\n")),
            "{label}: wrong delivery:\n{text}"
        );
    }
}
