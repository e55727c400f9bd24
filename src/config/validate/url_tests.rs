//! Identity-provider URLs are parsed, then judged on their scheme and host:
//! plain `http` only to a literal loopback address, `https` anywhere.

use std::path::Path;

use super::parse;

const LISTENER: &str = "[[listeners]]\nprotocol = \"imap\"\nbind = \"127.0.0.1:1143\"\nupstream = { host = \"outlook.office365.com\", port = 993, tls = \"implicit\" }\n";

/// Parses a config whose three endpoint URLs are all `url`.
fn with_urls(url: &str) -> Result<String, String> {
    let text = format!(
        "[[providers]]\nname=\"g\"\nkind=\"generic\"\nclient_id=\"c\"\nscopes=[\"s\"]\n\
         authorize_url={url:?}\ntoken_url={url:?}\ndevice_code_url={url:?}\n{LISTENER}"
    );
    parse(&text, "t.toml", Path::new("/etc/mailgate"))
        .map(|c| c.providers[0].token_url.clone())
        .map_err(|e| e.to_string())
}

#[test]
fn plain_http_only_to_a_literal_loopback_address() {
    for url in [
        "http://127.0.0.1:8080/token",
        "http://127.0.0.1/token",
        "http://127.1.2.3:9/t",
        "http://[::1]/token",
        "http://[::1]:8080/tenant/oauth2/v2.0/token",
        "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        "https://idp.example:8443/token",
        "https://127.0.0.1/token",
        "HTTPS://login.example/token",
    ] {
        assert!(with_urls(url).is_ok(), "{url}: {:?}", with_urls(url));
    }
    for url in [
        "http://127.0.0.1@evil.example/token",
        "http://127.0.0.1:80@evil.example/token",
        "http://localhost.evil.example/token",
        "http://localhost/token",
        "http://localhost:8080/token",
        "http://127.0.0.1.evil.example/token",
        "http://127.evil.example/token",
        "http://login.example/token",
        "http://[::2]/token",
        "http://0.0.0.0/token",
        "http://10.0.0.1/token",
        "https://user:pw@login.example/token",
        "ftp://127.0.0.1/token",
        "file:///etc/passwd",
        "127.0.0.1/token",
        "",
        "not a url",
    ] {
        let e = with_urls(url).expect_err(url);
        assert!(e.contains("providers[0].authorize_url"), "{url}: {e}");
    }
}

#[test]
fn the_refusal_names_the_key_and_the_fix() {
    let e = with_urls("http://localhost.evil.example/token").unwrap_err();
    assert!(
        e.contains("authorize_url") && e.contains("https") && e.contains("127.0.0.1"),
        "{e}"
    );
}

#[test]
fn urls_are_kept_as_written() {
    assert_eq!(
        with_urls("http://[::1]:8080/t/token").unwrap(),
        "http://[::1]:8080/t/token"
    );
}
