//! The token source of listeners whose provider still has the shipped
//! placeholder `client_id`. The provider would refuse every request for an
//! application that does not exist, and the admin would read an AADSTS code
//! in the log; instead each login gets a temporary answer carrying the fix
//! (how to register the app, where the id goes), and no request is made.
//! Temporary, not a wrong password: clients keep the password they have.

use std::sync::Arc;

use crate::config::{Config, Listener};
use crate::token::{BoxFuture, Grant, TokenError, TokenRequest, TokenSource};

/// The token source for `listener`: `shared`, unless the listener's
/// provider still has the placeholder `client_id`.
pub fn or_shared(
    config: &Config,
    listener: &Listener,
    shared: &Arc<dyn TokenSource>,
) -> Arc<dyn TokenSource> {
    let fix = config
        .provider(&listener.provider)
        .and_then(|p| p.unregistered_app());
    match fix {
        Some(fix) => Arc::new(Unregistered::new(fix)),
        None => shared.clone(),
    }
}

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

    /// Never reached: this source hands out no grants. `false`: no refresh.
    fn rejected<'a>(&'a self, _: &'a Grant) -> BoxFuture<'a, bool> {
        Box::pin(async { false })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::base::{AccountName, Protocol};
    use crate::config::PLACEHOLDER_CLIENT_ID;
    use crate::secret::Secret;

    fn config(client_id: &str) -> Config {
        let text = format!(
            "[[providers]]\nname = \"m\"\nkind = \"microsoft\"\nclient_id = \"{client_id}\"\n\n\
             [[listeners]]\nprotocol = \"imap\"\nbind = \"127.0.0.1:0\"\n\
             upstream = {{ host = \"127.0.0.1\", port = 9, tls = \"none\" }}\n"
        );
        crate::config::parse(&text, "test.toml", Path::new(".")).unwrap()
    }

    #[tokio::test]
    async fn the_placeholder_answers_with_the_fix_and_is_a_warning() {
        let config = config(PLACEHOLDER_CLIENT_ID);
        let fix = config.providers[0].unregistered_app().unwrap();
        assert!(fix.contains("App registrations") && fix.is_ascii(), "{fix}");
        assert_eq!(config.warnings(), vec![fix.clone()]);

        let shared: Arc<dyn TokenSource> = Arc::new(Unregistered::new("shared".into()));
        let source = or_shared(&config, &config.listeners[0], &shared);
        let name = AccountName::parse("alice@example.com").unwrap();
        let password = Secret::new("pw".to_owned());
        let request = TokenRequest {
            username: &name,
            authzid: None,
            password: &password,
            protocol: Protocol::Imap,
            provider: &config.listeners[0].provider,
        };
        match source.grant(request).await {
            Err(TokenError::Temporary { reason, .. }) => assert_eq!(reason, fix),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_registered_app_uses_the_shared_source() {
        let config = config("11111111-2222-3333-4444-555555555555");
        assert!(config.providers[0].unregistered_app().is_none());
        assert!(config.warnings().is_empty());
        let shared: Arc<dyn TokenSource> = Arc::new(Unregistered::new("shared".into()));
        let source = or_shared(&config, &config.listeners[0], &shared);
        assert!(Arc::ptr_eq(&source, &shared));
    }
}
