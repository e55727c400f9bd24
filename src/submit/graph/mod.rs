//! Submitting through Microsoft Graph, for tenants and mailboxes where the
//! provider has switched SMTP AUTH off (`535 5.7.139`): mailgate plays the
//! SMTP server ([`crate::submit::accept`]) and hands each message to Graph
//! as MIME. `docs/design.md` ("Sending through Graph") explains the
//! choices: how the recipients are made to match the envelope
//! ([`envelope`]), how a message over Graph's request limit is sent
//! ([`split`]), and what each Graph answer becomes for the client
//! ([`reply`]).

use std::time::Duration;

/// Time allowed for one Graph request (a 4 MB upload chunk included).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a Graph session's client may stay silent between commands
/// (RFC 5321 §4.5.3.2: at least 5 minutes).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How long DATA may take from `354` to the final dot (RFC 5321 §4.5.3.2
/// gives 3 minutes per block and 10 for the end; 35 MB on a slow line
/// needs longer).
pub const DATA_TIMEOUT: Duration = Duration::from_secs(30 * 60);

mod api;
mod envelope;
mod reply;
mod sink;
mod split;
mod submitter;
mod volume;

pub use api::{Api, CHUNK, MAX_REQUEST_BODY};
pub use envelope::{EnvelopeError, rewrite};
pub use reply::{Outcome, reply_for};
pub use sink::{
    DEFAULT_MAX_MESSAGE, GRAPH_SLOTS_PER_MAILBOX, GraphShared, GraphSink, UPLOAD_SESSION_MIN,
};
pub use split::{Attachment, SplitError, split};
pub use submitter::{GraphSubmitter, SUCCESS_235};
pub use volume::{
    DEFAULT_UPLOAD_PER_WINDOW, MAX_MAILBOXES, MAX_SENDS_PER_WINDOW, MustWait, UPLOAD_WINDOW,
    UploadWindow,
};
