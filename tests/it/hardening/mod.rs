//! Hostile and broken clients against the in-process proxy: every bound gets
//! the input that should trip it, the answer is checked, and a normal login
//! afterwards proves the process is still healthy. Also redaction at TRACE
//! level, configuration reload and the brute-force guard through the real
//! binary, and the PROXY protocol through a real HAProxy.

mod bounds;
pub mod binary;
mod connections;
mod guard;
mod literals;
mod memory;
mod names;
mod plaintext;
mod proxy_protocol;
mod redaction;
mod reload;
