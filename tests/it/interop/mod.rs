//! Interoperability: the real `mailgate` binary between clients nobody here
//! wrote (curl, Python's standard library, Debian mail programs) and real
//! servers (Dovecot, Postfix) that accept only XOAUTH2 tokens issued by the
//! test identity provider. Every check is made on the server side: bytes in
//! a maildir, messages fetched back, the IdP's counters.
//!
//! Run with `cargo test --test it interop` (needs root and
//! `scripts/install-test-deps.sh`); about 40 s on two cores.
//!
//! | module | what it proves |
//! |---|---|
//! | `curl` | every curl login form x every local TLS mode, per protocol |
//! | `python` | imaplib, poplib, smtplib: plain login, SASL, STARTTLS |
//! | `programs` | fetchmail, msmtp, mbsync, mutt doing real jobs |
//! | `tokens` | expiry mid-session, early rejection, revocation, IdP down, wrong password |
//! | `upstream` | provider unreachable or refusing TLS is temporary |
//! | `load` | 200 logins share one refresh, 25 MB both ways, IDLE |
//! | `offlineimap` | imaplib2 survives STARTTLS many times in a row (no TLS 1.3 tickets) |
//! | `archiver` | one app-only rule reads 50 mailboxes with one token; ungranted ones refused with the reason |
//! | `shared` | shared mailboxes over IMAP, POP3, SMTP send-as; refused without full access or send-as |
//! | `legacy_tls` | TLS 1.0-only clients on opted-in listeners only (feature `legacy-tls`) |

mod archiver;
mod attempt;
mod curl;
mod python;
mod shared;
mod tokens;
mod prewarm;
mod upstream;
pub(crate) mod harness;
mod load;
mod programs;
mod offlineimap;
#[cfg(feature = "legacy-tls")]
mod legacy_tls;
