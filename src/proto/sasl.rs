//! SASL pieces shared by the three protocols: decoding what legacy clients send
//! (PLAIN, RFC 4616; LOGIN, draft-murchison-sasl-login) and encoding what the
//! provider wants (XOAUTH2). Every decoder is bounded by [`MAX_SASL_MESSAGE`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::Credentials;
use crate::secret::Secret;

/// Longest base64 SASL message accepted from a client (RFC 4616 allows 255
/// octets per field; three fields in base64 stay well under this).
pub const MAX_SASL_MESSAGE: usize = 2048;

/// The LOGIN mechanism's two prompts, already base64 ("Username:", "Password:").
pub const LOGIN_USERNAME_PROMPT: &str = "VXNlcm5hbWU6";
pub const LOGIN_PASSWORD_PROMPT: &str = "UGFzc3dvcmQ6";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SaslError {
    #[error("SASL message is longer than {MAX_SASL_MESSAGE} bytes")]
    TooLong,
    #[error("SASL message is not valid base64")]
    Base64,
    #[error("SASL PLAIN message is malformed")]
    Malformed,
    #[error("client cancelled the authentication exchange")]
    Cancelled,
    #[error("empty user name")]
    EmptyUser,
}

/// A client's answer to a SASL challenge: `*` cancels (RFC 4422 §3.4),
/// `=` is an empty initial response (RFC 4954 §4, RFC 9051 §6.2.2).
pub fn decode_response(line: &[u8]) -> Result<Vec<u8>, SaslError> {
    if line.len() > MAX_SASL_MESSAGE {
        return Err(SaslError::TooLong);
    }
    match line {
        b"*" => Err(SaslError::Cancelled),
        b"=" => Ok(Vec::new()),
        _ => STANDARD.decode(line).map_err(|_| SaslError::Base64),
    }
}

/// Decodes an RFC 4616 PLAIN message `[authzid] NUL authcid NUL passwd`.
pub fn decode_plain(message: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = message.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(passwd), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| SaslError::Malformed);
    let username = text(authcid)?;
    if username.is_empty() {
        return Err(SaslError::Malformed);
    }
    let authzid = text(authzid)?;
    Ok(Credentials {
        authzid: (!authzid.is_empty() && authzid != username).then_some(authzid),
        username,
        password: Secret::new(text(passwd)?),
    })
}

/// Decodes one step of the LOGIN mechanism (a base64 user name or password).
pub fn decode_login_field(line: &[u8]) -> Result<String, SaslError> {
    let raw = decode_response(line)?;
    String::from_utf8(raw).map_err(|_| SaslError::Malformed)
}

/// The XOAUTH2 initial client response, base64-encoded:
/// `user=<mailbox>^Aauth=Bearer <token>^A^A`.
pub fn encode_xoauth2(user: &str, token: &Secret<String>) -> Secret<String> {
    let raw = Secret::new(format!(
        "user={user}\x01auth=Bearer {}\x01\x01",
        token.expose()
    ));
    Secret::new(STANDARD.encode(raw.expose()))
}

/// Decodes a provider's XOAUTH2 error challenge (`+ <base64 JSON>`) into text
/// for the log; undecodable challenges come back as they are.
pub fn decode_xoauth2_challenge(challenge: &[u8]) -> String {
    match STANDARD.decode(challenge.trim_ascii()) {
        Ok(json) => String::from_utf8_lossy(&json).into_owned(),
        Err(_) => String::from_utf8_lossy(challenge).into_owned(),
    }
}

/// A server-side PLAIN or LOGIN exchange: what the client's next line
/// answers. The three client machines share it and differ only in how they
/// frame a challenge (`+ ` for IMAP and POP3, `334 ` for SMTP).
#[derive(Debug)]
pub enum Exchange {
    /// The PLAIN message (after `AUTH PLAIN` without initial response).
    PlainResponse,
    /// The LOGIN mechanism's user name.
    LoginUser,
    /// The LOGIN mechanism's password.
    LoginPassword { user: String },
}

/// Where an exchange stands after a client line.
#[derive(Debug)]
pub enum Progress {
    /// Send `challenge` (base64, empty for PLAIN) and feed the next line to `next`.
    Challenge {
        next: Exchange,
        challenge: &'static str,
    },
    Done(Credentials),
}

impl Exchange {
    /// Starts `mechanism` (upper-case) with its optional initial response;
    /// `None` for any mechanism other than PLAIN and LOGIN.
    pub fn start(mechanism: &str, initial: Option<&[u8]>) -> Option<Result<Progress, SaslError>> {
        let challenge = |next, challenge| Ok(Progress::Challenge { next, challenge });
        Some(match (mechanism, initial) {
            ("PLAIN", Some(ir)) => Exchange::PlainResponse.step(ir),
            ("PLAIN", None) => challenge(Exchange::PlainResponse, ""),
            ("LOGIN", Some(ir)) => Exchange::LoginUser.step(ir),
            ("LOGIN", None) => challenge(Exchange::LoginUser, LOGIN_USERNAME_PROMPT),
            _ => return None,
        })
    }

    /// Feeds one client line (without CRLF) to the exchange.
    pub fn step(self, line: &[u8]) -> Result<Progress, SaslError> {
        match self {
            Exchange::PlainResponse => {
                let message = Secret::new(decode_response(line)?);
                decode_plain(message.expose()).map(Progress::Done)
            }
            Exchange::LoginUser => match decode_login_field(line)? {
                user if user.is_empty() => Err(SaslError::EmptyUser),
                user => Ok(Progress::Challenge {
                    next: Exchange::LoginPassword { user },
                    challenge: LOGIN_PASSWORD_PROMPT,
                }),
            },
            Exchange::LoginPassword { user } => Ok(Progress::Done(Credentials {
                username: user,
                authzid: None,
                password: Secret::new(decode_login_field(line)?),
            })),
        }
    }
}

/// Base64 for the LOGIN prompts and PLAIN responses that tests and clients build.
pub fn encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_with_and_without_authzid() {
        let c = decode_plain(b"\0alice\0pw").unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.expose().as_str()),
            ("alice", "pw")
        );
        assert_eq!(c.authzid, None);
        let c = decode_plain(b"shared@x\0alice\0pw").unwrap();
        assert_eq!(c.authzid.as_deref(), Some("shared@x"));
        let c = decode_plain(b"alice\0alice\0pw").unwrap();
        assert_eq!(c.authzid, None);
    }

    #[test]
    fn plain_rejects_malformed() {
        for bad in [&b"alice\0pw"[..], b"\0\0pw", b"a\0b\0c\0d", b"\0\xff\0pw"] {
            assert_eq!(
                decode_plain(bad).unwrap_err(),
                SaslError::Malformed,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn responses_cancel_empty_and_bound() {
        assert_eq!(decode_response(b"*"), Err(SaslError::Cancelled));
        assert_eq!(decode_response(b"="), Ok(vec![]));
        assert_eq!(decode_response(b"!!"), Err(SaslError::Base64));
        assert_eq!(
            decode_response(&[b'A'; MAX_SASL_MESSAGE + 4]),
            Err(SaslError::TooLong)
        );
        assert_eq!(
            decode_login_field(LOGIN_USERNAME_PROMPT.as_bytes()).unwrap(),
            "Username:"
        );
    }

    #[test]
    fn exchanges_for_both_mechanisms_and_both_forms() {
        let done = |p: Result<Progress, SaslError>| match p {
            Ok(Progress::Done(c)) => (c.username, c.password.expose().clone()),
            other => panic!("{other:?}"),
        };
        let plain = encode(b"\0alice\0pw");
        let expected = ("alice".to_owned(), "pw".to_owned());
        assert_eq!(
            done(Exchange::start("PLAIN", Some(plain.as_bytes())).unwrap()),
            expected
        );
        let Some(Ok(Progress::Challenge {
            next,
            challenge: "",
        })) = Exchange::start("PLAIN", None)
        else {
            panic!()
        };
        assert_eq!(done(next.step(plain.as_bytes())), expected);
        let Some(Ok(Progress::Challenge { next, challenge })) = Exchange::start("LOGIN", None)
        else {
            panic!()
        };
        assert_eq!(challenge, LOGIN_USERNAME_PROMPT);
        let Ok(Progress::Challenge { next, challenge }) = next.step(encode(b"alice").as_bytes())
        else {
            panic!()
        };
        assert_eq!(challenge, LOGIN_PASSWORD_PROMPT);
        assert_eq!(done(next.step(encode(b"pw").as_bytes())), expected);
        let Some(Ok(Progress::Challenge { next, .. })) =
            Exchange::start("LOGIN", Some(encode(b"alice").as_bytes()))
        else {
            panic!()
        };
        assert_eq!(done(next.step(encode(b"pw").as_bytes())), expected);
        assert!(Exchange::start("CRAM-MD5", None).is_none());
        assert_eq!(
            Exchange::LoginUser.step(b"=").unwrap_err(),
            SaslError::EmptyUser
        );
        assert_eq!(
            Exchange::PlainResponse.step(b"*").unwrap_err(),
            SaslError::Cancelled
        );
    }

    #[test]
    fn xoauth2_matches_the_documented_layout() {
        let enc = encode_xoauth2("a@b.c", &Secret::from("tok"));
        let raw = STANDARD.decode(enc.expose()).unwrap();
        assert_eq!(raw, b"user=a@b.c\x01auth=Bearer tok\x01\x01");
    }
}
