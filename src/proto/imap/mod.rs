//! imap client-side and upstream-side machines.
