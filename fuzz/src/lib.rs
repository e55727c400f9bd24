//! Drivers shared by the fuzz targets. Each target input is a small header
//! (option flags and a seed for chunk sizes and driver events) followed by the
//! bytes of the conversation, so seed files stay readable transcripts.

use bytes::BytesMut;
use mailgate::proto::{
    ClientLimits, ClientMachine, ClientOptions, ClientStep, LoginFailure, MAX_UPSTREAM_LINE,
    UpstreamLogin, UpstreamMachine, UpstreamRejection, UpstreamStep, UpstreamSuccess,
};
use mailgate::secret::Secret;

/// Header bytes before the conversation.
pub const HEADER: usize = 2;

/// Small limits make the bounds reachable within a short input.
pub const SMALL_LIMITS: ClientLimits = ClientLimits {
    max_line: 96,
    max_literal: 64,
    max_commands: 12,
    max_auth_failures: 3,
};

/// A tiny deterministic generator for chunk sizes and event choices.
pub struct Dice(u32);

impl Dice {
    pub fn new(seed: u8) -> Self {
        Self(u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1))
    }

    pub fn roll(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0 % n.max(1)
    }
}

/// Splits `data` into its header and conversation.
pub fn split(data: &[u8]) -> Option<(u8, Dice, &[u8])> {
    let (head, body) = data.split_at_checked(HEADER)?;
    Some((head[0], Dice::new(head[1]), body))
}

/// Client options from the flag byte: bit 0 TLS active, bit 1 STARTTLS
/// offered, bit 2 TLS required for auth, bit 3 small limits.
pub fn client_options(flags: u8) -> ClientOptions {
    ClientOptions {
        hostname: "mailgate.fuzz".into(),
        tls_active: flags & 1 != 0,
        starttls_available: flags & 2 != 0,
        require_tls_for_auth: flags & 4 != 0,
        limits: if flags & 8 != 0 {
            SMALL_LIMITS
        } else {
            ClientLimits::default()
        },
    }
}

fn failure(dice: &mut Dice) -> LoginFailure {
    match dice.roll(4) {
        0 => LoginFailure::BadCredentials,
        1 => LoginFailure::NeedsAuthorisation("run mailgate login".into()),
        2 => LoginFailure::Temporary("busy".into()),
        _ => LoginFailure::UpstreamRejected("no".into()),
    }
}

/// Feeds `body` to a client machine in dice-sized chunks, answering its steps
/// as a driver would, and checks the client-side properties.
pub fn run_client<M: ClientMachine>(make: impl FnOnce(ClientOptions) -> M, data: &[u8]) {
    let Some((flags, mut dice, mut body)) = split(data) else {
        return;
    };
    let opts = client_options(flags);
    let limits = opts.limits;
    let mut tls = opts.tls_active;
    let require_tls = opts.require_tls_for_auth;
    let mut machine = make(opts);
    let _ = machine.greeting();
    let mut input = BytesMut::new();
    // Each command may cost this much buffered input before it is refused.
    let bound = limits.max_line + limits.max_literal + 2;
    loop {
        let take = (dice.roll(64) as usize + 1).min(body.len());
        input.extend_from_slice(&body[..take]);
        body = &body[take..];
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps < 10_000, "machine loops without consuming input");
            let before = input.len();
            let step = machine.step(&mut input);
            assert!(input.len() <= before, "a step must never add input");
            match step {
                ClientStep::NeedMore => {
                    assert!(
                        input.len() <= bound + 64,
                        "buffered {} bytes beyond the bound {bound}",
                        input.len()
                    );
                    break;
                }
                ClientStep::Reply(_) => {}
                ClientStep::StartTls(_) => {
                    input.clear();
                    tls = true;
                    machine.tls_established();
                }
                ClientStep::Login(_) => {
                    assert!(tls || !require_tls, "credentials accepted before TLS");
                    if dice.roll(3) == 0 {
                        let _ = machine.login_succeeded(&UpstreamSuccess::default());
                        return;
                    }
                    if let ClientStep::Close { .. } = machine.login_failed(&failure(&mut dice)) {
                        return;
                    }
                }
                ClientStep::Close { .. } => return,
            }
        }
        if body.is_empty() {
            return;
        }
    }
}

/// The access token the upstream machines are given. The fuzzer never sees it
/// compared against anything, so it can only appear in output by a leak.
pub const TOKEN: &str = "ya29.FUZZ-SECRET-ACCESS-TOKEN-7f3a";

pub fn login() -> UpstreamLogin {
    UpstreamLogin {
        user: "alice@example.test".into(),
        access_token: Secret::new(TOKEN.to_owned()),
    }
}

fn rejection_text(r: &UpstreamRejection) -> &str {
    match r {
        UpstreamRejection::AuthFailed(t)
        | UpstreamRejection::SmtpAuthDisabled(t)
        | UpstreamRejection::Unavailable(t)
        | UpstreamRejection::Protocol(t) => t,
        UpstreamRejection::Throttled { text, .. } => text,
    }
}

/// Feeds upstream bytes to an upstream machine and checks that it stays
/// bounded and never puts the token into a rejection text.
pub fn run_upstream<M: UpstreamMachine>(make: impl FnOnce(bool) -> M, data: &[u8]) {
    let Some((flags, mut dice, mut body)) = split(data) else {
        return;
    };
    let xoauth2 =
        mailgate::proto::sasl::encode_xoauth2("alice@example.test", &Secret::new(TOKEN.to_owned()));
    let mut machine = make(flags & 1 != 0);
    let mut input = BytesMut::new();
    loop {
        let take = (dice.roll(128) as usize + 1).min(body.len());
        input.extend_from_slice(&body[..take]);
        body = &body[take..];
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps < 10_000, "machine loops without consuming input");
            let before = input.len();
            match machine.step(&mut input) {
                UpstreamStep::NeedMore => {
                    assert!(
                        input.len() <= MAX_UPSTREAM_LINE + 2,
                        "unbounded upstream buffer"
                    );
                    break;
                }
                UpstreamStep::Send(_) | UpstreamStep::StartTls => {
                    assert!(input.len() <= before, "a step must never add input");
                }
                UpstreamStep::Authenticated(ok) => {
                    assert!(ok.line.len() <= MAX_UPSTREAM_LINE);
                    return;
                }
                UpstreamStep::Rejected(r) => {
                    let text = rejection_text(&r);
                    assert!(
                        text.len() <= 4 * MAX_UPSTREAM_LINE,
                        "unbounded rejection text"
                    );
                    // Even an upstream that echoes the token back must not
                    // get it into a rejection text (those are logged).
                    assert!(!text.contains(TOKEN), "token in a rejection text");
                    assert!(
                        !text.contains(xoauth2.expose().as_str()),
                        "XOAUTH2 string in a rejection text"
                    );
                    return;
                }
            }
        }
        if body.is_empty() {
            return;
        }
    }
}

/// Message bound for the server target: small, so 552 is reachable.
pub const SERVER_MAX_SIZE: usize = 256;

/// Feeds `body` to the post-AUTH SMTP server machine in dice-sized chunks,
/// answering sender checks and deliveries as dice say, and checks: input
/// never grows and stays within one command line; every reply is whole
/// CRLF lines; a delivered message fits the bound, has only CRLF line ends
/// and at most `MAX_RECIPIENTS` recipients.
pub fn run_server(data: &[u8]) {
    use mailgate::proto::smtp::server::{
        MAX_COMMAND_LINE, MAX_RECIPIENTS, Refusal, ServerStep, SmtpServer,
    };
    let Some((_, mut dice, mut body)) = split(data) else {
        return;
    };
    let mut machine = SmtpServer::new("mailgate.fuzz", SERVER_MAX_SIZE);
    let mut input = BytesMut::new();
    let verdict = |dice: &mut Dice| match dice.roll(4) {
        0 => Err(Refusal {
            code: 550,
            text: "5.7.60 no\r\nx".into(),
        }),
        1 => Err(Refusal {
            code: 999,
            text: String::new(),
        }),
        _ => Ok(()),
    };
    loop {
        let take = (dice.roll(64) as usize + 1).min(body.len());
        input.extend_from_slice(&body[..take]);
        body = &body[take..];
        for steps in 0.. {
            assert!(steps < 100_000, "machine loops without consuming input");
            let before = input.len();
            let step = machine.step(&mut input);
            assert!(input.len() <= before, "a step must never add input");
            match step {
                ServerStep::NeedMore => {
                    assert!(input.len() <= MAX_COMMAND_LINE + 2, "unbounded buffer");
                    break;
                }
                ServerStep::Reply(bytes) => assert_whole_lines(&bytes),
                ServerStep::CheckSender(_) => machine.sender_checked(verdict(&mut dice)),
                ServerStep::Deliver(t) => {
                    assert!(t.content.len() <= SERVER_MAX_SIZE);
                    assert!(t.recipients.len() <= MAX_RECIPIENTS && !t.recipients.is_empty());
                    for (i, &b) in t.content.iter().enumerate() {
                        assert!(b != b'\n' || (i > 0 && t.content[i - 1] == b'\r'));
                    }
                    assert!(t.content.is_empty() || t.content.ends_with(b"\r\n"));
                    machine.delivered(verdict(&mut dice));
                }
                ServerStep::Close { reply, .. } => {
                    assert_whole_lines(&reply);
                    return;
                }
            }
        }
        if body.is_empty() {
            return;
        }
    }
}

/// Replies are CRLF lines with a reply code and no stray CR or LF.
fn assert_whole_lines(bytes: &[u8]) {
    assert!(bytes.ends_with(b"\r\n"), "reply not CRLF-terminated");
    for line in bytes[..bytes.len() - 2].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(!line.contains(&b'\r') && line.len() >= 3, "malformed reply line");
        assert!(line[..3].iter().all(u8::is_ascii_digit), "reply without a code");
    }
}
