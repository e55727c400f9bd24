//! [`TokenService`] as the [`TokenSource`] a session sees: the grant, the
//! password check on its own (so the guard hears a verdict before any token
//! work), what a login resolves to, and the upstream's verdict on a token.

use super::service::TokenService;
use super::{BoxFuture, Grant, TokenError, TokenRequest, TokenSource};
use crate::accounts::Resolved;
use crate::base::AccountName;

impl TokenService {
    /// The password check of [`TokenService::grant_inner`] alone.
    async fn verify_password(&self, req: TokenRequest<'_>) -> Result<(), TokenError> {
        match self
            .accounts
            .resolve(req.username, req.authzid, req.protocol)?
        {
            Resolved::Delegated { account, .. } => {
                self.accounts.unlock(&account, req.password).await?;
            }
            Resolved::AppOnly {
                rule,
                password_hash,
                ..
            } => {
                self.accounts
                    .check_app_password(&rule, &password_hash, req.password)
                    .await?;
            }
        }
        Ok(())
    }
}

impl TokenSource for TokenService {
    fn grant<'a>(&'a self, request: TokenRequest<'a>) -> BoxFuture<'a, Result<Grant, TokenError>> {
        Box::pin(self.grant_inner(request))
    }

    fn rejected<'a>(&'a self, grant: &'a Grant) -> BoxFuture<'a, bool> {
        Box::pin(self.drop_token(grant))
    }

    fn verify<'a>(
        &'a self,
        request: TokenRequest<'a>,
    ) -> Option<BoxFuture<'a, Result<(), TokenError>>> {
        Some(Box::pin(self.verify_password(request)))
    }

    fn resolve(&self, request: &TokenRequest<'_>) -> Option<Resolved> {
        self.accounts
            .resolve(request.username, request.authzid, request.protocol)
            .ok()
    }

    fn graph_token<'a>(
        &'a self,
        user: &'a str,
        refused: Option<&'a crate::secret::Secret<String>>,
    ) -> BoxFuture<'a, Result<crate::secret::Secret<String>, TokenError>> {
        Box::pin(self.graph_access(user, refused))
    }

    fn accepted(&self, grant: &Grant) {
        self.refusals.accepted(&grant.account);
    }
}

/// Refuses, before any token is fetched, an account whose provider is not
/// the one the listener serves: its token is for another provider's
/// upstream. Asked only once the password was right, so the answer may say
/// why.
pub(super) fn served_here(
    account: &AccountName,
    provider: &str,
    listener: &str,
) -> Result<(), TokenError> {
    if provider == listener {
        return Ok(());
    }
    tracing::warn!(%account, provider, listener_provider = listener, "login refused: account not served on this listener");
    Err(TokenError::NeedsAuthorisation {
        account: account.to_string(),
        hint: format!(
            "{account} is not served on this listener: it belongs to provider {provider:?}, this listener serves {listener:?}; use a listener of provider {provider:?}"
        ),
    })
}
