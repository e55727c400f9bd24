use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;

fn b64_lines(bytes: &[u8]) -> String {
    let text = STANDARD.encode(bytes);
    text.as_bytes()
        .chunks(76)
        .map(|l| format!("{}\r\n", std::str::from_utf8(l).unwrap()))
        .collect()
}

fn message(big: &[u8], small: &[u8]) -> Vec<u8> {
    format!(
        "From: a@x\r\nTo: b@x\r\nContent-Type: multipart/mixed;\r\n boundary=\"BB\"\r\n\r\n\
         preamble\r\n--BB\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
         --BB\r\nContent-Type: application/pdf; name=\"big.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"big.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\
         --BB\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\n\
         Content-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\
         --BB--\r\nepilogue\r\n",
        b64_lines(big),
        b64_lines(small)
    )
    .into_bytes()
}

#[test]
fn largest_base64_parts_go_until_the_rest_fits() {
    let big: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
    let small = vec![7u8; 3000];
    let mime = message(&big, &small);
    let (skeleton, attachments) = split(&mime, 20_000).unwrap();
    assert_eq!(attachments.len(), 1);
    let a = &attachments[0];
    assert_eq!(a.bytes, big);
    assert_eq!(a.name, "big.pdf");
    assert_eq!(a.content_type, "application/pdf");
    assert!(!a.inline);
    let skeleton = String::from_utf8(skeleton).unwrap();
    assert!(
        skeleton.contains("hello\r\n--BB\r\nContent-Type: image/png"),
        "{skeleton}"
    );
    assert!(skeleton.ends_with("--BB--\r\nepilogue\r\n"));
    assert!(encoded_len(skeleton.len()) <= 20_000);

    let (_, both) = split(&mime, 3000).unwrap();
    assert_eq!(both.len(), 2);
    assert_eq!(both[1].content_id.as_deref(), Some("logo@x"));
    assert!(both[1].inline);
    assert_eq!(both[1].bytes, small);
}

#[test]
fn what_cannot_be_split_is_refused() {
    let plain = b"To: b@x\r\nContent-Type: text/plain\r\n\r\nbody\r\n".to_vec();
    assert_eq!(split(&plain, 10), Err(SplitError::NotMultipart));
    let mime = message(&[1; 3000], &[2; 3000]);
    assert_eq!(split(&mime, 100), Err(SplitError::CannotShrink));
}
