//! The untrusted bytes of a console request that are not HTTP framing:
//! `application/x-www-form-urlencoded` bodies and query strings, and the
//! `Cookie` header. Both are bounded here, whatever hyper let through, and
//! both are fuzzed (`fuzz/fuzz_targets/console_form.rs`): no input panics,
//! and a parsed form never holds more than [`MAX_FIELDS`] fields of at most
//! [`MAX_BODY`] bytes in all.

use std::collections::HashMap;

/// Largest form body read (a form here has at most a few short fields).
pub const MAX_BODY: usize = 8 * 1024;
/// Most fields a form or query may have.
pub const MAX_FIELDS: usize = 16;
/// Longest `Cookie` header looked at.
pub const MAX_COOKIE: usize = 4 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the form is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("the form has more than {MAX_FIELDS} fields")]
    TooManyFields,
}

/// Decoded fields; a repeated name keeps its first value, so that a
/// second `csrf=` cannot replace the one checked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Form(HashMap<String, String>);

impl Form {
    pub fn parse(bytes: &[u8]) -> Result<Self, FormError> {
        if bytes.len() > MAX_BODY {
            return Err(FormError::TooLarge);
        }
        let mut fields = HashMap::new();
        for (n, (name, value)) in form_urlencoded::parse(bytes).enumerate() {
            if n >= MAX_FIELDS {
                return Err(FormError::TooManyFields);
            }
            fields
                .entry(name.into_owned())
                .or_insert_with(|| value.into_owned());
        }
        Ok(Self(fields))
    }

    /// The field's value, `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }
}

/// The value of cookie `name` in a `Cookie` header (RFC 6265 §5.4: pairs
/// separated by `; `), if present and made of cookie-octets.
pub fn cookie<'h>(header: &'h [u8], name: &str) -> Option<&'h str> {
    if header.len() > MAX_COOKIE {
        return None;
    }
    let header = std::str::from_utf8(header).ok()?;
    header.split(';').find_map(|pair| {
        let (n, v) = pair.trim().split_once('=')?;
        (n == name
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_keep_the_first_value_and_are_bounded() {
        let f = Form::parse(b"csrf=a&account=b%40c.test&csrf=x&password=a+b").unwrap();
        assert_eq!(f.get("csrf"), "a");
        assert_eq!(f.get("account"), "b@c.test");
        assert_eq!(f.get("password"), "a b");
        assert_eq!(f.get("missing"), "");
        assert_eq!(
            Form::parse(&vec![b'a'; MAX_BODY + 1]),
            Err(FormError::TooLarge)
        );
        let many = (0..=MAX_FIELDS)
            .map(|i| format!("f{i}=1"))
            .collect::<Vec<_>>();
        assert_eq!(
            Form::parse(many.join("&").as_bytes()),
            Err(FormError::TooManyFields)
        );
    }

    #[test]
    fn cookies_are_found_by_exact_name_and_safe_value() {
        let h = b"a=1; mailgate_session=abc123; mailgate_session_x=zz";
        assert_eq!(cookie(h, "mailgate_session"), Some("abc123"));
        assert_eq!(cookie(h, "session"), None);
        assert_eq!(cookie(b"mailgate_session=a\"b", "mailgate_session"), None);
        assert_eq!(cookie(&[0xff, b'='], "x"), None);
    }
}
