//! Submitting through Microsoft Graph, for tenants and mailboxes where the
//! provider has switched SMTP AUTH off (`535 5.7.139`): mailgate plays the
//! SMTP server ([`crate::submit::accept`]) and hands each message to Graph
//! as MIME. `docs/design.md` ("Sending through Graph") explains the
//! choices: how the recipients are made to match the envelope
//! ([`envelope`]), how a message over Graph's request limit is sent
//! ([`split`]), and what each Graph answer becomes for the client
//! ([`reply`]).

mod api;
mod envelope;
mod reply;
mod sink;
mod split;
mod submitter;

pub use api::{Api, CHUNK, MAX_REQUEST_BODY};
pub use envelope::{EnvelopeError, rewrite};
pub use reply::{Outcome, reply_for};
pub use sink::{
    DEFAULT_MAX_MESSAGE, GRAPH_SLOTS_PER_MAILBOX, GraphShared, GraphSink, GraphTokens,
    UPLOAD_SESSION_MIN,
};
pub use split::{Attachment, SplitError, split};
pub use submitter::{GraphSubmitter, SUCCESS_235};
