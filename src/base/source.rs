//! What a client address counts as. One IPv6 subscriber usually holds a
//! whole /64 (RFC 6177 §2, RFC 7421), so counting single IPv6 addresses
//! would give an attacker 2^64 fresh sources; the brute-force guard and the
//! per-address connection cap both count a prefix instead. IPv4-mapped IPv6
//! addresses (RFC 4291 §2.5.5.2) count as the IPv4 address they carry.

use std::net::{IpAddr, Ipv6Addr};

/// Default IPv6 prefix length a source is grouped by.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// The source `ip` is counted as: IPv4 as is, IPv6 cut to `ipv6_prefix`
/// bits (values above 128 count as 128).
pub fn source_of(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u32::from(ipv6_prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_is_grouped_by_prefix_and_ipv4_is_not() {
        let cases = [
            ("2001:db8:1:2:aaaa::1", 64, "2001:db8:1:2::"),
            ("2001:db8:1:2:ffff:ffff:ffff:ffff", 64, "2001:db8:1:2::"),
            ("2001:db8:1:2::1", 48, "2001:db8:1::"),
            ("2001:db8:1:2::1", 128, "2001:db8:1:2::1"),
            ("2001:db8:1:2::1", 200, "2001:db8:1:2::1"),
            ("2001:db8:1:2::1", 0, "::"),
            ("::ffff:10.1.2.3", 64, "10.1.2.3"),
            ("10.1.2.3", 64, "10.1.2.3"),
        ];
        for (addr, prefix, want) in cases {
            assert_eq!(source_of(ip(addr), prefix), ip(want), "{addr}/{prefix}");
        }
    }
}
