//! Submitting through Microsoft Graph when the provider's SMTP AUTH is off.

mod envelope;

pub use envelope::{EnvelopeError, rewrite};
