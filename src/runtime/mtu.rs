//! Whether a datagram of the payload budget leaves in one IP packet: the
//! interface a target is reached through, its MTU, and the rule
//! ([`max_unfragmented_payload`]). A budget above it still works, by IP
//! fragmentation, but one lost fragment loses the whole datagram and many
//! networks drop fragments; the broadcaster warns at start
//! ([`fragmenting_targets`]).
//!
//! The interface is found without sending anything: a probe socket is
//! `connect`ed to the target (UDP's connect only asks the routing table)
//! and its local address names the interface; a group's interface is the
//! one configured. The MTU is Linux's `/sys/class/net/<name>/mtu`;
//! elsewhere nothing is checked.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use crate::runtime::resolve;

/// IPv4 header (without options) and UDP header, in bytes.
pub const IPV4_UDP_HEADERS: usize = 20 + 8;
/// IPv6 header (without extension headers) and UDP header, in bytes.
pub const IPV6_UDP_HEADERS: usize = 40 + 8;

/// The largest UDP payload one IP packet carries on a link of `mtu` bytes.
pub fn max_unfragmented_payload(mtu: u32, ipv6: bool) -> usize {
    let headers = if ipv6 {
        IPV6_UDP_HEADERS
    } else {
        IPV4_UDP_HEADERS
    };
    usize::try_from(mtu)
        .unwrap_or(usize::MAX)
        .saturating_sub(headers)
}

/// A target that datagrams of the payload budget reach only fragmented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragmenting {
    /// The target.
    pub target: SocketAddr,
    /// The interface it is reached through.
    pub interface: String,
    /// That interface's MTU.
    pub mtu: u32,
    /// The payload budget.
    pub budget: usize,
}

impl Fragmenting {
    /// [`max_unfragmented_payload`] of this target's interface.
    pub fn limit(&self) -> usize {
        max_unfragmented_payload(self.mtu, self.target.is_ipv6())
    }

    fn headers(&self) -> usize {
        if self.target.is_ipv6() {
            IPV6_UDP_HEADERS
        } else {
            IPV4_UDP_HEADERS
        }
    }
}

impl fmt::Display for Fragmenting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "payload budget {} bytes is above the {} bytes one packet carries on {} (MTU {}, less {} bytes of IP and UDP headers): datagrams to {} leave fragmented, and one lost fragment loses the datagram; lower the payload budget to {} or less",
            self.budget,
            self.limit(),
            self.interface,
            self.mtu,
            self.headers(),
            self.target,
            self.limit()
        )
    }
}

/// The `targets` whose interface's MTU is too small for datagrams of
/// `budget` bytes, one per interface (the first target through it). A
/// group is reached through `multicast_if`, the interface configured for
/// it; the rest through the routing table. A target whose interface or MTU
/// cannot be found is skipped: this is a warning, never an error.
pub fn fragmenting_targets(
    targets: impl IntoIterator<Item = SocketAddr>,
    budget: usize,
    multicast_if: IpAddr,
) -> Vec<Fragmenting> {
    let Ok(interfaces) = resolve::interfaces() else {
        return Vec::new();
    };
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for target in targets {
        let local = if target.ip().is_multicast() {
            Some(multicast_if)
        } else {
            route_source(target).ok()
        };
        let Some(name) = local.and_then(|ip| {
            let ip = ip.to_canonical();
            interfaces
                .iter()
                .find(|i| i.addr == Some(ip))
                .map(|i| &i.name)
        }) else {
            continue;
        };
        if seen.contains(name) {
            continue;
        }
        seen.push(name.clone());
        let Some(mtu) = interface_mtu(name) else {
            continue;
        };
        if budget > max_unfragmented_payload(mtu, target.is_ipv6()) {
            out.push(Fragmenting {
                target,
                interface: name.clone(),
                mtu,
                budget,
            });
        }
    }
    out
}

/// The local address the routing table picks to reach `target`, asked by
/// connecting a probe socket (nothing is sent).
fn route_source(target: SocketAddr) -> io::Result<IpAddr> {
    let any: SocketAddr = match target {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let probe = UdpSocket::bind(any)?;
    // Connecting to a broadcast address needs SO_BROADCAST.
    probe.set_broadcast(true)?;
    probe.connect(target)?;
    Ok(probe.local_addr()?.ip())
}

/// The MTU of interface `name`, where the OS says.
fn interface_mtu(name: &str) -> Option<u32> {
    if cfg!(target_os = "linux") && !name.contains('/') {
        let text = std::fs::read_to_string(format!("/sys/class/net/{name}/mtu")).ok()?;
        text.trim().parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_is_the_mtu_less_the_ip_and_udp_headers() {
        assert_eq!(max_unfragmented_payload(1500, false), 1472);
        assert_eq!(max_unfragmented_payload(1500, true), 1452);
        assert_eq!(max_unfragmented_payload(9000, false), 8972);
        assert_eq!(max_unfragmented_payload(65536, false), 65508);
        assert_eq!(max_unfragmented_payload(20, true), 0);
        // The default budget fits an Ethernet MTU either way.
        assert!(crate::wire::DEFAULT_PAYLOAD_BUDGET <= max_unfragmented_payload(1500, true));
        let f = Fragmenting {
            target: "192.168.1.21:47474".parse().unwrap(),
            interface: "eth0".into(),
            mtu: 1500,
            budget: 9000,
        };
        assert_eq!(f.limit(), 1472);
        assert_eq!(
            f.to_string(),
            "payload budget 9000 bytes is above the 1472 bytes one packet carries on eth0 \
             (MTU 1500, less 28 bytes of IP and UDP headers): datagrams to 192.168.1.21:47474 \
             leave fragmented, and one lost fragment loses the datagram; lower the payload \
             budget to 1472 or less"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn loopback_carries_the_largest_budget_whole_and_a_tiny_mtu_would_not() {
        let lo: IpAddr = std::net::Ipv4Addr::LOCALHOST.into();
        let targets: Vec<SocketAddr> = vec![
            "127.0.0.1:9".parse().unwrap(),
            "239.255.74.74:47474".parse().unwrap(),
        ];
        assert_eq!(fragmenting_targets(targets.clone(), 65_000, lo), []);
        let mtu = interface_mtu("lo").expect("lo has an MTU");
        let over = max_unfragmented_payload(mtu, false) + 1;
        let found = fragmenting_targets(targets, over, lo);
        assert_eq!(found.len(), 1, "once per interface: {found:?}");
        assert_eq!(found[0].interface, "lo");
        assert_eq!(found[0].mtu, mtu);
    }
}
