//! Enrolment: sign an account in with its provider, set its local password,
//! and store the tokens encrypted under that password.
//!
//! Two sign-in flows (docs/design.md, "Enrolment"): the device code flow
//! (RFC 8628) for machines without a browser, and the browser flow
//! (authorization code + PKCE to a loopback redirect, RFC 8252). Enrolment is
//! two steps so that any front end can show the sign-in prompt its own way:
//! [`start`] returns a [`PendingEnrolment`] whose [`SignInPrompt`] the user
//! must act on, and [`PendingEnrolment::finish`] waits for the sign-in and
//! stores the account. Nothing here prints or reads a terminal. Enrolling
//! again re-authorises the account and replaces its tokens and password.
//! Before anything is stored, [`identity`] checks that the user who signed in
//! is the account being enrolled, and [`consent`] checks that the new grant
//! also reaches Microsoft Graph when a listener sends through it.

mod consent;
mod identity;
mod password;

use std::net::SocketAddr;

use crate::base::AccountName;
use crate::config::{AccountKind, Config, LocalTls, Provider};
use crate::oauth::authcode::{BrowserOptions, BrowserSignIn, DEFAULT_BROWSER_WAIT};
use crate::oauth::device::DevicePrompt;
use crate::oauth::{OAuthClient, OAuthError, SignedIn};
use crate::secret::Secret;
use crate::store::{Enrolment, Store, StoreError};
use crate::token::Protocol;

pub use consent::GraphConsent;
pub use identity::UNCHECKED as UNCHECKED_IDENTITY;
pub use password::{GENERATED_PASSWORD_LEN, MAX_PASSWORD_LEN, generate_password, local_password};

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
    #[error("the system random generator failed")]
    Random,
    #[error("sign-in failed: {0}")]
    SignIn(#[from] OAuthError),
    #[error(
        "you signed in as {signed_in} while enrolling {enrolling}, so nothing was stored; \
         sign out of {signed_in} in the browser or use a private window, then run \
         `mailgate login {account}` again and sign in as {enrolling}"
    )]
    WrongUser {
        signed_in: String,
        enrolling: String,
        account: String,
    },
    #[error("the provider returned no refresh token; make sure the scopes include offline_access")]
    NoRefreshToken,
    #[error("cannot store the account's tokens: {0}")]
    Store(#[from] StoreError),
    #[error("the enrolment task stopped before it finished: {0}")]
    Interrupted(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Device,
    Browser,
}

/// The account's new local password.
#[derive(Debug)]
pub enum NewPassword {
    /// Generate one; [`Enrolled::generated_password`] carries it back, once.
    Generate,
    /// The admin's choice, as given (checked by [`local_password`]).
    Given(Secret<Vec<u8>>),
}

/// What to enrol, whoever asks (the `login` command, a web console).
#[derive(Debug)]
pub struct EnrolRequest {
    /// The login name legacy clients will use (usually the mailbox address).
    pub account: String,
    /// Provider to enrol with, when the config has more than one.
    pub provider: Option<String>,
    pub flow: Flow,
    pub password: NewPassword,
    /// The mailbox for XOAUTH2 `user=` when it differs from the account name.
    pub mailbox: Option<String>,
}

/// What the user must act on to sign in.
#[derive(Debug)]
pub enum SignInPrompt {
    /// Open the verification URL on any device and type the code.
    Device(DevicePrompt),
    /// Open this authorization URL in a browser on this machine.
    Browser(BrowserSignIn),
}

/// An enrolment waiting for the user to sign in.
pub struct PendingEnrolment {
    client: OAuthClient,
    prompt: SignInPrompt,
    store: Store,
    password: Secret<String>,
    generated: bool,
    account: String,
    provider: Provider,
    sasl_user: String,
    settings: Vec<ClientSetting>,
    graph: Option<consent::GraphCheck>,
}

/// One listener a mail client can use for the enrolled account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSetting {
    pub protocol: Protocol,
    pub address: SocketAddr,
    pub tls: LocalTls,
}

/// A finished enrolment: what the mail client needs to know.
#[derive(Debug)]
pub struct Enrolled {
    pub account: String,
    pub provider: String,
    /// The XOAUTH2 `user=` value.
    pub sasl_user: String,
    /// Present only when the password was generated: shown once, never stored.
    pub generated_password: Option<Secret<String>>,
    pub settings: Vec<ClientSetting>,
    /// Who signed in, as the provider named them; `None` when no token named
    /// anyone, so the identity was not checked ([`UNCHECKED_IDENTITY`]).
    pub signed_in_as: Option<String>,
    /// Whether the grant reaches Microsoft Graph, when a listener needs it.
    pub graph: GraphConsent,
}

/// Checks the request against the config, settles the password, and asks the
/// provider for a sign-in prompt.
pub async fn start(config: &Config, request: EnrolRequest) -> Result<PendingEnrolment, EnrolError> {
    let provider = choose_provider(config, &request.account, request.provider.as_deref())?;
    let (password, generated) = match &request.password {
        NewPassword::Given(raw) => (local_password(raw.expose())?, false),
        NewPassword::Generate => (generate_password()?, true),
    };
    let store = Store::for_config(config)?;
    let client = OAuthClient::new(provider)?;
    let graph = consent::plan(config, provider)?;
    let prompt = match request.flow {
        Flow::Device => SignInPrompt::Device(client.device_start().await?),
        Flow::Browser => {
            let options = BrowserOptions {
                open_browser: false,
                login_hint: Some(request.account.clone()),
                wait: DEFAULT_BROWSER_WAIT,
                extra_consent: graph
                    .as_ref()
                    .map(|g| g.scopes().to_vec())
                    .unwrap_or_default(),
            };
            SignInPrompt::Browser(client.browser_start(&options).await?)
        }
    };
    let settings = config
        .listeners
        .iter()
        .filter(|l| l.provider == provider.name)
        .map(|l| ClientSetting {
            protocol: l.protocol,
            address: l.bind,
            tls: l.tls,
        })
        .collect();
    Ok(PendingEnrolment {
        client,
        prompt,
        store,
        password,
        generated,
        sasl_user: request.mailbox.unwrap_or_else(|| request.account.clone()),
        account: request.account,
        provider: provider.clone(),
        settings,
        graph,
    })
}

impl std::fmt::Debug for PendingEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingEnrolment")
            .field("account", &self.account)
            .field("provider", &self.provider.name)
            .field("prompt", &self.prompt)
            .finish_non_exhaustive()
    }
}

impl PendingEnrolment {
    pub fn prompt(&self) -> &SignInPrompt {
        &self.prompt
    }

    /// The account being enrolled.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// Waits for the sign-in (bounded by the flow's own limits), then stores
    /// the account's tokens under its local password.
    pub async fn finish(self) -> Result<Enrolled, EnrolError> {
        let PendingEnrolment {
            client,
            prompt,
            store,
            password,
            generated,
            account,
            provider,
            sasl_user,
            settings,
            graph,
        } = self;
        let signed_in: SignedIn = match prompt {
            SignInPrompt::Device(prompt) => client.device_finish(&prompt).await?,
            SignInPrompt::Browser(sign_in) => client.browser_finish(sign_in).await?,
        };
        let signed_in_as = identity::check(&signed_in, &account, &sasl_user)?;
        let mut tokens = signed_in.tokens;
        if tokens.refresh_token.is_none() {
            return Err(EnrolError::NoRefreshToken);
        }
        let graph = match graph {
            Some(check) => check.run(&mut tokens).await,
            None => GraphConsent::NotNeeded,
        };
        // Argon2id and file writes: off the async workers.
        let enrolled = tokio::task::spawn_blocking(move || {
            store.enrol(Enrolment {
                account: &AccountName::parse(&account).map_err(StoreError::from)?,
                provider: &provider.name,
                sasl_user: &sasl_user,
                password: &password,
                tokens: &tokens,
            })?;
            Ok::<_, EnrolError>(Enrolled {
                account,
                provider: provider.name,
                sasl_user,
                generated_password: generated.then_some(password),
                settings,
                signed_in_as,
                graph,
            })
        })
        .await
        .map_err(|e| EnrolError::Interrupted(e.to_string()))??;
        tracing::info!(account = %enrolled.account, provider = %enrolled.provider, "account enrolled");
        Ok(enrolled)
    }
}

/// The named provider, else the provider of a matching account rule, else the
/// only one.
pub fn choose_provider<'c>(
    config: &'c Config,
    account: &str,
    named: Option<&str>,
) -> Result<&'c Provider, EnrolError> {
    let name = AccountName::parse(account).ok();
    let rule = (config.accounts.iter()).find(|r| name.as_ref().is_some_and(|n| r.matches(n)));
    match rule.map(|r| &r.kind) {
        Some(AccountKind::AppOnly { .. }) => return Err(EnrolError::AppOnly(account.to_owned())),
        Some(AccountKind::Shared { delegate }) => {
            return Err(EnrolError::Shared {
                account: account.to_owned(),
                delegate: delegate.clone(),
            });
        }
        None => {}
    }
    let wanted = named.or(rule.and_then(|r| r.provider.as_deref()));
    match (wanted, config.providers.as_slice()) {
        (Some(name), _) => config
            .provider(name)
            .ok_or_else(|| EnrolError::UnknownProvider(name.to_owned())),
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

/// The flow asked for, else the browser where there is a display.
pub fn choose_flow(browser: bool, device: bool) -> Flow {
    if browser {
        Flow::Browser
    } else if device || !has_display() {
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

#[cfg(test)]
mod tests;
