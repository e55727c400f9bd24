//! Property: no panic; input only shrinks and stays within one command
//! line; replies are whole CRLF lines; a delivered message fits the bound,
//! has CRLF line ends only and 1..=MAX_RECIPIENTS recipients.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailgate_fuzz::run_server(data));
