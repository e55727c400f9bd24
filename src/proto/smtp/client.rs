//! SMTP towards the legacy client, up to the moment it has presented
//! credentials.
//!
//! mailgate answers EHLO itself and advertises `AUTH PLAIN LOGIN` (RFC 4954):
//! Microsoft's own EHLO offers only `AUTH LOGIN XOAUTH2`, and only after
//! STARTTLS. The client's EHLO name is kept so the driver can replay it
//! upstream. After STARTTLS everything learnt from the client is forgotten and
//! it must EHLO again (RFC 3207 §4.2). Mail transactions wait for AUTH
//! (`530 5.7.0`, RFC 4954 §6). A pipelined client (RFC 2920) may send MAIL FROM
//! right behind AUTH: those bytes stay in the buffer for the relay.

use bytes::BytesMut;

use crate::proto::line::verb_and_rest;
use crate::proto::line_client::{LineClient, SaslReplies};
use crate::proto::sasl::SaslError;
use crate::proto::text::{self, sanitize};
use crate::proto::{ClientMachine, Machine};
use crate::proto::{ClientOptions, ClientStep, LoginFailure, UpstreamSuccess};

/// Longest EHLO/HELO name kept (a domain is at most 255 octets, RFC 5321 §4.5.3.1.2).
pub const MAX_CLIENT_NAME: usize = 255;

/// RFC 4954 §4: `AUTH mechanism [initial-response]`.
const SASL: SaslReplies = SaslReplies {
    prompt: "334",
    no_mechanism: "501 5.5.4 Syntax: AUTH mechanism\r\n",
    unknown_mechanism: "504 5.5.4 Unrecognized authentication type\r\n",
    failed: sasl_error,
};

/// What EHLO offers before AUTH when the session is relayed: the provider
/// answers everything after AUTH, and these three are what it is known to
/// offer to every client.
const RELAY_EXTENSIONS: [&str; 3] = ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"];

/// The SMTP client-side machine.
#[derive(Debug)]
pub struct SmtpClient {
    core: LineClient<()>,
    client_name: Option<String>,
    extensions: Vec<String>,
}

impl SmtpClient {
    pub fn new(opts: ClientOptions) -> Self {
        Self::with_extensions(opts, RELAY_EXTENSIONS.map(String::from).to_vec())
    }

    /// A machine whose EHLO offers `extensions` (AUTH and STARTTLS are added
    /// where they apply): when mailgate is the server after AUTH, the client
    /// must be told, before it authenticates, what that server takes
    /// (`server::extensions`, e.g. the backend's real SIZE).
    pub fn with_extensions(opts: ClientOptions, extensions: Vec<String>) -> Self {
        Self {
            core: LineClient::new(opts),
            client_name: None,
            extensions,
        }
    }

    fn hostname(&self) -> String {
        sanitize(&self.core.opts.hostname, MAX_CLIENT_NAME).replace(' ', "")
    }

    fn command(&mut self, line: &[u8]) -> ClientStep {
        if let Some(close) = self
            .core
            .over_budget("421 4.7.0 Too many commands before login, closing connection\r\n")
        {
            return close;
        }
        let (verb, rest) = verb_and_rest(line);
        match verb.as_str() {
            "EHLO" => self.hello(rest, true),
            "HELO" => self.hello(rest, false),
            "AUTH" if self.client_name.is_none() => reply("503 5.5.1 EHLO first\r\n"),
            "AUTH" if self.core.tls_required() => {
                reply("530 5.7.0 Must issue a STARTTLS command first\r\n")
            }
            "AUTH" => self.core.auth(rest, &SASL),
            "STARTTLS" => self.starttls(rest),
            "RSET" | "NOOP" => reply("250 2.0.0 OK\r\n"),
            "QUIT" => self.core.close("221 2.0.0 Bye\r\n", "client quit"),
            "MAIL" | "RCPT" | "DATA" | "BDAT" => reply("530 5.7.0 Authentication required\r\n"),
            _ => reply("500 5.5.2 Command not recognized\r\n"),
        }
    }

    /// EHLO and HELO (RFC 5321 §4.1.1.1); the name must be printable ASCII.
    fn hello(&mut self, rest: &[u8], extended: bool) -> ClientStep {
        let name = rest
            .split(|&b| b == b' ')
            .find(|w| !w.is_empty())
            .unwrap_or_default();
        if name.is_empty() || name.len() > MAX_CLIENT_NAME || !name.iter().all(u8::is_ascii_graphic)
        {
            let verb = if extended { "EHLO" } else { "HELO" };
            return ClientStep::Reply(
                format!("501 5.5.4 Syntax: {verb} hostname\r\n").into_bytes(),
            );
        }
        self.client_name = Some(String::from_utf8_lossy(name).into_owned());
        if !extended {
            return ClientStep::Reply(format!("250 {}\r\n", self.hostname()).into_bytes());
        }
        let mut lines = vec![self.hostname()];
        lines.extend(self.extensions.iter().cloned());
        if !self.core.tls_required() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        if self.core.starttls_offered() {
            lines.push("STARTTLS".into());
        }
        ClientStep::Reply(multi_line(250, &lines))
    }

    /// RFC 3207 §4: no parameters; refused when TLS is on or not configured.
    fn starttls(&mut self, rest: &[u8]) -> ClientStep {
        if !rest.is_empty() {
            return reply("501 5.5.4 Syntax: STARTTLS\r\n");
        }
        if self.core.opts.tls_active {
            return reply("503 5.5.1 TLS already active\r\n");
        }
        if !self.core.opts.starttls_available {
            return reply("502 5.5.1 STARTTLS not available\r\n");
        }
        self.core.start_tls(b"220 2.0.0 Ready to start TLS\r\n")
    }
}

impl Machine for SmtpClient {
    type Step = ClientStep;

    /// Parses at most one command or SASL line off the front of `input` and
    /// leaves every later byte there. While a login or TLS upgrade is pending,
    /// and once finished, it answers `NeedMore` and touches nothing.
    fn step(&mut self, input: &mut BytesMut) -> ClientStep {
        let too_long = "500 5.5.2 Line too long, closing connection\r\n";
        match self.core.next_line(input, too_long, &SASL) {
            Ok((line, ())) => self.command(line.expose()),
            Err(step) => step,
        }
    }

    /// TLS is up: forget the EHLO name and require a new EHLO (RFC 3207 §4.2).
    fn tls_established(&mut self) {
        self.core.tls_established();
        self.client_name = None;
    }
}

impl ClientMachine for SmtpClient {
    /// The name the client gave in its last EHLO or HELO.
    fn client_name(&self) -> Option<&str> {
        self.client_name.as_deref()
    }

    fn greeting(&self) -> Vec<u8> {
        format!("220 {} ESMTP mailgate ready\r\n", self.hostname()).into_bytes()
    }

    /// Answers a failed login; closes after `max_auth_failures`.
    fn login_failed(&mut self, failure: &LoginFailure) -> ClientStep {
        self.core.login_failed(failure_reply(failure))
    }

    /// Passes the upstream's `235` line on; the relay takes over after it.
    fn login_succeeded(&mut self, up: &UpstreamSuccess) -> Vec<u8> {
        self.core
            .login_succeeded(&up.line, "235", "235 2.7.0 Authentication successful")
    }

    /// RFC 5321 §4.5.3.2: a server that gives up on a client says 421.
    fn timeout_reply(&self) -> Vec<u8> {
        format!(
            "421 4.4.2 {} Timeout waiting for login, closing connection\r\n",
            self.hostname()
        )
        .into_bytes()
    }

    fn shutdown_reply(&self) -> Vec<u8> {
        format!("421 4.3.2 {} Service shutting down\r\n", self.hostname()).into_bytes()
    }
}

/// docs/design.md's error table, SMTP column (RFC 4954 §6).
fn failure_reply(failure: &LoginFailure) -> Vec<u8> {
    text::failure_reply(failure, "535 5.7.8", "454 4.7.0")
}

/// RFC 4954 §4: a cancelled exchange is refused with 501; so is bad base64.
fn sasl_error(e: SaslError) -> &'static str {
    match e {
        SaslError::Cancelled => "501 5.0.0 Authentication cancelled\r\n",
        SaslError::TooLong => "500 5.5.6 Authentication exchange line is too long\r\n",
        SaslError::Base64 => "501 5.5.2 Cannot decode response\r\n",
        SaslError::Malformed | SaslError::EmptyUser => {
            "501 5.5.2 Malformed authentication response\r\n"
        }
    }
}

/// `code-line` ... `code line`, RFC 5321 §4.2.1.
fn multi_line(code: u16, lines: &[String]) -> Vec<u8> {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        out.push_str(&format!("{code}{sep}{line}\r\n"));
    }
    out.into_bytes()
}

fn reply(text: &str) -> ClientStep {
    ClientStep::Reply(text.as_bytes().to_vec())
}
