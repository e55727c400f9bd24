//! TLS 1.3 session tickets and clients with a threaded reader. imaplib2
//! (offlineimap's IMAP library) can stall right after STARTTLS when the
//! server sends NewSessionTicket messages after the handshake: it sits on
//! the ticket bytes and never sees the answer to its next command. Local
//! listeners send no TLS 1.3 tickets unless `tls13_tickets = true`.
//!
//! Three checks: Python's `ssl` reports whether a ticket arrived (none on
//! default listeners, some where a listener asks); imaplib2 does STARTTLS
//! then CAPABILITY many times in a row, each bounded (with tickets turned
//! back on, a round stalled within the first few in every trial); and real
//! offlineimap syncs run one after another over STARTTLS, each finding the
//! seeded message.

use std::path::Path;

use super::harness::{ALICE, Env, Options, PASSWORD, SEEDED};

/// offlineimap syncs in a row.
const SYNCS: usize = 8;
/// imaplib2 STARTTLS + CAPABILITY rounds; even at a one-in-ten stall rate,
/// 40 clean rounds by chance happen less than twice in a hundred runs.
const ROUNDS: &str = "40";
/// Debian's Python, which has the `python3-imaplib2` package.
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

fn config(dir: &Path, port: u16, ca: &str) -> String {
    format!(
        "[general]\naccounts = test\nmetadata = {meta}\n\n\
         [Account test]\nlocalrepository = local\nremoterepository = remote\n\n\
         [Repository local]\ntype = Maildir\nlocalfolders = {mail}\n\n\
         [Repository remote]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = {port}\n\
         remoteuser = {ALICE}\nremotepass = {PASSWORD}\nssl = no\nstarttls = yes\n\
         sslcacertfile = {ca}\nfolderfilter = lambda folder: folder == 'INBOX'\n",
        meta = dir.join("meta").display(),
        mail = dir.join("mail").display(),
    )
}

/// One fresh sync of Alice's INBOX through `listener` into `dir`; returns
/// the message found in the local maildir.
fn sync(env: &Env, listener: &str, ca: &str, round: usize) -> Vec<u8> {
    let dir = env.dir.join(format!("offlineimap-{listener}-{round}"));
    std::fs::create_dir_all(&dir).expect("offlineimap dir");
    let rc = dir.join("offlineimaprc");
    std::fs::write(&rc, config(&dir, env.port(listener), ca)).expect("offlineimaprc");
    let rc = rc.display().to_string();
    let out = env.run("offlineimap", &["-c", &rc, "-o", "-u", "basic"], None);
    let text = format!(
        "{listener} sync {round}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}\n{}", env.logs());
    let messages: Vec<_> = ["new", "cur"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(dir.join("mail/INBOX").join(sub)).ok())
        .flatten()
        .flatten()
        .collect();
    assert_eq!(messages.len(), 1, "{text}\n{}", env.logs());
    std::fs::read(messages[0].path()).expect("synced message")
}

fn check_syncs(env: &Env, listener: &str, ca: &str) {
    // A maildir stores lines with LF endings.
    let expected = String::from_utf8_lossy(SEEDED).replace("\r\n", "\n");
    for round in 0..SYNCS {
        let message = sync(env, listener, ca, round);
        let message = String::from_utf8_lossy(&message).replace("\r\n", "\n");
        assert!(
            message.contains(&expected),
            "{listener} sync {round}: wrong message:\n{message}"
        );
    }
}

const TICKETS: &str = r#"
import imaplib, poplib, ssl, sys
ca, imap_starttls, imap_implicit, pop3_implicit = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
def report(label, sock):
    # Tickets arrive after the handshake; a read has consumed them by now.
    print(label, sock.version(), "ticket" if sock.session.has_ticket else "no-ticket")
m = imaplib.IMAP4("127.0.0.1", int(imap_starttls), timeout=10)
m.starttls(ssl_context=ctx)
m.capability()
report("imap-starttls", m.sock)
m = imaplib.IMAP4_SSL("127.0.0.1", int(imap_implicit), ssl_context=ctx, timeout=10)
m.capability()
report("imap-implicit", m.sock)
p = poplib.POP3_SSL("127.0.0.1", int(pop3_implicit), context=ctx, timeout=10)
p.capa()
report("pop3-implicit", p.sock)
"#;

const IMAPLIB2: &str = r#"
import imaplib2, sys
port, ca, rounds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for i in range(rounds):
    m = imaplib2.IMAP4("127.0.0.1", port, timeout=5)
    try:
        m.starttls(ca_certs=ca)
        m.capability()
    except Exception as e:
        print("stalled in round", i, e)
        sys.exit(1)
    m.logout()
print("rounds", rounds, "ok")
"#;

#[test]
fn local_listeners_send_tls13_tickets_only_when_asked() {
    let env = Env::start_with(Options {
        listener_settings: vec![("pop3-implicit", "tls13_tickets = true")],
        ..Options::default()
    });
    let ports =
        ["imap-starttls", "imap-implicit", "pop3-implicit"].map(|l| env.port(l).to_string());
    let out = env.python(TICKETS, &[&env.ca(), &ports[0], &ports[1], &ports[2]]);
    for line in [
        "imap-starttls TLSv1.3 no-ticket",
        "imap-implicit TLSv1.3 no-ticket",
        "pop3-implicit TLSv1.3 ticket",
    ] {
        assert!(
            out.contains(line),
            "missing {line:?}:\n{out}\n{}",
            env.logs()
        );
    }
}

#[test]
fn imaplib2_and_offlineimap_survive_starttls_many_times_in_a_row() {
    let env = Env::start_with(Options::default());
    env.servers.seed_message(ALICE, SEEDED).expect("seed");
    let port = env.port("imap-starttls").to_string();
    let out = env.run(
        SYSTEM_PYTHON,
        &["-c", IMAPLIB2, &port, &env.ca(), ROUNDS],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("rounds {ROUNDS} ok")),
        "imaplib2: {}\n{stdout}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        env.logs()
    );
    check_syncs(&env, "imap-starttls", &env.ca());
}
