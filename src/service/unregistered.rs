//! The token source of listeners whose provider still has the shipped
//! placeholder `client_id`. The provider would refuse every request for an
//! application that does not exist, and the admin would read an AADSTS code
//! in the log; instead each login gets a temporary answer carrying the fix
//! (how to register the app, where the id goes), and no request is made.
//! Temporary, not a wrong password: clients keep the password they have.

use crate::token::{BoxFuture, Grant, TokenError, TokenRequest, TokenSource};

/// Answers every login with `fix` as a temporary failure.
#[derive(Debug, Clone)]
pub struct Unregistered {
    fix: String,
}

impl Unregistered {
    pub fn new(fix: String) -> Self {
        Self { fix }
    }
}

impl TokenSource for Unregistered {
    fn grant<'a>(&'a self, _: TokenRequest<'a>) -> BoxFuture<'a, Result<Grant, TokenError>> {
        Box::pin(async move {
            Err(TokenError::Temporary {
                reason: self.fix.clone(),
                retry_after: None,
            })
        })
    }

    fn rejected<'a>(&'a self, _: &'a Grant) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}
