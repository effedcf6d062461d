//! The receiver's side of subscriptions, sans-IO: the client state machine
//! that subscribes to a broadcaster, keeps the subscription alive with
//! heartbeats, measures the round-trip time with pings, follows a restarted
//! broadcaster, and unsubscribes at a clean exit.
//!
//! In the style of quinn-proto: the caller feeds it the packets that came
//! from the broadcaster, already decoded (and, with a key, opened) by
//! [`crate::core::ingest`] ([`Subscriber::handle`]), asks it what to send
//! ([`Subscriber::poll_transmit`], until `None`) and when to ask again
//! ([`Subscriber::poll_timeout`]). It never reads a clock or touches a
//! socket; every time is the caller's `now_ns`, which must not go backwards
//! (the receiver passes a monotonic clock anchored to the wall clock).
//!
//! # Behaviour (`proto/PROTOCOL.md`, "What a receiver does")
//!
//! * **Subscribing**: a subscribe, re-sent while unanswered after gaps
//!   doubling from 250 ms ([`RETRY_INITIAL`]) up to 2 s ([`RETRY_MAX`]):
//!   at 250 ms, 750 ms, 1.75 s, 3.75 s, 5.75 s, … after the first. A challenge is answered at once with a
//!   confirm carrying its cookie; an accept makes it **subscribed**; a
//!   refuse makes it **refused**, and it retries every 5 s.
//! * **Subscribed**: a confirm (the heartbeat) every lease/3 with the cookie
//!   it holds, and a ping every second. A challenge in answer to a heartbeat
//!   (the cookie expired) is answered at once with a confirm carrying the
//!   new cookie.
//! * **Unanswered**: a confirm with no answer is re-sent after
//!   min(250 ms, lease/6) (in `subscribing`, after the backoff). After 3
//!   confirms in a row without an answer it drops its cookie and starts over
//!   with a subscribe: a broadcaster restarted on the same address has a
//!   new secret and silently ignores the old cookie, so this is how its
//!   subscribers come back, within lease/3 + 3 × 250 ms + two round trips.
//! * Replies are taken only from the broadcaster's address and only with the
//!   nonce of the request awaiting an answer; nonces are random.
//! * **Giving up**: if nothing at all has answered [`GIVE_UP_UNANSWERED`]
//!   (5 s) after the start, or after [`GIVE_UP_REFUSALS`] (2) refusals in
//!   a row, the client stops and its state is [`SubscriptionState::Failed`],
//!   so a receiver subscribed to a closed port or a full broadcaster can
//!   say so instead of retrying silently. A broadcaster that answered once
//!   and then went silent is retried for ever: that is a restart to follow.
//!   Each limit can be turned off ([`SubscriberConfig`]).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::core::histogram::{self, LATENCY_MAX_NS};
use crate::core::subscription::Transmit;
use crate::wire::{Body, Confirm, Cookie, Packet, Ping, Subscribe, Unsubscribe, REFUSE_FULL};

/// First retry delay of an unanswered subscribe, doubled up to [`RETRY_MAX`].
pub const RETRY_INITIAL: Duration = Duration::from_millis(250);
/// Longest delay between retries while subscribing.
pub const RETRY_MAX: Duration = Duration::from_secs(2);
/// Delay between attempts after a refusal.
pub const REFUSED_RETRY: Duration = Duration::from_secs(5);
/// Delay between pings while subscribed.
pub const PING_INTERVAL: Duration = Duration::from_secs(1);
/// Confirms in a row without an answer after which the cookie is dropped
/// and the handshake starts over.
pub const MAX_UNANSWERED: u32 = 3;
/// How long a client whose requests nothing has answered keeps trying.
pub const GIVE_UP_UNANSWERED: Duration = Duration::from_secs(5);
/// Refusals in a row after which a client gives up (the second comes
/// [`REFUSED_RETRY`] after the first).
pub const GIVE_UP_REFUSALS: u32 = 2;
/// Shortest heartbeat interval, however short the lease.
const MIN_HEARTBEAT: Duration = Duration::from_millis(10);

/// Where a receiver's subscription stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SubscriptionState {
    /// It did not subscribe (or has not started).
    #[default]
    None,
    /// Handshake under way, or starting over.
    Subscribing,
    /// The broadcaster accepted it; the stream should be arriving.
    Subscribed,
    /// The broadcaster refused it, for this reason ([`REFUSE_FULL`]: full);
    /// it keeps retrying, slowly, up to [`SubscriberConfig::give_up_refusals`].
    Refused(u8),
    /// It gave up (see the module docs): nothing more is sent.
    Failed(SubscribeFailure),
}

/// Why a client gave up subscribing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscribeFailure {
    /// Nothing answered for [`SubscriberConfig::give_up_unanswered`] after
    /// the start: no broadcaster at that address, or nothing gets through.
    Unanswered,
    /// Refused [`SubscriberConfig::give_up_refusals`] times in a row, the
    /// last time for this reason ([`REFUSE_FULL`]: full).
    Refused(u8),
}

impl fmt::Display for SubscribeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscribeFailure::Unanswered => f.write_str("no answer"),
            SubscribeFailure::Refused(r) => write!(f, "{}", SubscriptionState::Refused(*r)),
        }
    }
}

impl fmt::Display for SubscriptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscriptionState::None => f.write_str("none"),
            SubscriptionState::Subscribing => f.write_str("subscribing"),
            SubscriptionState::Subscribed => f.write_str("subscribed"),
            SubscriptionState::Refused(REFUSE_FULL) => f.write_str("refused: full"),
            // Reserved reasons (0, 2..=255): refused, for a reason this
            // version does not define (proto/PROTOCOL.md, "Refuse").
            SubscriptionState::Refused(r) => write!(f, "refused: unknown reason {r}"),
            SubscriptionState::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// How the client behaves. [`SubscriberConfig::new`] gives the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberConfig {
    /// The broadcaster's address: requests go there, replies must come from it.
    pub server: SocketAddr,
    /// This receiver's client id (random), sent as the header's session.
    pub client_id: u64,
    /// Heartbeat interval; `None` is lease/3 of the latest accept.
    pub heartbeat: Option<Duration>,
    /// Delay between pings while subscribed.
    pub ping_interval: Duration,
    /// Delay between attempts after a refusal.
    pub refused_retry: Duration,
    /// Give up if nothing has answered this long after the start (default
    /// [`GIVE_UP_UNANSWERED`]); `None` keeps trying.
    pub give_up_unanswered: Option<Duration>,
    /// Give up after this many refusals in a row (default
    /// [`GIVE_UP_REFUSALS`]); `None` keeps trying.
    pub give_up_refusals: Option<u32>,
}

impl SubscriberConfig {
    /// Defaults for subscribing to `server` as `client_id`.
    pub fn new(server: SocketAddr, client_id: u64) -> SubscriberConfig {
        SubscriberConfig {
            server,
            client_id,
            heartbeat: None,
            ping_interval: PING_INTERVAL,
            refused_retry: REFUSED_RETRY,
            give_up_unanswered: Some(GIVE_UP_UNANSWERED),
            give_up_refusals: Some(GIVE_UP_REFUSALS),
        }
    }
}

/// What the client has sent and received, as plain counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriberCounts {
    /// Subscribes sent.
    pub subscribes_sent: u64,
    /// Confirms sent (handshakes, heartbeats and their retries).
    pub confirms_sent: u64,
    /// Challenges taken (answering the awaited request).
    pub challenges: u64,
    /// Accepts taken.
    pub accepts: u64,
    /// Refuses taken.
    pub refusals: u64,
    /// Pings sent.
    pub pings_sent: u64,
    /// Pongs taken: one round-trip sample each.
    pub pongs: u64,
    /// Times it dropped its cookie after [`MAX_UNANSWERED`] unanswered
    /// confirms and started over (a restarted or vanished broadcaster).
    pub restarts: u64,
    /// Subscription packets ignored: from another address, with a nonce
    /// not awaited, or of a kind a receiver does not take. (Datagrams that
    /// do not decode never get here: the ingest counts them as `malformed`.)
    pub ignored: u64,
    /// Unsubscribes sent.
    pub unsubscribes_sent: u64,
}

/// The receiver's subscription client. See the module docs.
pub struct Subscriber {
    config: SubscriberConfig,
    rng: StdRng,
    state: SubscriptionState,
    /// Started and not stopped.
    active: bool,
    /// When it started, and whether anything has answered since.
    started_ns: u64,
    answered_once: bool,
    /// Refusals since the last accept.
    refusals_in_row: u32,
    cookie: Option<Cookie>,
    /// Nonce of the subscribe or confirm awaiting an answer.
    awaiting: Option<u64>,
    /// Requests sent since the last answer.
    unanswered: u32,
    /// When to send the next subscribe or confirm.
    next_request_ns: Option<u64>,
    /// Current retry delay while subscribing.
    backoff: Duration,
    /// Lease of the latest accept.
    lease: Option<Duration>,
    /// When to send the next ping (while subscribed).
    next_ping_ns: Option<u64>,
    /// The ping awaiting its pong: (nonce, sent_ns).
    ping: Option<(u64, u64)>,
    rtt: Histogram<u64>,
    counts: SubscriberCounts,
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("server", &self.config.server)
            .field("state", &self.state)
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Subscriber {
    /// An idle client; `seed` seeds its nonces (give it a random value).
    pub fn new(config: SubscriberConfig, seed: u64) -> Subscriber {
        Subscriber {
            config,
            rng: StdRng::seed_from_u64(seed),
            state: SubscriptionState::None,
            active: false,
            started_ns: 0,
            answered_once: false,
            refusals_in_row: 0,
            cookie: None,
            awaiting: None,
            unanswered: 0,
            next_request_ns: None,
            backoff: RETRY_INITIAL,
            lease: None,
            next_ping_ns: None,
            ping: None,
            rtt: histogram::latency_histogram(),
            counts: SubscriberCounts::default(),
        }
    }

    /// Starts subscribing at `now_ns`: the first subscribe is due at once.
    pub fn start(&mut self, now_ns: u64) {
        self.active = true;
        self.started_ns = now_ns;
        self.state = SubscriptionState::Subscribing;
        self.next_request_ns = Some(now_ns);
    }

    /// Where the subscription stands.
    pub fn state(&self) -> SubscriptionState {
        self.state
    }

    /// Round-trip times measured so far, in ns.
    pub fn rtt(&self) -> &Histogram<u64> {
        &self.rtt
    }

    /// The counters so far.
    pub fn counts(&self) -> SubscriberCounts {
        self.counts
    }

    /// The configuration in use.
    pub fn config(&self) -> &SubscriberConfig {
        &self.config
    }

    /// The lease of the latest accept.
    pub fn lease(&self) -> Option<Duration> {
        self.lease
    }

    /// Handles a subscription packet that arrived at `now_ns` from `from`,
    /// as the ingest decoded it ([`crate::core::ingest::Outcome::Subscription`]).
    pub fn handle(&mut self, now_ns: u64, from: SocketAddr, packet: &Packet) {
        if !self.active || from != self.config.server {
            self.counts.ignored += 1;
            return;
        }
        let awaited = |nonce| self.awaiting == Some(nonce);
        match packet.body {
            Body::Challenge(c) if awaited(c.nonce) => {
                self.counts.challenges += 1;
                self.cookie = Some(c.cookie);
                self.answered();
                // Confirm at once with the new cookie.
                self.next_request_ns = Some(now_ns);
            }
            Body::Accept(a) if awaited(a.nonce) => {
                self.counts.accepts += 1;
                self.answered();
                self.refusals_in_row = 0;
                let lease = Duration::from_millis(u64::from(a.lease_ms));
                self.lease = Some(lease);
                if self.state != SubscriptionState::Subscribed {
                    // A first ping at once gives an early round-trip sample.
                    self.next_ping_ns = Some(now_ns);
                }
                self.state = SubscriptionState::Subscribed;
                let heartbeat = self.config.heartbeat.unwrap_or(lease / 3);
                self.next_request_ns =
                    Some(now_ns.saturating_add(ns(heartbeat.max(MIN_HEARTBEAT))));
            }
            Body::Refuse(r) if awaited(r.nonce) => {
                self.counts.refusals += 1;
                self.answered();
                self.refusals_in_row += 1;
                self.state = SubscriptionState::Refused(r.reason);
                self.next_ping_ns = None;
                self.ping = None;
                self.next_request_ns = Some(now_ns.saturating_add(ns(self.config.refused_retry)));
                if self
                    .config
                    .give_up_refusals
                    .is_some_and(|n| self.refusals_in_row >= n)
                {
                    self.fail(SubscribeFailure::Refused(r.reason));
                }
            }
            Body::Pong(p) if self.ping == Some((p.nonce, p.ping_sent_ns)) => {
                self.counts.pongs += 1;
                self.ping = None;
                let rtt = now_ns
                    .saturating_sub(p.ping_sent_ns)
                    .clamp(1, LATENCY_MAX_NS);
                self.rtt.saturating_record(rtt);
            }
            _ => self.counts.ignored += 1,
        }
    }

    fn answered(&mut self) {
        self.answered_once = true;
        self.awaiting = None;
        self.unanswered = 0;
        self.backoff = RETRY_INITIAL;
    }

    /// The next datagram to send at `now_ns`, if one is due. Call it until
    /// it returns `None`.
    pub fn poll_transmit(&mut self, now_ns: u64) -> Option<Transmit> {
        if self.give_up_at().is_some_and(|t| t <= now_ns) {
            self.fail(SubscribeFailure::Unanswered);
        }
        if !self.active {
            return None;
        }
        if self.next_request_ns.is_some_and(|t| t <= now_ns) {
            return Some(self.request(now_ns));
        }
        if self.state == SubscriptionState::Subscribed
            && self.next_ping_ns.is_some_and(|t| t <= now_ns)
        {
            let nonce = self.rng.random();
            self.ping = Some((nonce, now_ns));
            self.next_ping_ns = Some(now_ns.saturating_add(ns(self.config.ping_interval)));
            self.counts.pings_sent += 1;
            let ping = Ping {
                nonce,
                sent_ns: now_ns,
            };
            return Some(self.transmit(Body::Ping(ping)));
        }
        None
    }

    /// A subscribe or a confirm, with its retry timer set.
    fn request(&mut self, now_ns: u64) -> Transmit {
        if self.unanswered >= MAX_UNANSWERED && self.cookie.is_some() {
            // The broadcaster no longer answers this cookie: start over.
            self.counts.restarts += 1;
            self.cookie = None;
            self.unanswered = 0;
            self.backoff = RETRY_INITIAL;
            self.state = SubscriptionState::Subscribing;
            self.next_ping_ns = None;
            self.ping = None;
        }
        let nonce = self.rng.random();
        self.awaiting = Some(nonce);
        self.unanswered += 1;
        let retry = match (self.state, self.lease) {
            (SubscriptionState::Subscribed, Some(lease)) => RETRY_INITIAL.min(lease / 6),
            _ => {
                let b = self.backoff;
                self.backoff = (b * 2).min(RETRY_MAX);
                b
            }
        };
        self.next_request_ns = Some(now_ns.saturating_add(ns(retry.max(MIN_HEARTBEAT))));
        let body = match self.cookie {
            Some(cookie) => {
                self.counts.confirms_sent += 1;
                Body::Confirm(Confirm { nonce, cookie })
            }
            None => {
                self.counts.subscribes_sent += 1;
                Body::Subscribe(Subscribe { nonce })
            }
        };
        self.transmit(body)
    }

    /// When, while nothing has answered, it gives up (ns), if it will.
    fn give_up_at(&self) -> Option<u64> {
        let limit = self.config.give_up_unanswered?;
        (self.active && !self.answered_once).then(|| self.started_ns.saturating_add(ns(limit)))
    }

    /// Stops the client for good: nothing more is sent.
    fn fail(&mut self, why: SubscribeFailure) {
        self.active = false;
        self.state = SubscriptionState::Failed(why);
        self.awaiting = None;
        self.next_request_ns = None;
        self.next_ping_ns = None;
        self.ping = None;
    }

    /// When [`Subscriber::poll_transmit`] next has something to send, or
    /// gives up (ns), if ever.
    pub fn poll_timeout(&self) -> Option<u64> {
        if !self.active {
            return None;
        }
        let ping = self
            .next_ping_ns
            .filter(|_| self.state == SubscriptionState::Subscribed);
        [self.next_request_ns, ping, self.give_up_at()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Stops the client. If it holds a cookie, returns the unsubscribe to
    /// send, which ends the subscription at once. Its state stays as it was,
    /// for the final figures.
    pub fn unsubscribe(&mut self) -> Option<Transmit> {
        if !std::mem::replace(&mut self.active, false) {
            return None;
        }
        let cookie = self.cookie?;
        self.counts.unsubscribes_sent += 1;
        let nonce = self.rng.random();
        Some(self.transmit(Body::Unsubscribe(Unsubscribe { nonce, cookie })))
    }

    fn transmit(&self, body: Body) -> Transmit {
        let packet = Packet {
            session: self.config.client_id,
            seq: 0,
            body,
        };
        Transmit::new(self.config.server, &packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::subscription::{SubscriptionConfig, Subscriptions};
    use crate::wire::{self, Kind, Pong};

    const T0: u64 = 1_700_000_000_000_000_000;
    const MS: u64 = 1_000_000;
    const ONE_WAY: u64 = 100_000; // 100 µs each way

    fn server_addr() -> SocketAddr {
        "10.0.0.1:47474".parse().unwrap()
    }

    fn client_addr() -> SocketAddr {
        "10.0.0.2:40000".parse().unwrap()
    }

    /// A reply as the receiver's ingest hands it on: decoded once.
    fn decoded(t: &Transmit) -> Packet {
        wire::decode(t.bytes(), &mut Vec::new()).expect("replies decode")
    }

    fn table(
        secret: u8,
        max_subscribers: usize,
        lease: Duration,
        period: Duration,
    ) -> Subscriptions {
        let config = SubscriptionConfig {
            max_subscribers,
            lease,
            cookie_period: period,
            ..SubscriptionConfig::new(0x5e55)
        };
        Subscriptions::new([secret; 32], config).unwrap()
    }

    /// A subscriber and a broadcaster's table, with a simulated clock and a
    /// lossless link of [`ONE_WAY`] each way (or a dead one).
    struct Pair {
        sub: Subscriber,
        server: Subscriptions,
        now: u64,
        link_up: bool,
        sent: Vec<(u64, Kind)>,
    }

    impl Pair {
        fn new(server: Subscriptions) -> Pair {
            let mut sub = Subscriber::new(SubscriberConfig::new(server_addr(), 77), 1);
            sub.start(T0);
            Pair {
                sub,
                server,
                now: T0,
                link_up: true,
                sent: Vec::new(),
            }
        }

        /// Runs the exchange until `end` (ns after T0).
        fn run_for(&mut self, span_ms: u64) {
            let end = self.now + span_ms * MS;
            for _ in 0..100_000 {
                self.server.poll_expired(self.now);
                while let Some(t) = self.sub.poll_transmit(self.now) {
                    assert_eq!(t.destination, server_addr());
                    assert_eq!(Some(t.bytes().len()), t.kind().fixed_len());
                    self.sent.push((self.now, t.kind()));
                    if !self.link_up {
                        continue;
                    }
                    let at_server = self.now + ONE_WAY;
                    if let Some(r) = self.server.handle(at_server, client_addr(), t.bytes()) {
                        assert!(r.bytes().len() <= t.bytes().len());
                        self.now = at_server + ONE_WAY;
                        self.sub.handle(self.now, server_addr(), &decoded(&r));
                    }
                }
                let next = self.sub.poll_timeout().unwrap_or(u64::MAX);
                if next > end {
                    self.now = end;
                    return;
                }
                self.now = next.max(self.now);
            }
            panic!("the exchange did not settle");
        }

        fn sent_kinds(&self) -> Vec<Kind> {
            self.sent.iter().map(|&(_, k)| k).collect()
        }
    }

    #[test]
    fn handshake_subscribes_then_pings_give_round_trip_samples() {
        let mut p = Pair::new(table(1, 8, Duration::from_secs(5), Duration::from_secs(10)));
        assert_eq!(p.sub.state(), SubscriptionState::Subscribing);
        p.run_for(1);
        assert_eq!(p.sub.state(), SubscriptionState::Subscribed);
        assert!(p.server.contains(client_addr()));
        assert_eq!(
            p.sent_kinds(),
            [Kind::Subscribe, Kind::Confirm, Kind::Ping],
            "a ping right after the accept"
        );
        assert_eq!(p.sub.lease(), Some(Duration::from_secs(5)));
        assert_eq!(p.sub.rtt().len(), 1);
        assert!(p.sub.rtt().equivalent(p.sub.rtt().max(), 2 * ONE_WAY));
        // 9.5 s on: a ping a second, a heartbeat every lease/3.
        p.run_for(9_500);
        let c = p.sub.counts();
        assert_eq!(c.pings_sent, 10);
        assert_eq!(c.pongs, 10);
        assert_eq!(c.confirms_sent, 1 + 5, "heartbeats at 1.67 s intervals");
        assert_eq!((c.restarts, c.ignored), (0, 0));
        assert_eq!(p.server.counts().expired, 0);
    }

    #[test]
    fn an_unanswered_subscribe_backs_off_to_two_seconds() {
        let mut p = Pair::new(table(1, 8, Duration::from_secs(5), Duration::from_secs(10)));
        p.sub.config.give_up_unanswered = None;
        p.link_up = false;
        p.run_for(8_000);
        let at: Vec<u64> = p.sent.iter().map(|&(t, _)| (t - T0) / MS).collect();
        assert_eq!(at, [0, 250, 750, 1_750, 3_750, 5_750, 7_750]);
        assert!(p.sent_kinds().iter().all(|&k| k == Kind::Subscribe));
        assert_eq!(p.sub.state(), SubscriptionState::Subscribing);
    }

    #[test]
    fn a_subscriber_nothing_answers_gives_up_after_five_seconds() {
        let mut p = Pair::new(table(1, 8, Duration::from_secs(5), Duration::from_secs(10)));
        p.link_up = false;
        p.run_for(4_999);
        assert_eq!(p.sub.state(), SubscriptionState::Subscribing);
        assert_eq!(
            p.sub.poll_timeout(),
            Some(T0 + 5_000 * MS),
            "wakes to give up"
        );
        p.run_for(20_000);
        let at: Vec<u64> = p.sent.iter().map(|&(t, _)| (t - T0) / MS).collect();
        assert_eq!(at, [0, 250, 750, 1_750, 3_750], "nothing after 5 s");
        assert_eq!(
            p.sub.state(),
            SubscriptionState::Failed(SubscribeFailure::Unanswered)
        );
        assert_eq!(p.sub.state().to_string(), "failed: no answer");
        assert_eq!(p.sub.poll_timeout(), None);
        assert_eq!(p.sub.poll_transmit(p.now + 60_000 * MS), None);
        assert_eq!(p.sub.unsubscribe(), None, "nothing to end");
    }

    #[test]
    fn a_second_refusal_in_a_row_gives_up() {
        let mut p = Pair::new(table(1, 0, Duration::from_secs(5), Duration::from_secs(10)));
        p.run_for(4_900);
        assert_eq!(p.sub.state(), SubscriptionState::Refused(REFUSE_FULL));
        p.run_for(20_000);
        assert_eq!(p.sub.counts().refusals, 2);
        assert_eq!(
            p.sub.state(),
            SubscriptionState::Failed(SubscribeFailure::Refused(REFUSE_FULL))
        );
        assert_eq!(p.sub.state().to_string(), "failed: refused: full");
        let last = p.sent.last().unwrap().0;
        assert!(last < T0 + 5_100 * MS, "nothing sent after giving up");
        assert_eq!(p.sub.poll_timeout(), None);
    }

    #[test]
    fn a_broadcaster_that_answered_once_is_retried_for_ever() {
        // Silence after an accept is a broadcaster restarting: follow it.
        let mut p = Pair::new(table(1, 8, Duration::from_secs(5), Duration::from_secs(10)));
        p.run_for(1);
        assert_eq!(p.sub.state(), SubscriptionState::Subscribed);
        p.link_up = false;
        p.run_for(30_000);
        assert_eq!(p.sub.state(), SubscriptionState::Subscribing);
        assert!(p.sub.poll_timeout().is_some());
        p.link_up = true;
        p.run_for(3_000);
        assert_eq!(p.sub.state(), SubscriptionState::Subscribed);
    }

    #[test]
    fn heartbeats_keep_a_short_lease_alive_across_cookie_expiry() {
        // Cookie buckets of 1 s: every other heartbeat finds its cookie
        // expired and is answered with a challenge, then confirmed at once.
        let lease = Duration::from_millis(300);
        let mut p = Pair::new(table(1, 8, lease, Duration::from_secs(1)));
        p.run_for(10_000);
        assert_eq!(p.sub.state(), SubscriptionState::Subscribed);
        let s = p.server.counts();
        assert_eq!((s.accepted, s.expired), (1, 0), "never lapsed");
        assert!(s.stale_cookie >= 4, "{s:?}");
        assert!(s.renewed >= 90, "a heartbeat every 100 ms: {s:?}");
    }

    #[test]
    fn a_restarted_broadcaster_gets_its_subscriber_back_within_a_lease() {
        let lease = Duration::from_secs(5);
        let mut p = Pair::new(table(1, 8, lease, Duration::from_secs(10)));
        p.run_for(2_000);
        assert_eq!(p.sub.state(), SubscriptionState::Subscribed);
        // The broadcaster restarts: a new secret, an empty table.
        p.server = table(2, 8, lease, Duration::from_secs(10));
        let restart = p.now;
        let mut back = None;
        for _ in 0..600 {
            p.run_for(10);
            if p.server.contains(client_addr()) {
                back = Some(p.now - restart);
                break;
            }
        }
        let back = back.expect("subscribed again");
        assert!(back < ns(lease), "back after {} ms", back / MS);
        // lease/3 until the heartbeat, then 3 × 250 ms of unanswered confirms.
        assert!(
            back <= ns(lease / 3) + 750 * MS + 10 * MS,
            "{} ms",
            back / MS
        );
        assert_eq!(p.sub.counts().restarts, 1);
        assert_eq!(
            p.server.counts().bad_cookie,
            3,
            "the old cookie, three times"
        );
        assert_eq!(p.sub.state(), SubscriptionState::Subscribed);
    }

    #[test]
    fn a_refusal_is_reported_and_retried_slowly_until_there_is_room() {
        let mut p = Pair::new(table(1, 0, Duration::from_secs(5), Duration::from_secs(10)));
        p.run_for(1);
        assert_eq!(p.sub.state(), SubscriptionState::Refused(REFUSE_FULL));
        assert_eq!(p.sub.state().to_string(), "refused: full");
        let before = p.sent.len();
        p.run_for(4_900);
        assert_eq!(p.sent.len(), before, "nothing before the 5 s retry");
        assert_eq!(p.sub.counts().pings_sent, 0, "no pings while refused");
        // Room at the broadcaster (same secret, so the cookie still holds).
        p.server = table(1, 1, Duration::from_secs(5), Duration::from_secs(10));
        p.run_for(200);
        assert_eq!(p.sub.state(), SubscriptionState::Subscribed);
        assert_eq!(p.sub.counts().refusals, 1);
    }

    #[test]
    fn replies_from_elsewhere_or_with_other_nonces_are_ignored() {
        let mut server = table(1, 8, Duration::from_secs(5), Duration::from_secs(10));
        let mut sub = Subscriber::new(SubscriberConfig::new(server_addr(), 77), 1);
        sub.start(T0);
        let subscribe = sub.poll_transmit(T0).unwrap();
        let challenge = server.handle(T0, client_addr(), subscribe.bytes()).unwrap();
        // From another address: ignored.
        let elsewhere: SocketAddr = "10.0.0.66:47474".parse().unwrap();
        sub.handle(T0, elsewhere, &decoded(&challenge));
        assert_eq!(sub.poll_transmit(T0), None);
        // A second subscribe's challenge answers only the second nonce.
        let again = sub.poll_transmit(T0 + 250 * MS).unwrap();
        sub.handle(T0 + 250 * MS, server_addr(), &decoded(&challenge));
        assert_eq!(sub.counts().challenges, 0, "stale nonce");
        let challenge = server.handle(T0, client_addr(), again.bytes()).unwrap();
        sub.handle(T0 + 251 * MS, server_addr(), &decoded(&challenge));
        assert_eq!(
            sub.poll_transmit(T0 + 251 * MS).map(|t| t.kind()),
            Some(Kind::Confirm)
        );
        // A stray pong and a kind a receiver does not take are ignored too.
        // (Garbage never gets here: the ingest rejects it as malformed.)
        let stray = |body| Packet {
            session: 0x5e55,
            seq: 0,
            body,
        };
        let pong = Pong {
            nonce: 1,
            ping_sent_ns: T0,
            bc_recv_ns: T0,
        };
        sub.handle(T0, server_addr(), &stray(Body::Pong(pong)));
        sub.handle(
            T0,
            server_addr(),
            &stray(Body::Subscribe(Subscribe { nonce: 2 })),
        );
        assert_eq!(sub.counts().ignored, 4);
        assert_eq!(sub.rtt().len(), 0);
    }

    #[test]
    fn unsubscribe_carries_the_cookie_and_stops_the_client() {
        let mut p = Pair::new(table(1, 8, Duration::from_secs(5), Duration::from_secs(10)));
        p.run_for(1);
        let bye = p.sub.unsubscribe().expect("an unsubscribe");
        assert_eq!(bye.kind(), Kind::Unsubscribe);
        assert_eq!(p.server.handle(p.now, client_addr(), bye.bytes()), None);
        assert!(p.server.is_empty(), "removed at once");
        assert_eq!(p.sub.poll_transmit(p.now + 10_000 * MS), None);
        assert_eq!(p.sub.poll_timeout(), None);
        assert_eq!(
            p.sub.state(),
            SubscriptionState::Subscribed,
            "kept for the figures"
        );
        assert_eq!(p.sub.unsubscribe(), None, "once");
        // Without a cookie there is nothing to unsubscribe.
        let mut idle = Subscriber::new(SubscriberConfig::new(server_addr(), 1), 2);
        assert_eq!(idle.unsubscribe(), None);
        idle.start(T0);
        assert_eq!(idle.unsubscribe(), None);
    }

    #[test]
    fn states_read_as_the_summary_writes_them() {
        let s = |x: SubscriptionState| x.to_string();
        assert_eq!(s(SubscriptionState::None), "none");
        assert_eq!(s(SubscriptionState::Subscribing), "subscribing");
        assert_eq!(s(SubscriptionState::Subscribed), "subscribed");
        assert_eq!(s(SubscriptionState::Refused(1)), "refused: full");
        assert_eq!(
            s(SubscriptionState::Refused(9)),
            "refused: unknown reason 9"
        );
        assert_eq!(
            s(SubscriptionState::Refused(0)),
            "refused: unknown reason 0"
        );
        assert_eq!(
            s(SubscriptionState::Failed(SubscribeFailure::Unanswered)),
            "failed: no answer"
        );
        assert_eq!(
            s(SubscriptionState::Failed(SubscribeFailure::Refused(1))),
            "failed: refused: full"
        );
        assert_eq!(
            s(SubscriptionState::Failed(SubscribeFailure::Refused(9))),
            "failed: refused: unknown reason 9"
        );
    }
}
