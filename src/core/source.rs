//! The source filter: which sender a receiver takes datagrams from. A plain
//! value matched against each datagram's source address; the runtime drops
//! what does not match before decoding it and counts it as `foreign`.
//!
//! Without a key, this is the receiver's defence against datagrams forged
//! by other hosts: session probation and jump confirmation
//! ([`crate::core::tracker`]) make one forged datagram harmless, but only a
//! filter (or a key) keeps out a host that sends many. It cannot stop a
//! host that forges its source address; a key can.
//!
//! An IPv4-mapped IPv6 source (`::ffff:a.b.c.d`, what a dual-stack socket
//! reports for IPv4 traffic) matches the IPv4 address it maps.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// Accept datagrams from this address only, and, with a port, from this
/// port only. Parsed from `ADDR` or `ADDR:PORT` (`192.168.1.10`,
/// `192.168.1.10:40000`, `::1`, `[::1]:40000`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceFilter {
    /// The sender's address.
    pub ip: IpAddr,
    /// The sender's port; `None` accepts any port of `ip`.
    pub port: Option<u16>,
}

impl SourceFilter {
    /// Whether a datagram from `from` is accepted.
    pub fn matches(&self, from: SocketAddr) -> bool {
        from.ip().to_canonical() == self.ip.to_canonical()
            && self.port.is_none_or(|p| p == from.port())
    }
}

impl From<IpAddr> for SourceFilter {
    fn from(ip: IpAddr) -> SourceFilter {
        SourceFilter { ip, port: None }
    }
}

impl From<SocketAddr> for SourceFilter {
    fn from(a: SocketAddr) -> SourceFilter {
        SourceFilter {
            ip: a.ip(),
            port: Some(a.port()),
        }
    }
}

/// A source filter that is neither an address nor an address and port.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an address or address:port (examples: 192.168.1.10, 192.168.1.10:40000, [::1]:40000)")]
pub struct SourceFilterError;

impl FromStr for SourceFilter {
    type Err = SourceFilterError;

    fn from_str(s: &str) -> Result<SourceFilter, SourceFilterError> {
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(a.into());
        }
        s.parse::<IpAddr>()
            .map(SourceFilter::from)
            .map_err(|_| SourceFilterError)
    }
}

impl fmt::Display for SourceFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => SocketAddr::new(self.ip, port).fmt(f),
            None => self.ip.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn address_alone_matches_every_port_and_with_a_port_only_that_one() {
        let any: SourceFilter = "192.168.1.10".parse().unwrap();
        assert!(any.matches(sa("192.168.1.10:1")));
        assert!(any.matches(sa("192.168.1.10:65535")));
        assert!(!any.matches(sa("192.168.1.11:1")));
        let one: SourceFilter = "192.168.1.10:40000".parse().unwrap();
        assert!(one.matches(sa("192.168.1.10:40000")));
        assert!(!one.matches(sa("192.168.1.10:40001")));
        assert!(!one.matches(sa("10.0.0.1:40000")));
    }

    #[test]
    fn ipv6_and_mapped_ipv4() {
        let v6: SourceFilter = "[::1]:5".parse().unwrap();
        assert!(v6.matches(sa("[::1]:5")));
        assert!(!v6.matches(sa("127.0.0.1:5")));
        let bare: SourceFilter = "fe80::1".parse().unwrap();
        assert_eq!(bare.port, None);
        let v4: SourceFilter = "127.0.0.1".parse().unwrap();
        assert!(v4.matches(sa("[::ffff:127.0.0.1]:9")));
        let mapped: SourceFilter = "::ffff:127.0.0.1".parse().unwrap();
        assert!(mapped.matches(sa("127.0.0.1:9")));
    }

    #[test]
    fn parse_and_display_round_trip_and_errors_are_one_line() {
        for s in ["10.1.2.3", "10.1.2.3:47475", "::1", "[::1]:47475"] {
            assert_eq!(s.parse::<SourceFilter>().unwrap().to_string(), s);
        }
        for bad in ["", "host.lan", "10.1.2.3:", "10.1.2.3:70000", "[::1]"] {
            let e = bad.parse::<SourceFilter>().unwrap_err();
            assert!(!e.to_string().contains('\n'), "{bad}");
        }
    }
}
