//! Property: no panic; input only shrinks and stays bounded; never a
//! Login while TLS is required but not active.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailgate::proto::pop3::Pop3Client;

fuzz_target!(|data: &[u8]| mailgate_fuzz::run_client(Pop3Client::new, data));
