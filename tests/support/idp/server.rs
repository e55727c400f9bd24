//! HTTP/1 front of the test identity provider: Microsoft identity platform
//! v2.0 paths under any tenant, plus an RFC 7662 introspection endpoint and
//! the authentication policy endpoint the test Dovecot asks which mailboxes
//! a token may open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::state::{Code, Failure, OAuthFault, State, invalid_request, random};

/// Largest request body read.
pub const MAX_BODY: usize = 64 * 1024;
/// Longest injected latency honoured.
pub const MAX_LATENCY: Duration = Duration::from_secs(60);

type Reply = Response<Full<Bytes>>;

#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for Dropped {}

pub async fn handle(req: Request<Incoming>, state: Arc<Mutex<State>>) -> Result<Reply, Dropped> {
    let latency = state.lock().expect("idp state").latency.min(MAX_LATENCY);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let path = req.uri().path().to_owned();
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    if super::graph::is_graph_path(&path) {
        return Ok(super::graph::handle(req, &state, &host).await);
    }
    let method = req.method().clone();
    let endpoint = path.rsplit_once("/oauth2/v2.0/").map(|(_, e)| e.to_owned());
    if method == Method::GET && endpoint.as_deref() == Some("authorize") {
        return Ok(authorize(&parse_form(&query), &state));
    }
    if method != Method::POST {
        return Ok(reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found".into(),
        ));
    }
    let Ok(body) = Limited::new(req.into_body(), MAX_BODY).collect().await else {
        return Ok(reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            "text/plain",
            "too large".into(),
        ));
    };
    let body = body.to_bytes();
    let form = parse_form(&String::from_utf8_lossy(&body));
    let mut s = state.lock().expect("idp state");
    match endpoint.as_deref() {
        Some("token") | Some("devicecode") => {
            if let Some(f) = s.take_failure() {
                if endpoint.as_deref() == Some("token") {
                    let grant = form.get("grant_type").cloned().unwrap_or_default();
                    s.count(&grant, None);
                }
                return injected(f);
            }
            Ok(if endpoint.as_deref() == Some("token") {
                let token_url = format!("http://{host}{path}");
                token(&form, &mut s, &token_url)
            } else {
                devicecode(&form, &mut s)
            })
        }
        Some("introspect") => {
            let answer = s.introspect(form.get("token").map_or("", String::as_str));
            Ok(json_reply(StatusCode::OK, &answer))
        }
        Some("policy") => Ok(json_reply(StatusCode::OK, &policy(&body, &mut s))),
        _ => Ok(reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found".into(),
        )),
    }
}

/// Dovecot's authentication policy check after a successful login
/// (`auth_policy_check_after_auth`): the JSON names the login (the mailbox
/// asked for) and `jti`, the token id the introspection gave. Status 0
/// allows; -1 refuses, and Dovecot shows `msg` to the client.
fn policy(body: &[u8], s: &mut State) -> Value {
    let request: Value = serde_json::from_slice(body).unwrap_or_default();
    let field = |k: &str| request[k].as_str().unwrap_or("").to_owned();
    match s.authorise(&field("jti"), &field("login")) {
        Ok(()) => json!({"status": 0, "msg": ""}),
        Err(reason) => json!({"status": -1, "msg": reason}),
    }
}

fn injected(f: Failure) -> Result<Reply, Dropped> {
    match f {
        Failure::Drop => Err(Dropped),
        Failure::ServerError => Ok(reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/html",
            "<h1>500</h1>".into(),
        )),
        Failure::TooManyRequests { retry_after_secs } => {
            let mut r = json_reply(
                StatusCode::TOO_MANY_REQUESTS,
                &json!({"error": "temporarily_unavailable", "error_description": "AADSTS50196: throttled"}),
            );
            r.headers_mut()
                .insert("retry-after", retry_after_secs.into());
            Ok(r)
        }
        Failure::Redirect => {
            let mut r = reply(StatusCode::FOUND, "text/plain", "moved".into());
            r.headers_mut().insert(
                "location",
                hyper::header::HeaderValue::from_static("http://127.0.0.1:9/stolen"),
            );
            Ok(r)
        }
    }
}

fn token(form: &HashMap<String, String>, s: &mut State, token_url: &str) -> Reply {
    let get = |k: &str| form.get(k).map_or("", String::as_str);
    let grant = get("grant_type");
    let result = match grant {
        "refresh_token" => {
            let mailbox = s.mailbox_of_refresh(get("refresh_token"));
            s.count(grant, mailbox.as_deref());
            s.refresh(get("refresh_token"), get("scope"))
        }
        "authorization_code" => {
            let mailbox = s.codes.get(get("code")).map(|c| c.mailbox.clone());
            s.count(grant, mailbox.as_deref());
            s.redeem_code(get("code"), get("code_verifier"), get("redirect_uri"))
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            let mailbox = s.mailbox_of_device(get("device_code"));
            s.count(grant, mailbox.as_deref());
            s.poll_device(get("device_code"))
        }
        "client_credentials" => {
            s.count(grant, None);
            client_credentials(form, s, token_url)
        }
        other => {
            s.count(other, None);
            Err(OAuthFault {
                status: 400,
                body: json!({"error": "unsupported_grant_type", "error_description": "AADSTS70003: unsupported grant type"}),
            })
        }
    };
    match result {
        Ok(body) => json_reply(StatusCode::OK, &body),
        Err(f) => json_reply(
            StatusCode::from_u16(f.status).unwrap_or(StatusCode::BAD_REQUEST),
            &f.body,
        ),
    }
}

fn client_credentials(
    form: &HashMap<String, String>,
    s: &mut State,
    token_url: &str,
) -> Result<Value, OAuthFault> {
    let ok = match (form.get("client_assertion"), form.get("client_secret")) {
        (Some(jwt), None) => {
            form.get("client_assertion_type").map(String::as_str) == Some(JWT_BEARER)
                && verify_assertion(
                    jwt,
                    form.get("client_id").map_or("", String::as_str),
                    token_url,
                    s,
                )
        }
        (None, Some(got)) => s.client_secret.as_ref().is_none_or(|want| want == got),
        _ => false,
    };
    if !ok {
        return Err(OAuthFault {
            status: 401,
            body: json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
        });
    }
    let mailbox = s
        .app_mailbox
        .clone()
        .unwrap_or_else(|| "app@example.test".to_owned());
    let scope = form.get("scope").cloned().unwrap_or_default();
    Ok(s.mint(&mailbox, &scope, true).2)
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// RFC 7523 §3 checks on a client assertion: RS256 signature by the
/// registered key, the registered `x5t`, `aud`, `iss`, `sub`, `exp`.
fn verify_assertion(jwt: &str, client_id: &str, token_url: &str, s: &State) -> bool {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let Some((public_key, x5t)) = &s.client_key else {
        return false;
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, sig] = parts[..] else { return false };
    let decode = |p: &str| {
        URL_SAFE_NO_PAD
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    };
    let (Some(header), Some(claims), Ok(sig)) = (decode(h), decode(c), URL_SAFE_NO_PAD.decode(sig))
    else {
        return false;
    };
    let key = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        public_key,
    );
    key.verify(format!("{h}.{c}").as_bytes(), &sig).is_ok()
        && header["alg"] == "RS256"
        && header["x5t"] == x5t.as_str()
        && claims["aud"] == token_url
        && claims["iss"] == client_id
        && claims["sub"] == client_id
        && claims["exp"]
            .as_u64()
            .is_some_and(|exp| exp > super::state::now())
}

fn devicecode(form: &HashMap<String, String>, s: &mut State) -> Reply {
    if form.get("client_id").is_none_or(String::is_empty) {
        let f =
            invalid_request("The request body must contain the following parameter: 'client_id'.");
        return json_reply(StatusCode::BAD_REQUEST, &f.body);
    }
    let scope = form.get("scope").cloned().unwrap_or_default();
    let (dc, user_code, expires_in) = s.start_device(&scope);
    json_reply(
        StatusCode::OK,
        &json!({
            "device_code": dc,
            "user_code": user_code,
            "verification_uri": "https://microsoft.com/devicelogin",
            "expires_in": expires_in,
            "interval": 1,
            "message": format!("To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code {user_code} to authenticate."),
        }),
    )
}

/// Auto-approves: 302 to `redirect_uri` with `code` and `state` (RFC 6749 §4.1.2).
fn authorize(q: &HashMap<String, String>, state: &Mutex<State>) -> Reply {
    let get = |k: &str| q.get(k).map_or("", String::as_str);
    let redirect_uri = get("redirect_uri");
    if !(redirect_uri.starts_with("http://localhost:")
        || redirect_uri.starts_with("http://127.0.0.1:"))
    {
        return reply(
            StatusCode::BAD_REQUEST,
            "text/plain",
            "AADSTS50011: redirect URI mismatch".into(),
        );
    }
    let mut s = state.lock().expect("idp state");
    s.authorize_scopes.push(get("scope").to_owned());
    let hint = get("login_hint");
    let mailbox = if s.users.iter().any(|u| u == hint) {
        Some(hint.to_owned())
    } else {
        s.default_user.clone()
    };
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let location = match (mailbox, get("code_challenge_method")) {
        (Some(mailbox), "S256") => {
            let code = random("code-");
            s.codes.insert(
                code.clone(),
                Code {
                    mailbox,
                    challenge: get("code_challenge").to_owned(),
                    redirect_uri: redirect_uri.to_owned(),
                    scope: get("scope").to_owned(),
                    used: false,
                },
            );
            format!(
                "{redirect_uri}{sep}code={}&state={}&session_state=s",
                encode(&code),
                encode(get("state"))
            )
        }
        (None, _) => format!(
            "{redirect_uri}{sep}error=access_denied&error_description={}&state={}",
            encode("AADSTS50020: no such user"),
            encode(get("state"))
        ),
        (Some(_), _) => format!(
            "{redirect_uri}{sep}error=invalid_request&error_description={}&state={}",
            encode("AADSTS9002325: Proof Key for Code Exchange is required"),
            encode(get("state"))
        ),
    };
    let mut r = reply(StatusCode::FOUND, "text/plain", String::new());
    if let Ok(v) = hyper::header::HeaderValue::from_str(&location) {
        r.headers_mut().insert("location", v);
    }
    r
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

fn json_reply(status: StatusCode, body: &Value) -> Reply {
    reply(status, "application/json; charset=utf-8", body.to_string())
}

/// `application/x-www-form-urlencoded` (WHATWG URL §5.1), last value wins.
pub fn parse_form(s: &str) -> HashMap<String, String> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
