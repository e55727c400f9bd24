//! [`GraphSink`]: one authenticated session's way to Graph. It checks the
//! sender, rewrites the recipients to the envelope, holds one of the
//! mailbox's Graph slots (Graph allows 4 concurrent requests per app and
//! mailbox) and sends in one `sendMail` or, for large messages, as a draft
//! with uploaded attachments ([`super::split`]). A refused token is
//! refreshed once.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::api::{Answer, Api, CHUNK, MAX_REQUEST_BODY};
use super::envelope::rewrite;
use super::reply::{Outcome, reply_for, unauthorised};
use super::split::{Attachment, encoded_len, split};
use super::volume::{MustWait, UploadWindow};
use crate::base::{AccountName, BoxFuture};
use crate::gate::MailboxGate;
use crate::secret::Secret;
use crate::submit::accept::{Message, MessageSink, Reply};
use crate::token::{TokenError, TokenSource};

/// Default largest message (Exchange Online's default send limit).
pub const DEFAULT_MAX_MESSAGE: usize = 35 * 1024 * 1024;
/// Concurrent Graph requests per mailbox (Graph's limit per app and mailbox).
pub const GRAPH_SLOTS_PER_MAILBOX: usize = 4;
/// Attachments at least this large go through an upload session; smaller
/// ones in one request (Graph's documented split).
pub const UPLOAD_SESSION_MIN: usize = 3 * 1024 * 1024;

/// What every sink of a listener shares.
pub struct GraphShared {
    pub api: Api,
    pub max_size: usize,
    pub slots: MailboxGate,
    /// Where Graph tokens come from (the listener's token source).
    pub tokens: Arc<dyn TokenSource>,
    /// The bytes each mailbox sent in Graph's 5-minute upload window.
    pub volume: UploadWindow,
}

/// The sink of one authenticated session.
pub struct GraphSink {
    shared: Arc<GraphShared>,
    /// The authenticated mailbox: the `users/{id}` of every request.
    mailbox: String,
    /// Who MAIL FROM may name: the mailbox and the shared mailboxes it may
    /// send as.
    senders: Vec<AccountName>,
    token: Mutex<Secret<String>>,
}

impl GraphSink {
    pub fn new(
        shared: Arc<GraphShared>,
        mailbox: String,
        senders: Vec<AccountName>,
        token: Secret<String>,
    ) -> Self {
        Self {
            shared,
            mailbox,
            senders,
            token: Mutex::new(token),
        }
    }

    fn token(&self) -> Secret<String> {
        self.token.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs `call` with the current token; on 401 once more with a fresh one.
    async fn authorised<F, Fut>(&self, call: F) -> Result<Value, Reply>
    where
        F: Fn(Secret<String>) -> Fut,
        Fut: std::future::Future<Output = Answer>,
    {
        let token = self.token();
        match call(token.clone()).await {
            Err(Outcome::Status { status: 401, .. }) => {}
            other => return other.map_err(|o| refusal(&o)),
        }
        let fresh = self
            .shared
            .tokens
            .graph_token(&self.mailbox, Some(&token))
            .await
            .map_err(|e| unauthorised(matches!(e, TokenError::Temporary { .. })))?;
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = fresh.clone();
        call(fresh).await.map_err(|o| refusal(&o))
    }

    async fn send_mime(&self, mime: Vec<u8>) -> Result<(), Reply> {
        let api = &self.shared.api;
        if encoded_len(mime.len()) <= MAX_REQUEST_BODY {
            let url = api.url(&self.mailbox, "/sendMail");
            return self
                .authorised(|t| {
                    let (url, mime) = (&url, &mime);
                    async move { api.post_mime(url, &t, mime).await }
                })
                .await
                .map(drop);
        }
        let (skeleton, attachments) = split(&mime, MAX_REQUEST_BODY).map_err(|e| Reply {
            code: 552,
            text: format!("5.3.4 {e}"),
        })?;
        let url = api.url(&self.mailbox, "/messages");
        let draft = self
            .authorised(|t| {
                let (url, skeleton) = (&url, &skeleton);
                async move { api.post_mime(url, &t, skeleton).await }
            })
            .await?;
        let id = draft["id"].as_str().unwrap_or_default().to_owned();
        if id.is_empty() {
            return Err(Reply {
                code: 451,
                text: "4.4.0 Microsoft Graph created no draft; try again later".into(),
            });
        }
        let draft_url = api.url(&self.mailbox, &format!("/messages/{id}"));
        let sent = self.finish_draft(&draft_url, &attachments).await;
        if sent.is_err() {
            let token = self.token();
            let _ = api.delete(&draft_url, &token).await;
        }
        sent
    }

    async fn finish_draft(&self, draft: &str, attachments: &[Attachment]) -> Result<(), Reply> {
        let api = &self.shared.api;
        for a in attachments {
            if a.bytes.len() < UPLOAD_SESSION_MIN {
                let url = format!("{draft}/attachments");
                let body = file_attachment(a);
                self.authorised(|t| {
                    let (url, body) = (&url, &body);
                    async move { api.post_json(url, &t, body).await }
                })
                .await?;
                continue;
            }
            let url = format!("{draft}/attachments/createUploadSession");
            let body = json!({ "AttachmentItem": item(a) });
            let session = self
                .authorised(|t| {
                    let (url, body) = (&url, &body);
                    async move { api.post_json(url, &t, body).await }
                })
                .await?;
            let upload = session["uploadUrl"].as_str().unwrap_or_default().to_owned();
            for (n, chunk) in a.bytes.chunks(CHUNK).enumerate() {
                api.put_chunk(&upload, chunk, n * CHUNK, a.bytes.len())
                    .await
                    .map_err(|o| refusal(&o))?;
            }
        }
        let url = format!("{draft}/send");
        self.authorised(|t| {
            let url = &url;
            async move { api.post_json(url, &t, &Value::Null).await }
        })
        .await
        .map(drop)
    }
}

impl MessageSink for GraphSink {
    fn max_size(&self) -> usize {
        self.shared.max_size
    }

    fn check_sender<'a>(&'a self, from: &'a str) -> BoxFuture<'a, Result<(), Reply>> {
        Box::pin(async move { sender_allowed(&self.senders, from) })
    }

    fn send(&self, message: Message) -> BoxFuture<'_, Result<(), Reply>> {
        Box::pin(async move {
            sender_allowed(&self.senders, &message.envelope.from)?;
            if message.content.len() > self.shared.max_size {
                return Err(Reply {
                    code: 552,
                    text: format!(
                        "5.3.4 Message larger than the limit of {} bytes",
                        self.shared.max_size
                    ),
                });
            }
            let mime =
                rewrite(&message.content, &message.envelope.recipients).map_err(|e| Reply {
                    code: 554,
                    text: format!("5.6.0 {e}"),
                })?;
            self.count_upload(mime.len())?;
            let slot = self.slot().await?;
            let sent = self.send_mime(mime).await;
            drop(slot);
            sent
        })
    }
}

impl GraphSink {
    /// Counts the message against the mailbox's upload volume, or answers
    /// when it would fit again (temporary: the client keeps the message).
    fn count_upload(&self, bytes: usize) -> Result<(), Reply> {
        let key = AccountName::parse(&self.mailbox)
            .map(|n| n.as_str().to_owned())
            .unwrap_or_else(|_| self.mailbox.clone());
        let volume = &self.shared.volume;
        volume
            .reserve(&key, bytes, std::time::Instant::now())
            .map_err(|MustWait(wait)| Reply {
                code: 451,
                text: format!(
                    "4.7.0 Microsoft Graph's upload limit for this mailbox ({} bytes \
                     per 5 minutes) is reached; try again in {} s",
                    volume.limit(),
                    wait.as_secs().max(1)
                ),
            })
    }

    async fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Reply> {
        let name = AccountName::parse(&self.mailbox).map_err(|_| Reply {
            code: 550,
            text: "5.1.7 The mailbox name is not usable with Microsoft Graph".into(),
        })?;
        self.shared.slots.enter(&name).await.map_err(|_| Reply {
            code: 451,
            text: "4.7.0 Too many concurrent Microsoft Graph requests for this mailbox; \
                   try again shortly"
                .into(),
        })
    }
}

/// MAIL FROM must name the mailbox or a shared mailbox it may send as; the
/// null sender has no mailbox to send from.
fn sender_allowed(senders: &[AccountName], from: &str) -> Result<(), Reply> {
    if from.is_empty() {
        return Err(Reply {
            code: 550,
            text: "5.7.60 The null sender cannot send through Microsoft Graph".into(),
        });
    }
    let allowed = AccountName::parse(from).is_ok_and(|f| senders.contains(&f));
    if allowed {
        Ok(())
    } else {
        Err(Reply {
            code: 550,
            text: format!(
                "5.7.60 Not allowed to send as {}: MAIL FROM must be the signed-in \
                 mailbox or a shared mailbox it may send as",
                printable(from)
            ),
        })
    }
}

fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(320).collect()
}

fn refusal(outcome: &Outcome) -> Reply {
    reply_for(outcome).unwrap_or(Reply {
        code: 451,
        text: "4.4.0 Microsoft Graph gave no clear answer; try again later".into(),
    })
}

fn item(a: &Attachment) -> Value {
    let mut v = json!({
        "attachmentType": "file",
        "name": a.name,
        "size": a.bytes.len(),
        "contentType": a.content_type,
        "isInline": a.inline,
    });
    if let Some(id) = &a.content_id {
        v["contentId"] = json!(id);
    }
    v
}

fn file_attachment(a: &Attachment) -> Value {
    use base64::Engine;
    let mut v = item(a);
    v["@odata.type"] = json!("#microsoft.graph.fileAttachment");
    v["contentBytes"] = json!(base64::engine::general_purpose::STANDARD.encode(&a.bytes));
    if let Some(o) = v.as_object_mut() {
        o.remove("attachmentType");
        o.remove("size");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<AccountName> {
        list.iter()
            .map(|s| AccountName::parse(s).unwrap())
            .collect()
    }

    #[test]
    fn sender_rules() {
        let senders = names(&["alice@x.example", "shared@x.example"]);
        assert!(sender_allowed(&senders, "Alice@X.example").is_ok());
        assert!(sender_allowed(&senders, "shared@x.example").is_ok());
        let other = sender_allowed(&senders, "boss@x.example").unwrap_err();
        assert_eq!(other.code, 550);
        assert!(
            other
                .text
                .starts_with("5.7.60 Not allowed to send as boss@x.example")
        );
        let null = sender_allowed(&senders, "").unwrap_err();
        assert!(null.text.starts_with("5.7.60"), "{null:?}");
    }

    struct NoTokens;
    impl TokenSource for NoTokens {
        fn grant<'a>(
            &'a self,
            _: crate::token::TokenRequest<'a>,
        ) -> BoxFuture<'a, Result<crate::token::Grant, TokenError>> {
            Box::pin(async { Err(TokenError::BadCredentials) })
        }
        fn rejected<'a>(&'a self, _: &'a crate::token::Grant) -> BoxFuture<'a, bool> {
            Box::pin(async { false })
        }
    }

    /// A full window answers 451 with the wait and never reaches Graph
    /// (here a closed port, which would answer differently).
    #[tokio::test]
    async fn a_full_upload_window_answers_451_without_calling_graph() {
        use std::time::{Duration, Instant};
        let shared = Arc::new(GraphShared {
            api: Api::new("http://127.0.0.1:9", Duration::from_secs(1)).unwrap(),
            max_size: 4000,
            slots: MailboxGate::new(4, Duration::from_secs(1)),
            tokens: Arc::new(NoTokens),
            volume: UploadWindow::new(4000, Duration::from_secs(300)),
        });
        shared
            .volume
            .reserve("alice@x.example", 3990, Instant::now())
            .unwrap();
        let sink = GraphSink::new(
            shared,
            "Alice@X.example".into(),
            names(&["alice@x.example"]),
            Secret::new("t".into()),
        );
        let message = Message {
            envelope: crate::submit::accept::Envelope {
                from: "alice@x.example".into(),
                recipients: vec!["bob@y.example".into()],
                eight_bit: false,
                smtputf8: false,
            },
            content: "From: alice@x.example\r\nTo: bob@y.example\r\n\r\nhi\r\n"
                .as_bytes()
                .to_vec()
                .into(),
        };
        let reply = sink.send(message).await.unwrap_err();
        assert_eq!(reply.code, 451, "{reply:?}");
        assert!(
            reply.text.starts_with(
                "4.7.0 Microsoft Graph's upload limit for this mailbox (4000 bytes per 5 minutes) \
                 is reached; try again in "
            ),
            "{reply:?}"
        );
        let secs: u64 = reply.text.rsplit(' ').nth(1).unwrap().parse().unwrap();
        assert!((299..=300).contains(&secs), "{reply:?}");
    }
}
