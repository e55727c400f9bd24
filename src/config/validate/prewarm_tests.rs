//! `prewarm`: off by default, bounded, and refused where there is no upstream
//! socket (Graph) or no handshake to save (plain upstreams).

use std::path::Path;

use crate::config::{Config, parse};

const PROVIDER: &str = "[[providers]]\nname=\"m\"\nkind=\"microsoft\"\nclient_id=\"c\"\n";

fn listener(protocol: &str, upstream_tls: &str, extra: &str) -> String {
    format!(
        "{PROVIDER}[[listeners]]\nname = \"l\"\nprotocol = \"{protocol}\"\nbind = \"127.0.0.1:1587\"\n\
         {extra}\nupstream = {{ host = \"127.0.0.1\", port = 993, tls = \"{upstream_tls}\" }}\n"
    )
}

fn load(text: &str) -> Result<Config, String> {
    parse(text, "t.toml", Path::new("/etc/mailgate")).map_err(|e| e.to_string())
}

#[test]
fn off_by_default_and_accepted_on_tls_upstreams() {
    let c = load(&listener("imap", "implicit", "")).unwrap();
    assert_eq!(c.listeners[0].prewarm, 0);
    let c = load(&listener("imap", "implicit", "prewarm = 4")).unwrap();
    assert_eq!(c.listeners[0].prewarm, 4);
    let c = load(&listener("smtp", "starttls", "prewarm = 64")).unwrap();
    assert_eq!(c.listeners[0].prewarm, 64);
    let c = load(&listener("imap", "none", "prewarm = 0")).unwrap();
    assert_eq!(c.listeners[0].prewarm, 0);
}

#[test]
fn too_many_graph_and_plain_upstreams_are_refused() {
    let e = load(&listener("pop3", "implicit", "prewarm = 65")).unwrap_err();
    assert!(e.contains("listeners[0].prewarm"), "{e}");
    let e = load(&listener(
        "smtp",
        "starttls",
        "submit = \"graph\"\nprewarm = 2",
    ))
    .unwrap_err();
    assert!(
        e.contains("listeners[0].prewarm") && e.contains("graph"),
        "{e}"
    );
    let e = load(&listener("imap", "none", "prewarm = 2")).unwrap_err();
    assert!(
        e.contains("listeners[0].prewarm") && e.contains("none"),
        "{e}"
    );
}
