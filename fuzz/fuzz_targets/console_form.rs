//! Property: the console's form and cookie parsers never panic on any
//! bytes; a parsed form holds at most `MAX_FIELDS` fields and came from at
//! most `MAX_BODY` bytes; a cookie value found is a whole
//! token of the header made of letters, digits, `-` and `_`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailgate::console::form::{Form, MAX_BODY, MAX_COOKIE, cookie};

fuzz_target!(|data: &[u8]| {
    if let Ok(form) = Form::parse(data) {
        assert!(data.len() <= MAX_BODY);
        let _ = form.get("csrf");
    }
    for name in ["mailgate_session", "mailgate_login", ""] {
        if let Some(value) = cookie(data, name) {
            assert!(data.len() <= MAX_COOKIE);
            assert!(value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            let text = std::str::from_utf8(data).unwrap();
            assert!(text.contains(&format!("{name}={value}")));
        }
    }
});
