//! The test identity provider's memory: users, issued tokens, switches and
//! counters. Pure logic, no HTTP: `server.rs` turns requests into calls here.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::grants::Grants;

#[path = "introspect.rs"]
mod introspect;

/// A fault the token and device code endpoints inject instead of answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// HTTP 500 with a non-JSON body.
    ServerError,
    /// HTTP 429 with `Retry-After: <secs>`.
    TooManyRequests { retry_after_secs: u64 },
    /// Close the connection without answering.
    Drop,
    /// HTTP 302 to another URL (a token endpoint must never be followed).
    Redirect,
}

/// An RFC 6749 §5.2 error answer, Microsoft style (`AADSTS` code first).
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthFault {
    pub status: u16,
    pub body: Value,
}

fn fault(status: u16, error: &str, aadsts: u32, text: &str) -> OAuthFault {
    OAuthFault {
        status,
        body: json!({
            "error": error,
            "error_description": format!("AADSTS{aadsts}: {text} Trace ID: 0000 Correlation ID: 0000 Timestamp: 2026-01-01 00:00:00Z"),
            "error_codes": [aadsts],
            "timestamp": "2026-01-01 00:00:00Z",
        }),
    }
}

impl OAuthFault {
    /// The app's credentials are refused (an expired secret: 7000222).
    pub fn invalid_client(aadsts: u32, text: &str) -> OAuthFault {
        fault(401, "invalid_client", aadsts, text)
    }
}

pub fn invalid_grant(aadsts: u32, text: &str) -> OAuthFault {
    fault(400, "invalid_grant", aadsts, text)
}

pub fn invalid_request(text: &str) -> OAuthFault {
    fault(400, "invalid_request", 900144, text)
}

struct Access {
    mailbox: String,
    /// Issued by client credentials: speaks for the app, not a user.
    app_only: bool,
    scope: String,
    expires_at: u64,
    active: bool,
}

struct Refresh {
    mailbox: String,
    scope: String,
    generation: u64,
    used: bool,
}

pub struct Code {
    pub mailbox: String,
    pub challenge: String,
    pub redirect_uri: String,
    pub scope: String,
    pub used: bool,
}

struct Device {
    mailbox: Option<String>,
    scope: String,
    pending_left: u32,
    slow_down_left: u32,
    expires_at: u64,
}

#[derive(Default)]
pub struct State {
    pub users: Vec<String>,
    pub default_user: Option<String>,
    pub app_mailbox: Option<String>,
    pub client_secret: Option<String>,
    /// RSA public key (PKCS#1 DER) and `x5t` of the app's certificate.
    pub client_key: Option<(Vec<u8>, String)>,
    pub access_lifetime: Duration,
    pub latency: Duration,
    pub failure: Option<(Failure, u32)>,
    pub device_pending: u32,
    pub device_slow_down: u32,
    pub device_expires_in: u64,
    pub per_account: HashMap<String, u64>,
    pub per_grant: HashMap<String, u64>,
    pub introspections: u64,
    /// Mail-server questions "may this token open this mailbox?".
    pub authorisations: u64,
    /// Which mailboxes a token may open (see `grants.rs`).
    pub grants: Grants,
    /// Leave out the OpenID Connect id token even when `openid` is asked for.
    pub no_id_token: bool,
    /// Microsoft's behaviour: a redeemed refresh token keeps working until it
    /// expires or is revoked. Off by default (strict one-time use).
    pub keep_redeemed: bool,
    /// Mailboxes whose access tokens introspect as inactive however fresh
    /// (an upstream that refuses every token, e.g. IMAP disabled).
    pub refused: Vec<String>,
    /// Every refresh is answered with this error until it is cleared.
    pub refresh_fault: Option<OAuthFault>,
    /// Refresh tokens issued per mailbox, oldest first.
    pub issued: HashMap<String, Vec<String>>,
    /// The test Microsoft Graph (`graph.rs`).
    pub graph: super::graph::GraphState,
    /// Mailboxes whose grant has no consent for Microsoft Graph: a refresh
    /// asking for a Graph scope is refused with AADSTS65001.
    pub graph_unconsented: Vec<String>,
    /// The `scope` of every authorize request, in order.
    pub authorize_scopes: Vec<String>,
    generations: HashMap<String, u64>,
    access: HashMap<String, Access>,
    refresh: HashMap<String, Refresh>,
    pub codes: HashMap<String, Code>,
    devices: HashMap<String, Device>,
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn random(prefix: &str) -> String {
    let mut bytes = [0u8; 24];
    aws_lc_rs::rand::fill(&mut bytes).expect("system RNG");
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

impl State {
    pub fn new() -> Self {
        Self {
            access_lifetime: Duration::from_secs(3600),
            device_pending: 1,
            device_expires_in: 900,
            ..Self::default()
        }
    }

    /// The injected fault for this request, counting it down.
    pub fn take_failure(&mut self) -> Option<Failure> {
        let (f, left) = self.failure.as_mut()?;
        let f = *f;
        *left -= 1;
        if *left == 0 {
            self.failure = None;
        }
        Some(f)
    }

    pub fn count(&mut self, grant: &str, mailbox: Option<&str>) {
        *self.per_grant.entry(grant.to_owned()).or_default() += 1;
        if let Some(m) = mailbox {
            *self.per_account.entry(m.to_owned()).or_default() += 1;
        }
    }

    pub fn revoke(&mut self, mailbox: &str) {
        *self.generations.entry(mailbox.to_owned()).or_default() += 1;
    }

    pub fn invalidate_access(&mut self, token: &str) -> bool {
        self.access
            .get_mut(token)
            .map(|a| a.active = false)
            .is_some()
    }

    pub fn invalidate_access_for(&mut self, mailbox: &str) {
        self.access
            .values_mut()
            .filter(|a| a.mailbox == mailbox)
            .for_each(|a| a.active = false);
    }

    /// Who `token` speaks for and its scope, while it is active and unexpired:
    /// `(mailbox, app_only, scope)`.
    pub fn access_of(&self, token: &str) -> Option<(String, bool, String)> {
        self.access
            .get(token)
            .filter(|a| a.active && a.expires_at > now())
            .map(|a| (a.mailbox.clone(), a.app_only, a.scope.clone()))
    }

    /// Registers `token` as an access token for `mailbox`, as if issued now.
    pub fn insert_access(&mut self, token: &str, mailbox: &str, scope: &str) {
        let expires_at = now() + self.access_lifetime.as_secs();
        self.access.insert(
            token.to_owned(),
            Access {
                mailbox: mailbox.to_owned(),
                app_only: false,
                scope: scope.to_owned(),
                expires_at,
                active: true,
            },
        );
    }

    /// Issues an access token and, unless `app_only`, a refresh token.
    pub fn mint(
        &mut self,
        mailbox: &str,
        scope: &str,
        app_only: bool,
    ) -> (String, Option<String>, Value) {
        let at = random("at-");
        let lifetime = self.access_lifetime.as_secs();
        self.access.insert(
            at.clone(),
            Access {
                mailbox: mailbox.to_owned(),
                app_only,
                scope: scope.to_owned(),
                expires_at: now() + lifetime,
                active: true,
            },
        );
        let mut body = json!({
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": lifetime.to_string(),
            "ext_expires_in": lifetime.to_string(),
            "access_token": at,
        });
        let rt = (!app_only).then(|| {
            let rt = random("rt-");
            let generation = self.generations.get(mailbox).copied().unwrap_or_default();
            self.refresh.insert(
                rt.clone(),
                Refresh {
                    mailbox: mailbox.to_owned(),
                    scope: scope.to_owned(),
                    generation,
                    used: false,
                },
            );
            body["refresh_token"] = json!(rt);
            if scope.split(' ').any(|s| s == "openid") && !self.no_id_token {
                body["id_token"] = json!(super::id_token::id_token(mailbox));
            }
            self.issued
                .entry(mailbox.to_owned())
                .or_default()
                .push(rt.clone());
            rt
        });
        (at, rt, body)
    }

    pub fn mailbox_of_refresh(&self, rt: &str) -> Option<String> {
        self.refresh.get(rt).map(|r| r.mailbox.clone())
    }

    /// `grant_type=refresh_token` with rotation: a refresh token works once.
    /// A `scope` naming Microsoft Graph gets a Graph-audience token (Entra
    /// refresh tokens work across the resources the app has consent for);
    /// any other keeps the scope of the grant.
    pub fn refresh(&mut self, rt: &str, scope: &str) -> Result<Value, OAuthFault> {
        if let Some(fault) = &self.refresh_fault {
            return Err(fault.clone());
        }
        let Some(r) = self.refresh.get_mut(rt) else {
            return Err(invalid_grant(
                9002313,
                "Invalid request. Request is malformed or invalid.",
            ));
        };
        if self
            .generations
            .get(&r.mailbox)
            .copied()
            .unwrap_or_default()
            != r.generation
        {
            return Err(invalid_grant(
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
            ));
        }
        if r.used && !self.keep_redeemed {
            return Err(invalid_grant(
                70000,
                "The provided value for the 'refresh_token' is not valid. It was already redeemed.",
            ));
        }
        if super::graph::is_graph_scope(scope)
            && self.graph_unconsented.iter().any(|m| m == &r.mailbox)
        {
            return Err(invalid_grant(
                65001,
                "The user or administrator has not consented to use the application. Send an interactive authorization request for this user and resource.",
            ));
        }
        r.used = true;
        let mailbox = r.mailbox.clone();
        let scope = if super::graph::is_graph_scope(scope) {
            scope.to_owned()
        } else {
            r.scope.clone()
        };
        Ok(self.mint(&mailbox, &scope, false).2)
    }

    pub fn start_device(&mut self, scope: &str) -> (String, String, u64) {
        let dc = random("dc-");
        let user_code = random("")
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(9)
            .collect::<String>()
            .to_uppercase();
        self.devices.insert(
            dc.clone(),
            Device {
                mailbox: self.default_user.clone(),
                scope: scope.to_owned(),
                pending_left: self.device_pending,
                slow_down_left: self.device_slow_down,
                expires_at: now() + self.device_expires_in,
            },
        );
        (dc, user_code, self.device_expires_in)
    }

    pub fn mailbox_of_device(&self, dc: &str) -> Option<String> {
        self.devices.get(dc).and_then(|d| d.mailbox.clone())
    }

    /// `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.5).
    pub fn poll_device(&mut self, dc: &str) -> Result<Value, OAuthFault> {
        let Some(d) = self.devices.get_mut(dc) else {
            return Err(invalid_grant(
                70000,
                "The provided value for the 'device_code' is not valid.",
            ));
        };
        if now() > d.expires_at {
            return Err(fault(
                400,
                "expired_token",
                70020,
                "The provided device code has expired.",
            ));
        }
        if d.pending_left > 0 {
            d.pending_left -= 1;
            return Err(fault(
                400,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending.",
            ));
        }
        if d.slow_down_left > 0 {
            d.slow_down_left -= 1;
            return Err(fault(400, "slow_down", 70016, "Polling too fast."));
        }
        let d = self.devices.remove(dc).expect("present");
        let Some(mailbox) = d.mailbox else {
            return Err(fault(
                400,
                "authorization_declined",
                70019,
                "No user is configured to approve this code.",
            ));
        };
        self.generations.entry(mailbox.clone()).or_default();
        Ok(self.mint(&mailbox, &d.scope, false).2)
    }

    /// `grant_type=authorization_code` with PKCE S256 (RFC 7636 §4.6).
    pub fn redeem_code(
        &mut self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<Value, OAuthFault> {
        let Some(c) = self.codes.get_mut(code) else {
            return Err(invalid_grant(
                70000,
                "The provided authorization code is not valid.",
            ));
        };
        if c.used {
            return Err(invalid_grant(
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code.",
            ));
        }
        c.used = true;
        if c.redirect_uri != redirect_uri {
            return Err(invalid_grant(
                50148,
                "The redirect_uri does not match the one in the authorization request.",
            ));
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        if URL_SAFE_NO_PAD.encode(digest.as_ref()) != c.challenge {
            return Err(invalid_grant(
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            ));
        }
        // Like Entra, the token is for one resource: the authorize request
        // may consent to Graph as well, the token carries the mail scopes.
        let scope = (c.scope.split(' '))
            .filter(|s| !super::graph::is_graph_scope(s))
            .collect::<Vec<_>>()
            .join(" ");
        let mailbox = c.mailbox.clone();
        Ok(self.mint(&mailbox, &scope, false).2)
    }
}
