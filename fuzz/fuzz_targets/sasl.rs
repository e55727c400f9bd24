//! Property: the decoders never panic and stay within MAX_SASL_MESSAGE;
//! for PLAIN, decode(encode(authzid, authcid, passwd)) gives the fields back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailgate::proto::sasl::{self, MAX_SASL_MESSAGE, SaslError};

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = sasl::decode_response(data) {
        assert!(data.len() <= MAX_SASL_MESSAGE);
        let _ = sasl::decode_plain(&raw);
    }
    let _ = sasl::decode_plain(data);
    let _ = sasl::decode_login_field(data);
    let _ = sasl::decode_xoauth2_challenge(data);

    // Round trip: the input split at 0xff into three UTF-8 fields without NUL.
    let mut fields = data.split(|&b| b == 0xff);
    let (Some(z), Some(c), Some(p), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return;
    };
    let text = |b: &[u8]| {
        std::str::from_utf8(b)
            .ok()
            .filter(|s| !s.contains('\0'))
            .map(str::to_owned)
    };
    let (Some(z), Some(c), Some(p)) = (text(z), text(c), text(p)) else {
        return;
    };
    let message = [z.as_bytes(), c.as_bytes(), p.as_bytes()].join(&0u8);
    let encoded = sasl::encode(&message);
    match sasl::decode_response(encoded.as_bytes()) {
        Err(SaslError::TooLong) => assert!(encoded.len() > MAX_SASL_MESSAGE),
        Err(e) => panic!("own encoding refused: {e}"),
        Ok(raw) => {
            assert_eq!(raw, message);
            match sasl::decode_plain(&raw) {
                Err(_) => assert!(c.is_empty(), "valid PLAIN refused"),
                Ok(creds) => {
                    assert_eq!(creds.username, c);
                    assert_eq!(creds.password.expose(), &p);
                    let z = (!z.is_empty() && z != c).then_some(z);
                    assert_eq!(creds.authzid, z);
                }
            }
        }
    }
});
