//! Property: parsing and validating any text never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mailgate::config::parse(text, "fuzz.toml", std::path::Path::new("/nonexistent"));
    }
});
