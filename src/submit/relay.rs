//! The first submission backend, and the path every protocol takes today:
//! the provider's own login (XOAUTH2 through `upstream`), then a byte relay.

use std::time::Duration;

use bytes::BytesMut;

use super::{Submission, Submitter};
use crate::net::Stream;
use crate::proto::smtp::SmtpUpstream;
use crate::proto::{UpstreamLogin, UpstreamMachine, UpstreamSuccess};
use crate::relay::{RelayError, RelayStats, relay};
use crate::token::BoxFuture;
use crate::upstream::{self, Endpoint, LoggedIn, UpstreamError};

/// Submits by relaying to the provider's SMTP endpoint.
pub struct RelaySubmitter {
    endpoint: Endpoint,
    idle: Duration,
}

impl RelaySubmitter {
    /// `idle` ends a relay in which nothing moved for that long.
    pub fn new(endpoint: Endpoint, idle: Duration) -> Self {
        Self { endpoint, idle }
    }
}

impl Submitter for RelaySubmitter {
    fn open<'a>(
        &'a self,
        login: UpstreamLogin,
        client_name: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Box<dyn Submission>, UpstreamError>> {
        Box::pin(async move {
            let machine = SmtpUpstream::new(
                login,
                self.endpoint.starttls(),
                client_name.unwrap_or_default().to_owned(),
            );
            let relayed = Relayed::open(&self.endpoint, Box::new(machine), self.idle).await?;
            Ok(Box::new(relayed) as Box<dyn Submission>)
        })
    }
}

/// An upstream session logged in and waiting to be relayed.
pub struct Relayed {
    upstream: LoggedIn,
    idle: Duration,
}

impl Relayed {
    /// Connects and logs in with `machine` (any protocol).
    pub async fn open(
        endpoint: &Endpoint,
        machine: Box<dyn UpstreamMachine>,
        idle: Duration,
    ) -> Result<Self, UpstreamError> {
        let upstream = upstream::login(endpoint, machine).await?;
        Ok(Self { upstream, idle })
    }
}

impl Submission for Relayed {
    fn success(&self) -> &UpstreamSuccess {
        &self.upstream.success
    }

    fn run(
        self: Box<Self>,
        mut client: Stream,
        leftover: BytesMut,
    ) -> BoxFuture<'static, Result<RelayStats, RelayError>> {
        let idle = self.idle;
        let LoggedIn {
            mut stream,
            leftover: upstream_leftover,
            ..
        } = self.upstream;
        Box::pin(async move {
            relay(
                &mut client,
                &mut stream,
                &leftover,
                &upstream_leftover,
                idle,
            )
            .await
        })
    }
}
