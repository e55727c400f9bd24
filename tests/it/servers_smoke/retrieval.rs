//! Retrieval: IMAP and POP3 over implicit TLS with XOAUTH2 (curl, imaplib),
//! long tokens, IDLE, and a revoked token refused on the next login.

use super::{
    ALICE, BOB, LONG_TOKEN_LEN, SEEDED, StartOptions, curl, identity_provider, python, start, token,
};

#[test]
fn curl_imap_xoauth2_fetches_seeded_message_byte_for_byte() {
    let idp = identity_provider();
    let options = StartOptions {
        no_oauthbearer: true,
        ..StartOptions::default()
    };
    let servers = start(&idp, &options);
    servers.seed_message(ALICE, SEEDED).expect("seed");
    let base = format!("imaps://127.0.0.1:{}/INBOX", servers.imaps_port());

    let list = curl(&servers, &base, &token(&idp, ALICE));
    let listing = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success() && listing.contains("INBOX"),
        "{list:?}\n{}",
        servers.logs()
    );

    let fetch = curl(&servers, &format!("{base}/;UID=1"), &token(&idp, ALICE));
    assert!(fetch.status.success(), "{fetch:?}\n{}", servers.logs());
    assert_eq!(fetch.stdout, SEEDED, "{}", servers.logs());
    assert!(
        servers.logs().contains("method=XOAUTH2"),
        "{}",
        servers.logs()
    );

    let refused = curl(&servers, &base, &token(&idp, BOB));
    assert!(
        !refused.status.success(),
        "token of another mailbox accepted"
    );
}

#[test]
fn curl_pop3_xoauth2_retrieves_seeded_message() {
    let idp = identity_provider();
    let options = StartOptions {
        no_oauthbearer: true,
        ..StartOptions::default()
    };
    let servers = start(&idp, &options);
    servers.seed_message(ALICE, SEEDED).expect("seed");
    let url = format!("pop3s://127.0.0.1:{}/1", servers.pop3s_port());

    let retr = curl(&servers, &url, &token(&idp, ALICE));
    assert!(retr.status.success(), "{retr:?}\n{}", servers.logs());
    assert_eq!(retr.stdout, SEEDED, "{}", servers.logs());
    assert!(
        servers.logs().contains("pop3-login: Info: Login"),
        "{}",
        servers.logs()
    );

    let refused = curl(&servers, &url, "at-nobody");
    assert!(!refused.status.success(), "unknown token accepted");
}

const IMAPLIB: &str = r#"
import imaplib, ssl, sys, os, time
port, ca, user, good, bad, long_tok, maildir = sys.argv[1:8]
ctx = ssl.create_default_context(cafile=ca)
def login(token):
    m = imaplib.IMAP4_SSL("127.0.0.1", int(port), ssl_context=ctx, timeout=10)
    calls = []
    def xoauth2(challenge):
        calls.append(challenge)
        return ("user=%s\x01auth=Bearer %s\x01\x01" % (user, token)).encode() if len(calls) == 1 else b""
    try:
        typ, _ = m.authenticate("XOAUTH2", xoauth2)
        return m, typ
    except imaplib.IMAP4.error as e:
        return m, "NO " + str(e)
m, typ = login(good)
print("good", typ)
print("capability", m.capability()[1][0].decode())
typ, data = m.select("INBOX")
print("select", typ, data[0].decode())
tag = m._new_tag()
m.send(tag + b" IDLE\r\n")
print("idle", m.readline().decode().strip())
with open(os.path.join(maildir, "tmp", "idle.1"), "wb") as f:
    f.write(b"Subject: idle\r\n\r\nwake up\r\n")
os.rename(os.path.join(maildir, "tmp", "idle.1"), os.path.join(maildir, "new", "idle.1"))
m.sock.settimeout(10)
print("idle-event", m.readline().decode().strip())
m.send(b"DONE\r\n")
for _ in range(10):
    line = m.readline().decode().strip()
    if line.startswith(tag.decode() + " "):
        print("idle-done", line)
        break
m.logout()
for name, token in (("bad", bad), ("long", long_tok)):
    m, typ = login(token)
    print(name, typ)
    m.shutdown()
import base64
m = imaplib.IMAP4_SSL("127.0.0.1", int(port), ssl_context=ctx, timeout=10)
ir = base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01" % (user, bad)).encode())
m.send(b"x1 AUTHENTICATE XOAUTH2 " + ir + b"\r\n")
print("sasl-ir-challenge", m.readline().decode().strip()[:2])
m.send(b"\r\n")
print("sasl-ir-final", m.readline().decode().strip())
m.shutdown()
"#;

#[test]
fn imaplib_xoauth2_accepts_good_and_long_tokens_refuses_bad_and_idles() {
    let idp = identity_provider();
    let servers = start(&idp, &StartOptions::default());
    servers.seed_message(ALICE, SEEDED).expect("seed");
    let long = idp.mint_long_access_token(ALICE, LONG_TOKEN_LEN);
    let port = servers.imaps_port().to_string();
    let ca = servers.ca_pem_path().display().to_string();
    let maildir = servers.maildir(ALICE).display().to_string();
    let out = python(
        IMAPLIB,
        &[
            &port,
            &ca,
            ALICE,
            &token(&idp, ALICE),
            "at-bad",
            &long,
            &maildir,
        ],
    );
    let context = format!("{out}\n{}", servers.logs());

    assert!(out.contains("good OK"), "{context}");
    assert!(
        out.contains("AUTH=XOAUTH2") || out.contains("IDLE"),
        "{context}"
    );
    assert!(out.contains("select OK 1"), "{context}");
    assert!(out.contains("idle + idling"), "{context}");
    assert!(out.contains("idle-event * 2 EXISTS"), "{context}");
    assert!(
        out.contains("idle-done") && out.contains("OK Idle completed"),
        "{context}"
    );
    assert!(out.contains("bad NO"), "{context}");
    assert!(out.contains("long OK"), "{context}");
    assert!(out.contains("sasl-ir-challenge +"), "{context}");
    assert!(out.contains("sasl-ir-final x1 NO"), "{context}");
}

#[test]
fn revoked_token_is_refused_on_next_login() {
    let idp = identity_provider();
    let options = StartOptions {
        no_oauthbearer: true,
        ..StartOptions::default()
    };
    let servers = start(&idp, &options);
    let url = format!("imaps://127.0.0.1:{}/INBOX", servers.imaps_port());

    let alice = token(&idp, ALICE);
    assert!(
        curl(&servers, &url, &alice).status.success(),
        "{}",
        servers.logs()
    );
    assert!(idp.invalidate_access_token(&alice));
    assert!(
        !curl(&servers, &url, &alice).status.success(),
        "revoked token still works"
    );
    assert!(
        idp.introspections() >= 2,
        "Dovecot did not ask the introspection endpoint each time"
    );
}
