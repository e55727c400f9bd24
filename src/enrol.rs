//! `mailgate login ACCOUNT`: sign the account in with its provider, set its
//! local password, and store the tokens encrypted under that password.
//!
//! Two sign-in flows (DESIGN.md, "Enrolment"): the device code flow
//! (RFC 8628) for machines without a browser, and the browser flow
//! (authorization code + PKCE to a loopback redirect, RFC 8252). The local
//! password is either generated here and shown exactly once, or read from
//! standard input so scripts can set it. Running `login` again re-authorises
//! the account and replaces its stored tokens and password.

use std::io::{self, BufRead, Read, Write};

use crate::base::AccountName;
use crate::cli::LoginArgs;
use crate::config::{AccountKind, Config, Provider};
use crate::oauth::authcode::{BrowserOptions, DEFAULT_BROWSER_WAIT};
use crate::oauth::{OAuthClient, OAuthError, TokenResponse};
use crate::secret::Secret;
use crate::store::{Enrolment, Store, StoreError};
use zeroize::Zeroize;

/// Length of a generated local password.
pub const GENERATED_PASSWORD_LEN: usize = 24;
/// Letters and digits that cannot be mistaken for one another when read
/// aloud or copied by hand (no 0/O, 1/l/I).
const PASSWORD_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Longest local password accepted on standard input, in bytes.
pub const MAX_PASSWORD_LEN: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error("the config has no [[providers]]; add one before running login")]
    NoProvider,
    #[error("no provider named {0:?} in the config")]
    UnknownProvider(String),
    #[error("the config has several providers ({0}); choose one with --provider")]
    AmbiguousProvider(String),
    #[error(
        "{0} is an app-only account: it needs no sign-in, only the provider's client_secret and its password_hash"
    )]
    AppOnly(String),
    #[error(
        "{account} is a shared mailbox reached with {delegate}'s token: run `mailgate login {delegate}` instead"
    )]
    Shared { account: String, delegate: String },
    #[error("local password: {0}")]
    Password(&'static str),
    #[error("cannot read the local password from standard input: {0}")]
    Stdin(#[source] io::Error),
    #[error("the system random generator failed")]
    Random,
    #[error("sign-in failed: {0}")]
    SignIn(#[from] OAuthError),
    #[error("the provider returned no refresh token; make sure the scopes include offline_access")]
    NoRefreshToken,
    #[error("cannot store the account's tokens: {0}")]
    Store(#[from] StoreError),
    #[error("cannot write to the terminal: {0}")]
    Output(#[source] io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Device,
    Browser,
}

pub async fn login(config: &Config, args: &LoginArgs) -> Result<(), EnrolError> {
    let stdin = io::stdin();
    login_with(config, args, &mut stdin.lock(), &mut io::stdout()).await
}

/// [`login`] with its terminal passed in.
pub async fn login_with(
    config: &Config,
    args: &LoginArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), EnrolError> {
    let provider = choose_provider(config, args)?;
    let password = if args.password_stdin {
        read_password(input)?
    } else {
        generate_password()?
    };
    let store = Store::for_config(config)?;
    let client = OAuthClient::new(provider)?;
    let tokens = sign_in(&client, args, choose_flow(args), out).await?;
    if tokens.refresh_token.is_none() {
        return Err(EnrolError::NoRefreshToken);
    }
    let sasl_user = args.mailbox.as_deref().unwrap_or(&args.account);
    store.enrol(Enrolment {
        account: &AccountName::parse(&args.account).map_err(StoreError::from)?,
        provider: &provider.name,
        sasl_user,
        password: &password,
        tokens: &tokens,
    })?;
    tracing::info!(account = %args.account, provider = %provider.name, "account enrolled");
    report(
        config,
        provider,
        args,
        sasl_user,
        (!args.password_stdin).then_some(&password),
        out,
    )
    .map_err(EnrolError::Output)
}

async fn sign_in(
    client: &OAuthClient,
    args: &LoginArgs,
    flow: Flow,
    out: &mut dyn Write,
) -> Result<TokenResponse, EnrolError> {
    match flow {
        Flow::Device => {
            let prompt = client.device_start().await?;
            prompt.render(out).map_err(EnrolError::Output)?;
            Ok(client.device_finish(&prompt).await?)
        }
        Flow::Browser => {
            let options = BrowserOptions {
                open_browser: !args.no_open,
                login_hint: Some(args.account.clone()),
                wait: DEFAULT_BROWSER_WAIT,
            };
            Ok(client.browser_flow(&options, out).await?)
        }
    }
}

/// `--provider`, else the provider of a matching account rule, else the only one.
pub fn choose_provider<'c>(
    config: &'c Config,
    args: &LoginArgs,
) -> Result<&'c Provider, EnrolError> {
    let name = AccountName::parse(&args.account).ok();
    let rule = (config.accounts.iter()).find(|r| name.as_ref().is_some_and(|n| r.matches(n)));
    match rule.map(|r| &r.kind) {
        Some(AccountKind::AppOnly { .. }) => return Err(EnrolError::AppOnly(args.account.clone())),
        Some(AccountKind::Shared { delegate }) => {
            return Err(EnrolError::Shared {
                account: args.account.clone(),
                delegate: delegate.clone(),
            });
        }
        None => {}
    }
    let wanted = args
        .provider
        .as_ref()
        .or(rule.and_then(|r| r.provider.as_ref()));
    match (wanted, config.providers.as_slice()) {
        (Some(name), _) => config
            .provider(name)
            .ok_or_else(|| EnrolError::UnknownProvider(name.clone())),
        (None, []) => Err(EnrolError::NoProvider),
        (None, [only]) => Ok(only),
        (None, many) => Err(EnrolError::AmbiguousProvider(
            many.iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}

/// `--browser` / `--device`, else the browser where there is a display.
pub fn choose_flow(args: &LoginArgs) -> Flow {
    if args.browser {
        Flow::Browser
    } else if args.device || !has_display() {
        Flow::Device
    } else {
        Flow::Browser
    }
}

fn has_display() -> bool {
    if cfg!(unix) && !cfg!(target_os = "macos") {
        ["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
    } else {
        true
    }
}

/// One line from `input`, without its line ending; never empty.
pub fn read_password(input: &mut dyn BufRead) -> Result<Secret<String>, EnrolError> {
    let mut line = Vec::new();
    input
        .take(MAX_PASSWORD_LEN as u64 + 2)
        .read_until(b'\n', &mut line)
        .map_err(EnrolError::Stdin)?;
    let line = Secret::new(line);
    let mut text = line.expose().as_slice();
    if let Some(rest) = text.strip_suffix(b"\n") {
        text = rest.strip_suffix(b"\r").unwrap_or(rest);
    } else if text.len() > MAX_PASSWORD_LEN {
        return Err(EnrolError::Password("longer than 1024 bytes"));
    }
    if text.len() > MAX_PASSWORD_LEN {
        return Err(EnrolError::Password("longer than 1024 bytes"));
    }
    if text.is_empty() {
        return Err(EnrolError::Password(
            "standard input gave an empty password",
        ));
    }
    let text = std::str::from_utf8(text).map_err(|_| EnrolError::Password("not valid UTF-8"))?;
    Ok(Secret::new(text.to_owned()))
}

/// [`GENERATED_PASSWORD_LEN`] characters from [`PASSWORD_ALPHABET`], drawn
/// without modulo bias.
pub fn generate_password() -> Result<Secret<String>, EnrolError> {
    let limit = 256 - 256 % PASSWORD_ALPHABET.len();
    let mut password = String::with_capacity(GENERATED_PASSWORD_LEN);
    let mut bytes = [0u8; 64];
    while password.len() < GENERATED_PASSWORD_LEN {
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| EnrolError::Random)?;
        for b in bytes.iter().filter(|&&b| usize::from(b) < limit) {
            if password.len() < GENERATED_PASSWORD_LEN {
                password.push(char::from(
                    PASSWORD_ALPHABET[usize::from(*b) % PASSWORD_ALPHABET.len()],
                ));
            }
        }
    }
    bytes.zeroize();
    Ok(Secret::new(password))
}

fn report(
    config: &Config,
    provider: &Provider,
    args: &LoginArgs,
    sasl_user: &str,
    generated: Option<&Secret<String>>,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(
        out,
        "\nEnrolled {} with provider {}.",
        args.account, provider.name
    )?;
    if sasl_user != args.account {
        writeln!(out, "Upstream mailbox (XOAUTH2 user): {sasl_user}")?;
    }
    writeln!(out, "Configure the mail client with:")?;
    for l in config
        .listeners
        .iter()
        .filter(|l| l.provider == provider.name)
    {
        let tls = match l.tls {
            crate::config::LocalTls::None => "no TLS",
            crate::config::LocalTls::StartTls => "STARTTLS",
            crate::config::LocalTls::Implicit => "SSL/TLS",
        };
        writeln!(
            out,
            "  {:<5} server {}  port {}  ({tls})",
            l.protocol.as_str().to_uppercase(),
            l.bind.ip(),
            l.bind.port()
        )?;
    }
    writeln!(out, "  user name: {}", args.account)?;
    match generated {
        Some(p) => writeln!(
            out,
            "  password:  {}\n(The password is shown only this once. Run login again to set a new one.)",
            p.expose()
        )?,
        None => writeln!(out, "  password:  the one given on standard input")?,
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_password_is_trimmed_and_never_empty() {
        let read = |s: &[u8]| read_password(&mut io::Cursor::new(s.to_vec()));
        assert_eq!(read(b"s3cret\n").unwrap().expose(), "s3cret");
        assert_eq!(read(b"s3cret\r\nnext").unwrap().expose(), "s3cret");
        assert_eq!(read(b"no newline").unwrap().expose(), "no newline");
        assert_eq!(read(b" spaced \n").unwrap().expose(), " spaced ");
        assert!(matches!(read(b"\n"), Err(EnrolError::Password(_))));
        assert!(matches!(read(b""), Err(EnrolError::Password(_))));
        assert!(matches!(read(&[b'x'; 2000]), Err(EnrolError::Password(_))));
        assert!(matches!(read(b"\xff\xfe\n"), Err(EnrolError::Password(_))));
    }

    #[test]
    fn generated_passwords_use_the_readable_alphabet() {
        let a = generate_password().unwrap();
        assert_eq!(a.expose().len(), GENERATED_PASSWORD_LEN);
        assert!(a.expose().bytes().all(|b| PASSWORD_ALPHABET.contains(&b)));
        assert_ne!(a.expose(), generate_password().unwrap().expose());
    }

    fn args(account: &str, provider: Option<&str>) -> LoginArgs {
        LoginArgs {
            account: account.into(),
            config: crate::cli::ConfigArg {
                config: "unused.toml".into(),
            },
            provider: provider.map(Into::into),
            device: false,
            browser: false,
            no_open: true,
            password_stdin: false,
            mailbox: None,
        }
    }

    fn config(providers: &[&str]) -> Config {
        let mut text = String::new();
        for p in providers {
            text.push_str(&format!(
                "[[providers]]\nname = \"{p}\"\nkind = \"microsoft\"\nclient_id = \"c\"\n\n"
            ));
        }
        text.push_str(
            "[[accounts]]\nlogin = \"app@example.test\"\nkind = \"app-only\"\n\
             password_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\"\n\n\
             [[accounts]]\nlogin = \"shared@example.test\"\nkind = \"shared\"\ndelegate = \"boss@example.test\"\n",
        );
        crate::config::parse(&text, "test.toml", std::path::Path::new(".")).expect("test config")
    }

    #[test]
    fn provider_is_the_named_or_the_only_one() {
        let one = config(&["ms"]);
        assert_eq!(
            choose_provider(&one, &args("a@example.test", None))
                .unwrap()
                .name,
            "ms"
        );
        assert!(matches!(
            choose_provider(&one, &args("a@example.test", Some("nope"))),
            Err(EnrolError::UnknownProvider(p)) if p == "nope"
        ));
        let two = config(&["ms", "gov"]);
        assert!(matches!(
            choose_provider(&two, &args("a@example.test", None)),
            Err(EnrolError::AmbiguousProvider(l)) if l == "ms, gov"
        ));
        assert_eq!(
            choose_provider(&two, &args("a@example.test", Some("gov")))
                .unwrap()
                .name,
            "gov"
        );
        assert!(matches!(
            choose_provider(&config(&[]), &args("a@example.test", None)),
            Err(EnrolError::NoProvider)
        ));
    }

    #[test]
    fn app_only_and_shared_accounts_are_sent_elsewhere() {
        let c = config(&["ms"]);
        assert!(matches!(
            choose_provider(&c, &args("app@example.test", None)),
            Err(EnrolError::AppOnly(_))
        ));
        let err = choose_provider(&c, &args("shared@example.test", None)).unwrap_err();
        assert!(
            err.to_string().contains("mailgate login boss@example.test"),
            "{err}"
        );
    }

    #[test]
    fn explicit_flags_choose_the_flow() {
        let mut a = args("a@example.test", None);
        a.browser = true;
        assert_eq!(choose_flow(&a), Flow::Browser);
        a.browser = false;
        a.device = true;
        assert_eq!(choose_flow(&a), Flow::Device);
    }
}
