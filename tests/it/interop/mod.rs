//! Interoperability: the real `mailgate` binary between clients nobody here
//! wrote (curl, Python's standard library, Debian mail programs) and real
//! servers (Dovecot, Postfix) that accept only XOAUTH2 tokens issued by the
//! test identity provider. Every check is made on the server side: bytes in
//! a maildir, messages fetched back, the IdP's counters.
//!
//! Run with `cargo test --test it interop` (needs root and
//! `scripts/install-test-deps.sh`).

mod attempt;
mod curl;
mod python;
mod tokens;
mod upstream;
mod harness;
mod load;
mod programs;
