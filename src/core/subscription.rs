//! The broadcaster's side of subscriptions, sans-IO: the stateless cookie
//! handshake, the table of subscribed addresses, leases and expiry, and the
//! answers to pings. The caller passes each datagram with its source address
//! and the time; this module never reads a clock or touches a socket, and
//! hands back at most one reply per datagram for the caller to send.
//!
//! The protocol is `proto/PROTOCOL.md`, "Subscriptions (kinds 16 to 23)".
//!
//! # Guarantees
//!
//! * **No amplification.** Every reply is at most as long as the datagram
//!   that caused it (the wire format pads requests; [`Subscriptions::handle`]
//!   only ever answers a decoded request, and a test checks the sizes for
//!   every kind and outcome).
//! * **Only proven addresses get the stream.** An address enters
//!   [`Subscriptions::destinations`] only by sending a confirm whose cookie
//!   is valid for that very address and client id, and a cookie is sent
//!   only to the address it was computed for.
//! * **Stateless until proven, bounded after.** Nothing is stored for a
//!   subscribe or for a confirm with a wrong or expired cookie; the table
//!   holds at most `max_subscribers` entries, whatever arrives.
//! * **A wrong cookie gets nothing.** A confirm or unsubscribe whose MAC is
//!   wrong draws no reply at all; it is counted in `bad_cookie`.
//!
//! The cookie's MAC is a keyed BLAKE3 of (address, port, client id, bucket),
//! truncated to 16 bytes and compared in constant time; the key is the
//! 32-byte secret given to [`Subscriptions::new`] (the broadcaster picks a
//! random one at each start, so a restarted broadcaster rejects its
//! predecessor's cookies, and its subscribers start over).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::wire::auth::{self, Key};
use crate::wire::{
    self, Accept, Body, Challenge, Cookie, Entity, Kind, Packet, Pong, Refuse, MAC_LEN, REFUSE_FULL,
};

/// Bytes of the secret that keys the cookie MAC.
pub const SECRET_LEN: usize = 32;
/// Default lease: a subscription lasts this long after its latest valid confirm.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5);
/// Default cap on subscribed addresses.
pub const DEFAULT_MAX_SUBSCRIBERS: usize = 64;
/// Default cookie period: a cookie is valid in its period and the next one.
pub const DEFAULT_COOKIE_PERIOD: Duration = Duration::from_secs(10);
/// The longest subscription datagram either side sends: the buffer size of
/// a [`Transmit`].
pub const MAX_CONTROL_LEN: usize = max(
    max(wire::SUBSCRIBE_LEN, wire::CONFIRM_LEN),
    max(
        max(wire::UNSUBSCRIBE_LEN, wire::PING_LEN),
        wire::MAX_REPLY_LEN,
    ),
);

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// One datagram to send: where, and its bytes (held inline, no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    len: usize,
    buf: [u8; MAX_CONTROL_LEN],
}

impl Transmit {
    /// Encodes `packet` (a subscription kind) for `destination`.
    pub(crate) fn new(destination: SocketAddr, packet: &Packet) -> Transmit {
        let mut buf = [0u8; MAX_CONTROL_LEN];
        let len = wire::encode(packet, &[], &mut buf)
            .expect("subscription kinds fit MAX_CONTROL_LEN and always encode");
        Transmit {
            destination,
            len,
            buf,
        }
    }

    /// The datagram.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The kind of packet it holds.
    pub fn kind(&self) -> Kind {
        Kind::from_u8(self.buf[5]).expect("built from a packet")
    }
}

/// Bytes of a sealed subscription datagram at most.
pub const MAX_SEALED_CONTROL_LEN: usize = MAX_CONTROL_LEN + auth::TAG_LEN;

/// With a key, the subscription kinds travel sealed too, in both directions.
/// The sans-IO table and client read and write plain packets; the runtime
/// seals what they hand out with [`seal_control`] and opens what arrives
/// with [`open_control`]. Both sides seal, so every request and reply grows
/// by the same [`auth::TAG_LEN`] and no reply outgrows its request.
pub fn seal_control<'a>(
    key: &Key,
    t: &Transmit,
    buf: &'a mut [u8; MAX_SEALED_CONTROL_LEN],
) -> &'a [u8] {
    let n = t.bytes().len();
    buf[..n].copy_from_slice(t.bytes());
    let n = auth::seal_into(key, buf, n);
    &buf[..n]
}

/// Checks a sealed subscription datagram's tag and returns the packet as the
/// table or client reads it: without its tag and with [`wire::FLAG_AUTH`]
/// cleared. `None` if it does not open (forged, tampered, unsealed) or is
/// longer than any subscription datagram. Subscription kinds carry their own
/// nonces and cookies, so no replay window applies to them.
pub fn open_control<'a>(
    key: &Key,
    datagram: &[u8],
    buf: &'a mut [u8; MAX_CONTROL_LEN],
) -> Option<&'a [u8]> {
    let inner = auth::open(key, datagram).ok()?;
    let out = buf.get_mut(..inner.len())?;
    out.copy_from_slice(inner);
    let flags = u16::from_le_bytes([out[6], out[7]]) & !wire::FLAG_AUTH;
    out[6..8].copy_from_slice(&flags.to_le_bytes());
    Some(out)
}

impl std::fmt::Debug for Transmit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transmit")
            .field("destination", &self.destination)
            .field("kind", &self.kind())
            .field("len", &self.len)
            .finish()
    }
}

/// How subscriptions behave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionConfig {
    /// The broadcaster's session id, written in every reply's header.
    pub session: u64,
    /// Most subscribed addresses at once; a confirm beyond it is refused.
    pub max_subscribers: usize,
    /// How long a subscription lasts after its latest valid confirm
    /// (at least 1 ms, at most `u32::MAX` ms).
    pub lease: Duration,
    /// Cookie time bucket (must not be zero): a cookie is valid in the
    /// bucket it was issued in and the next one.
    pub cookie_period: Duration,
}

impl SubscriptionConfig {
    /// Defaults for `session`: 64 subscribers, 5 s lease, 10 s cookie period.
    pub fn new(session: u64) -> SubscriptionConfig {
        SubscriptionConfig {
            session,
            max_subscribers: DEFAULT_MAX_SUBSCRIBERS,
            lease: DEFAULT_LEASE,
            cookie_period: DEFAULT_COOKIE_PERIOD,
        }
    }
}

/// What the subscription table has done, as plain counters that only go up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriptionCounts {
    /// Datagrams handed to [`Subscriptions::handle`], whatever became of them.
    pub requests: u64,
    /// Of those, datagrams that were not a valid subscribe, confirm,
    /// unsubscribe or ping (undecodable, badly padded, or of a kind a
    /// broadcaster does not take). Ignored, never answered.
    pub malformed: u64,
    /// Valid subscribes.
    pub subscribes: u64,
    /// Challenges sent: one per subscribe, and one per confirm whose cookie
    /// had expired.
    pub challenges_sent: u64,
    /// Subscriptions added: confirms with a valid cookie from an address
    /// that was not subscribed, with room in the table. Each got an accept.
    pub accepted: u64,
    /// Leases renewed: confirms with a valid cookie from a subscribed
    /// address (heartbeats). Each got an accept.
    pub renewed: u64,
    /// Confirms with a valid cookie refused because the table was full.
    pub refused_full: u64,
    /// Confirms and unsubscribes whose cookie MAC was wrong for their
    /// address and client id: forged, tampered, or from a previous run of
    /// the broadcaster. Never answered.
    pub bad_cookie: u64,
    /// Confirms and unsubscribes whose cookie was genuine but expired. A
    /// confirm gets a fresh challenge; an unsubscribe is ignored.
    pub stale_cookie: u64,
    /// Subscriptions removed because their lease ran out.
    pub expired: u64,
    /// Subscriptions removed by a valid unsubscribe.
    pub unsubscribed: u64,
    /// With a key: datagrams to the broadcaster's socket that did not open
    /// (forged, tampered, or sent without the key). Never answered.
    pub auth_failed: u64,
    /// Valid pings, from subscribers or not.
    pub pings: u64,
    /// Pongs sent: one per ping from a subscribed address with its client
    /// id. `pings − pongs` pings were dropped.
    pub pongs: u64,
}

/// Why a [`SubscriptionConfig`] cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionConfigError {
    /// The lease is zero or does not fit the accept's u32 milliseconds.
    #[error("subscription lease {0:?} is not between 1 ms and {max} ms", max = u32::MAX)]
    BadLease(Duration),
    /// Cookies cannot live in zero-length buckets.
    #[error("cookie period must be greater than zero")]
    ZeroCookiePeriod,
}

impl SubscriptionConfig {
    /// Checks the lease and cookie period.
    pub fn validate(&self) -> Result<(), SubscriptionConfigError> {
        let ms = self.lease.as_millis();
        if ms == 0 || ms > u128::from(u32::MAX) {
            return Err(SubscriptionConfigError::BadLease(self.lease));
        }
        if self.cookie_period.is_zero() {
            return Err(SubscriptionConfigError::ZeroCookiePeriod);
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    client_id: u64,
    expires_ns: u64,
}

/// What a cookie check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CookieCheck {
    Valid,
    Expired,
    Bad,
}

/// The broadcaster's subscription table. See the module docs.
pub struct Subscriptions {
    secret: [u8; SECRET_LEN],
    config: SubscriptionConfig,
    period_ns: u64,
    lease_ns: u64,
    lease_ms: u32,
    table: BTreeMap<SocketAddr, Entry>,
    /// `(expires_ns, address)` of every entry, earliest first.
    expiries: BTreeSet<(u64, SocketAddr)>,
    counts: SubscriptionCounts,
    /// Never filled: only non-snapshot datagrams are decoded.
    no_entities: Vec<Entity>,
}

impl std::fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("Subscriptions")
            .field("config", &self.config)
            .field("subscribers", &self.table.len())
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl Subscriptions {
    /// An empty table whose cookies are keyed with `secret`.
    pub fn new(
        secret: [u8; SECRET_LEN],
        config: SubscriptionConfig,
    ) -> Result<Subscriptions, SubscriptionConfigError> {
        config.validate()?;
        let saturate = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Ok(Subscriptions {
            secret,
            period_ns: saturate(config.cookie_period),
            lease_ns: saturate(config.lease),
            lease_ms: u32::try_from(config.lease.as_millis()).expect("validated lease"),
            config,
            table: BTreeMap::new(),
            expiries: BTreeSet::new(),
            counts: SubscriptionCounts::default(),
            no_entities: Vec::new(),
        })
    }

    /// Counts a datagram that failed authentication before reaching
    /// [`Subscriptions::handle`] (the caller opens sealed requests).
    pub fn count_auth_failed(&mut self) {
        self.counts.requests += 1;
        self.counts.auth_failed += 1;
    }

    /// Handles one datagram that arrived at `now_ns` from `from`; returns the
    /// reply to send to `from`, if any. Expired subscriptions are removed
    /// first, so an address whose lease has run out is not subscribed here.
    pub fn handle(&mut self, now_ns: u64, from: SocketAddr, datagram: &[u8]) -> Option<Transmit> {
        self.counts.requests += 1;
        self.poll_expired(now_ns);
        // Only requests are decoded: anything else is dropped unread (so a
        // large snapshot aimed at the broadcaster costs no decoding).
        let request = datagram
            .get(wire::field::KIND)
            .and_then(|&k| Kind::from_u8(k));
        let packet = match request.filter(|k| k.is_request()) {
            Some(_) => wire::decode(datagram, &mut self.no_entities).ok(),
            None => None,
        };
        let Some(packet) = packet else {
            self.counts.malformed += 1;
            return None;
        };
        let client_id = packet.session;
        let reply = match packet.body {
            Body::Subscribe(s) => {
                self.counts.subscribes += 1;
                Some(self.challenge(now_ns, from, client_id, s.nonce))
            }
            Body::Confirm(c) => match self.check(now_ns, from, client_id, &c.cookie) {
                CookieCheck::Bad => {
                    self.counts.bad_cookie += 1;
                    None
                }
                CookieCheck::Expired => {
                    self.counts.stale_cookie += 1;
                    Some(self.challenge(now_ns, from, client_id, c.nonce))
                }
                CookieCheck::Valid => Some(self.confirm(now_ns, from, client_id, c.nonce)),
            },
            Body::Unsubscribe(u) => {
                match self.check(now_ns, from, client_id, &u.cookie) {
                    CookieCheck::Bad => self.counts.bad_cookie += 1,
                    CookieCheck::Expired => self.counts.stale_cookie += 1,
                    CookieCheck::Valid => {
                        if self.subscribed_as(from, client_id) {
                            self.remove(from);
                            self.counts.unsubscribed += 1;
                        }
                    }
                }
                None
            }
            Body::Ping(p) => {
                self.counts.pings += 1;
                self.subscribed_as(from, client_id).then(|| {
                    self.counts.pongs += 1;
                    self.reply(
                        from,
                        Body::Pong(Pong {
                            nonce: p.nonce,
                            ping_sent_ns: p.sent_ns,
                            bc_recv_ns: now_ns,
                        }),
                    )
                })
            }
            // Only request kinds are decoded, so this is never reached.
            _ => {
                self.counts.malformed += 1;
                None
            }
        };
        debug_assert!(reply.is_none_or(|r| r.bytes().len() <= datagram.len()));
        reply
    }

    /// Removes every subscription whose lease has run out by `now_ns`, in
    /// order of expiry; returns how many.
    pub fn poll_expired(&mut self, now_ns: u64) -> usize {
        let mut n = 0;
        while let Some(&(expires_ns, addr)) = self.expiries.first() {
            if expires_ns > now_ns {
                break;
            }
            self.remove(addr);
            self.counts.expired += 1;
            n += 1;
        }
        n
    }

    /// When the next subscription expires (ns), if any: call
    /// [`Subscriptions::poll_expired`] then.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.expiries.first().map(|&(t, _)| t)
    }

    /// The subscribed addresses, each once, in address order.
    pub fn destinations(&self) -> impl ExactSizeIterator<Item = SocketAddr> + '_ {
        self.table.keys().copied()
    }

    /// How many addresses are subscribed.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no address is subscribed.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Whether `addr` is subscribed (its lease may have run out if
    /// [`Subscriptions::poll_expired`] was not called since).
    pub fn contains(&self, addr: SocketAddr) -> bool {
        self.table.contains_key(&addr)
    }

    /// The counters so far.
    pub fn counts(&self) -> SubscriptionCounts {
        self.counts
    }

    /// The configuration in use.
    pub fn config(&self) -> &SubscriptionConfig {
        &self.config
    }

    fn subscribed_as(&self, from: SocketAddr, client_id: u64) -> bool {
        self.table
            .get(&from)
            .is_some_and(|e| e.client_id == client_id)
    }

    fn remove(&mut self, addr: SocketAddr) {
        if let Some(e) = self.table.remove(&addr) {
            self.expiries.remove(&(e.expires_ns, addr));
        }
    }

    /// A valid confirm: renew, add, or refuse when full.
    fn confirm(&mut self, now_ns: u64, from: SocketAddr, client_id: u64, nonce: u64) -> Transmit {
        let expires_ns = now_ns.saturating_add(self.lease_ns);
        if let Some(e) = self.table.get_mut(&from) {
            self.expiries.remove(&(e.expires_ns, from));
            *e = Entry {
                client_id,
                expires_ns,
            };
            self.counts.renewed += 1;
        } else if self.table.len() >= self.config.max_subscribers {
            self.counts.refused_full += 1;
            let refuse = Refuse {
                nonce,
                reason: REFUSE_FULL,
            };
            return self.reply(from, Body::Refuse(refuse));
        } else {
            self.table.insert(
                from,
                Entry {
                    client_id,
                    expires_ns,
                },
            );
            self.counts.accepted += 1;
        }
        self.expiries.insert((expires_ns, from));
        let accept = Accept {
            nonce,
            lease_ms: self.lease_ms,
        };
        self.reply(from, Body::Accept(accept))
    }

    fn challenge(&mut self, now_ns: u64, from: SocketAddr, client_id: u64, nonce: u64) -> Transmit {
        self.counts.challenges_sent += 1;
        let bucket = now_ns / self.period_ns;
        let cookie = Cookie {
            bucket,
            mac: cookie_mac(&self.secret, from, client_id, bucket),
        };
        self.reply(from, Body::Challenge(Challenge { nonce, cookie }))
    }

    fn reply(&self, to: SocketAddr, body: Body) -> Transmit {
        let packet = Packet {
            session: self.config.session,
            seq: 0,
            body,
        };
        Transmit::new(to, &packet)
    }

    fn check(&self, now_ns: u64, from: SocketAddr, client_id: u64, cookie: &Cookie) -> CookieCheck {
        let want = cookie_mac(&self.secret, from, client_id, cookie.bucket);
        if !constant_time_eq::constant_time_eq_16(&want, &cookie.mac) {
            return CookieCheck::Bad;
        }
        let current = now_ns / self.period_ns;
        if cookie.bucket == current || cookie.bucket.checked_add(1) == Some(current) {
            CookieCheck::Valid
        } else {
            CookieCheck::Expired
        }
    }
}

/// The reference cookie MAC: the first 16 bytes of the keyed BLAKE3 hash
/// (key `secret`) of the requester's IP as 16 bytes (IPv4 as IPv4-mapped
/// IPv6), its port (u16 LE), its client id (u64 LE) and the bucket (u64 LE).
pub fn cookie_mac(
    secret: &[u8; SECRET_LEN],
    from: SocketAddr,
    client_id: u64,
    bucket: u64,
) -> [u8; MAC_LEN] {
    let ip = match from.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    let mut msg = [0u8; 16 + 2 + 8 + 8];
    msg[..16].copy_from_slice(&ip.octets());
    msg[16..18].copy_from_slice(&from.port().to_le_bytes());
    msg[18..26].copy_from_slice(&client_id.to_le_bytes());
    msg[26..].copy_from_slice(&bucket.to_le_bytes());
    let hash = blake3::keyed_hash(secret, &msg);
    let mut mac = [0u8; MAC_LEN];
    mac.copy_from_slice(&hash.as_bytes()[..MAC_LEN]);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Confirm, Ping, Subscribe, Unsubscribe};

    const T0: u64 = 1_700_000_000_000_000_000;
    const S: u64 = 0xb0b0_5e55_1011;
    const C: u64 = 0xc11e_4711;
    const MS: u64 = 1_000_000;
    const SEC: u64 = 1_000_000_000;

    fn table(max_subscribers: usize, lease: Duration) -> Subscriptions {
        let config = SubscriptionConfig {
            max_subscribers,
            lease,
            ..SubscriptionConfig::new(S)
        };
        Subscriptions::new([7; SECRET_LEN], config).unwrap()
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn datagram(client_id: u64, body: Body) -> Vec<u8> {
        let packet = Packet {
            session: client_id,
            seq: 0,
            body,
        };
        wire::encode_to_vec(&packet, &[]).unwrap()
    }

    fn subscribe(nonce: u64) -> Body {
        Body::Subscribe(Subscribe { nonce })
    }

    fn confirm(nonce: u64, cookie: Cookie) -> Body {
        Body::Confirm(Confirm { nonce, cookie })
    }

    /// The reply's packet, after checking it is no larger than `request`.
    fn reply(t: &mut Subscriptions, now: u64, from: SocketAddr, request: &[u8]) -> Option<Packet> {
        let r = t.handle(now, from, request)?;
        assert_eq!(r.destination, from, "replies go back to the source");
        assert!(
            r.bytes().len() <= request.len(),
            "{r:?} > {} bytes",
            request.len()
        );
        let p = wire::decode(r.bytes(), &mut Vec::new()).expect("replies decode");
        assert_eq!((p.session, p.seq), (S, 0));
        Some(p)
    }

    fn cookie_for(t: &mut Subscriptions, now: u64, from: SocketAddr, client: u64) -> Cookie {
        match reply(t, now, from, &datagram(client, subscribe(1))).map(|p| p.body) {
            Some(Body::Challenge(c)) => c.cookie,
            other => panic!("expected a challenge, got {other:?}"),
        }
    }

    /// Subscribes `from` as `client` at `now`; returns its cookie.
    fn join(t: &mut Subscriptions, now: u64, from: SocketAddr, client: u64) -> Cookie {
        let cookie = cookie_for(t, now, from, client);
        let got = reply(t, now, from, &datagram(client, confirm(2, cookie)));
        assert!(
            matches!(got.map(|p| p.body), Some(Body::Accept(_))),
            "{got:?}"
        );
        cookie
    }

    #[test]
    fn subscribe_gets_a_challenge_and_stores_nothing() {
        let mut t = table(4, DEFAULT_LEASE);
        let a = addr("10.0.0.2:4000");
        for i in 0..1000 {
            let got = reply(&mut t, T0 + i, a, &datagram(i, subscribe(i ^ 0x55)));
            match got.map(|p| p.body) {
                Some(Body::Challenge(c)) => {
                    assert_eq!(c.nonce, i ^ 0x55);
                    assert_eq!(c.cookie.bucket, (T0 + i) / (10 * SEC));
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(t.is_empty());
        assert_eq!(t.poll_timeout(), None);
        let c = t.counts();
        assert_eq!(
            (c.requests, c.subscribes, c.challenges_sent),
            (1000, 1000, 1000)
        );
        assert_eq!((c.accepted, c.malformed), (0, 0));
    }

    /// Issue 5's bound: a flood of subscribes and forged confirms from
    /// 100,000 spoofed sources leaves the table empty (nothing is stored for
    /// an address that never echoed a valid cookie), and real subscribers
    /// beyond the cap are refused, so the table never exceeds its cap.
    #[test]
    fn a_flood_from_many_spoofed_sources_stores_nothing_and_the_cap_holds() {
        let mut t = table(4, DEFAULT_LEASE);
        for i in 0..100_000u64 {
            let from = SocketAddr::from((
                [10, (i >> 16) as u8, (i >> 8) as u8, i as u8],
                4000 + (i % 1000) as u16,
            ));
            reply(&mut t, T0 + i, from, &datagram(i, subscribe(i)));
            let forged = Cookie {
                bucket: (T0 + i) / (10 * SEC),
                mac: [(i % 251) as u8; 16],
            };
            assert!(t
                .handle(T0 + i, from, &datagram(i, confirm(i, forged)))
                .is_none());
        }
        assert!(t.is_empty());
        let c = t.counts();
        assert_eq!(
            (c.subscribes, c.challenges_sent, c.bad_cookie, c.accepted),
            (100_000, 100_000, 100_000, 0)
        );
        // Ten real subscribers against a cap of four: four in, six refused.
        for i in 0..10u64 {
            let from = SocketAddr::from(([192, 0, 2, i as u8 + 1], 5000));
            let cookie = cookie_for(&mut t, T0, from, 100 + i);
            let got = reply(&mut t, T0, from, &datagram(100 + i, confirm(7, cookie)));
            let accepted = matches!(got.map(|p| p.body), Some(Body::Accept(_)));
            assert_eq!(accepted, i < 4, "subscriber {i}");
        }
        assert_eq!(t.len(), 4);
        assert_eq!(t.counts().refused_full, 6);
    }

    #[test]
    fn a_valid_confirm_subscribes_and_heartbeats_renew_one_entry() {
        let mut t = table(4, DEFAULT_LEASE);
        let a = addr("10.0.0.2:4000");
        let cookie = cookie_for(&mut t, T0, a, C);
        let got = reply(&mut t, T0 + MS, a, &datagram(C, confirm(9, cookie)));
        assert_eq!(
            got.map(|p| p.body),
            Some(Body::Accept(Accept {
                nonce: 9,
                lease_ms: 5_000
            }))
        );
        assert_eq!(t.destinations().collect::<Vec<_>>(), [a]);
        assert_eq!(t.poll_timeout(), Some(T0 + MS + 5 * SEC));
        // Heartbeats with the same cookie renew the lease, one entry still.
        for i in 1..=3 {
            let now = T0 + i * 1_600 * MS;
            let got = reply(&mut t, now, a, &datagram(C, confirm(10 + i, cookie)));
            assert!(matches!(got.map(|p| p.body), Some(Body::Accept(x)) if x.nonce == 10 + i));
            assert_eq!(t.poll_timeout(), Some(now + 5 * SEC));
        }
        assert_eq!(t.len(), 1);
        let c = t.counts();
        assert_eq!((c.accepted, c.renewed, c.expired), (1, 3, 0));
    }

    #[test]
    fn a_cookie_is_valid_in_its_bucket_and_the_next_only() {
        let mut t = table(4, Duration::from_secs(60));
        let a = addr("10.0.0.2:4000");
        let bucket_start = (T0 / (10 * SEC)) * 10 * SEC;
        let cookie = cookie_for(&mut t, bucket_start, a, C);
        // The last nanosecond of the next bucket: still valid.
        let next_end = bucket_start + 20 * SEC - 1;
        let got = reply(&mut t, next_end, a, &datagram(C, confirm(1, cookie)));
        assert!(matches!(got.map(|p| p.body), Some(Body::Accept(_))));
        // Two buckets on: expired. A fresh challenge, and no renewal.
        let later = bucket_start + 20 * SEC;
        let expires = t.poll_timeout();
        let got = reply(&mut t, later, a, &datagram(C, confirm(2, cookie)));
        match got.map(|p| p.body) {
            Some(Body::Challenge(c)) => {
                assert_eq!(c.nonce, 2, "the challenge echoes the confirm's nonce");
                assert_eq!(c.cookie.bucket, cookie.bucket + 2);
                // The fresh cookie works at once.
                let got = reply(&mut t, later, a, &datagram(C, confirm(3, c.cookie)));
                assert!(matches!(got.map(|p| p.body), Some(Body::Accept(_))));
            }
            other => panic!("expected a fresh challenge, got {other:?}"),
        }
        assert!(t.poll_timeout() > expires);
        // A genuine cookie from a later bucket (the clock stepped back) is
        // expired too: re-challenged, never trusted.
        let got = reply(
            &mut t,
            bucket_start - 10 * SEC,
            a,
            &datagram(C, confirm(4, cookie)),
        );
        assert!(matches!(got.map(|p| p.body), Some(Body::Challenge(_))));
        let c = t.counts();
        assert_eq!((c.stale_cookie, c.bad_cookie), (2, 0));
    }

    #[test]
    fn a_cookie_is_bound_to_address_port_client_and_bucket() {
        let mut t = table(4, DEFAULT_LEASE);
        let a = addr("10.0.0.2:4000");
        let cookie = cookie_for(&mut t, T0, a, C);
        let mut tampered = cookie;
        tampered.mac[15] ^= 1;
        let mut rebucketed = cookie;
        rebucketed.bucket -= 1; // still "valid" by time, but not what was signed
        let attempts = [
            (addr("10.0.0.3:4000"), C, cookie),
            (addr("10.0.0.2:4001"), C, cookie),
            (addr("[::ffff:10.0.0.3]:4000"), C, cookie),
            (a, C + 1, cookie),
            (a, C, tampered),
            (a, C, rebucketed),
            (a, C, Cookie::default()),
        ];
        for (i, (from, client, cookie)) in attempts.into_iter().enumerate() {
            let confirm = datagram(client, confirm(1, cookie));
            assert_eq!(t.handle(T0, from, &confirm), None, "attempt {i}");
            let unsubscribe = datagram(client, Body::Unsubscribe(Unsubscribe { nonce: 1, cookie }));
            assert_eq!(t.handle(T0, from, &unsubscribe), None, "attempt {i}");
        }
        assert!(t.is_empty());
        assert_eq!(t.counts().bad_cookie, 14);
        // The genuine one still works, and an IPv4 peer seen as IPv4-mapped
        // IPv6 (a dual-stack socket) has the same cookie.
        assert_eq!(
            cookie_mac(&[7; 32], a, C, 5),
            cookie_mac(&[7; 32], addr("[::ffff:10.0.0.2]:4000"), C, 5)
        );
        join(&mut t, T0, a, C);
    }

    #[test]
    fn a_full_table_refuses_newcomers_and_still_renews_members() {
        let mut t = table(2, DEFAULT_LEASE);
        let (a, b, c) = (addr("10.0.0.2:1"), addr("10.0.0.3:1"), addr("10.0.0.4:1"));
        let ca = join(&mut t, T0, a, 1);
        join(&mut t, T0, b, 2);
        let cc = cookie_for(&mut t, T0, c, 3);
        let got = reply(&mut t, T0, c, &datagram(3, confirm(7, cc)));
        assert_eq!(
            got.map(|p| p.body),
            Some(Body::Refuse(Refuse {
                nonce: 7,
                reason: REFUSE_FULL
            }))
        );
        assert!(!t.contains(c));
        let got = reply(&mut t, T0 + SEC, a, &datagram(1, confirm(8, ca)));
        assert!(matches!(got.map(|p| p.body), Some(Body::Accept(_))));
        // Room again once one leaves: the refused one gets in.
        t.poll_expired(T0 + 5 * SEC);
        assert_eq!(t.destinations().collect::<Vec<_>>(), [a]);
        let got = reply(&mut t, T0 + 5 * SEC, c, &datagram(3, confirm(9, cc)));
        assert!(matches!(got.map(|p| p.body), Some(Body::Accept(_))));
        let n = t.counts();
        assert_eq!(
            (n.accepted, n.renewed, n.refused_full, n.expired),
            (3, 1, 1, 1)
        );
    }

    #[test]
    fn a_cap_of_zero_refuses_everyone() {
        let mut t = table(0, DEFAULT_LEASE);
        let a = addr("10.0.0.2:1");
        let cookie = cookie_for(&mut t, T0, a, C);
        let got = reply(&mut t, T0, a, &datagram(C, confirm(1, cookie)));
        assert!(matches!(got.map(|p| p.body), Some(Body::Refuse(_))));
        assert!(t.is_empty());
    }

    #[test]
    fn leases_expire_in_order_of_their_last_renewal() {
        let mut t = table(8, DEFAULT_LEASE);
        let a = addr("10.0.0.2:1");
        let b = addr("10.0.0.3:1");
        let c = addr("10.0.0.4:1");
        let ca = join(&mut t, T0, a, 1);
        join(&mut t, T0 + SEC, b, 2);
        join(&mut t, T0 + 2 * SEC, c, 3);
        // a renews at 3 s: b now expires first (6 s), then c (7 s), then a (8 s).
        reply(&mut t, T0 + 3 * SEC, a, &datagram(1, confirm(5, ca)));
        assert_eq!(t.poll_timeout(), Some(T0 + 6 * SEC));
        assert_eq!(t.poll_expired(T0 + 6 * SEC - 1), 0);
        assert_eq!(
            t.poll_expired(T0 + 6 * SEC),
            1,
            "expires exactly at its lease"
        );
        assert_eq!(t.destinations().collect::<Vec<_>>(), [a, c]);
        assert_eq!(t.poll_timeout(), Some(T0 + 7 * SEC));
        assert_eq!(t.poll_expired(T0 + 100 * SEC), 2);
        assert!(t.is_empty());
        assert_eq!(t.poll_timeout(), None);
        assert_eq!(t.counts().expired, 3);
        // handle() expires first: a ping right after the lease is dropped.
        let ca = join(&mut t, T0, a, 1);
        let ping = datagram(
            1,
            Body::Ping(Ping {
                nonce: 1,
                sent_ns: 0,
            }),
        );
        assert_eq!(t.handle(T0 + 5 * SEC, a, &ping), None);
        let _ = ca;
    }

    #[test]
    fn unsubscribe_removes_at_once_with_a_valid_cookie_and_the_same_client() {
        let mut t = table(8, DEFAULT_LEASE);
        let a = addr("10.0.0.2:1");
        let cookie = join(&mut t, T0, a, C);
        let bye = |client| datagram(client, Body::Unsubscribe(Unsubscribe { nonce: 3, cookie }));
        // Another client id at the same address (with its own cookie) cannot.
        let other = cookie_for(&mut t, T0, a, C + 1);
        let not_mine = datagram(
            C + 1,
            Body::Unsubscribe(Unsubscribe {
                nonce: 3,
                cookie: other,
            }),
        );
        assert_eq!(t.handle(T0, a, &not_mine), None);
        assert!(t.contains(a));
        assert_eq!(t.handle(T0 + SEC, a, &bye(C)), None, "no reply");
        assert!(t.is_empty());
        assert_eq!(t.poll_timeout(), None);
        assert_eq!(t.handle(T0 + SEC, a, &bye(C)), None);
        assert_eq!(t.counts().unsubscribed, 1);
    }

    #[test]
    fn pings_are_answered_for_subscribers_only() {
        let mut t = table(8, DEFAULT_LEASE);
        let a = addr("10.0.0.2:1");
        let stranger = addr("10.0.0.9:1");
        let ping = |client| {
            datagram(
                client,
                Body::Ping(Ping {
                    nonce: 42,
                    sent_ns: 123,
                }),
            )
        };
        assert_eq!(t.handle(T0, a, &ping(C)), None);
        join(&mut t, T0, a, C);
        let got = reply(&mut t, T0 + 7, a, &ping(C));
        assert_eq!(
            got.map(|p| p.body),
            Some(Body::Pong(Pong {
                nonce: 42,
                ping_sent_ns: 123,
                bc_recv_ns: T0 + 7
            }))
        );
        assert_eq!(t.handle(T0, stranger, &ping(C)), None);
        assert_eq!(t.handle(T0, a, &ping(C + 1)), None, "wrong client id");
        let c = t.counts();
        assert_eq!((c.pings, c.pongs), (4, 1));
    }

    #[test]
    fn what_a_broadcaster_does_not_take_is_malformed_and_unanswered() {
        use crate::wire::{Goodbye, SnapshotHead};
        let mut t = table(8, DEFAULT_LEASE);
        let a = addr("10.0.0.2:1");
        let mut short = datagram(C, subscribe(1));
        short.truncate(wire::SUBSCRIBE_LEN - 1);
        let mut padded = datagram(C, subscribe(1));
        padded[wire::SUBSCRIBE_LEN - 1] = 1;
        let mut snapshot = vec![0u8; wire::SNAPSHOT_FIXED_LEN];
        let head = Packet {
            session: 1,
            seq: 1,
            body: Body::Snapshot(SnapshotHead {
                parts: 1,
                ..SnapshotHead::default()
            }),
        };
        wire::encode(&head, &[], &mut snapshot).unwrap();
        let inputs: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"TKCS".to_vec(),
            short,
            padded,
            snapshot,
            datagram(C, Body::Goodbye(Goodbye::default())),
            datagram(C, Body::Challenge(Challenge::default())),
            datagram(C, Body::Accept(Accept::default())),
            datagram(C, Body::Refuse(Refuse::default())),
            datagram(C, Body::Pong(Pong::default())),
            vec![0xff; 1500],
        ];
        for (i, d) in inputs.iter().enumerate() {
            assert_eq!(t.handle(T0, a, d), None, "input {i}");
        }
        let c = t.counts();
        assert_eq!((c.requests, c.malformed), (11, 11));
        assert_eq!(c.challenges_sent, 0);
    }

    #[test]
    fn every_reply_of_every_kind_is_at_most_its_request() {
        // Each request kind in each situation: not subscribed, subscribed,
        // full, with valid, expired, forged cookies. `reply` asserts the size.
        let a = addr("10.0.0.2:1");
        let b = addr("10.0.0.3:1");
        for max in [0, 2] {
            let mut t = table(max, DEFAULT_LEASE);
            if max > 0 {
                join(&mut t, T0, b, 9);
            }
            let good = cookie_for(&mut t, T0, a, C);
            let mut forged = good;
            forged.mac[0] ^= 0x80;
            let old = Cookie {
                bucket: good.bucket - 5,
                mac: cookie_mac(&[7; 32], a, C, good.bucket - 5),
            };
            let mut kinds_answered = BTreeSet::new();
            for now in [T0, T0 + SEC] {
                for cookie in [good, forged, old] {
                    for body in [
                        subscribe(1),
                        confirm(2, cookie),
                        Body::Ping(Ping {
                            nonce: 4,
                            sent_ns: now,
                        }),
                        Body::Unsubscribe(Unsubscribe { nonce: 3, cookie }),
                    ] {
                        for from in [a, b] {
                            let d = datagram(C, body);
                            if let Some(p) = reply(&mut t, now, from, &d) {
                                kinds_answered.insert(p.body.kind() as u8);
                            }
                        }
                    }
                }
            }
            let expect: &[u8] = if max == 0 { &[17, 20] } else { &[17, 19, 23] };
            assert_eq!(kinds_answered.into_iter().collect::<Vec<_>>(), expect);
        }
    }

    /// The bytes of a vector in `proto/vectors/`, built into the test (the
    /// core reads no files) and parsed by the one parser of the format.
    macro_rules! vector {
        ($name:literal) => {
            crate::wire::vectors::parse(include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proto/vectors/",
                $name
            )))
            .expect($name)
            .bytes
        };
    }

    #[test]
    fn the_reference_exchange_is_the_spec_vectors_byte_for_byte() {
        // proto/vectors: a receiver at 192.0.2.10:50000 and a broadcaster of
        // session 0xf0e1d2c3b4a59687 whose secret is 00 01 .. 1f.
        let mut secret = [0u8; SECRET_LEN];
        for (i, b) in secret.iter_mut().enumerate() {
            *b = i as u8;
        }
        let config = SubscriptionConfig::new(0xf0e1_d2c3_b4a5_9687);
        let rx = addr("192.0.2.10:50000");
        let mut t = Subscriptions::new(secret, config.clone()).unwrap();
        let send = |t: &mut Subscriptions, now: u64, datagram: Vec<u8>| {
            t.handle(now, rx, &datagram).map(|r| r.bytes().to_vec())
        };
        assert_eq!(
            send(&mut t, T0, vector!("subscribe.hex")),
            Some(vector!("challenge.hex"))
        );
        assert_eq!(
            send(&mut t, T0, vector!("confirm.hex")),
            Some(vector!("accept.hex"))
        );
        let ping_arrives = 1_700_000_000_100_150_000;
        assert_eq!(
            send(&mut t, ping_arrives, vector!("ping.hex")),
            Some(vector!("pong.hex"))
        );
        assert_eq!(send(&mut t, T0, vector!("unsubscribe.hex")), None);
        assert!(t.is_empty());
        let full = SubscriptionConfig {
            max_subscribers: 0,
            ..config
        };
        let mut t = Subscriptions::new(secret, full).unwrap();
        assert_eq!(
            send(&mut t, T0, vector!("confirm.hex")),
            Some(vector!("refuse.hex"))
        );
    }

    #[test]
    fn config_must_have_a_usable_lease_and_cookie_period() {
        let ok = SubscriptionConfig::new(1);
        assert_eq!(ok.validate(), Ok(()));
        for lease in [
            Duration::ZERO,
            Duration::from_micros(999),
            Duration::from_secs(5_000_000),
        ] {
            let c = SubscriptionConfig {
                lease,
                ..ok.clone()
            };
            assert_eq!(c.validate(), Err(SubscriptionConfigError::BadLease(lease)));
        }
        let c = SubscriptionConfig {
            cookie_period: Duration::ZERO,
            ..ok
        };
        assert!(Subscriptions::new([0; 32], c).is_err());
    }
}
