//! Which network addresses anchorage may dial or announce: one rule for users' origins
//! and for delegates, so a range refused for one is refused for the other. An address
//! is public when it is routable on the internet; everything reserved, local, private,
//! multicast or documentation is not, and an IPv4 address embedded in IPv6 (mapped,
//! NAT64, 6to4) is judged as the IPv4 address it reaches.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use multiaddr::{Multiaddr, Protocol};

/// Whether `ip` is routable on the internet.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let reserved = a == 0 // "this network", 0/8
        || a >= 240 // 240/4 reserved, and the broadcast address
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_documentation()
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT, 100.64/10
        || (a == 198 && (b & 0xfe) == 18) // benchmarking, 198.18/15
        || (a == 192 && b == 0 && c == 0); // IETF protocol assignments, 192.0.0/24
    !reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // ::/96: the unspecified and loopback addresses and the deprecated IPv4-compatible
    // form, none of which is routable.
    if s[..6] == [0; 6] {
        return false;
    }
    // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded_v4(s[6], s[7]));
    }
    // 6to4 (2002::/16) reaches the IPv4 address in the next 32 bits.
    if s[0] == 0x2002 {
        return is_public_v4(embedded_v4(s[1], s[2]));
    }
    let reserved = ip.is_multicast()
        || (s[0] == 0x64 && s[1] == 0xff9b) // local-use NAT64, 64:ff9b:1::/48
        || (s[0] & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated), fec0::/10
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation, 2001:db8::/32
        || (s[0] == 0x2001 && s[1] == 0) // Teredo, 2001::/32 (hides its IPv4 peer)
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]); // discard, 100::/64
    !reserved
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// Whether every IP address in `addr` is public. DNS names are not resolved here
/// (callers that dial resolve them first); an address with no IP and no DNS name has
/// nothing to vet and is not public.
pub fn has_only_public_ips(addr: &Multiaddr) -> bool {
    let mut has_host = false;
    for proto in addr.iter() {
        match proto {
            Protocol::Ip4(ip) if !is_public_v4(ip) => return false,
            Protocol::Ip6(ip) if !is_public_v6(ip) => return false,
            Protocol::Ip4(_)
            | Protocol::Ip6(_)
            | Protocol::Dns(_)
            | Protocol::Dns4(_)
            | Protocol::Dns6(_)
            | Protocol::Dnsaddr(_) => has_host = true,
            _ => {}
        }
    }
    has_host
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_ipv4_is_judged_as_ipv4() {
        assert!(!is_public_ip("::ffff:192.168.0.1".parse().unwrap()));
        assert!(is_public_ip("2002:808:808::1".parse().unwrap()));
        assert!(!is_public_ip("64:ff9b::c0a8:1".parse().unwrap()));
    }

    #[test]
    fn an_address_without_a_host_has_nothing_public_about_it() {
        let bare: Multiaddr = "/p2p/12D3KooWGRUVh1S3jiwVmGzeoWfxFcNn7MWzL9VXpdKrUZyWH8Qd"
            .parse()
            .unwrap();
        assert!(!has_only_public_ips(&bare));
        let named: Multiaddr = "/dns4/pin.example.com/tcp/4001".parse().unwrap();
        assert!(has_only_public_ips(&named));
        let private: Multiaddr = "/ip4/10.0.0.1/tcp/1".parse().unwrap();
        assert!(!has_only_public_ips(&private));
    }
}
