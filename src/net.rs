//! IP address ranges, as `--trust-proxy` names them: one address (`127.0.0.1`, `::1`) or a CIDR
//! range (`10.0.0.0/8`, `fd00::/8`). Parsing and membership only; what trusting a proxy means is
//! decided in the access checks (`http::access`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address with a prefix length: every address whose first `prefix` bits equal `addr`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    addr: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Whether `ip` is in the range. An IPv4 address seen as IPv6 (`::ffff:127.0.0.1`, the form
    /// a dual-stack socket reports) counts as the IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                same_prefix(u32::from(net).into(), u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                same_prefix(u128::from(net), u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// Whether the first `prefix` of `bits` bits of `a` and `b` agree.
fn same_prefix(a: u128, b: u128, prefix: u8, bits: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(bits - prefix);
    (a >> shift) == (b >> shift)
}

impl FromStr for IpRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad = || {
            format!(
                "`{text}` is not an IP address or range: write one like 127.0.0.1, ::1 or \
                 10.0.0.0/8"
            )
        };
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        // `[::1]` as well as `::1`.
        let addr = addr
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr);
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(prefix) => match prefix.parse::<u8>() {
                Ok(n) if n <= bits => n,
                _ => return Err(format!("`{text}`: the prefix length must be 0 to {bits}")),
            },
        };
        let canonical = addr.to_canonical();
        // `::ffff:10.0.0.0/104` is `10.0.0.0/8`.
        let prefix = if canonical.is_ipv4() && addr.is_ipv6() {
            prefix.saturating_sub(96)
        } else {
            prefix
        };
        Ok(IpRange {
            addr: canonical,
            prefix,
        })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> IpRange {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn single_addresses_match_only_themselves() {
        assert!(range("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(!range("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(range("::1").contains(ip("::1")));
        assert!(range("[::1]").contains(ip("::1")));
        assert!(!range("::1").contains(ip("127.0.0.1")));
        // A dual-stack socket reports IPv4 peers in IPv6 form.
        assert!(range("127.0.0.1").contains(ip("::ffff:127.0.0.1")));
    }

    #[test]
    fn cidr_ranges_match_their_prefix() {
        assert!(range("10.0.0.0/8").contains(ip("10.200.3.4")));
        assert!(!range("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(range("192.168.1.128/25").contains(ip("192.168.1.200")));
        assert!(!range("192.168.1.128/25").contains(ip("192.168.1.127")));
        assert!(range("fd00::/8").contains(ip("fd12:3456::1")));
        assert!(!range("fd00::/8").contains(ip("fe80::1")));
        assert!(range("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(range("::ffff:10.0.0.0/104").contains(ip("10.1.2.3")));
    }

    #[test]
    fn bad_ranges_are_refused_with_an_example() {
        assert!("localhost"
            .parse::<IpRange>()
            .unwrap_err()
            .contains("10.0.0.0/8"));
        assert!("10.0.0.0/33"
            .parse::<IpRange>()
            .unwrap_err()
            .contains("0 to 32"));
        assert!("10.0.0.0/x".parse::<IpRange>().is_err());
    }
}
