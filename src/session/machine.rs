//! Wiring: which machine serves which protocol. The machines and their
//! traits live in `proto`; the driver only sees the traits.

use crate::base::Protocol;
use crate::proto::proxy_refusal::RefuseProxyHeader;
use crate::proto::{ClientOptions, UpstreamLogin};

pub use crate::proto::{ClientMachine, UpstreamMachine};

/// The client machine for `protocol`, refusing a PROXY header as the
/// client's first bytes (`proto::proxy_refusal`). `smtp_extensions`, when
/// given, is what an SMTP EHLO offers (the submission backend's list).
pub fn client_machine(
    protocol: Protocol,
    options: ClientOptions,
    smtp_extensions: Option<Vec<String>>,
) -> Box<dyn ClientMachine> {
    let (machine, refusal): (Box<dyn ClientMachine>, &[u8]) = match protocol {
        Protocol::Imap => (
            Box::new(crate::proto::imap::ImapClient::new(options)),
            b"* BYE PROXY protocol header refused\r\n",
        ),
        Protocol::Pop3 => (
            Box::new(crate::proto::pop3::Pop3Client::new(options)),
            b"-ERR PROXY protocol header refused\r\n",
        ),
        Protocol::Smtp => (
            Box::new(match smtp_extensions {
                Some(list) => crate::proto::smtp::SmtpClient::with_extensions(options, list),
                None => crate::proto::smtp::SmtpClient::new(options),
            }),
            b"554 5.7.1 PROXY protocol header refused\r\n",
        ),
    };
    Box::new(RefuseProxyHeader::new(machine, refusal))
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
