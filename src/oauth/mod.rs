//! OAuth 2.0 grants against the identity provider.
