use super::*;

fn assemble(input: &[u8]) -> (Vec<Assembly>, Vec<u8>) {
    let mut assembler = Assembler::default();
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    for _ in 0..100 {
        match assembler.step(&mut buf, &ClientLimits::default()) {
            Assembly::NeedMore => return (out, buf.to_vec()),
            other => out.push(other),
        }
    }
    panic!("assembler did not settle");
}

fn values(command: &Command) -> Vec<Vec<u8>> {
    command
        .args()
        .iter()
        .map(|t| t.astring().unwrap_or(b"()").to_vec())
        .collect()
}

#[test]
fn literal_markers() {
    let m = |len, sync| Some(Marker { len, sync });
    assert_eq!(split_marker(b"a LOGIN {5}"), (&b"a LOGIN "[..], m(5, true)));
    assert_eq!(split_marker(b"a ID ({12+}"), (&b"a ID ("[..], m(12, false)));
    assert_eq!(split_marker(b"{0}"), (&b""[..], m(0, true)));
    assert_eq!(
        split_marker(b"x {99999999999999999999}"),
        (&b"x "[..], m(u64::MAX, true))
    );
    for no_marker in [
        &b"a LOGIN x{5}"[..],
        b"a {}",
        b"a {+}",
        b"a {5-}",
        b"a {x}",
        b"a \"{5}\"",
    ] {
        assert_eq!(split_marker(no_marker), (no_marker, None), "{no_marker:?}");
    }
}

#[test]
fn astring_table() {
    let table: &[(&[u8], &[&[u8]])] = &[
        (b"t LOGIN atom \"quoted\"\r\n", &[b"atom", b"quoted"]),
        (b"t LOGIN \"a\\\\b\\\"c\" x\r\n", &[b"a\\b\"c", b"x"]),
        (b"t LOGIN {3}\r\n\x00\xff\n \"\"\r\n", &[b"\x00\xff\n", b""]),
        (b"t LOGIN {1+}\r\n{ {2}\r\n}}\r\n", &[b"{", b"}}"]),
        (b"t  LOGIN   a   b  \r\n", &[b"a", b"b"]),
        (b"t ID (\"k\" NIL)\r\n", &[b"()", b"k", b"NIL", b"()"]),
    ];
    for (input, expected) in table {
        let (out, rest) = assemble(input);
        let ([Assembly::SendContinuation, .., Assembly::Complete(cmd)] | [Assembly::Complete(cmd)]) =
            out.as_slice()
        else {
            panic!("{input:?}: {out:?}");
        };
        assert_eq!(
            values(cmd),
            expected.iter().map(|v| v.to_vec()).collect::<Vec<_>>()
        );
        assert!(rest.is_empty());
    }
}

#[test]
fn literal_bytes_leave_the_buffer_as_they_arrive() {
    let mut assembler = Assembler::default();
    let limits = ClientLimits::default();
    let mut buf = BytesMut::from(&b"t LOGIN {10+}\r\nabc"[..]);
    assert_eq!(assembler.step(&mut buf, &limits), Assembly::NeedMore);
    assert!(buf.is_empty());
    buf.extend_from_slice(b"defghij x\r\nnext");
    let Assembly::Complete(cmd) = assembler.step(&mut buf, &limits) else {
        panic!()
    };
    assert_eq!(values(&cmd), [b"abcdefghij".to_vec(), b"x".to_vec()]);
    assert_eq!(cmd.verb().as_deref(), Some("LOGIN"));
    assert_eq!(&buf[..], b"next");
}

#[test]
fn quoted_strings_reject_cr_and_nul() {
    for input in [&b"t LOGIN \"a\rb\" x\r\n"[..], b"t LOGIN \"a\x00b\" x\r\n"] {
        let (out, _) = assemble(input);
        let text = "Invalid character in quoted string";
        assert_eq!(
            out,
            [Assembly::Bad {
                tag: Some("t".into()),
                text
            }]
        );
    }
}

#[test]
fn debug_never_shows_literal_bytes() {
    let mut assembler = Assembler::default();
    let mut buf = BytesMut::from(&b"t LOGIN alice {8+}\r\nhunt"[..]);
    assert_eq!(
        assembler.step(&mut buf, &ClientLimits::default()),
        Assembly::NeedMore
    );
    let debug = format!("{assembler:?}");
    assert!(debug.contains("PendingLiteral(4/8 bytes)"), "{debug}");
    assert!(
        !debug.contains("hunt") && !debug.contains("alice"),
        "{debug}"
    );
}
