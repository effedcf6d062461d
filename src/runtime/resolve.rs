//! Names a person types, turned into the addresses the configs take: host
//! names (`localhost:47474`, `server.lan:47475`) through the system's
//! resolver (std's `ToSocketAddrs`), and interface names (`lo`, `eth0`,
//! `fe80::1%eth0`) through `getifaddrs`. Called once, when a config is
//! built; nothing here runs per datagram.
//!
//! A name with addresses of both families resolves to its first IPv4
//! address (tickcast's defaults are IPv4), or to its first IPv6 address if
//! it has none; write the address itself to choose.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// Why a name did not resolve. Each message is one line naming it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The system's resolver failed (unknown host, no network, ...).
    #[error("cannot resolve {name}: {error}")]
    Lookup {
        /// What was asked for, as given.
        name: String,
        /// The resolver's error.
        error: io::Error,
    },
    /// The name resolved, to no address.
    #[error("{0} resolves to no address")]
    NoAddress(String),
    /// No interface has this name.
    #[error("no interface named {0} on this host (`ip link` lists them)")]
    NoSuchInterface(String),
    /// The interface exists but has no address of the family needed.
    #[error("interface {interface} has no {family} address")]
    NoAddressOfFamily {
        /// The interface's name.
        interface: String,
        /// `IPv4` or `IPv6`.
        family: &'static str,
    },
    /// An `ADDR%INTERFACE` whose interface does not have that address.
    #[error("interface {interface} has no address {addr}")]
    NotOnInterface {
        /// The address given.
        addr: IpAddr,
        /// The interface's name.
        interface: String,
    },
    /// Neither an address, an `ADDR%INTERFACE`, nor an interface name.
    #[error("{0:?} is neither an IP address nor an interface name")]
    NotAnInterface(String),
    /// The interfaces could not be listed.
    #[error("cannot list this host's interfaces: {0}")]
    Io(#[from] io::Error),
}

/// `host_port` as a socket address: an address as written
/// (`127.0.0.1:47474`, `[::1]:47474`), or a host name and port resolved by
/// the system (`localhost:47474`), its first IPv4 address preferred.
pub fn resolve(host_port: &str) -> Result<SocketAddr, ResolveError> {
    if let Ok(addr) = host_port.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let addrs: Vec<SocketAddr> = host_port
        .to_socket_addrs()
        .map_err(|error| ResolveError::Lookup {
            name: host_port.to_string(),
            error,
        })?
        .collect();
    prefer_ipv4(&addrs).ok_or_else(|| ResolveError::NoAddress(host_port.to_string()))
}

/// The first IPv4 address of `addrs`, else the first.
fn prefer_ipv4(addrs: &[SocketAddr]) -> Option<SocketAddr> {
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
}

/// The address `spec` names as an interface: an IP address as written
/// (`192.168.1.21`, `::1`), an interface name (`lo`, `eth0`: its first
/// address of the family asked for, IPv6 if `ipv6`), or an IPv6 address
/// with its interface as scope (`fe80::1%eth0`, or `%2` by index), checked
/// to be on that interface.
pub fn interface_addr(spec: &str, ipv6: bool) -> Result<IpAddr, ResolveError> {
    if let Ok(ip) = spec.parse::<IpAddr>() {
        return Ok(ip);
    }
    let interfaces = interfaces()?;
    let (wanted, scope) = match spec.split_once('%') {
        Some((addr, scope)) => {
            let addr: Ipv6Addr = addr
                .parse()
                .map_err(|_| ResolveError::NotAnInterface(spec.to_string()))?;
            (Some(IpAddr::V6(addr)), scope)
        }
        None => (None, spec),
    };
    let name = interface_name(&interfaces, scope)
        .ok_or_else(|| ResolveError::NoSuchInterface(scope.to_string()))?;
    let mut on_it = interfaces
        .iter()
        .filter(|i| i.name == name)
        .filter_map(|i| i.addr);
    match wanted {
        Some(addr) => on_it
            .find(|&a| a == addr)
            .ok_or_else(|| ResolveError::NotOnInterface {
                addr,
                interface: name.to_string(),
            }),
        None => {
            on_it
                .find(|a| a.is_ipv6() == ipv6)
                .ok_or_else(|| ResolveError::NoAddressOfFamily {
                    interface: name.to_string(),
                    family: if ipv6 { "IPv6" } else { "IPv4" },
                })
        }
    }
}

/// One address of one interface, as `getifaddrs` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Interface {
    /// Its name (`lo`, `eth0`).
    pub(crate) name: String,
    /// The address, if it is an IP one.
    pub(crate) addr: Option<IpAddr>,
}

/// Every interface address of this host.
pub(crate) fn interfaces() -> io::Result<Vec<Interface>> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(io::Error::from)?;
    Ok(addrs
        .map(|ifa| Interface {
            addr: ifa.address.as_ref().and_then(|a| {
                a.as_sockaddr_in()
                    .map(|s| IpAddr::V4(s.ip()))
                    .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
            }),
            name: ifa.interface_name,
        })
        .collect())
}

/// The name of the interface `scope` names: itself, or the interface with
/// that index.
fn interface_name<'a>(interfaces: &'a [Interface], scope: &str) -> Option<&'a str> {
    if let Some(i) = interfaces.iter().find(|i| i.name == scope) {
        return Some(&i.name);
    }
    let index: u32 = scope.parse().ok()?;
    interfaces
        .iter()
        .find(|i| nix::net::if_::if_nametoindex(i.name.as_str()).ok() == Some(index))
        .map(|i| i.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn addresses_pass_through_and_localhost_resolves_to_its_ipv4_address() {
        assert_eq!(
            resolve("127.0.0.1:9").unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert_eq!(resolve("[::1]:9").unwrap(), "[::1]:9".parse().unwrap());
        assert_eq!(
            resolve("localhost:47474").unwrap(),
            SocketAddr::from((Ipv4Addr::LOCALHOST, 47474))
        );
        // Refused before any lookup: no port.
        let e = resolve("localhost").unwrap_err();
        assert!(
            e.to_string().starts_with("cannot resolve localhost: "),
            "{e}"
        );
    }

    #[test]
    fn a_name_with_both_families_prefers_ipv4() {
        let v6: SocketAddr = "[::1]:1".parse().unwrap();
        let v4: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(prefer_ipv4(&[v6, v4]), Some(v4));
        assert_eq!(prefer_ipv4(&[v6]), Some(v6));
        assert_eq!(prefer_ipv4(&[]), None);
    }

    #[test]
    fn loopback_by_name_gives_its_address_of_each_family() {
        assert_eq!(
            interface_addr("lo", false).unwrap(),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        assert_eq!(
            interface_addr("127.0.0.1", true).unwrap().to_string(),
            "127.0.0.1"
        );
        let has_v6 = interfaces()
            .unwrap()
            .iter()
            .any(|i| i.name == "lo" && i.addr == Some(Ipv6Addr::LOCALHOST.into()));
        if has_v6 {
            assert_eq!(
                interface_addr("lo", true).unwrap(),
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            );
            assert_eq!(
                interface_addr("::1%lo", true).unwrap(),
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            );
            let index = nix::net::if_::if_nametoindex("lo").unwrap();
            assert_eq!(
                interface_addr(&format!("::1%{index}"), true).unwrap(),
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            );
        }
    }

    #[test]
    fn a_wrong_interface_name_says_what_is_wrong() {
        let no = "tickcast-no-such-if0";
        assert_eq!(
            interface_addr(no, false).unwrap_err().to_string(),
            format!("no interface named {no} on this host (`ip link` lists them)")
        );
        assert_eq!(
            interface_addr("fe80::1%lo", true).unwrap_err().to_string(),
            "interface lo has no address fe80::1"
        );
        assert_eq!(
            interface_addr("10.0.0.1%lo", false)
                .unwrap_err()
                .to_string(),
            "\"10.0.0.1%lo\" is neither an IP address nor an interface name"
        );
        let e = ResolveError::NoAddressOfFamily {
            interface: "eth0".into(),
            family: "IPv6",
        };
        assert_eq!(e.to_string(), "interface eth0 has no IPv6 address");
    }
}
