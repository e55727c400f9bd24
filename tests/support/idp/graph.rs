//! The test Microsoft Graph: the mail-sending part of `/v1.0`, as the real
//! service behaves (`docs/design.md`, "Sending through Graph"):
//!
//! - `POST /v1.0/users/{m}/sendMail` with a base64 MIME body → 202;
//! - `POST /v1.0/users/{m}/messages` (MIME) → 201 with the draft's `id`;
//!   `POST .../messages/{id}/attachments` (fileAttachment JSON),
//!   `POST .../attachments/createUploadSession` → `uploadUrl`, then `PUT`
//!   chunks with `Content-Range` (each ≤ 4 MiB and a multiple of 320 KiB
//!   but the last, in order); `POST .../messages/{id}/send` → 202;
//! - request bodies over [`MAX_REQUEST`] → 413 with Graph's error JSON;
//! - the bearer token must be a Graph-audience token from this IdP whose
//!   user is the mailbox, or an app-only `.default` token; an Outlook token
//!   gets 401;
//! - the MIME `From` must be the mailbox or a mailbox it may send as
//!   (`grant_send_as`), else 403 `ErrorSendAsDenied`;
//! - injected faults ([`GraphFault`]) answer the next requests.
//!
//! A sent message is handed to the test's delivery hook: the recipients
//! (To, Cc, Bcc) get it without the Bcc field, the sender's Sent folder
//! with it, as Exchange does.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::grants::Principal;
use super::state::{State, random};

/// Graph's request body limit ("4 MB").
pub const MAX_REQUEST: usize = 4 * 1024 * 1024;
/// Upload session chunks must be multiples of this, but the last.
pub const CHUNK_UNIT: usize = 320 * 1024;

/// One sent message, as delivered.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The mailbox whose Sent folder keeps `with_bcc`.
    pub mailbox: String,
    pub recipients: Vec<String>,
    /// What recipients get: Bcc removed.
    pub for_recipients: Vec<u8>,
    /// What the Sent folder keeps.
    pub with_bcc: Vec<u8>,
}

/// A fault answered to the next Graph request.
#[derive(Debug, Clone)]
pub enum GraphFault {
    Status {
        status: u16,
        retry_after: Option<u64>,
        code: String,
        message: String,
    },
    Delay(Duration),
}

pub type Deliver = Arc<dyn Fn(&Sent) + Send + Sync>;

#[derive(Default)]
pub struct GraphState {
    pub sent: Vec<Sent>,
    pub requests: u64,
    pub faults: VecDeque<GraphFault>,
    pub deliver: Option<Deliver>,
    drafts: HashMap<String, Draft>,
    uploads: HashMap<String, Upload>,
}

struct Draft {
    mailbox: String,
    mime: Vec<u8>,
    attachments: Vec<(String, String, Vec<u8>)>,
}

struct Upload {
    draft: String,
    name: String,
    content_type: String,
    size: usize,
    bytes: Vec<u8>,
}

type Reply = Response<Full<Bytes>>;

pub fn is_graph_scope(scope: &str) -> bool {
    scope.contains("graph.microsoft.com")
}

pub fn is_graph_path(path: &str) -> bool {
    path.starts_with("/v1.0/") || path.starts_with("/graph-upload/")
}

pub async fn handle(req: Request<Incoming>, state: &std::sync::Mutex<State>, host: &str) -> Reply {
    let fault = {
        let mut s = state.lock().expect("idp state");
        s.graph.requests += 1;
        s.graph.faults.pop_front()
    };
    match fault {
        Some(GraphFault::Delay(d)) => tokio::time::sleep(d.min(Duration::from_secs(60))).await,
        Some(GraphFault::Status {
            status,
            retry_after,
            code,
            message,
        }) => {
            let mut r = error(status, &code, &message);
            if let Some(secs) = retry_after {
                r.headers_mut().insert("retry-after", secs.into());
            }
            return r;
        }
        None => {}
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let range = req
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match Limited::new(req.into_body(), MAX_REQUEST).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return error(
                413,
                "RequestEntityTooLarge",
                "The maximum request length supported is 4MB.",
            );
        }
    };
    let mut s = state.lock().expect("idp state");
    if let Some(id) = path.strip_prefix("/graph-upload/") {
        if bearer.is_some() {
            return error(
                400,
                "InvalidRequest",
                "Do not send an Authorization header to the upload URL.",
            );
        }
        return put_chunk(&mut s, id, range.as_deref(), &body);
    }
    let Some((mailbox, rest)) = path
        .strip_prefix("/v1.0/users/")
        .and_then(|p| p.split_once('/'))
    else {
        return error(404, "ResourceNotFound", "Resource not found.");
    };
    let mailbox = percent_decode(mailbox).to_lowercase();
    if let Err(r) = authorise(&s, bearer.as_deref(), &mailbox) {
        return *r;
    }
    let segments: Vec<&str> = rest.split('/').collect();
    match (method, segments.as_slice()) {
        (Method::POST, ["sendMail"]) => match decode(&body) {
            Ok(mime) => match send(&mut s, &mailbox, mime) {
                Ok(()) => status(202, Value::Null),
                Err(r) => *r,
            },
            Err(r) => *r,
        },
        (Method::POST, ["messages"]) => match decode(&body) {
            Ok(mime) => {
                let id = random("draft-");
                s.graph.drafts.insert(
                    id.clone(),
                    Draft {
                        mailbox,
                        mime,
                        attachments: Vec::new(),
                    },
                );
                status(201, json!({"id": id}))
            }
            Err(r) => *r,
        },
        (Method::DELETE, ["messages", id]) => {
            s.graph.drafts.remove(*id);
            status(204, Value::Null)
        }
        (Method::POST, ["messages", id, "attachments"]) => {
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            let bytes = STANDARD
                .decode(v["contentBytes"].as_str().unwrap_or_default())
                .unwrap_or_default();
            let Some(d) = s.graph.drafts.get_mut(*id) else {
                return error(
                    404,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                );
            };
            let name = v["name"].as_str().unwrap_or("attachment").to_owned();
            let ct = v["contentType"]
                .as_str()
                .unwrap_or("application/octet-stream")
                .to_owned();
            d.attachments.push((name, ct, bytes));
            status(201, json!({"id": random("att-")}))
        }
        (Method::POST, ["messages", id, "attachments", "createUploadSession"]) => {
            if !s.graph.drafts.contains_key(*id) {
                return error(
                    404,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                );
            }
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            let item = &v["AttachmentItem"];
            let session = random("up-");
            s.graph.uploads.insert(
                session.clone(),
                Upload {
                    draft: (*id).to_owned(),
                    name: item["name"].as_str().unwrap_or("attachment").to_owned(),
                    content_type: item["contentType"]
                        .as_str()
                        .unwrap_or("application/octet-stream")
                        .to_owned(),
                    size: item["size"].as_u64().unwrap_or(0) as usize,
                    bytes: Vec::new(),
                },
            );
            status(
                201,
                json!({"uploadUrl": format!("http://{host}/graph-upload/{session}")}),
            )
        }
        (Method::POST, ["messages", id, "send"]) => {
            let Some(d) = s.graph.drafts.remove(*id) else {
                return error(
                    404,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                );
            };
            let mime = assemble(&d.mime, &d.attachments);
            match send(&mut s, &d.mailbox, mime) {
                Ok(()) => status(202, Value::Null),
                Err(r) => *r,
            }
        }
        _ => error(400, "BadRequest", "Unsupported request."),
    }
}

fn authorise(s: &State, bearer: Option<&str>, mailbox: &str) -> Result<(), Box<Reply>> {
    let unauthorised = || {
        refuse(
            401,
            "InvalidAuthenticationToken",
            "Access token validation failure. Invalid audience.",
        )
    };
    let (user, app_only, scope) = bearer
        .and_then(|t| s.access_of(t))
        .ok_or_else(unauthorised)?;
    if !is_graph_scope(&scope) {
        return Err(unauthorised());
    }
    let principal = if app_only {
        if !scope.contains(".default") {
            return Err(unauthorised());
        }
        Principal::App { mailbox: user }
    } else {
        if !scope.contains("Mail.Send") {
            return Err(refuse(
                403,
                "ErrorAccessDenied",
                "Access is denied. Check credentials and try again.",
            ));
        }
        Principal::User(user)
    };
    s.grants
        .may_open(&principal, mailbox)
        .map_err(|reason| refuse(403, "ErrorAccessDenied", &reason))
}

fn send(s: &mut State, mailbox: &str, mime: Vec<u8>) -> Result<(), Box<Reply>> {
    let head_end = find(&mime, b"\r\n\r\n").map_or(mime.len(), |n| n + 2);
    let fields = fields(&mime[..head_end]);
    let from = fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("from"))
        .and_then(|(_, v)| addresses(v).into_iter().next())
        .unwrap_or_else(|| mailbox.to_owned());
    let may_send_as = from == mailbox
        || s.grants
            .send_as()
            .iter()
            .any(|(shared, users)| *shared == from && users.iter().any(|u| u == mailbox));
    if !may_send_as {
        return Err(refuse(
            403,
            "ErrorSendAsDenied",
            &format!(
                "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account {from}."
            ),
        ));
    }
    let recipients = distinct_recipients(&fields);
    if recipients.is_empty() {
        return Err(refuse(
            400,
            "ErrorInvalidRecipients",
            "At least one recipient is not valid.",
        ));
    }
    let for_recipients = without_bcc(&mime, head_end);
    let sent = Sent {
        mailbox: mailbox.to_owned(),
        recipients,
        for_recipients,
        with_bcc: mime,
    };
    if let Some(deliver) = s.graph.deliver.clone() {
        deliver(&sent);
    }
    s.graph.sent.push(sent);
    Ok(())
}

fn put_chunk(s: &mut State, id: &str, range: Option<&str>, body: &[u8]) -> Reply {
    let Some(up) = s.graph.uploads.get_mut(id) else {
        return error(404, "ItemNotFound", "The upload session was not found.");
    };
    let parsed = range.and_then(|r| r.strip_prefix("bytes ")).and_then(|r| {
        let (span, total) = r.split_once('/')?;
        let (a, b) = span.split_once('-')?;
        Some((
            a.parse::<usize>().ok()?,
            b.parse::<usize>().ok()?,
            total.parse::<usize>().ok()?,
        ))
    });
    let Some((first, last, total)) = parsed else {
        return error(
            400,
            "InvalidContentRange",
            "The Content-Range header is missing or malformed.",
        );
    };
    let is_last = last + 1 == total;
    let ok = total == up.size
        && first == up.bytes.len()
        && last >= first
        && last - first + 1 == body.len()
        && body.len() <= 4 * 1024 * 1024
        && (is_last || body.len().is_multiple_of(CHUNK_UNIT));
    if !ok {
        return error(
            416,
            "InvalidRange",
            "The Content-Range does not match the upload session.",
        );
    }
    up.bytes.extend_from_slice(body);
    if !is_last {
        return status(
            200,
            json!({"nextExpectedRanges": [format!("{}-", up.bytes.len())]}),
        );
    }
    let Some(up) = s.graph.uploads.remove(id) else {
        return error(404, "ItemNotFound", "The upload session was not found.");
    };
    match s.graph.drafts.get_mut(&up.draft) {
        Some(d) => {
            d.attachments.push((up.name, up.content_type, up.bytes));
            status(201, Value::Null)
        }
        None => error(404, "ErrorItemNotFound", "The draft is gone."),
    }
}

#[path = "graph_mime.rs"]
mod mime;
use mime::{addresses, assemble, distinct_recipients, fields, find, percent_decode, without_bcc};

fn decode(body: &[u8]) -> Result<Vec<u8>, Box<Reply>> {
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    STANDARD.decode(text).map_err(|_| {
        refuse(
            400,
            "ErrorMimeContentInvalidBase64String",
            "Invalid base64 string for MIME content.",
        )
    })
}

fn status(code: u16, body: Value) -> Reply {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::OK))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(text)))
        .expect("graph reply")
}

fn error(code: u16, error_code: &str, message: &str) -> Reply {
    status(
        code,
        json!({"error": {"code": error_code, "message": message}}),
    )
}

fn refuse(code: u16, error_code: &str, message: &str) -> Box<Reply> {
    Box::new(error(code, error_code, message))
}
