use super::*;

/// Bytes the client sends right after the header: they must stay unread.
const CLIENT: &[u8] = b"a1 CAPABILITY\r\n";

fn v2(command: u8, family: u8, addresses: &[u8], tlvs: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x20 | command);
    out.push(family);
    let len = u16::try_from(addresses.len() + tlvs.len()).unwrap();
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(addresses);
    out.extend_from_slice(tlvs);
    out
}

fn v2_ipv4(tlvs: &[u8]) -> Vec<u8> {
    // 192.0.2.7:50000 -> 198.51.100.1:143
    let addresses = [192, 0, 2, 7, 198, 51, 100, 1, 0xc3, 0x50, 0, 143];
    v2(0x1, 0x11, &addresses, tlvs)
}

fn v2_ipv6() -> Vec<u8> {
    let mut addresses = Vec::new();
    addresses.extend_from_slice(
        &"2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    addresses.extend_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    addresses.extend_from_slice(&[0xc3, 0x50, 0, 143]);
    v2(0x1, 0x21, &addresses, &[])
}

fn proxied(source: &str, destination: &str, length: usize) -> Parsed {
    Parsed::Proxied {
        source: source.parse().unwrap(),
        destination: destination.parse().unwrap(),
        length,
    }
}

/// Feeds `input` the way the reader does, `chunk` bytes at most per read
/// and never more than `NeedMore` asks for; returns the outcome and how
/// many bytes were read.
fn feed(input: &[u8], chunk: usize) -> (Parsed, usize) {
    let mut read = 0;
    for _ in 0..=input.len() + 1 {
        match parse(&input[..read]) {
            Parsed::NeedMore(n) if read < input.len() => {
                assert!(n > 0, "NeedMore(0) at {read}");
                read += n.min(chunk).min(input.len() - read);
            }
            other => return (other, read),
        }
    }
    panic!("no progress on {input:?}")
}

fn check(header: &[u8], expected: &Parsed) {
    let mut input = header.to_vec();
    input.extend_from_slice(CLIENT);
    for chunk in [1, 2, 3, 7, usize::MAX] {
        let (parsed, read) = feed(&input, chunk);
        assert_eq!(&parsed, expected, "chunk {chunk}: {header:?}");
        if let Parsed::Proxied { length, .. } | Parsed::Local { length } = parsed {
            assert_eq!(length, header.len());
            assert_eq!(read, header.len(), "chunk {chunk}: read past the header");
        }
    }
}

#[test]
fn v1_headers() {
    let tcp4 = b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 143\r\n";
    check(
        tcp4,
        &proxied("192.0.2.7:50000", "198.51.100.1:143", tcp4.len()),
    );
    let tcp6 = b"PROXY TCP6 2001:db8::7 2001:db8::1 50000 993\r\n";
    check(
        tcp6,
        &proxied("[2001:db8::7]:50000", "[2001:db8::1]:993", tcp6.len()),
    );
    check(b"PROXY UNKNOWN\r\n", &Parsed::Local { length: 15 });
    let unknown = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
    check(
        unknown,
        &Parsed::Local {
            length: unknown.len(),
        },
    );
}

#[test]
fn v2_headers() {
    let ipv4 = v2_ipv4(&[]);
    check(&ipv4, &proxied("192.0.2.7:50000", "198.51.100.1:143", 28));
    let ipv6 = v2_ipv6();
    check(
        &ipv6,
        &proxied("[2001:db8::7]:50000", "[2001:db8::1]:143", 52),
    );
    let local = v2(0x0, 0x00, &[], &[]);
    check(&local, &Parsed::Local { length: 16 });
    // LOCAL with addresses (some balancers fill them in): still local.
    let local = v2(0x0, 0x11, &[127, 0, 0, 1, 127, 0, 0, 1, 0, 1, 0, 2], &[]);
    check(&local, &Parsed::Local { length: 28 });
    let unspec = v2(0x1, 0x00, &[], &[]);
    check(&unspec, &Parsed::Local { length: 16 });
}

#[test]
fn v2_tlvs_are_skipped() {
    // PP2_TYPE_UNIQUE_ID and PP2_TYPE_NOOP.
    let tlvs = [0x05, 0, 3, b'a', b'b', b'c', 0x04, 0, 2, 0, 0];
    let header = v2_ipv4(&tlvs);
    check(
        &header,
        &proxied("192.0.2.7:50000", "198.51.100.1:143", 28 + tlvs.len()),
    );
}

#[test]
fn truncated_headers_wait() {
    let ipv4 = v2_ipv4(&[]);
    let v1 = b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 143\r\n";
    for header in [&ipv4[..], &v1[..]] {
        for cut in 0..header.len() {
            assert!(
                matches!(parse(&header[..cut]), Parsed::NeedMore(n) if n > 0 && cut + n <= header.len()),
                "{:?}",
                &header[..cut]
            );
        }
    }
}

#[test]
fn over_long_headers_are_refused() {
    let mut long = b"PROXY TCP4 ".to_vec();
    long.resize(V1_MAX + 10, b'1');
    assert_eq!(feed(&long, 1).0, Parsed::Invalid(Invalid::V1TooLong));
    assert_eq!(
        feed(&long, usize::MAX).0,
        Parsed::Invalid(Invalid::V1TooLong)
    );
    let mut big = v2(0x1, 0x11, &[0; 12], &[]);
    big[14..16].copy_from_slice(&u16::try_from(V2_MAX_PAYLOAD + 1).unwrap().to_be_bytes());
    assert_eq!(
        feed(&big, 1).0,
        Parsed::Invalid(Invalid::V2TooLong(V2_MAX_PAYLOAD + 1))
    );
}

#[test]
fn garbage_is_refused() {
    for garbage in [
        &b"a1 CAPABILITY\r\n"[..],
        b"EHLO client\r\n",
        b"proxy TCP4 192.0.2.7 198.51.100.1 50000 143\r\n",
        b"\x16\x03\x01\x02\x00",
    ] {
        assert_eq!(
            feed(garbage, 1).0,
            Parsed::Invalid(Invalid::Missing),
            "{garbage:?}"
        );
    }
    for malformed in [
        &b"PROXY TCP4 192.0.2 198.51.100.1 50000 143\r\n"[..],
        b"PROXY TCP4 192.0.2.7 198.51.100.1 70000 143\r\n",
        b"PROXY TCP5 192.0.2.7 198.51.100.1 50000 143\r\n",
        b"PROXY TCP4 2001:db8::7 198.51.100.1 50000 143\r\n",
        b"PROXY \r\n",
    ] {
        assert!(
            matches!(feed(malformed, 1).0, Parsed::Invalid(Invalid::V1(_))),
            "{malformed:?}"
        );
    }
    assert_eq!(
        feed(b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 143\n", 1).0,
        Parsed::Invalid(Invalid::V1BareLineFeed)
    );
    let mut version1 = v2_ipv4(&[]);
    version1[12] = 0x11;
    let mut command = v2_ipv4(&[]);
    command[12] = 0x2f;
    let short = v2(0x1, 0x11, &[192, 0, 2, 7], &[]);
    for malformed in [version1, command, short] {
        assert!(
            matches!(feed(&malformed, 1).0, Parsed::Invalid(Invalid::V2(_))),
            "{malformed:?}"
        );
    }
}

#[test]
fn first_client_bytes_that_look_like_a_header() {
    assert!(starts_like_header(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"));
    assert!(starts_like_header(&v2_ipv4(&[])));
    assert!(!starts_like_header(b"a1 LOGIN u p\r\n"));
    assert!(!starts_like_header(b"\r\n"));
    assert!(could_start_like_header(b"PROX"));
    assert!(could_start_like_header(b"\r\n\r\n\0"));
    assert!(!could_start_like_header(b"PROXY "), "decided: it is one");
    assert!(!could_start_like_header(b"a1"));
}
