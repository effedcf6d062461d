//! Subscriptions over real loopback sockets: a library receiver subscribes
//! to a real broadcaster, and plain sockets play the requesters that do not
//! follow the handshake (never confirming, forging the cookie, heartbeating
//! once). Everything is sent to 127.0.0.1 only, and every wait is bounded.
//!
//! The invariants under test (proto/PROTOCOL.md, "What a broadcaster does"):
//! every reply is at most as long as the datagram that caused it, and an
//! address that never echoed a valid cookie never receives stream traffic.
// Tests, benches, examples and the binary own their clocks, sockets and files;
// the layer wall in clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use tickcast::core::subscriber::SubscriptionState;
use tickcast::runtime::broadcaster::{BroadcastConfig, Broadcaster};
use tickcast::runtime::receiver::{Receiver, ReceiverConfig};
use tickcast::wire::{self, Body, Confirm, Cookie, Packet, Subscribe, REFUSE_FULL, SUBSCRIBE_LEN};

use common::wait_until;

const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A broadcaster on 127.0.0.1 with no fixed destination: only subscribers
/// get its stream.
fn broadcaster(bind: SocketAddr, max_subscribers: usize, lease: Duration) -> Broadcaster {
    Broadcaster::start(BroadcastConfig {
        bind,
        max_subscribers,
        lease,
        entities: 10,
        ..BroadcastConfig::default()
    })
    .unwrap()
}

fn any_port() -> SocketAddr {
    (LOCALHOST, 0).into()
}

fn subscriber_of(server: SocketAddr) -> Receiver {
    Receiver::start(ReceiverConfig {
        bind: Some(any_port()),
        ..ReceiverConfig::subscribe(server)
    })
    .unwrap()
}

/// A plain socket speaking the subscription kinds by hand.
struct RawClient {
    sock: UdpSocket,
    client_id: u64,
    server: SocketAddr,
}

impl RawClient {
    fn new(server: SocketAddr, client_id: u64) -> RawClient {
        let sock = UdpSocket::bind((LOCALHOST, 0)).unwrap();
        RawClient {
            sock,
            client_id,
            server,
        }
    }

    fn send(&self, body: Body) -> usize {
        let packet = Packet {
            session: self.client_id,
            seq: 0,
            body,
        };
        let mut buf = [0u8; 128];
        let n = wire::encode(&packet, &[], &mut buf).unwrap();
        self.sock.send_to(&buf[..n], self.server).unwrap();
        n
    }

    /// Every datagram that arrives within `span`, decoded, with its length.
    fn collect(&self, span: Duration) -> Vec<(Packet, usize)> {
        let deadline = Instant::now() + span;
        let mut got = Vec::new();
        let mut buf = vec![0u8; wire::MAX_DATAGRAM];
        // Bounded: at most one datagram per read, and the reads end at the deadline.
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if left.is_zero() {
                break;
            }
            self.sock.set_read_timeout(Some(left)).unwrap();
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    assert_eq!(from, self.server, "only the broadcaster sends here");
                    let p = wire::decode(&buf[..n], &mut Vec::new()).expect("decodes");
                    got.push((p, n));
                }
                Err(_) => break,
            }
        }
        got
    }

    /// The first datagram within `limit`.
    fn next(&self, limit: Duration) -> Option<(Packet, usize)> {
        self.sock.set_read_timeout(Some(limit)).unwrap();
        let mut buf = vec![0u8; wire::MAX_DATAGRAM];
        let (n, _) = self.sock.recv_from(&mut buf).ok()?;
        Some((wire::decode(&buf[..n], &mut Vec::new()).unwrap(), n))
    }

    /// Subscribe, and return the challenge's cookie.
    fn cookie(&self) -> Cookie {
        self.send(Body::Subscribe(Subscribe { nonce: 1 }));
        match self.next(Duration::from_secs(5)) {
            Some((
                Packet {
                    body: Body::Challenge(c),
                    ..
                },
                _,
            )) => c.cookie,
            other => panic!("expected a challenge, got {other:?}"),
        }
    }
}

#[test]
fn a_subscriber_gets_the_stream_with_nothing_lost() {
    let b = broadcaster(any_port(), 8, Duration::from_secs(5));
    let r = subscriber_of(b.local_addr());
    assert!(wait_until(Duration::from_secs(5), || {
        r.figures().subscription == SubscriptionState::Subscribed
    }));
    assert!(wait_until(Duration::from_secs(5), || r
        .figures()
        .counters
        .received
        >= 30));
    let bf = b.stop();
    assert!(wait_until(Duration::from_secs(5), || r.figures().goodbye));
    let f = r.stop().unwrap();
    assert_eq!(f.counters.lost, 0, "loopback loses nothing");
    assert_eq!(f.counters.received + f.counters.lost, f.counters.expected);
    assert_eq!(
        (
            f.counters.malformed,
            f.counters.restarts,
            f.counters.duplicates
        ),
        (0, 0, 0)
    );
    assert!(
        f.counters.control_datagrams >= 2,
        "a challenge and an accept at least"
    );
    assert_eq!(bf.subscriptions.accepted, 1);
    // Every stream packet after the first one this receiver saw reached it.
    assert_eq!(f.sender_packets_sent, Some(bf.packets_sent));
}

#[test]
fn a_subscribe_without_a_confirm_gets_one_small_challenge_and_no_stream() {
    let b = broadcaster(any_port(), 8, Duration::from_secs(5));
    let raw = RawClient::new(b.local_addr(), 0x5b00f);
    let sent = raw.send(Body::Subscribe(Subscribe { nonce: 77 }));
    assert_eq!(sent, SUBSCRIBE_LEN);
    let got = raw.collect(Duration::from_secs(1));
    assert_eq!(got.len(), 1, "one reply, then silence: {got:?}");
    let (reply, len) = &got[0];
    assert!(matches!(reply.body, Body::Challenge(c) if c.nonce == 77));
    assert!(*len <= sent, "reply {len} bytes > request {sent}");
    let f = b.stop();
    assert_eq!((f.subscribers, f.subscriptions.accepted), (0, 0));
    assert_eq!(f.subscriptions.challenges_sent, 1);
}

#[test]
fn a_confirm_with_a_tampered_mac_gets_nothing() {
    let b = broadcaster(any_port(), 8, Duration::from_secs(5));
    let raw = RawClient::new(b.local_addr(), 0xbad);
    let mut cookie = raw.cookie();
    cookie.mac[3] ^= 0x10;
    raw.send(Body::Confirm(Confirm { nonce: 2, cookie }));
    let got = raw.collect(Duration::from_secs(1));
    assert!(got.is_empty(), "no reply and no stream: {got:?}");
    let f = b.stop();
    assert_eq!(f.subscriptions.bad_cookie, 1);
    assert_eq!((f.subscribers, f.subscriptions.accepted), (0, 0));
}

#[test]
fn a_full_table_refuses_with_reason_full() {
    let b = broadcaster(any_port(), 1, Duration::from_secs(5));
    let first = subscriber_of(b.local_addr());
    assert!(wait_until(Duration::from_secs(5), || {
        b.figures().subscribers == 1
    }));
    // A hand-made requester is refused, and its refusal is no larger than its confirm.
    let raw = RawClient::new(b.local_addr(), 0xf011);
    let cookie = raw.cookie();
    raw.send(Body::Confirm(Confirm { nonce: 9, cookie }));
    let refuse = raw
        .collect(Duration::from_millis(300))
        .into_iter()
        .find(|(p, _)| !p.body.kind().is_sequenced());
    match refuse {
        Some((p, len)) => {
            assert!(
                matches!(p.body, Body::Refuse(r) if r.nonce == 9 && r.reason == REFUSE_FULL),
                "{p:?}"
            );
            assert!(len <= wire::CONFIRM_LEN);
        }
        None => panic!("no refusal"),
    }
    // A library receiver reports it.
    let second = subscriber_of(b.local_addr());
    assert!(wait_until(Duration::from_secs(5), || {
        second.figures().subscription == SubscriptionState::Refused(REFUSE_FULL)
    }));
    assert_eq!(second.figures().summary().subscription, "refused: full");
    assert_eq!(
        second.figures().counters.received,
        0,
        "no stream while refused"
    );
    drop(second);
    drop(first);
    let f = b.stop();
    assert_eq!(f.subscriptions.refused_full, 2);
}

#[test]
fn a_subscriber_that_stops_heartbeating_stops_getting_the_stream_after_its_lease() {
    let lease = Duration::from_millis(300);
    let b = broadcaster(any_port(), 8, lease);
    let raw = RawClient::new(b.local_addr(), 0x1ea5e);
    let cookie = raw.cookie();
    raw.send(Body::Confirm(Confirm { nonce: 2, cookie }));
    // The stream flows for about one lease, then stops: no heartbeat.
    let got = raw.collect(lease + Duration::from_millis(200));
    let stream = got
        .iter()
        .filter(|(p, _)| p.body.kind().is_sequenced())
        .count();
    assert!(stream > 5, "the stream arrived ({stream} packets)");
    assert!(wait_until(Duration::from_secs(2), || {
        b.figures().subscriptions.expired == 1
    }));
    // What was sent before the expiry may still wait in the socket (the
    // first collect ended before it): drained, it does not count. A tick
    // sent after it would come later, and still be caught below.
    let _queued = raw.collect(Duration::from_millis(20));
    let after = raw.collect(Duration::from_millis(500));
    assert!(
        after.is_empty(),
        "still sent to after expiry: {} datagrams",
        after.len()
    );
    assert_eq!(b.stop().subscribers, 0);
}

#[test]
fn a_clean_stop_unsubscribes_at_once() {
    let b = broadcaster(any_port(), 8, Duration::from_secs(60));
    let r = subscriber_of(b.local_addr());
    assert!(wait_until(Duration::from_secs(5), || {
        b.figures().subscribers == 1
    }));
    let stopped = Instant::now();
    r.stop().unwrap();
    assert!(
        wait_until(Duration::from_millis(500), || b.figures().subscribers == 0),
        "still subscribed {:?} after the stop, with a 60 s lease",
        stopped.elapsed()
    );
    let f = b.stop();
    assert_eq!(
        (f.subscriptions.unsubscribed, f.subscriptions.expired),
        (1, 0)
    );
}

#[test]
fn round_trip_time_is_reported_beside_one_way_latency() {
    let b = broadcaster(any_port(), 8, Duration::from_secs(5));
    let r = subscriber_of(b.local_addr());
    assert!(wait_until(Duration::from_secs(5), || {
        let f = r.figures();
        f.rtt.len() >= 2 && f.latency.len() >= 10
    }));
    let s = r.stop().unwrap().summary();
    let rtt = s.rtt_us.expect("round-trip samples");
    assert!(rtt.samples >= 2 && rtt.p50 > 0.0, "{rtt:?}");
    assert!(s.latency_us.is_some_and(|l| l.samples >= 10));
    assert!(s.one_way_meaningful, "sender on this host: one clock");
    let json = serde_json::to_value(&s).unwrap();
    assert!(json["rtt_us"]["p50"].as_f64().unwrap() > 0.0);
    assert_eq!(json["subscription"], "subscribed");
    assert_eq!(json["one_way_meaningful"], true);
    drop(b);
}

#[test]
fn a_restarted_broadcaster_gets_its_subscriber_back_within_a_lease() {
    let lease = Duration::from_secs(3);
    let a = broadcaster(any_port(), 8, lease);
    let addr = a.local_addr();
    let r = subscriber_of(addr);
    assert!(wait_until(Duration::from_secs(5), || r
        .figures()
        .counters
        .received
        >= 10));
    let first_session = a.session();
    a.stop();
    // The same address, a new session and a new secret: the old cookie is
    // silently rejected, the receiver notices its heartbeats go unanswered
    // and subscribes afresh.
    let b = broadcaster(addr, 8, lease);
    assert_ne!(b.session(), first_session);
    let restarted = Instant::now();
    assert!(
        wait_until(lease, || r.figures().counters.restarts == 1),
        "not back within a lease"
    );
    let back_after = restarted.elapsed();
    let before = r.figures().counters.received;
    assert!(wait_until(Duration::from_secs(2), || r
        .figures()
        .counters
        .received
        >= before + 10));
    let f = r.stop().unwrap();
    assert_eq!(f.subscription, SubscriptionState::Subscribed);
    let bf = b.stop();
    assert_eq!(bf.subscriptions.accepted, 1);
    assert!(bf.subscriptions.bad_cookie >= 1, "the old cookie was tried");
    assert!(back_after < lease, "{back_after:?}");
}

#[test]
fn subscribing_needs_a_socket_of_the_broadcasters_family() {
    let err = Receiver::start(ReceiverConfig {
        bind: Some("[::1]:0".parse().unwrap()),
        ..ReceiverConfig::subscribe((LOCALHOST, 47_474).into())
    })
    .err()
    .expect("refused");
    assert!(err.to_string().contains("address families differ"), "{err}");
    // Without --bind, the socket follows the broadcaster's family.
    let c = ReceiverConfig::subscribe("[::1]:47474".parse().unwrap());
    assert_eq!(c.bind_addr(), Some("[::]:0".parse().unwrap()));
}
