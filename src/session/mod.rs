//! One connection's life: the client dialogue (run by `net::drive` over the
//! client machine), the login (local password, token, upstream or submission
//! backend), and the hand-off to the relay. Every wait here has a deadline;
//! the session's end is one typed [`end::End`], logged once.

pub mod context;
pub mod driver;
pub mod end;
pub mod login;
pub mod machine;
