//! Legacy TLS (feature `legacy-tls`): a client restricted to TLS 1.0 with the
//! CBC-SHA suites old .NET, Mono and Java clients offer (Python's `ssl` on
//! the system OpenSSL, driving `imaplib`, `poplib` and `smtplib`) does real
//! jobs over STARTTLS and implicit TLS through listeners with
//! `tls_min_version = "1.0"`, is refused with a handshake failure on
//! listeners without it, and a modern client on an opted-in listener still
//! negotiates TLS 1.3. Listeners use the certificates mailgate generates:
//! RSA for the legacy ones.

use super::harness::{ALICE, BOB, DELIVERY_TIMEOUT, Env, Options, PASSWORD, SEEDED, write};

const OPT_IN: &str = "tls_min_version = \"1.0\"";

/// Shared by the scripts: a TLS 1.0-only context with the legacy suites, and
/// one job per protocol (fetch, retrieve, send) over a connected client.
const COMMON: &str = r#"
import imaplib, poplib, smtplib, ssl, sys
def legacy(ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("AES128-SHA:ECDHE-RSA-AES128-SHA:@SECLEVEL=0")
    return ctx
def modern(ca):
    return ssl.create_default_context(cafile=ca)
def tls(label, sock):
    print(label, "tls", sock.version(), sock.cipher()[0])
def imap_job(label, m, user, pw, expected):
    tls(label, m.sock)
    print(label, "login", m.login(user, pw)[0])
    typ, data = m.select("INBOX")
    typ, data = m.uid("FETCH", "1", "(BODY.PEEK[])")
    print(label, "fetch", "match" if typ == "OK" and data[0][1] == expected else ("differs", typ, data))
    m.logout()
def pop_job(label, p, user, pw, expected):
    tls(label, p.sock)
    p.user(user)
    print(label, "pass", p.pass_(pw).decode().split()[0])
    _, lines, _ = p.retr(1)
    print(label, "retr", "match" if b"\r\n".join(lines) + b"\r\n" == expected else "differs")
    p.quit()
def smtp_job(label, s, user, pw, rcpt):
    tls(label, s.sock)
    s.ehlo("legacy.example.test")
    print(label, "login", s.login(user, pw)[0])
    msg = "From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nsent over %s\r\n" % (user, rcpt, label, label)
    print(label, "refused", s.sendmail(user, [rcpt], msg.encode()))
    s.quit()
"#;

const JOBS: &str = r#"
ist, iim, pst, pim, sst, sim, ca, user, pw, rcpt, seeded = sys.argv[1:12]
expected = open(seeded, "rb").read()
ctx = legacy(ca)
m = imaplib.IMAP4("127.0.0.1", int(ist), timeout=10)
m.starttls(ssl_context=ctx)
imap_job("imap-starttls", m, user, pw, expected)
imap_job("imap-implicit", imaplib.IMAP4_SSL("127.0.0.1", int(iim), ssl_context=ctx, timeout=10), user, pw, expected)
p = poplib.POP3("127.0.0.1", int(pst), timeout=10)
p.stls(context=ctx)
pop_job("pop3-starttls", p, user, pw, expected)
pop_job("pop3-implicit", poplib.POP3_SSL("127.0.0.1", int(pim), context=ctx, timeout=10), user, pw, expected)
s = smtplib.SMTP("127.0.0.1", int(sst), timeout=10)
s.starttls(context=ctx)
smtp_job("smtp-starttls", s, user, pw, rcpt)
smtp_job("smtp-implicit", smtplib.SMTP_SSL("127.0.0.1", int(sim), context=ctx, timeout=10), user, pw, rcpt)
"#;

const TLS_LISTENERS: [&str; 6] = [
    "imap-starttls",
    "imap-implicit",
    "pop3-starttls",
    "pop3-implicit",
    "smtp-starttls",
    "smtp-implicit",
];

#[test]
fn tls10_client_fetches_retrieves_and_sends_through_opted_in_listeners() {
    let env = Env::start_with(Options {
        generated_cert: true,
        listener_settings: TLS_LISTENERS.iter().map(|l| (*l, OPT_IN)).collect(),
        ..Options::default()
    });
    env.servers.seed_message(ALICE, SEEDED).expect("seed");
    let seeded = write(&env.dir, "seeded.eml", SEEDED);
    let ports = TLS_LISTENERS.map(|l| env.port(l).to_string());
    let mut args: Vec<&str> = ports.iter().map(String::as_str).collect();
    let ca = env.generated_cert("legacy-cert.pem");
    args.extend([ca.as_str(), ALICE, PASSWORD, BOB, &seeded]);
    let out = env.python(&format!("{COMMON}{JOBS}"), &args);
    let context = format!("{out}\n{}", env.logs());
    for label in TLS_LISTENERS {
        assert!(
            out.contains(&format!("{label} tls TLSv1 ECDHE-RSA-AES128-SHA")),
            "{label} did not negotiate TLS 1.0:\n{context}"
        );
    }
    for line in [
        "imap-starttls login OK",
        "imap-starttls fetch match",
        "imap-implicit login OK",
        "imap-implicit fetch match",
        "pop3-starttls pass +OK",
        "pop3-starttls retr match",
        "pop3-implicit pass +OK",
        "pop3-implicit retr match",
        "smtp-starttls login 235",
        "smtp-starttls refused {}",
        "smtp-implicit login 235",
        "smtp-implicit refused {}",
    ] {
        assert!(out.contains(line), "missing {line:?}:\n{context}");
    }
    for _ in 0..2 {
        let delivered = env.delivered(BOB, DELIVERY_TIMEOUT);
        let text = String::from_utf8_lossy(&delivered);
        assert!(
            text.contains("\n\nsent over smtp-starttls\n")
                || text.contains("\n\nsent over smtp-implicit\n"),
            "wrong delivery:\n{text}"
        );
    }
    let logs = env.logs();
    assert!(
        logs.contains("accepts legacy TLS 1.0"),
        "startup warning:\n{logs}"
    );
    let negotiated = logs.matches("client negotiated legacy TLS").count();
    assert_eq!(negotiated, 6, "one logged legacy session each:\n{logs}");
    assert!(
        logs.contains("tls_version=\"TLSv1\" cipher=\"ECDHE-RSA-AES128-SHA\" legacy_sessions=1"),
        "version, suite and count are logged:\n{logs}"
    );
}

const REFUSED_AND_MODERN: &str = r#"
ist, pim, sim, iim, sst, plain_ca, legacy_ca, user, pw, rcpt, seeded = sys.argv[1:12]
expected = open(seeded, "rb").read()
ctx = legacy(plain_ca)
def refused(label, connect):
    try:
        connect()
        print(label, "accepted")
    except ssl.SSLError as e:
        print(label, "refused", e.reason)
refused("imap-starttls", lambda: imaplib.IMAP4("127.0.0.1", int(ist), timeout=10).starttls(ssl_context=ctx))
refused("pop3-implicit", lambda: poplib.POP3_SSL("127.0.0.1", int(pim), context=ctx, timeout=10))
refused("smtp-implicit", lambda: smtplib.SMTP_SSL("127.0.0.1", int(sim), context=ctx, timeout=10))
ctx = modern(legacy_ca)
imap_job("modern-imap-implicit", imaplib.IMAP4_SSL("127.0.0.1", int(iim), ssl_context=ctx, timeout=10), user, pw, expected)
s = smtplib.SMTP("127.0.0.1", int(sst), timeout=10)
s.starttls(context=ctx)
smtp_job("modern-smtp-starttls", s, user, pw, rcpt)
"#;

#[test]
fn without_opt_in_tls10_is_refused_and_modern_clients_get_tls13() {
    let env = Env::start_with(Options {
        generated_cert: true,
        listener_settings: vec![("imap-implicit", OPT_IN), ("smtp-starttls", OPT_IN)],
        ..Options::default()
    });
    env.servers.seed_message(ALICE, SEEDED).expect("seed");
    let seeded = write(&env.dir, "seeded.eml", SEEDED);
    let ports = [
        "imap-starttls",
        "pop3-implicit",
        "smtp-implicit",
        "imap-implicit",
        "smtp-starttls",
    ]
    .map(|l| env.port(l).to_string());
    let mut args: Vec<&str> = ports.iter().map(String::as_str).collect();
    let (plain_ca, legacy_ca) = (
        env.generated_cert("cert.pem"),
        env.generated_cert("legacy-cert.pem"),
    );
    args.extend([
        plain_ca.as_str(),
        legacy_ca.as_str(),
        ALICE,
        PASSWORD,
        BOB,
        &seeded,
    ]);
    let out = env.python(&format!("{COMMON}{REFUSED_AND_MODERN}"), &args);
    let context = format!("{out}\n{}", env.logs());
    for label in ["imap-starttls", "pop3-implicit", "smtp-implicit"] {
        assert!(
            out.contains(&format!("{label} refused SSLV3_ALERT_HANDSHAKE_FAILURE")),
            "{label} should refuse TLS 1.0:\n{context}"
        );
    }
    for line in [
        "modern-imap-implicit tls TLSv1.3",
        "modern-imap-implicit login OK",
        "modern-imap-implicit fetch match",
        "modern-smtp-starttls tls TLSv1.3",
        "modern-smtp-starttls login 235",
        "modern-smtp-starttls refused {}",
    ] {
        assert!(out.contains(line), "missing {line:?}:\n{context}");
    }
    let delivered = env.delivered(BOB, DELIVERY_TIMEOUT);
    assert!(
        String::from_utf8_lossy(&delivered).contains("\n\nsent over modern-smtp-starttls\n"),
        "{context}"
    );
    let logs = env.logs();
    assert_eq!(
        logs.matches("the client offers only TLS 1.0/1.1").count(),
        3,
        "each refusal says why:\n{logs}"
    );
    assert!(
        !logs.contains("client negotiated legacy TLS"),
        "modern clients are not counted:\n{logs}"
    );
}
