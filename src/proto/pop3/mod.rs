//! pop3 client-side and upstream-side machines.
