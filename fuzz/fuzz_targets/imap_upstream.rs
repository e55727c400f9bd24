//! Property: no panic; bounded buffer; the token never in a rejection text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailgate::proto::imap::ImapUpstream;

fuzz_target!(|data: &[u8]| {
    mailgate_fuzz::run_upstream(|tls| ImapUpstream::new(mailgate_fuzz::login(), tls), data)
});
