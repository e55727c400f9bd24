//! Turning presented credentials into an authenticated upstream connection,
//! and every failure into the right answer (docs/design.md, error mapping): a
//! temporary fault must never look like a wrong password, because archivers
//! disable accounts after a few "authentication failed" answers.

use std::net::SocketAddr;
use std::time::SystemTime;

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tracing::{info, warn};

use super::context::SessionContext;
use super::machine::upstream_machine;
use crate::base::AccountName;
use crate::guard::{Attempt, Target};
use crate::metrics;
use crate::proto::{Credentials, LoginFailure, UpstreamLogin, UpstreamRejection};
use crate::submit::{Relayed, Submission};
use crate::token::{Grant, TokenError, TokenRequest};
use crate::upstream::UpstreamError;

/// A login that succeeded: the opened hand-off and the mailbox slot it holds.
pub struct Handoff {
    pub submission: Box<dyn Submission>,
    /// Holds this session's slot in the per-mailbox cap until the session ends.
    pub permit: OwnedSemaphorePermit,
}

/// Who is logging in: the account name, the mailbox whose slot is held,
/// and what the client presented.
struct Who<'a> {
    name: &'a AccountName,
    mailbox: &'a AccountName,
    credentials: &'a Credentials,
}

pub enum LoginOutcome {
    Ok(Handoff),
    Failed(LoginFailure),
}

pub async fn login(
    ctx: &SessionContext,
    peer: SocketAddr,
    client_name: Option<&str>,
    credentials: &Credentials,
) -> LoginOutcome {
    let account = credentials.username.as_str();
    let (name, grant) = match guarded_grant(ctx, peer, credentials).await {
        Ok(granted) => granted,
        Err(failure) => return LoginOutcome::Failed(failure),
    };
    // A `user=` that is no address is capped with the login's account.
    let mailbox = AccountName::parse(&grant.sasl_user).unwrap_or(name.clone());
    let queued = Instant::now();
    let entered = ctx.gate.enter(&mailbox).await;
    metrics::global().mailbox_queue_wait(queued.elapsed());
    let permit = match entered {
        Ok(permit) => permit,
        Err(error) => {
            warn!(%peer, account, %error, "login deferred");
            return LoginOutcome::Failed(LoginFailure::Temporary(error.to_string()));
        }
    };
    let who = Who {
        name: &name,
        mailbox: &mailbox,
        credentials,
    };
    match open_refreshing(ctx, &who, grant, client_name).await {
        Ok(submission) => LoginOutcome::Ok(Handoff { submission, permit }),
        Err(failure) => LoginOutcome::Failed(failure),
    }
}

/// Opens the hand-off with `grant`; when the provider refuses a token that
/// has not expired (revoked, or issued before a policy change), refreshes it
/// once and tries again, unless the token service says the account refreshed
/// after a refusal too recently (a mailbox with IMAP disabled refuses every
/// token; each login must not cost a refresh).
async fn open_refreshing(
    ctx: &SessionContext,
    who: &Who<'_>,
    mut grant: Grant,
    client_name: Option<&str>,
) -> Result<Box<dyn Submission>, LoginFailure> {
    let account = who.credentials.username.as_str();
    for attempt in 0..2 {
        let login = UpstreamLogin {
            user: grant.sasl_user.clone(),
            access_token: grant.access_token.clone(),
        };
        let started = Instant::now();
        let opened = open(ctx, login, client_name).await;
        metrics::global().upstream_login(ctx.listener.protocol, started.elapsed());
        match opened {
            Ok(submission) => {
                ctx.tokens.accepted(&grant);
                info!(account, mailbox = %grant.sasl_user, "logged in upstream");
                return Ok(submission);
            }
            Err(UpstreamError::Rejected {
                rejection: UpstreamRejection::AuthFailed(reason),
                addr,
            }) if attempt == 0 && grant.expires_at > SystemTime::now() => {
                if !ctx.tokens.rejected(&grant).await {
                    // Refreshed after a refusal recently: another refresh
                    // would only hammer the identity provider.
                    let error = UpstreamError::Rejected {
                        rejection: UpstreamRejection::AuthFailed(reason),
                        addr,
                    };
                    return Err(upstream_failure(ctx, &grant, who.mailbox, error));
                }
                warn!(account, %reason, "provider refused an unexpired token; refreshing once");
                grant = self::grant(ctx, who.name, who.credentials)
                    .await
                    .map_err(token_failure)?;
            }
            Err(error) => return Err(upstream_failure(ctx, &grant, who.mailbox, error)),
        }
    }
    Err(LoginFailure::Temporary(
        "upstream login did not complete".into(),
    ))
}

/// The guard around the local password check, then the token: the guard
/// reserves a failure first and hears the verdict before any token work.
async fn guarded_grant(
    ctx: &SessionContext,
    peer: SocketAddr,
    credentials: &Credentials,
) -> Result<(AccountName, Grant), LoginFailure> {
    let account = credentials.username.as_str();
    // An authzid names an account too (a shared mailbox); one that could not
    // (a control character such as the XOAUTH2 field separator `\x01`) makes
    // the login no login at all: it fails whatever token source is behind,
    // and counts against the address only, as it guesses no password.
    let authzid_ok = (credentials.authzid.as_deref()).is_none_or(|z| AccountName::parse(z).is_ok());
    let name = AccountName::parse(account).ok().filter(|_| authzid_ok);
    let target = name.as_ref().map(|n| guard_target(ctx, n, credentials));
    let patience = ctx.limits.upstream_login_timeout;
    let attempt = match ctx.guard.begin(peer.ip(), target.as_ref(), patience).await {
        Ok(attempt) => attempt,
        Err(wait) => {
            metrics::global().lockout_refusal();
            warn!(%peer, account, "login refused: too many failed logins");
            return Err(LoginFailure::Temporary(format!(
                "Too many failed logins; try again in {} s",
                wait.as_secs().max(1)
            )));
        }
    };
    let Some(name) = name else {
        attempt.failed();
        warn!(%peer, account, "login failed: not an account name");
        return Err(LoginFailure::BadCredentials);
    };
    let mut attempt = Some(attempt);
    if let Some(check) = ctx.tokens.verify(request(ctx, &name, credentials)) {
        let error = match tokio::time::timeout(patience, check).await {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error),
            Err(_) => Some(too_slow("the password check")),
        };
        if let Some(error) = error {
            return Err(password_failure(peer, account, attempt, error));
        }
        if let Some(attempt) = attempt.take() {
            attempt.succeeded();
        }
    }
    let grant = match grant(ctx, &name, credentials).await {
        Ok(grant) => grant,
        Err(error) => return Err(password_failure(peer, account, attempt, error)),
    };
    if let Some(attempt) = attempt {
        attempt.succeeded();
    }
    Ok((name, grant))
}

/// A login that ended before the provider: a wrong password settles the
/// guard's attempt as failed; any other error gives its reservation back.
fn password_failure(
    peer: SocketAddr,
    account: &str,
    attempt: Option<Attempt<'_>>,
    error: TokenError,
) -> LoginFailure {
    if let Some(attempt) = attempt
        && error == TokenError::BadCredentials
    {
        attempt.failed();
    }
    warn!(%peer, account, %error, "login failed before reaching the provider");
    token_failure(error)
}

fn request<'a>(
    ctx: &'a SessionContext,
    name: &'a AccountName,
    credentials: &'a Credentials,
) -> TokenRequest<'a> {
    TokenRequest {
        username: name,
        authzid: credentials.authzid.as_deref(),
        password: &credentials.password,
        protocol: ctx.listener.protocol,
        provider: &ctx.listener.provider,
    }
}

fn too_slow(what: &str) -> TokenError {
    TokenError::Temporary {
        reason: format!("{what} did not finish in time"),
        retry_after: None,
    }
}

/// What the guard counts this login's failures against: the account or
/// rule it resolves to, so every name a `*@domain` rule accepts shares one
/// count (see `guard`); the typed name when it resolves to nothing.
fn guard_target(ctx: &SessionContext, name: &AccountName, credentials: &Credentials) -> Target {
    match ctx.tokens.resolve(&request(ctx, name, credentials)) {
        Some(resolved) => Target::of(&resolved),
        None => Target::Account(name.clone()),
    }
}

/// SMTP goes through the listener's submission backend; IMAP and POP3
/// take the relay path directly.
async fn open(
    ctx: &SessionContext,
    login: UpstreamLogin,
    client_name: Option<&str>,
) -> Result<Box<dyn Submission>, UpstreamError> {
    if let Some(submitter) = &ctx.submitter {
        return submitter.open(login, client_name).await;
    }
    let machine = upstream_machine(
        ctx.listener.protocol,
        login,
        ctx.endpoint.starttls(),
        client_name.map(str::to_owned),
    );
    let relayed = Relayed::open(&ctx.endpoint, machine, ctx.limits.relay_idle_timeout).await?;
    Ok(Box::new(relayed))
}

async fn grant(
    ctx: &SessionContext,
    name: &AccountName,
    credentials: &Credentials,
) -> Result<Grant, TokenError> {
    let request = request(ctx, name, credentials);
    match tokio::time::timeout(ctx.limits.upstream_login_timeout, ctx.tokens.grant(request)).await {
        Ok(result) => result,
        Err(_) => Err(TokenError::Temporary {
            reason: "the identity provider did not answer in time".into(),
            retry_after: None,
        }),
    }
}

fn token_failure(error: TokenError) -> LoginFailure {
    match error {
        TokenError::BadCredentials => LoginFailure::BadCredentials,
        TokenError::NeedsAuthorisation { hint, .. } => LoginFailure::NeedsAuthorisation(hint),
        TokenError::Temporary { reason, .. } => {
            LoginFailure::Temporary(format!("Temporary failure, try again later: {reason}"))
        }
    }
}

fn upstream_failure(
    ctx: &SessionContext,
    grant: &Grant,
    gated: &AccountName,
    error: UpstreamError,
) -> LoginFailure {
    let mailbox = grant.sasl_user.as_str();
    match error {
        UpstreamError::Rejected { rejection, addr } => match rejection {
            UpstreamRejection::AuthFailed(reason) => {
                warn!(mailbox, %addr, %reason, "provider refused the login");
                LoginFailure::UpstreamRejected(reason)
            }
            UpstreamRejection::SmtpAuthDisabled(reason) => {
                warn!(mailbox, %addr, %reason, "SMTP AUTH is disabled for this mailbox or tenant; fix: Set-CasMailbox -Identity {mailbox} -SmtpClientAuthenticationDisabled $false");
                LoginFailure::UpstreamRejected(format!(
                    "SMTP AUTH is disabled for this mailbox or tenant (an administrator must run: Set-CasMailbox -Identity {mailbox} -SmtpClientAuthenticationDisabled $false)"
                ))
            }
            UpstreamRejection::Throttled { text, backoff } => {
                ctx.gate.back_off(gated, backoff);
                warn!(mailbox, %addr, %text, "provider is throttling this mailbox");
                LoginFailure::Temporary(format!(
                    "The provider is throttling this mailbox; try again later ({text})"
                ))
            }
            UpstreamRejection::Unavailable(text) => {
                warn!(mailbox, %addr, %text, "provider temporarily unavailable");
                LoginFailure::Temporary(format!("The provider is temporarily unavailable: {text}"))
            }
            UpstreamRejection::Protocol(text) => {
                warn!(mailbox, %addr, %text, "unexpected answer from the provider");
                LoginFailure::Temporary(format!("Unexpected answer from the provider: {text}"))
            }
        },
        other => {
            warn!(mailbox, error = %other, "provider unreachable");
            LoginFailure::Temporary(format!("The provider is unreachable: {other}"))
        }
    }
}
