//! `GraphSink` against the test Graph (tests/support/idp/graph.rs), which
//! delivers into the private Dovecot; every delivery is checked with a real
//! IMAP fetch.

mod auto_real;
mod clients;
mod send;
mod sink;
mod volume;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mailgate::base::BoxFuture;
use mailgate::gate::MailboxGate;
use mailgate::secret::Secret;
use mailgate::submit::accept::{Envelope, Message, MessageSink};
use mailgate::submit::graph::{
    Api, DEFAULT_MAX_MESSAGE, DEFAULT_UPLOAD_PER_WINDOW, GraphShared, GraphSink, UPLOAD_WINDOW,
    UploadWindow,
};
use mailgate::token::{Grant, TokenError, TokenRequest, TokenSource};

use crate::servers_smoke::python;
use crate::support::idp::BlockingIdp;
use crate::support::servers::{MailServers, StartOptions};

pub const ALICE: &str = "alice@example.test";
pub const BOB: &str = "bob@example.test";
pub const CAROL: &str = "carol@example.test";
pub const SHARED: &str = "sales@example.test";
/// The delegated Graph scope mailgate asks for.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/Mail.Send offline_access";
/// Bound on one Graph request in these tests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The test IdP (with its Graph) and the mail servers it delivers into.
pub struct World {
    pub idp: BlockingIdp,
    pub servers: Arc<MailServers>,
}

impl World {
    pub fn start() -> World {
        let idp = BlockingIdp::start();
        for user in [ALICE, BOB, CAROL, SHARED] {
            idp.add_user(user);
        }
        let servers = Arc::new(
            MailServers::start_with(
                &idp.introspect_url(),
                &[ALICE, BOB, CAROL, SHARED],
                &StartOptions::default(),
            )
            .unwrap_or_else(|e| panic!("mail servers did not start:\n{e}")),
        );
        deliver_into(&idp, servers.clone());
        World { idp, servers }
    }

    /// A sink for `mailbox` holding `token`; a refresh answers `fresh`.
    pub fn sink(&self, mailbox: &str, token: &str, senders: &[&str]) -> GraphSink {
        self.sink_refreshing(mailbox, token, senders, None)
    }

    pub fn sink_refreshing(
        &self,
        mailbox: &str,
        token: &str,
        senders: &[&str],
        fresh: Option<String>,
    ) -> GraphSink {
        let shared = Arc::new(GraphShared {
            api: Api::new(&self.idp.graph_url(), REQUEST_TIMEOUT).unwrap(),
            max_size: DEFAULT_MAX_MESSAGE,
            slots: MailboxGate::new(4, Duration::from_secs(5)),
            tokens: Arc::new(FixedTokens(fresh)),
            volume: UploadWindow::new(DEFAULT_UPLOAD_PER_WINDOW, UPLOAD_WINDOW),
        });
        let senders = senders
            .iter()
            .map(|s| mailgate::base::AccountName::parse(s).unwrap())
            .collect();
        GraphSink::new(shared, mailbox.into(), senders, Secret::new(token.into()))
    }

    /// A Graph token for `mailbox`, as mailgate's token service would get.
    pub fn graph_token(&self, mailbox: &str) -> String {
        self.idp.mint_scoped(mailbox, GRAPH_SCOPE).access_token
    }

    /// Every message in `user`'s `folder`, fetched over IMAP.
    pub fn fetch(&self, user: &str, folder: &str) -> Vec<Vec<u8>> {
        fetch(&self.idp, &self.servers, user, folder)
    }
}

/// Makes the test Graph deliver what it accepts as Exchange would: into
/// each recipient's INBOX and the sender's Sent folder on `servers`.
pub fn deliver_into(idp: &BlockingIdp, servers: Arc<MailServers>) {
    idp.deliver_graph_mail(Arc::new(move |sent| {
        for r in &sent.recipients {
            servers
                .seed_message(r, &sent.for_recipients)
                .unwrap_or_else(|e| panic!("deliver to {r}: {e}"));
        }
        servers
            .store_in_folder(&sent.mailbox, "Sent", &sent.with_bcc)
            .unwrap_or_else(|e| panic!("Sent copy: {e}"));
    }));
}

/// Every message in `user`'s `folder`, fetched over IMAP from Dovecot with
/// a token the IdP mints for `user`.
pub fn fetch(idp: &BlockingIdp, servers: &MailServers, user: &str, folder: &str) -> Vec<Vec<u8>> {
    let token = idp.mint(user).access_token;
    let out = python(
        FETCH,
        &[
            &servers.imaps_port().to_string(),
            &servers.ca_pem_path().display().to_string(),
            user,
            &token,
            folder,
        ],
    );
    out.lines()
        .filter_map(|l| l.strip_prefix("msg "))
        .map(|b| STANDARD.decode(b.trim()).unwrap())
        .collect()
}

/// A stand-in for the token service: a refresh answers the token given
/// (minted from the test IdP beforehand), or a temporary failure.
struct FixedTokens(Option<String>);

impl TokenSource for FixedTokens {
    fn grant<'a>(&'a self, _: TokenRequest<'a>) -> BoxFuture<'a, Result<Grant, TokenError>> {
        Box::pin(async { Err(TokenError::BadCredentials) })
    }

    fn rejected<'a>(&'a self, _: &'a Grant) -> BoxFuture<'a, bool> {
        Box::pin(async { false })
    }

    fn graph_token<'a>(
        &'a self,
        _user: &'a str,
        _refused: Option<&'a Secret<String>>,
    ) -> BoxFuture<'a, Result<Secret<String>, TokenError>> {
        let answer = match &self.0 {
            Some(t) => Ok(Secret::new(t.clone())),
            None => Err(TokenError::Temporary {
                reason: "no refresh in this test".into(),
                retry_after: None,
            }),
        };
        Box::pin(async move { answer })
    }
}

const FETCH: &str = r#"
import imaplib, ssl, sys, base64
port, ca, user, token, folder = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
m = imaplib.IMAP4_SSL("127.0.0.1", int(port), ssl_context=ctx, timeout=20)
m.authenticate("XOAUTH2", lambda _: ("user=%s\x01auth=Bearer %s\x01\x01" % (user, token)).encode())
typ, data = m.select(folder, readonly=True)
if typ == "OK" and int(data[0]) > 0:
    typ, data = m.fetch("1:*", "(BODY.PEEK[])")
    for item in data:
        if isinstance(item, tuple):
            print("msg", base64.b64encode(item[1]).decode())
m.logout()
"#;

pub fn message(from: &str, recipients: &[&str], content: impl Into<Vec<u8>>) -> Message {
    Message {
        envelope: Envelope {
            from: from.into(),
            recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
            eight_bit: true,
            smtputf8: false,
        },
        content: content.into().into(),
    }
}

pub fn send(sink: &GraphSink, m: Message) -> Result<(), mailgate::submit::accept::Reply> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { tokio::time::timeout(Duration::from_secs(120), sink.send(m)).await })
        .expect("send bounded in time")
}
