//! Why a receiver got nothing: the likely causes it can see, from what it
//! listens to ([`Listening`]) and what did arrive ([`Figures`]), each a
//! [`Cause`] whose message says what to check or change. Sans-IO: it reads
//! those two values and nothing else, so every rule is a unit test.
//!
//! What it cannot see it does not claim: a sender elsewhere that sends to
//! the wrong address, or a firewall on the way, shows only as no datagram
//! at all ([`Cause::NothingArrived`]), whose message lists them as
//! questions.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::core::figures::Figures;
use crate::core::subscriber::{SubscribeFailure, SubscriptionState};
use crate::wire::REFUSE_FULL;

/// What a receiver listens to, as far as the causes go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listening {
    /// The unicast socket's local address, if there is one.
    pub bind: Option<SocketAddr>,
    /// The multicast group joined, and the address of the interface it was
    /// joined on.
    pub group: Option<(SocketAddr, IpAddr)>,
    /// Whether the receiver has a key.
    pub keyed: bool,
    /// The broadcaster subscribed to, if any.
    pub subscribe: Option<SocketAddr>,
}

/// One likely reason no stream datagram was taken. Its `Display` is one
/// sentence for a person: what was seen, and what to check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// Datagrams arrived that did not open with this receiver's key.
    WrongKey {
        /// `auth_failed` so far.
        auth_failed: u64,
    },
    /// Sealed datagrams arrived, and this receiver has no key.
    NoKey {
        /// `auth_unexpected` so far.
        sealed: u64,
    },
    /// Datagrams arrived that are not tickcast's stream (they did not
    /// decode), sealed ones aside.
    Malformed {
        /// Malformed datagrams that were not sealed.
        malformed: u64,
    },
    /// Sealed datagrams opened but were all refused as replays.
    Replayed {
        /// `replayed` so far.
        replayed: u64,
    },
    /// Sealed datagrams opened but were sent outside the freshness window
    /// of this host's clock: replays, or a sender whose clock is off.
    StaleSealed {
        /// `stale_sealed` so far.
        stale_sealed: u64,
    },
    /// Datagrams arrived from sources other than the one `--from` accepts.
    Foreign {
        /// `foreign` so far.
        foreign: u64,
    },
    /// Stream packets arrived but were held on probation and never proven
    /// (a lone new session id, a lone far jump): stray or forged datagrams.
    Unproven {
        /// `unproven` so far.
        unproven: u64,
    },
    /// The broadcaster refused the subscription.
    Refused {
        /// The broadcaster.
        server: SocketAddr,
        /// Its reason ([`REFUSE_FULL`]: full).
        reason: u8,
    },
    /// Nothing has answered the subscription.
    Unanswered {
        /// The broadcaster.
        server: SocketAddr,
    },
    /// Subscribed, yet no stream came.
    SubscribedNoStream {
        /// The broadcaster.
        server: SocketAddr,
    },
    /// The group is joined on a loopback interface: only senders on this
    /// host reach it.
    LoopbackGroup {
        /// The group.
        group: SocketAddr,
        /// The interface address.
        interface: IpAddr,
    },
    /// The group is joined on a LAN interface and nothing came.
    SilentGroup {
        /// The group.
        group: SocketAddr,
        /// The interface address.
        interface: IpAddr,
    },
    /// Bound to a loopback address: only senders on this host reach it.
    LoopbackBind {
        /// The local address.
        addr: SocketAddr,
    },
    /// Bound to one unicast address: subnet broadcasts do not reach it.
    UnicastBind {
        /// The local address.
        addr: SocketAddr,
    },
    /// No datagram arrived at all at this address.
    NothingArrived {
        /// The local address.
        addr: SocketAddr,
    },
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::WrongKey { auth_failed } => write!(
                f,
                "{auth_failed} datagrams failed authentication: the sender has another key, or none (auth_failed)"
            ),
            Cause::NoKey { sealed } => write!(
                f,
                "{sealed} sealed datagrams arrived and this receiver has no key: give it the sender's --key-file (auth_unexpected)"
            ),
            Cause::Malformed { malformed } => write!(
                f,
                "{malformed} datagrams arrived that are not a tickcast stream (malformed): is another program sending to this port?"
            ),
            Cause::Replayed { replayed } => write!(
                f,
                "{replayed} sealed datagrams were refused as replays: an old capture played back, not a live sender"
            ),
            Cause::StaleSealed { stale_sealed } => write!(
                f,
                "{stale_sealed} sealed datagrams were sent outside the freshness window of this host's clock (stale_sealed): sync the clocks, or widen --freshness"
            ),
            Cause::Foreign { foreign } => write!(
                f,
                "{foreign} datagrams came from a source --from does not accept (foreign): is --from the broadcaster's address?"
            ),
            Cause::Unproven { unproven } => write!(
                f,
                "{unproven} stream datagrams never proved their session or sequence (unproven): stray or forged datagrams, not a live stream"
            ),
            Cause::Refused { server, reason } if *reason == REFUSE_FULL => write!(
                f,
                "the broadcaster at {server} refused the subscription: it is full (raise its --max-subscribers)"
            ),
            Cause::Refused { server, reason } => write!(
                f,
                "the broadcaster at {server} refused the subscription (unknown reason {reason})"
            ),
            Cause::Unanswered { server } => write!(
                f,
                "nothing answers the subscription at {server}: is a broadcaster running with --bind {server}, and does UDP get through both ways?"
            ),
            Cause::SubscribedNoStream { server } => write!(
                f,
                "{server} accepted the subscription but no stream came: a firewall here may drop it"
            ),
            Cause::LoopbackGroup { group, interface } => write!(
                f,
                "group {} is joined on the loopback interface ({interface}), which only a sender on this host reaches: give --interface this host's LAN address or interface name, and the sender its own",
                group.ip()
            ),
            Cause::SilentGroup { group, interface } => write!(
                f,
                "nothing came to group {group} on {interface}: the sender must send to this group and port through its LAN interface (its --interface; its default 127.0.0.1 keeps the stream on its host), with a TTL that reaches here"
            ),
            Cause::LoopbackBind { addr } => write!(
                f,
                "bound to {addr}, a loopback address: only a sender on this host reaches it (--to {addr}); to receive from other hosts bind 0.0.0.0:{} or this host's LAN address",
                addr.port()
            ),
            Cause::UnicastBind { addr } => write!(
                f,
                "bound to {addr}, a unicast address: datagrams to the subnet's broadcast address never reach it; bind 0.0.0.0:{} to receive a --broadcast stream",
                addr.port()
            ),
            Cause::NothingArrived { addr } => write!(
                f,
                "no datagram arrived at {addr}: is the sender running, sending to this host and port {}, and does a firewall let UDP in?",
                addr.port()
            ),
        }
    }
}

/// The likely causes of receiving nothing, most certain first: what did
/// arrive and was refused, then the subscription, then (only when no
/// datagram arrived at all) what the sockets listen to. Empty once a
/// stream datagram was taken ([`Figures::received_any`]).
pub fn likely_causes(listening: &Listening, f: &Figures) -> Vec<Cause> {
    if f.received_any() {
        return Vec::new();
    }
    let c = &f.counters;
    let mut causes = Vec::new();
    if c.auth_failed > 0 {
        causes.push(Cause::WrongKey {
            auth_failed: c.auth_failed,
        });
    }
    if c.auth_unexpected > 0 {
        causes.push(Cause::NoKey {
            sealed: c.auth_unexpected,
        });
    }
    // Sealed datagrams without a key count in both; say each once.
    let malformed = c.malformed.saturating_sub(c.auth_unexpected);
    if malformed > 0 {
        causes.push(Cause::Malformed { malformed });
    }
    if c.replayed > 0 {
        causes.push(Cause::Replayed {
            replayed: c.replayed,
        });
    }
    if c.stale_sealed > 0 {
        causes.push(Cause::StaleSealed {
            stale_sealed: c.stale_sealed,
        });
    }
    if c.foreign > 0 {
        causes.push(Cause::Foreign { foreign: c.foreign });
    }
    if c.unproven > 0 {
        causes.push(Cause::Unproven {
            unproven: c.unproven,
        });
    }
    if let Some(server) = listening.subscribe {
        match f.subscription {
            SubscriptionState::Refused(reason)
            | SubscriptionState::Failed(SubscribeFailure::Refused(reason)) => {
                causes.push(Cause::Refused { server, reason });
            }
            SubscriptionState::Subscribed => causes.push(Cause::SubscribedNoStream { server }),
            _ => causes.push(Cause::Unanswered { server }),
        }
    }
    let stream_datagrams = c.datagrams.saturating_sub(c.control_datagrams);
    if stream_datagrams > 0 {
        return causes;
    }
    if let Some((group, interface)) = listening.group {
        causes.push(if interface.to_canonical().is_loopback() {
            Cause::LoopbackGroup { group, interface }
        } else {
            Cause::SilentGroup { group, interface }
        });
    }
    // A subscriber's socket is where the stream is sent: nothing to add.
    if let (Some(addr), None) = (listening.bind, listening.subscribe) {
        let ip = addr.ip().to_canonical();
        causes.push(if ip.is_loopback() {
            Cause::LoopbackBind { addr }
        } else if ip.is_unspecified() {
            Cause::NothingArrived { addr }
        } else {
            Cause::UnicastBind { addr }
        });
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::figures::Counters;

    fn figures(counters: Counters, subscription: SubscriptionState) -> Figures {
        Figures {
            counters,
            subscription,
            ..Figures::default()
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn bound(s: &str) -> Listening {
        Listening {
            bind: Some(addr(s)),
            ..Listening::default()
        }
    }

    #[test]
    fn nothing_is_wrong_once_a_stream_datagram_was_taken() {
        let f = figures(
            Counters {
                received: 1,
                auth_failed: 9,
                ..Counters::default()
            },
            SubscriptionState::None,
        );
        assert!(f.received_any());
        assert_eq!(likely_causes(&bound("127.0.0.1:1"), &f), []);
    }

    #[test]
    fn what_the_guards_refused_is_named() {
        let f = figures(
            Counters {
                datagrams: 9,
                stale_sealed: 5,
                foreign: 3,
                unproven: 1,
                ..Counters::default()
            },
            SubscriptionState::None,
        );
        let causes = likely_causes(&bound("0.0.0.0:47474"), &f);
        assert_eq!(
            causes,
            [
                Cause::StaleSealed { stale_sealed: 5 },
                Cause::Foreign { foreign: 3 },
                Cause::Unproven { unproven: 1 },
            ]
        );
        assert!(causes[0].to_string().contains("--freshness"));
        assert!(causes[1].to_string().contains("--from"));
    }

    #[test]
    fn where_it_listens_is_a_cause_only_when_nothing_arrived() {
        let none = Figures::default();
        assert!(!none.received_any());
        let at = |l: &Listening| likely_causes(l, &none);
        assert_eq!(
            at(&bound("127.0.0.1:47474")),
            [Cause::LoopbackBind {
                addr: addr("127.0.0.1:47474")
            }]
        );
        assert_eq!(
            at(&bound("192.168.1.21:47474")),
            [Cause::UnicastBind {
                addr: addr("192.168.1.21:47474")
            }]
        );
        assert_eq!(
            at(&bound("0.0.0.0:47474")),
            [Cause::NothingArrived {
                addr: addr("0.0.0.0:47474")
            }]
        );
        let group = addr("239.255.74.74:47474");
        let joined = |interface: &str| Listening {
            group: Some((group, interface.parse().unwrap())),
            ..Listening::default()
        };
        assert_eq!(
            at(&joined("127.0.0.1")),
            [Cause::LoopbackGroup {
                group,
                interface: "127.0.0.1".parse().unwrap()
            }]
        );
        assert_eq!(
            at(&joined("192.168.1.21")),
            [Cause::SilentGroup {
                group,
                interface: "192.168.1.21".parse().unwrap()
            }]
        );
        let said = at(&joined("127.0.0.1"))[0].to_string();
        assert!(said.contains("--interface"), "{said}");
        let said = at(&bound("192.168.1.21:47474"))[0].to_string();
        assert!(said.contains("bind 0.0.0.0:47474"), "{said}");
        // Garbage arrived: the address reaches this socket, so it is not the cause.
        let garbage = figures(
            Counters {
                datagrams: 3,
                malformed: 3,
                ..Counters::default()
            },
            SubscriptionState::None,
        );
        assert_eq!(
            likely_causes(&bound("127.0.0.1:47474"), &garbage),
            [Cause::Malformed { malformed: 3 }]
        );
    }

    #[test]
    fn what_arrived_and_was_refused_comes_first() {
        let f = figures(
            Counters {
                datagrams: 12,
                auth_failed: 5,
                auth_unexpected: 4,
                malformed: 6,
                replayed: 1,
                ..Counters::default()
            },
            SubscriptionState::None,
        );
        assert_eq!(
            likely_causes(&bound("127.0.0.1:1"), &f),
            [
                Cause::WrongKey { auth_failed: 5 },
                Cause::NoKey { sealed: 4 },
                Cause::Malformed { malformed: 2 },
                Cause::Replayed { replayed: 1 },
            ]
        );
    }

    #[test]
    fn the_subscription_says_where_it_stands() {
        let server = addr("127.0.0.1:47475");
        let subscribing = Listening {
            bind: Some(addr("0.0.0.0:40000")),
            subscribe: Some(server),
            ..Listening::default()
        };
        let cases = [
            (SubscriptionState::Subscribing, Cause::Unanswered { server }),
            (
                SubscriptionState::Failed(SubscribeFailure::Unanswered),
                Cause::Unanswered { server },
            ),
            (
                SubscriptionState::Refused(REFUSE_FULL),
                Cause::Refused {
                    server,
                    reason: REFUSE_FULL,
                },
            ),
            (
                SubscriptionState::Failed(SubscribeFailure::Refused(REFUSE_FULL)),
                Cause::Refused {
                    server,
                    reason: REFUSE_FULL,
                },
            ),
            (
                SubscriptionState::Subscribed,
                Cause::SubscribedNoStream { server },
            ),
        ];
        for (state, want) in cases {
            let f = figures(
                Counters {
                    datagrams: 2,
                    control_datagrams: 2,
                    ..Counters::default()
                },
                state,
            );
            assert_eq!(likely_causes(&subscribing, &f), [want], "{state}");
        }
        let full = Cause::Refused {
            server,
            reason: REFUSE_FULL,
        };
        assert!(full.to_string().contains("--max-subscribers"), "{full}");
    }
}
