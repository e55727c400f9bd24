//! smtp client-side and upstream-side machines.
