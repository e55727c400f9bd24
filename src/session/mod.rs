//! Per-connection driver: the only place that owns sockets during login. It
//! feeds client bytes to the protocol machine, carries out the steps it
//! returns (replies, STARTTLS, login), runs the upstream login and hands both
//! streams to the relay. Every wait here has a deadline.

pub mod context;
pub mod driver;
pub mod login;
pub mod machine;
pub mod read_ahead;
pub mod stream;
