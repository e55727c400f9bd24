//! Property: no panic; bounded buffer; the token never in a rejection text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailgate::proto::pop3::Pop3Upstream;

fuzz_target!(|data: &[u8]| {
    mailgate_fuzz::run_upstream(|tls| Pop3Upstream::new(mailgate_fuzz::login(), tls), data)
});
