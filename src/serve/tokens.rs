//! The token service `serve` runs on: one OAuth client per provider for
//! mail (IMAP, POP3, SMTP scopes) and a second one per provider asking for
//! Graph's scopes, because a refresh token is redeemed for one resource at
//! a time.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::oauth::{OAuthClient, TokenEndpoint};
use crate::store::Store;
use crate::token::service::TokenService;

use super::ServeError;

/// Per provider, an OAuth client that asks for the provider's Graph scopes
/// (`docs/design.md`, "Sending through Graph").
fn graph_endpoints(config: &Config) -> Result<HashMap<String, Arc<dyn TokenEndpoint>>, ServeError> {
    let mut endpoints: HashMap<String, Arc<dyn TokenEndpoint>> = HashMap::new();
    for provider in &config.providers {
        let graph = crate::config::Provider {
            scopes: provider.graph.scopes.clone(),
            app_scopes: provider.graph.app_scopes.clone(),
            ..provider.clone()
        };
        let client = OAuthClient::new(&graph)
            .map_err(|e| ServeError::Tokens(format!("provider {} (Graph): {e}", provider.name)))?;
        endpoints.insert(provider.name.clone(), Arc::new(client));
    }
    Ok(endpoints)
}

/// The token service for `config`: the encrypted store in the state
/// directory and one OAuth client per provider.
pub fn token_service(config: &Config, path: &Path) -> Result<Arc<TokenService>, ServeError> {
    let store = Store::for_config(config).map_err(|e| ServeError::Tokens(e.to_string()))?;
    let mut endpoints: HashMap<String, Arc<dyn TokenEndpoint>> = HashMap::new();
    for provider in &config.providers {
        let client = OAuthClient::new(provider)
            .map_err(|e| ServeError::Tokens(format!("provider {}: {e}", provider.name)))?;
        endpoints.insert(provider.name.clone(), Arc::new(client));
    }
    let service = TokenService::new(config, store, endpoints)
        .map_err(|e| ServeError::Tokens(e.to_string()))?;
    service.set_graph_endpoints(graph_endpoints(config)?);
    service.set_config_path(path);
    Ok(service)
}
