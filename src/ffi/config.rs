//! The C configs, their defaults, and their translation into the
//! library's [`BroadcastConfig`] and [`ReceiverConfig`]. The C side's
//! strings and key arrive here already read (as [`Strings`]); everything
//! else is checked by the library's own `validate`, so a C caller gets the
//! same messages as a Rust one.

use crate::core::compact::CompactConfig;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ptr;
use std::time::Duration;

use crate::core::interpolate::InterpolationConfig;
use crate::runtime::realtime::RealtimeConfig;
use crate::runtime::resolve;
use crate::wire::auth::KEY_LEN;
use crate::{BroadcastConfig, ClientConfig, Key, ReceiveMode, ReceiverConfig};

use crate::ffi::error::Failure;
use crate::ffi::types::{
    tc_broadcast_config, tc_receiver_config, TC_ERR_CONFIG, TC_RECEIVE_BUSY_POLL,
    TC_RECEIVE_PREDICT, TC_RECEIVE_WAIT,
};

/// The pointed-to fields of a C config, read: each `None` where the
/// pointer was NULL. (`destinations`, `subscribe` and `bind` share the
/// slots of the two configs' address fields.)
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Strings<'a> {
    pub(crate) bind: Option<&'a str>,
    pub(crate) destinations: Option<&'a str>,
    pub(crate) subscribe: Option<&'a str>,
    pub(crate) group: Option<&'a str>,
    pub(crate) interface: Option<&'a str>,
    pub(crate) key: Option<[u8; KEY_LEN]>,
    pub(crate) key_file: Option<&'a str>,
}

fn config_error(message: impl std::fmt::Display) -> Failure {
    Failure::new(TC_ERR_CONFIG, message)
}

/// `text` as a socket address, `field` naming it in the message.
fn address(field: &str, text: &str) -> Result<SocketAddr, Failure> {
    resolve::resolve(text.trim()).map_err(|e| config_error(format_args!("{field}: {e}")))
}

fn optional_address(field: &str, text: Option<&str>) -> Result<Option<SocketAddr>, Failure> {
    text.map(|t| address(field, t)).transpose()
}

/// The interface for `group`: as given, or the loopback of its family.
fn interface(text: Option<&str>, group: Option<SocketAddr>) -> Result<IpAddr, Failure> {
    let ipv6 = group.is_some_and(|g| g.is_ipv6());
    match text {
        Some(t) => resolve::interface_addr(t.trim(), ipv6)
            .map_err(|e| config_error(format_args!("interface: {e}"))),
        None if ipv6 => Ok(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        None => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    }
}

fn key(strings: &Strings<'_>) -> Result<Option<Key>, Failure> {
    match (strings.key, strings.key_file) {
        (Some(_), Some(_)) => Err(config_error(
            "key and key_file are both set: give the key one way",
        )),
        (Some(bytes), None) => Ok(Some(Key::from_bytes(bytes))),
        (None, Some(path)) => Key::from_file(path).map(Some).map_err(config_error),
        (None, None) => Ok(None),
    }
}

/// The defaults, as the library's own.
pub(crate) fn broadcast_default() -> tc_broadcast_config {
    let d = BroadcastConfig::default();
    tc_broadcast_config {
        size: size_of::<tc_broadcast_config>() as u64,
        destinations: ptr::null(),
        group: ptr::null(),
        interface: ptr::null(),
        bind: ptr::null(),
        key: ptr::null(),
        key_file: ptr::null(),
        rate_hz: d.rate_hz,
        duration_ms: d.duration.map_or(0, millis),
        roster_interval: d.lifecycle.roster_interval,
        max_subscribers: saturate(d.max_subscribers),
        payload_budget: saturate(d.payload_budget),
        multicast_ttl: d.multicast_ttl,
        multicast_loop: u32::from(d.multicast_loop),
        quanta_per_unit: 0,
        keyframe_interval: 0,
        bound: 0.0,
        realtime_priority: 0,
        cpu: -1,
    }
}

/// The library's config for `c`, whose strings are `strings`.
pub(crate) fn broadcast(
    c: &tc_broadcast_config,
    strings: &Strings<'_>,
) -> Result<BroadcastConfig, Failure> {
    let mut destinations = Vec::new();
    for text in strings
        .destinations
        .into_iter()
        .flat_map(|list| list.split(','))
        .filter(|t| !t.trim().is_empty())
    {
        destinations.push(address("destinations", text)?);
    }
    let group = optional_address("group", strings.group)?;
    let defaults = BroadcastConfig::default();
    let mut config = BroadcastConfig {
        destinations,
        group,
        interface: interface(strings.interface, group)?,
        bind: optional_address("bind", strings.bind)?.unwrap_or(defaults.bind),
        key: key(strings)?,
        rate_hz: c.rate_hz,
        duration: (c.duration_ms > 0).then(|| Duration::from_millis(c.duration_ms)),
        max_subscribers: c.max_subscribers as usize,
        payload_budget: c.payload_budget as usize,
        multicast_ttl: c.multicast_ttl,
        multicast_loop: c.multicast_loop != 0,
        realtime: realtime(c.realtime_priority)?,
        cpu: cpu(c.cpu)?,
        ..defaults
    };
    config.lifecycle.roster_interval = c.roster_interval;
    if c.quanta_per_unit > 0 {
        let d = CompactConfig::default();
        let interval = match c.keyframe_interval {
            0 => d.keyframe_interval,
            k => u16::try_from(k)
                .map_err(|_| Failure::new(TC_ERR_CONFIG, "keyframe_interval is above 65535"))?,
        };
        config.compact = Some(CompactConfig {
            quanta_per_unit: c.quanta_per_unit,
            keyframe_interval: interval,
            bound: if c.bound == 0.0 {
                d.bound
            } else {
                c.bound as f32
            },
        });
    }
    config.validate().map_err(config_error)?;
    Ok(config)
}

/// The defaults, as the library's own.
pub(crate) fn receiver_default() -> tc_receiver_config {
    let d = ReceiverConfig::default();
    let client = ClientConfig::default();
    let i = client.interpolation;
    tc_receiver_config {
        size: size_of::<tc_receiver_config>() as u64,
        bind: ptr::null(),
        group: ptr::null(),
        interface: ptr::null(),
        subscribe: ptr::null(),
        key: ptr::null(),
        key_file: ptr::null(),
        interpolation_delay_ns: i
            .delay_ns
            .map_or(-1, |ns| ns.try_into().unwrap_or(i64::MAX)),
        max_extrapolation_ns: i.max_extrapolation_ns,
        capacity: d.capacity,
        event_capacity: saturate(client.event_capacity),
        recv_buffer: d.recv_buffer.map_or(0, saturate),
        mode: TC_RECEIVE_WAIT,
        teleport_distance: i.teleport_distance,
        adaptive_delay: u32::from(i.adaptive),
        gro: u32::from(d.gro),
        reserved: 0,
        realtime_priority: 0,
        cpu: -1,
    }
}

/// The library's config for `c` (always with a game client), whose
/// strings are `strings`.
pub(crate) fn receiver(
    c: &tc_receiver_config,
    strings: &Strings<'_>,
) -> Result<ReceiverConfig, Failure> {
    if c.reserved != 0 {
        return Err(Failure::new(TC_ERR_CONFIG, "reserved must be 0"));
    }
    let group = optional_address("group", strings.group)?;
    let mode = match c.mode {
        TC_RECEIVE_WAIT => ReceiveMode::Wait,
        TC_RECEIVE_PREDICT => ReceiveMode::Predict,
        TC_RECEIVE_BUSY_POLL => ReceiveMode::BusyPoll,
        other => {
            return Err(Failure::invalid(format_args!(
                "mode {other} is not a TC_RECEIVE_* value"
            )))
        }
    };
    let interpolation = InterpolationConfig {
        delay_ns: u64::try_from(c.interpolation_delay_ns).ok(),
        max_extrapolation_ns: c.max_extrapolation_ns,
        teleport_distance: c.teleport_distance,
        adaptive: c.adaptive_delay != 0,
        // The interpolator holds what the world holds.
        capacity: c.capacity,
        ..InterpolationConfig::default()
    };
    let config = ReceiverConfig {
        bind: optional_address("bind", strings.bind)?,
        group,
        interface: interface(strings.interface, group)?,
        subscribe: optional_address("subscribe", strings.subscribe)?,
        key: key(strings)?,
        capacity: c.capacity,
        recv_buffer: (c.recv_buffer > 0).then_some(c.recv_buffer as usize),
        mode,
        gro: c.gro != 0,
        realtime: realtime(c.realtime_priority)?,
        cpu: cpu(c.cpu)?,
        client: Some(ClientConfig {
            event_capacity: c.event_capacity as usize,
            interpolation,
        }),
        ..ReceiverConfig::default()
    };
    config.validate().map_err(config_error)?;
    Ok(config)
}

/// A config's `realtime_priority`: 0 an ordinary thread, else SCHED_FIFO
/// at it (its range is checked with the rest). The memory is not locked:
/// in a game's process that is the game's call, not the library's.
fn realtime(priority: u32) -> Result<Option<RealtimeConfig>, Failure> {
    match priority {
        0 => Ok(None),
        p => u8::try_from(p)
            .map(|priority| {
                Some(RealtimeConfig {
                    priority,
                    lock_memory: false,
                })
            })
            .map_err(|_| {
                Failure::new(
                    TC_ERR_CONFIG,
                    format_args!(
                        "realtime_priority {p} is not 0 or a SCHED_FIFO priority (1 to 99)"
                    ),
                )
            }),
    }
}

/// A config's `cpu`: -1 anywhere, else that CPU.
fn cpu(cpu: i32) -> Result<Option<usize>, Failure> {
    match cpu {
        -1 => Ok(None),
        c => usize::try_from(c).map(Some).map_err(|_| {
            Failure::new(
                TC_ERR_CONFIG,
                format_args!("cpu {c} is not a CPU number, or -1 for anywhere"),
            )
        }),
    }
}

fn saturate(n: usize) -> u32 {
    n.try_into().unwrap_or(u32::MAX)
}

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(destinations: &str) -> Strings<'_> {
        Strings {
            destinations: Some(destinations),
            ..Strings::default()
        }
    }

    #[test]
    fn the_c_defaults_are_the_librarys() {
        let c = broadcast_default();
        let config = broadcast(&c, &to("127.0.0.1:9000")).unwrap();
        let want = BroadcastConfig {
            destinations: vec!["127.0.0.1:9000".parse().unwrap()],
            ..BroadcastConfig::default()
        };
        assert_eq!(config, want);
        let r = receiver(
            &receiver_default(),
            &Strings {
                bind: Some("127.0.0.1:0"),
                ..Strings::default()
            },
        )
        .unwrap();
        let want = ReceiverConfig {
            client: Some(ClientConfig::default()),
            ..ReceiverConfig::unicast("127.0.0.1:0".parse().unwrap())
        };
        assert_eq!(r, want);
    }

    #[test]
    fn a_list_of_destinations_is_split_on_commas_and_trimmed() {
        let c = broadcast_default();
        let config = broadcast(&c, &to(" 127.0.0.1:9000, 127.0.0.1:9001 ,")).unwrap();
        assert_eq!(
            config.destinations,
            [
                "127.0.0.1:9000".parse().unwrap(),
                "127.0.0.1:9001".parse().unwrap()
            ]
        );
    }

    #[test]
    fn each_bad_field_is_a_config_error_that_names_it() {
        let c = broadcast_default();
        let err = broadcast(&c, &to("127.0.0.1:9000,nonsense")).unwrap_err();
        assert_eq!(err.status, TC_ERR_CONFIG);
        assert!(
            err.message
                .starts_with("destinations: cannot resolve nonsense"),
            "{}",
            err.message
        );
        let slow = tc_broadcast_config { rate_hz: 0.0, ..c };
        let err = broadcast(&slow, &to("127.0.0.1:9000")).unwrap_err();
        assert_eq!(
            err.message,
            "tick rate 0 Hz is not in (0, 10000] (at 1 µHz resolution)"
        );
        let nowhere = tc_broadcast_config {
            max_subscribers: 0,
            ..c
        };
        let err = broadcast(&nowhere, &Strings::default()).unwrap_err();
        assert!(err.message.starts_with("no destination"), "{}", err.message);
        let both = Strings {
            key: Some([1; KEY_LEN]),
            key_file: Some("/nonexistent"),
            ..to("127.0.0.1:9000")
        };
        let err = broadcast(&c, &both).unwrap_err();
        assert_eq!(
            err.message,
            "key and key_file are both set: give the key one way"
        );
        let missing = Strings {
            key_file: Some("/nonexistent/key"),
            ..to("127.0.0.1:9000")
        };
        let err = broadcast(&c, &missing).unwrap_err();
        assert!(
            err.message
                .starts_with("key file /nonexistent/key does not exist"),
            "{}",
            err.message
        );
        let err = receiver(&receiver_default(), &Strings::default()).unwrap_err();
        assert_eq!(err.status, TC_ERR_CONFIG);
        assert!(
            err.message.starts_with("nothing to listen to"),
            "{}",
            err.message
        );
        let bad_mode = tc_receiver_config {
            mode: 9,
            ..receiver_default()
        };
        let err = receiver(
            &bad_mode,
            &Strings {
                bind: Some("127.0.0.1:0"),
                ..Strings::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.status, crate::ffi::types::TC_ERR_INVALID_ARGUMENT);
    }

    /// What a game could set by mistake and that would abort, misdraw or
    /// be ignored is refused, naming the field: an event queue of no room
    /// or of more than is allocated at start without harm (a large one
    /// aborted the process), a teleport distance that is NaN or not
    /// positive, a reserved field not 0, a capacity of 0.
    #[test]
    fn receiver_values_that_cannot_work_are_config_errors() {
        let bind = Strings {
            bind: Some("127.0.0.1:0"),
            ..Strings::default()
        };
        let d = receiver_default();
        let cases = [
            (
                tc_receiver_config {
                    event_capacity: 0,
                    ..d
                },
                "event capacity 0",
            ),
            (
                tc_receiver_config {
                    event_capacity: u32::MAX,
                    ..d
                },
                "event capacity 4294967295 is not in 1..=1048576",
            ),
            (
                tc_receiver_config {
                    teleport_distance: f32::NAN,
                    ..d
                },
                "teleport distance",
            ),
            (
                tc_receiver_config {
                    teleport_distance: -1.0,
                    ..d
                },
                "teleport distance",
            ),
            (
                tc_receiver_config { reserved: 5, ..d },
                "reserved must be 0",
            ),
            (tc_receiver_config { capacity: 0, ..d }, "capacity 0"),
        ];
        for (c, want) in cases {
            let err = receiver(&c, &bind).unwrap_err();
            assert_eq!(err.status, TC_ERR_CONFIG, "{want}: {}", err.message);
            assert!(err.message.contains(want), "{want}: {}", err.message);
        }
        let never_snap = tc_receiver_config {
            teleport_distance: f32::INFINITY,
            event_capacity: 1 << 20,
            ..d
        };
        assert!(receiver(&never_snap, &bind).is_ok());
    }

    #[test]
    fn an_ipv6_group_defaults_to_the_ipv6_loopback() {
        let r = receiver(
            &receiver_default(),
            &Strings {
                group: Some("[ff02::71]:47474"),
                ..Strings::default()
            },
        )
        .unwrap();
        assert_eq!(r.interface, IpAddr::V6(Ipv6Addr::LOCALHOST));
    }

    /// GRO is on by default, as in the library, and `gro = 0` turns it off
    /// (per-datagram drop counts for a C or C# receiver too).
    #[test]
    fn gro_is_on_by_default_and_zero_turns_it_off() {
        let strings = Strings {
            bind: Some("127.0.0.1:0"),
            ..Strings::default()
        };
        let mut c = receiver_default();
        assert_eq!(c.gro, 1);
        assert!(receiver(&c, &strings).unwrap().gro);
        c.gro = 0;
        assert!(!receiver(&c, &strings).unwrap().gro);
    }

    /// `realtime_priority` and `cpu` reach both configs: 0 and -1 (the
    /// defaults) are an ordinary, unpinned thread; a priority is SCHED_FIFO,
    /// the memory left unlocked; a priority out of range and a negative
    /// CPU are config errors that name the field.
    #[test]
    fn realtime_priority_and_cpu_reach_both_configs() {
        let strings = Strings {
            bind: Some("127.0.0.1:0"),
            ..Strings::default()
        };
        let (mut b, mut r) = (broadcast_default(), receiver_default());
        assert_eq!((b.realtime_priority, b.cpu), (0, -1));
        assert_eq!((r.realtime_priority, r.cpu), (0, -1));
        let bc = broadcast(&b, &to("127.0.0.1:9000")).unwrap();
        let rc = receiver(&r, &strings).unwrap();
        assert_eq!(
            (bc.realtime, bc.cpu, rc.realtime, rc.cpu),
            (None, None, None, None)
        );
        (b.realtime_priority, b.cpu, r.realtime_priority, r.cpu) = (20, 1, 10, 0);
        let bc = broadcast(&b, &to("127.0.0.1:9000")).unwrap();
        let rc = receiver(&r, &strings).unwrap();
        let fifo = |priority| RealtimeConfig {
            priority,
            lock_memory: false,
        };
        assert_eq!(bc.realtime, Some(fifo(20)));
        assert_eq!(rc.realtime, Some(fifo(10)));
        assert_eq!((bc.cpu, rc.cpu), (Some(1), Some(0)));
        for (priority, cpu, field) in [
            (100, -1, "priority"),
            (300, -1, "realtime_priority"),
            (0, -2, "cpu -2"),
        ] {
            (b.realtime_priority, b.cpu, r.realtime_priority, r.cpu) =
                (priority, cpu, priority, cpu);
            let be = broadcast(&b, &to("127.0.0.1:9000")).unwrap_err();
            let re = receiver(&r, &strings).unwrap_err();
            for e in [be, re] {
                assert_eq!(e.status, TC_ERR_CONFIG, "{}", e.message);
                assert!(e.message.contains(field), "{}", e.message);
            }
        }
    }
}
