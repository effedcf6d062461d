//! The receiver thread: waits on its sockets (or spins to a predicted
//! arrival), drains them in batches into the ingest, sends what the
//! subscriber has due, and publishes the figures for readers.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Poll, Token};

use crate::core::feed::{Event, EventKind};
use crate::core::ingest::{Ingest, Outcome};
use crate::core::predict::{self, ArrivalPredictor, SpinJudge};
use crate::core::ratelimit::RateLimiter;
use crate::core::schedule::WakeMargin;
use crate::core::source::SourceFilter;
use crate::core::subscriber::{SubscribeFailure, Subscriber, SubscriptionState};
use crate::core::subscription::{seal_control, Transmit, MAX_SEALED_CONTROL_LEN};
use crate::runtime::clock;
use crate::runtime::mmsg::{Meta, RecvBatch, BATCH};
use crate::runtime::net;
use crate::wire::auth::Key;

use super::{Activity, ReceiveMode, Shared, Snapshot, State, PUBLISH_INTERVAL};

pub(super) const WAKER: Token = Token(usize::MAX);
/// Least time [`ReceiveMode::Predict`] busy-polls before a predicted arrival.
const PREDICT_BASE_MARGIN: Duration = Duration::from_micros(50);
/// How long past a predicted arrival [`ReceiveMode::Predict`] keeps
/// busy-polling for it before it goes back to sleeping in `poll`.
const PREDICT_LATE_WINDOW: Duration = Duration::from_micros(500);
/// After a datagram, [`ReceiveMode::Predict`] keeps busy-polling until the
/// sockets were quiet this long: the rest of the tick's parts follow closely.
const PREDICT_QUIET_GAP: Duration = Duration::from_micros(100);
/// The most [`ReceiveMode::Predict`] spins around one tick.
const PREDICT_MAX_SPIN: Duration = Duration::from_millis(3);
/// How soon the thread tries again when readers held both publication
/// slots (it never waits for them).
const PUBLISH_RETRY: Duration = Duration::from_micros(200);

/// Sends what the subscriber has due from `socket`; returns how many
/// datagrams it sent, and whether the subscriber changed (sent something,
/// or moved to another state, as when it gives up). A failed send is left
/// to the subscriber's retries (it cannot tell a lost datagram from a
/// refused send, and needs not).
fn send_due(state: &mut State, socket: &UdpSocket, now_ns: u64, key: Option<&Key>) -> (u64, bool) {
    let Some(sub) = state.subscriber.as_mut() else {
        return (0, false);
    };
    // Bounded: a subscriber has at most a request and a ping due at once.
    let before = sub.state();
    let mut sent = 0;
    for _ in 0..8 {
        let Some(t) = sub.poll_transmit(now_ns) else {
            break;
        };
        send_control(socket, &t, key);
        sent += 1;
    }
    log_state_change(sub, before, &mut state.ingest);
    (sent, sent > 0 || sub.state() != before)
}

/// Logs (at info) where the subscription stands when it has moved on from
/// `before`, and tells a game client when it was accepted or failed.
fn log_state_change(sub: &Subscriber, before: SubscriptionState, ingest: &mut Ingest) {
    let now = sub.state();
    if now == before {
        return;
    }
    log::info!("subscription to {}: {}", sub.config().server, now);
    let (kind, id) = match now {
        SubscriptionState::Subscribed => (EventKind::Subscribed, 0),
        SubscriptionState::Refused(r) => (EventKind::SubscriptionFailed, u32::from(r)),
        SubscriptionState::Failed(SubscribeFailure::Refused(r)) => {
            (EventKind::SubscriptionFailed, u32::from(r))
        }
        SubscriptionState::Failed(SubscribeFailure::Unanswered) => {
            (EventKind::SubscriptionFailed, 0)
        }
        SubscriptionState::None | SubscriptionState::Subscribing => return,
    };
    ingest.push_event(Event {
        kind,
        id,
        tick: 0,
        session: 0,
    });
}

/// Sends a subscription datagram, sealed when there is a key.
fn send_control(socket: &UdpSocket, t: &Transmit, key: Option<&Key>) {
    let mut sealed = [0u8; MAX_SEALED_CONTROL_LEN];
    let bytes = match key {
        Some(key) => seal_control(key, t, &mut sealed),
        None => t.bytes(),
    };
    let _ = socket.send_to(bytes, t.destination);
}

/// How the receiver thread runs.
pub(super) struct RunOptions {
    pub(super) mode: ReceiveMode,
    pub(super) key: Option<Key>,
    /// The one source accepted, if any.
    pub(super) from: Option<SourceFilter>,
    /// The reject log's limiter, when rejects are logged.
    pub(super) log: Option<RateLimiter>,
}

/// The receiver thread: serves until stopped or failed, then publishes its
/// final figures, whatever ended it.
pub(super) fn run(
    poll: Poll,
    sockets: Vec<UdpSocket>,
    mut state: State,
    shared: &Shared,
    opts: RunOptions,
) -> io::Result<()> {
    for s in &sockets {
        // Without stamps, each batch is stamped with the time it was taken.
        net::enable_arrival_stamps(s);
    }
    let rx = Drain {
        from: opts.from,
        log: opts.log,
        drops: vec![0u64; sockets.len()],
        last_source: None,
        predictor: ArrivalPredictor::new(),
        activity: Activity::default(),
        publisher: Publisher::new(),
    };
    let mut rx = Receive {
        batch: RecvBatch::new(),
        rx,
    };
    let served = serve(
        poll, &sockets, &mut state, &mut rx, shared, opts.mode, opts.key,
    );
    rx.rx.publish_final(&state, shared);
    served
}

fn serve(
    mut poll: Poll,
    sockets: &[UdpSocket],
    state: &mut State,
    rx: &mut Receive,
    shared: &Shared,
    mode: ReceiveMode,
    key: Option<Key>,
) -> io::Result<()> {
    let key = key.as_ref();
    // Predict sleeps to a time, not to a datagram: it wants that time.
    if mode == ReceiveMode::Predict {
        clock::precise_wakeups();
    }
    let mut events = Events::with_capacity(64);
    // The subscriber's clock: monotonic, anchored to the wall clock at
    // start, so its times read as the protocol's ns but never step.
    let clock = clock::Anchor::paired();
    // The subscription, if any, lives on the unicast socket (the first).
    let sub_socket = &sockets[0];
    if let Some(sub) = state.subscriber.as_mut() {
        sub.start(clock.now_ns());
    }
    rx.rx.sent(send_due(state, sub_socket, clock.now_ns(), key));
    let mut wake = WakeMargin::new(PREDICT_BASE_MARGIN);
    let mut judge = SpinJudge::new();
    loop {
        let due = state.subscriber.as_ref().and_then(Subscriber::poll_timeout);
        let mut timeout = due.map(|t| Duration::from_nanos(t.saturating_sub(clock.now_ns())));
        // Wake to publish what came since the last publication, when due.
        if let Some(p) = rx.rx.publisher.due_in() {
            timeout = Some(timeout.map_or(p, |t| t.min(p)));
        }
        // In predict mode: when to stop sleeping, and until when to spin.
        let mut spin_until = None;
        match mode {
            ReceiveMode::Wait => {}
            ReceiveMode::BusyPoll => timeout = Some(Duration::ZERO),
            ReceiveMode::Predict => {
                let now = clock::now_ns();
                let next = rx
                    .rx
                    .predictor
                    .next_arrival(now)
                    .filter(|_| judge.spinning(now));
                if let Some(at) = next {
                    let margin = wake.margin().as_nanos() as u64;
                    let sleep = Duration::from_nanos(at.saturating_sub(margin).saturating_sub(now));
                    timeout = Some(timeout.map_or(sleep, |t| t.min(sleep)));
                    spin_until = Some(at + PREDICT_LATE_WINDOW.as_nanos() as u64);
                }
            }
        }
        let slept_from = Instant::now();
        // epoll_wait's timeout is in milliseconds, too coarse to wake just
        // before a predicted arrival; ppoll on the epoll descriptor itself
        // (readable when any registered socket or the waker is) has
        // nanoseconds.
        let precise = timeout.filter(|t| spin_until.is_some() && !t.is_zero());
        let polled = match precise {
            Some(t) => {
                rx.rx.activity.waits += 2;
                net::wait_readable(poll.registry(), t)
                    .and_then(|_| poll.poll(&mut events, Some(Duration::ZERO)))
            }
            None => {
                rx.rx.activity.waits += 1;
                poll.poll(&mut events, timeout)
            }
        };
        if let Err(e) = polled {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        if shared.stop.load(Ordering::Acquire) {
            if let Some(t) = state.subscriber.as_mut().and_then(Subscriber::unsubscribe) {
                send_control(sub_socket, &t, key);
                rx.rx.sent((1, true));
            }
            return Ok(());
        }
        let mut got = 0;
        let tick_before = rx.rx.predictor.last_tick();
        for event in &events {
            if let Some(socket) = sockets.get(event.token().0) {
                got += rx.drain(event.token().0, socket, state, shared, &clock)?;
            }
        }
        if mode == ReceiveMode::BusyPoll {
            rx.drain_all(sockets, state, shared, &clock)?;
        }
        if let Some(until) = spin_until {
            // Learn how late this host wakes, from the timer and from a
            // datagram that came after the time asked for.
            if let Some(asked) = timeout {
                let slept = slept_from.elapsed();
                if predict::teaches_margin(asked, slept, got > 0) {
                    wake.record(asked, slept);
                }
            }
            // Woken by the timer before a predicted arrival, busy-poll
            // until it is due (and a while after); woken by a datagram,
            // the tick's burst of parts has begun. Either way go on
            // through the burst, until the sockets have been quiet a moment.
            let quiet = PREDICT_QUIET_GAP.as_nanos() as u64;
            let cap = clock::now_ns() + PREDICT_MAX_SPIN.as_nanos() as u64;
            let mut until = if got == 0 {
                until
            } else {
                clock::now_ns() + quiet
            };
            let tick_at_wake = rx.rx.predictor.last_tick();
            while clock::now_ns() < until.min(cap) && !shared.stop.load(Ordering::Relaxed) {
                if rx.drain_all(sockets, state, shared, &clock)? > 0 {
                    until = clock::now_ns() + quiet;
                }
                std::hint::spin_loop();
            }
            // Whether spinning pays: a tick whose first datagram the spin
            // caught is a hit, one whose first datagram woke the thread a miss.
            let woken_by_tick = tick_at_wake != tick_before;
            let caught = rx.rx.predictor.last_tick() != tick_at_wake;
            let judged = (woken_by_tick || caught)
                .then(|| judge.record(!woken_by_tick, clock::now_ns()))
                .flatten();
            if let Some(wait) = judged {
                log::debug!(
                    "predict: {} of the last {} ticks arrived outside the spin; waiting as wait does for {} s",
                    predict::SPIN_MISSES,
                    predict::SPIN_WINDOW,
                    wait / 1_000_000_000
                );
            }
        }
        rx.rx.sent(send_due(state, sub_socket, clock.now_ns(), key));
        rx.rx.publish_if_due(state, shared);
    }
}

/// When the receiver thread publishes its figures: see [`PUBLISH_INTERVAL`].
struct Publisher {
    /// The last attempt to publish.
    last: Instant,
    /// Something changed since the last publication.
    dirty: bool,
    /// The last attempt found both slots held by readers.
    deferred: bool,
}

impl Publisher {
    fn new() -> Publisher {
        Publisher {
            last: Instant::now(),
            dirty: true,
            deferred: false,
        }
    }

    /// How long the next publication should wait after the last attempt.
    fn interval(&self) -> Duration {
        if self.deferred {
            PUBLISH_RETRY
        } else {
            PUBLISH_INTERVAL
        }
    }

    /// How soon a publication is due; `None` when nothing changed.
    fn due_in(&self) -> Option<Duration> {
        self.dirty
            .then(|| self.interval().saturating_sub(self.last.elapsed()))
    }
}

/// The receive side of the thread: what is learned per datagram, and the
/// publication of the figures.
struct Drain {
    /// The one source accepted, if any.
    from: Option<SourceFilter>,
    /// Limits the reject log; `None` logs nothing.
    log: Option<RateLimiter>,
    /// Each socket's latest drop counter.
    drops: Vec<u64>,
    last_source: Option<IpAddr>,
    predictor: ArrivalPredictor,
    activity: Activity,
    publisher: Publisher,
}

/// The batch buffers beside the rest of [`Drain`], so a datagram can be
/// read from one while the other handles it.
struct Receive {
    batch: RecvBatch,
    rx: Drain,
}

impl Receive {
    /// Drains every socket once; returns how many datagrams were handled.
    fn drain_all(
        &mut self,
        sockets: &[UdpSocket],
        state: &mut State,
        shared: &Shared,
        clock: &clock::Anchor,
    ) -> io::Result<usize> {
        let mut handled = 0;
        for (i, socket) in sockets.iter().enumerate() {
            handled += self.drain(i, socket, state, shared, clock)?;
        }
        Ok(handled)
    }

    /// Receives and handles datagrams from socket `i`, a batch per call,
    /// until the kernel has no more; returns how many were handled.
    fn drain(
        &mut self,
        i: usize,
        socket: &UdpSocket,
        state: &mut State,
        shared: &Shared,
        clock: &clock::Anchor,
    ) -> io::Result<usize> {
        let mut handled = 0;
        // Only the subscription's socket sends, so only it can have a
        // pending error (an ICMP refusal) that cuts a batch short with
        // datagrams still queued behind it: drain it until the kernel says
        // it is empty. Elsewhere a short batch means just that.
        let sends = i == 0 && state.subscriber.is_some();
        loop {
            self.rx.activity.receives += 1;
            let n = match self.batch.recv(socket) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(handled),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP errors reported on the socket (e.g. refused) are
                // not datagrams; keep serving.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            };
            // One clock reading per batch: the arrival time of any
            // datagram the kernel did not stamp.
            let taken = clock::now_ns();
            for k in 0..n {
                for (datagram, meta) in self.batch.datagrams(k) {
                    self.rx.take(i, datagram, &meta, taken, state, clock);
                    handled += 1;
                }
            }
            self.rx.publisher.dirty = true;
            // A long drain still publishes on time.
            self.rx.publish_if_due(state, shared);
            if n < BATCH && !sends {
                return Ok(handled);
            }
        }
    }
}

impl Drain {
    /// Counts subscription datagrams sent (`n`), and marks the figures for
    /// publication when the subscriber `changed`: its state is in them.
    fn sent(&mut self, (n, changed): (u64, bool)) {
        self.activity.sends += n;
        if changed {
            self.publisher.dirty = true;
        }
    }

    /// Publishes a copy of the figures if one is due (see [`Publisher`]).
    fn publish_if_due(&mut self, state: &State, shared: &Shared) {
        if self.publisher.dirty && self.publisher.last.elapsed() >= self.publisher.interval() {
            self.publish(state, shared, false);
        }
    }

    /// Publishes a copy of the figures now; with `wait`, even if that means
    /// waiting for a reader (only as the thread ends).
    fn publish(&mut self, state: &State, shared: &Shared, wait: bool) {
        self.publisher.last = Instant::now();
        let mut activity = self.activity;
        activity.publications += 1;
        activity.publications_deferred = shared.published.deferred();
        let snapshot = Arc::new(Snapshot::of(state, activity));
        if wait {
            shared.published.publish(snapshot);
        } else if shared.published.try_publish(snapshot).is_err() {
            self.publisher.deferred = true;
            return;
        }
        self.activity.publications += 1;
        self.publisher.dirty = false;
        self.publisher.deferred = false;
    }

    /// The last publication, whatever ended the thread: the figures are
    /// exact once it has ended.
    fn publish_final(&mut self, state: &State, shared: &Shared) {
        self.publish(state, shared, true);
    }

    /// Logs one reject warning, if the limiter lets it through.
    fn log_reject(
        &mut self,
        from: Option<SocketAddr>,
        now_ns: u64,
        reason: &dyn std::fmt::Display,
    ) {
        let Some(log) = self.log.as_mut() else {
            return;
        };
        if log.allow(now_ns) {
            let from = from.map_or_else(|| "an unknown address".to_string(), |a| a.to_string());
            log::warn!(
                "rejected datagram from {from}: {reason}{}",
                log.suppressed_note()
            );
        }
    }

    /// Takes one datagram of a batch from socket `i`: its arrival time is
    /// the kernel's stamp, or `taken` (when the batch was taken) without one.
    fn take(
        &mut self,
        i: usize,
        datagram: &[u8],
        meta: &Meta,
        taken: u64,
        state: &mut State,
        clock: &clock::Anchor,
    ) {
        self.activity.datagrams += 1;
        let arrival = match meta.arrival_ns {
            Some(at) => {
                self.activity.kernel_stamped += 1;
                at
            }
            None => taken,
        };
        let foreign = self
            .from
            .filter(|f| !meta.from.is_some_and(|a| f.matches(a)));
        if let Some(filter) = foreign {
            state.ingest.count_foreign(datagram.len());
            self.log_reject(
                meta.from,
                arrival,
                &format_args!("not from the accepted source {filter}"),
            );
        } else {
            self.handle(i, datagram, meta.from, (arrival, taken), state, clock);
        }
        // The counter is the socket's running total: the latest is exact.
        if let Some(d) = meta.drops {
            self.drops[i] = u64::from(d);
            state.ingest.set_socket_drops(self.drops.iter().sum());
        }
    }

    /// Hands one datagram from socket `i` to the ingest, and what it
    /// decoded to the subscriber, the reject log or the predictor.
    fn handle(
        &mut self,
        i: usize,
        datagram: &[u8],
        source: Option<SocketAddr>,
        (arrival, taken): (u64, u64),
        state: &mut State,
        clock: &clock::Anchor,
    ) {
        match state.ingest.handle_taken(datagram, arrival, taken) {
            Outcome::Subscription(packet) => {
                if let (0, Some(sub), Some(from)) = (i, state.subscriber.as_mut(), source) {
                    let before = sub.state();
                    sub.handle(clock.now_ns(), from, &packet);
                    log_state_change(sub, before, &mut state.ingest);
                }
            }
            Outcome::Malformed(e) => self.log_reject(source, arrival, &e),
            Outcome::AuthFailed(e) => {
                self.log_reject(source, arrival, &format_args!("authentication failed: {e}"))
            }
            Outcome::Replayed(e) => {
                self.log_reject(source, arrival, &format_args!("replayed: {e}"))
            }
            Outcome::StaleSealed { age_ns } => self.log_reject(
                source,
                arrival,
                &format_args!(
                    "sent {:.3} s {} its arrival, outside the freshness window: \
                     a replay, or the sender's clock is that far off this one's",
                    age_ns.unsigned_abs() as f64 / 1e9,
                    if age_ns >= 0 { "before" } else { "after" }
                ),
            ),
            // Held on probation: maybe a forger's; learn nothing from it.
            Outcome::Unproven => {}
            outcome => {
                let ip = source.map(|a| a.ip());
                if ip.is_some() && ip != self.last_source {
                    self.last_source = ip;
                    state.sender_local = ip.map(net::is_local_ip);
                }
                if matches!(outcome, Outcome::Applied { .. } | Outcome::Stale) {
                    if let Some(h) = state.ingest.last_snapshot() {
                        self.predictor.on_part(h.tick, h.scheduled_ns, arrival);
                    }
                }
            }
        }
    }
}
