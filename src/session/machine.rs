//! The driver's view of the protocol machines: one trait per side, so a single
//! driver serves IMAP, POP3 and SMTP.

use bytes::BytesMut;

use crate::base::Protocol;
use crate::proto::{
    ClientOptions, ClientStep, LoginFailure, UpstreamLogin, UpstreamStep, UpstreamSuccess,
};

pub trait ClientMachine: Send {
    fn greeting(&self) -> Vec<u8>;
    fn step(&mut self, input: &mut BytesMut) -> ClientStep;
    fn tls_established(&mut self);
    fn login_failed(&mut self, failure: &LoginFailure) -> ClientStep;
    fn login_succeeded(&mut self, upstream: &UpstreamSuccess) -> Vec<u8>;
    fn timeout_reply(&self) -> Vec<u8>;
    fn shutdown_reply(&self) -> Vec<u8>;
    /// SMTP: the client's EHLO name, replayed upstream.
    fn client_name(&self) -> Option<String> {
        None
    }
}

pub trait UpstreamMachine: Send {
    fn step(&mut self, input: &mut BytesMut) -> UpstreamStep;
}

macro_rules! client_machine {
    ($ty:ty) => {
        impl ClientMachine for $ty {
            fn greeting(&self) -> Vec<u8> {
                <$ty>::greeting(self)
            }
            fn step(&mut self, input: &mut BytesMut) -> ClientStep {
                <$ty>::step(self, input)
            }
            fn tls_established(&mut self) {
                <$ty>::tls_established(self)
            }
            fn login_failed(&mut self, failure: &LoginFailure) -> ClientStep {
                <$ty>::login_failed(self, failure)
            }
            fn login_succeeded(&mut self, upstream: &UpstreamSuccess) -> Vec<u8> {
                <$ty>::login_succeeded(self, upstream)
            }
            fn timeout_reply(&self) -> Vec<u8> {
                <$ty>::timeout_reply(self)
            }
            fn shutdown_reply(&self) -> Vec<u8> {
                <$ty>::shutdown_reply(self)
            }
        }
    };
}

client_machine!(crate::proto::imap::ImapClient);
client_machine!(crate::proto::pop3::Pop3Client);

impl ClientMachine for crate::proto::smtp::SmtpClient {
    fn greeting(&self) -> Vec<u8> {
        Self::greeting(self)
    }
    fn step(&mut self, input: &mut BytesMut) -> ClientStep {
        Self::step(self, input)
    }
    fn tls_established(&mut self) {
        Self::tls_established(self)
    }
    fn login_failed(&mut self, failure: &LoginFailure) -> ClientStep {
        Self::login_failed(self, failure)
    }
    fn login_succeeded(&mut self, upstream: &UpstreamSuccess) -> Vec<u8> {
        Self::login_succeeded(self, upstream)
    }
    fn timeout_reply(&self) -> Vec<u8> {
        Self::timeout_reply(self)
    }
    fn shutdown_reply(&self) -> Vec<u8> {
        Self::shutdown_reply(self)
    }
    fn client_name(&self) -> Option<String> {
        Self::client_name(self).map(str::to_owned)
    }
}

macro_rules! upstream_machine {
    ($ty:ty) => {
        impl UpstreamMachine for $ty {
            fn step(&mut self, input: &mut BytesMut) -> UpstreamStep {
                <$ty>::step(self, input)
            }
        }
    };
}

upstream_machine!(crate::proto::imap::ImapUpstream);
upstream_machine!(crate::proto::pop3::Pop3Upstream);
upstream_machine!(crate::proto::smtp::SmtpUpstream);

pub fn client_machine(protocol: Protocol, options: ClientOptions) -> Box<dyn ClientMachine> {
    match protocol {
        Protocol::Imap => Box::new(crate::proto::imap::ImapClient::new(options)),
        Protocol::Pop3 => Box::new(crate::proto::pop3::Pop3Client::new(options)),
        Protocol::Smtp => Box::new(crate::proto::smtp::SmtpClient::new(options)),
    }
}

pub fn upstream_machine(
    protocol: Protocol,
    login: UpstreamLogin,
    starttls: bool,
    client_name: Option<String>,
) -> Box<dyn UpstreamMachine> {
    match protocol {
        Protocol::Imap => Box::new(crate::proto::imap::ImapUpstream::new(login, starttls)),
        Protocol::Pop3 => Box::new(crate::proto::pop3::Pop3Upstream::new(login, starttls)),
        Protocol::Smtp => Box::new(crate::proto::smtp::SmtpUpstream::new(
            login,
            starttls,
            client_name.unwrap_or_default(),
        )),
    }
}
