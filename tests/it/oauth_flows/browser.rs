//! The browser flow (authorization code + PKCE) with the test acting as the
//! browser: it reads the printed URL, follows the IdP's redirect (to
//! 127.0.0.1, never `localhost`'s other addresses) and reports the status.

use std::io::Write;

use mailgate::oauth::authcode::BrowserOptions;
use mailgate::oauth::{OAuthClient, OAuthError, SignedIn};

use super::{BOB, STEP, bounded, rejected_with, started};
use crate::support::idp::TestIdp;

/// A `Write` that forwards what the flow prints to the test.
struct Lines(tokio::sync::mpsc::UnboundedSender<String>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.send(String::from_utf8_lossy(buf).into_owned());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Follows the IdP's authorize URL like a browser would, with `edit` applied
/// to the redirect back to mailgate. Returns the redirect listener's status.
pub async fn act_as_browser(url: &str, edit: impl Fn(String) -> String) -> u16 {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(STEP)
        .build()
        .expect("client");
    let r = http.get(url).send().await.expect("authorize");
    assert_eq!(r.status().as_u16(), 302);
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let back = edit(location.replacen("http://localhost:", "http://127.0.0.1:", 1));
    http.get(back)
        .send()
        .await
        .expect("redirect listener")
        .status()
        .as_u16()
}

async fn browser_flow(
    idp: &TestIdp,
    client: &OAuthClient,
    edit: impl Fn(String) -> String,
) -> (Result<SignedIn, OAuthError>, u16, String) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let options = BrowserOptions {
        open_browser: false,
        login_hint: Some(BOB.into()),
        wait: STEP,
        extra_consent: Vec::new(),
    };
    let mut out = Lines(tx);
    let authority = idp.authority();
    let drive = async {
        let mut seen = String::new();
        while let Some(chunk) = rx.recv().await {
            seen.push_str(&chunk);
            if let Some(line) = seen.lines().find(|l| l.starts_with(&authority)) {
                let url = line.to_owned();
                return (act_as_browser(&url, &edit).await, url);
            }
        }
        panic!("no URL printed: {seen}");
    };
    let (result, (status, url)) =
        bounded(async { tokio::join!(client.browser_flow(&options, &mut out), drive) }).await;
    (result, status, url)
}

#[tokio::test]
async fn browser_flow_signs_in_the_hinted_user_with_pkce() {
    let (idp, client) = started().await;
    idp.add_user(BOB);
    let (result, status, url) = browser_flow(&idp, &client, |l| l).await;
    let t = result.expect("signed in");
    assert_eq!(status, 200);
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(
        url.contains("redirect_uri=http%3A%2F%2Flocalhost%3A"),
        "{url}"
    );
    assert_eq!(
        idp.token_requests_for(BOB),
        1,
        "the code was issued for the hinted user"
    );
    assert_eq!(idp.token_requests("authorization_code"), 1);
    assert!(t.tokens.refresh_token.is_some());
    assert_eq!(
        t.user().as_deref(),
        Some(BOB),
        "the id token names the hinted user"
    );
}

#[tokio::test]
async fn browser_flow_rejects_a_forged_state() {
    let (idp, client) = started().await;
    idp.add_user(BOB);
    let forge = |l: String| {
        let (head, tail) = l.split_once("state=").expect("state in redirect");
        let rest = tail
            .split_once('&')
            .map_or(String::new(), |(_, r)| format!("&{r}"));
        format!("{head}state=forged{rest}")
    };
    let (result, _, _) = browser_flow(&idp, &client, forge).await;
    rejected_with(result.map(|s| s.tokens), "invalid_state", None);
    assert_eq!(
        idp.token_requests("authorization_code"),
        0,
        "the code was never redeemed"
    );
}

#[tokio::test]
async fn browser_flow_reports_the_providers_error() {
    let (idp, client) = started().await;
    let deny = |l: String| {
        let state = l
            .split_once("state=")
            .expect("state")
            .1
            .split('&')
            .next()
            .unwrap_or("")
            .to_owned();
        let base = l.split_once('?').expect("query").0.to_owned();
        format!(
            "{base}?error=access_denied&error_description=AADSTS65004%3A+User+declined&state={state}"
        )
    };
    let (result, status, _) = browser_flow(&idp, &client, deny).await;
    assert_eq!(status, 200);
    rejected_with(result.map(|s| s.tokens), "access_denied", Some("65004"));
}
