//! Property: the PROXY header parser never panics, never asks for nothing,
//! never claims a header longer than its bounds or than the bytes it was
//! given, a reader that reads only what `NeedMore` asks for never reads past
//! the header, and the outcome does not depend on how the bytes arrived.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailgate::proto::proxy_header::{Parsed, V1_MAX, V2_MAX_PAYLOAD, parse};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let whole = parse(input);
    check(&whole, input.len());
    let mut read = 0;
    for _ in 0..=input.len() + 1 {
        let parsed = parse(&input[..read]);
        check(&parsed, read);
        match parsed {
            Parsed::NeedMore(n) if read < input.len() => {
                read += n.min(chunk).min(input.len() - read);
            }
            Parsed::NeedMore(_) => {
                assert!(matches!(whole, Parsed::NeedMore(_)), "{whole:?}");
                return;
            }
            Parsed::Proxied { length, .. } | Parsed::Local { length } => {
                assert_eq!(length, read, "read past (or short of) the header");
                assert_eq!(parsed, whole, "the outcome depends on the split");
                assert_eq!(parse(&input[..length]), whole);
                return;
            }
            Parsed::Invalid(_) => {
                assert!(matches!(whole, Parsed::Invalid(_)), "{whole:?}");
                return;
            }
        }
    }
    panic!("no progress");
});

fn check(parsed: &Parsed, given: usize) {
    match parsed {
        Parsed::NeedMore(n) => assert!(*n > 0 && given + n <= 16 + V2_MAX_PAYLOAD),
        Parsed::Proxied { length, .. } | Parsed::Local { length } => {
            assert!(*length <= given);
            assert!(*length <= V1_MAX || *length <= 16 + V2_MAX_PAYLOAD);
        }
        Parsed::Invalid(_) => {}
    }
}
