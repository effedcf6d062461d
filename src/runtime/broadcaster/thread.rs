//! The broadcast thread: it waits for each deadline of the schedule (the
//! [`WakeMargin`] spun, the rest slept or spent serving subscriptions),
//! reads the clocks, hands the tick to the [`Sender`] and sends what it
//! gets back in batches of up to [`BATCH_DATAGRAMS`], each to every target
//! in as few system calls as the [`BatchSender`] can, counting what the OS
//! did with them; it publishes the figures after each tick.

use std::io;
use std::net::UdpSocket;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::thread;
use std::time::Duration;

use super::publisher::{Feed, PublishClock};
use super::{lock, BroadcastConfig, BroadcastFigures, Halt};
use crate::core::histogram::LATENCY_MAX_NS;
use crate::core::schedule::{Action, Schedule, WakeMargin};
use crate::core::sender::{PushError, Sender, SenderCounts};
use crate::core::sim::SimWorld;
use crate::core::subscription::{
    open_control, seal_control, Subscriptions, MAX_CONTROL_LEN, MAX_SEALED_CONTROL_LEN,
};
use crate::runtime::batch::{BatchSender, SendCounts, Target};
use crate::runtime::clock::{self, Anchor};
use crate::runtime::net;
use crate::wire;
use crate::wire::auth::Key;

/// Longest the thread sleeps without looking at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(5);
/// Lateness samples kept while a reader holds the figures' lock; when full,
/// the thread waits for the lock rather than allocating.
const PENDING_SAMPLES: usize = 1024;
/// Most datagrams read from the socket between two looks at the clock.
pub const SERVE_BATCH: usize = 64;
/// Most datagrams encoded (and stamped with one clock reading) before they
/// are handed to the kernel together, for every target: two full GSO
/// messages of the smallest datagrams. `benches/send.rs` (`batch_size/*`)
/// measured a 282-datagram tick to one receiver sent in batches of 16,
/// 64, 128 and all at once: 128 cost 9-25 % more than all at once (two runs
/// on a busy machine), 64 a little more than 128, 16 about 50 % more; a
/// smaller batch lets the first datagrams of a large tick leave sooner
/// (and their stamps count the wait for the rest of the batch).
pub const BATCH_DATAGRAMS: usize = 2 * crate::runtime::batch::MAX_GSO_SEGMENTS;

/// The sending half of the thread: sends each batch to every target,
/// counts what the OS did with it (in its [`BatchSender`]), and serves
/// subscriptions.
struct Output {
    socket: UdpSocket,
    /// The fixed targets.
    targets: Vec<Target>,
    /// The fixed targets and the subscribers of the batch being sent (reused).
    batch_targets: Vec<Target>,
    batch: BatchSender,
    /// The subscription table; `None` when subscriptions are off.
    subs: Option<Subscriptions>,
    /// Receive buffers for requests.
    rx_buf: Vec<u8>,
    rx_cmsg: Vec<u8>,
    errors_seen: Vec<io::ErrorKind>,
    pending_error: Option<String>,
    /// The first send error of each kind, not yet logged: they are logged
    /// once the OS has accepted a datagram (before that, a total failure
    /// may be coming, which says it in one [`Halt`]).
    unlogged: Vec<String>,
    /// The first refused send, as text, while none has been accepted.
    first_error: Option<String>,
    /// When (since t0) the first send was refused, while none has been accepted.
    first_refusal: Option<Duration>,
    /// Why the broadcast stopped itself, once it has.
    halt: Option<Halt>,
    pending_late: Vec<u64>,
    shared: Arc<Mutex<BroadcastFigures>>,
    /// Opens requests and seals replies when set (the stream is sealed by the [`Sender`]).
    key: Option<Key>,
}

impl Output {
    /// Sends `datagrams` (ranges of `buf`) to every target: the fixed ones,
    /// then every subscriber.
    fn send(&mut self, buf: &[u8], datagrams: &[Range<usize>]) {
        self.batch_targets.clear();
        self.batch_targets.extend_from_slice(&self.targets);
        if let Some(subs) = &self.subs {
            self.batch_targets
                .extend(subs.destinations().map(Target::new));
        }
        let (seen, pending) = (&mut self.errors_seen, &mut self.pending_error);
        let (first, unlogged) = (&mut self.first_error, &mut self.unlogged);
        let mut on_error = |target, e: &io::Error| {
            if !seen.contains(&e.kind()) {
                seen.push(e.kind());
                let text = format!("sending to {target}: {e}");
                first.get_or_insert_with(|| text.clone());
                unlogged.push(text.clone());
                *pending = Some(text);
            }
        };
        self.batch.send(
            &self.socket,
            buf,
            datagrams,
            &self.batch_targets,
            &mut on_error,
        );
        if self.batch.counts().datagrams_sent > 0 {
            for text in self.unlogged.drain(..) {
                log::warn!(
                    "{text}; counted in send errors, the stream goes on (this kind is logged once)"
                );
            }
        }
    }

    /// Whether every send has been refused for `window` (at `now`, since
    /// t0) with none accepted; if so, records the [`Halt`].
    fn every_send_failed(&mut self, now: Duration, window: Option<Duration>) -> bool {
        let SendCounts {
            datagrams_sent,
            send_errors: refused,
            ..
        } = self.batch.counts();
        let Some(window) = window.filter(|_| datagrams_sent == 0 && refused > 0) else {
            return false;
        };
        let since = *self.first_refusal.get_or_insert(now);
        if now.saturating_sub(since) < window {
            return false;
        }
        self.halt = Some(Halt::EverySendFailed {
            refused,
            window: now - since,
            first_error: self.first_error.clone().unwrap_or_default(),
        });
        true
    }

    /// Reads up to [`SERVE_BATCH`] datagrams waiting on the socket, without
    /// blocking, and sends the subscription table's replies; then expires
    /// what has run out by `now_ns`. Returns true if the batch filled (more
    /// may be waiting).
    fn serve(&mut self, now_ns: u64) -> bool {
        let Some(subs) = self.subs.as_mut() else {
            return false;
        };
        let mut filled = true;
        for _ in 0..SERVE_BATCH {
            match net::recv_from_counting_drops(&self.socket, &mut self.rx_buf, &mut self.rx_cmsg) {
                Ok(r) => {
                    let Some(from) = r.from else { continue };
                    let mut opened = [0u8; MAX_CONTROL_LEN];
                    let request = match &self.key {
                        // With a key, what does not open is dropped unanswered.
                        Some(key) => match open_control(key, &self.rx_buf[..r.len], &mut opened) {
                            Some(d) => d,
                            None => {
                                subs.count_auth_failed();
                                continue;
                            }
                        },
                        None => &self.rx_buf[..r.len],
                    };
                    let before = subs.len();
                    let reply = subs.handle(now_ns, from, request);
                    match subs.len() {
                        n if n > before => log::info!("subscriber {from} added ({n} now)"),
                        n if n < before => log::info!("subscriber {from} left ({n} now)"),
                        _ => {}
                    }
                    if let Some(reply) = reply {
                        // A lost reply is the requester's to retry.
                        let mut sealed = [0u8; MAX_SEALED_CONTROL_LEN];
                        let bytes = match &self.key {
                            Some(key) => seal_control(key, &reply, &mut sealed),
                            None => reply.bytes(),
                        };
                        let _ = self.socket.send_to(bytes, reply.destination);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // An ICMP error for an earlier send, not a datagram.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                Err(_) => {
                    filled = false;
                    break;
                }
            }
        }
        let before = subs.len();
        subs.poll_expired(now_ns);
        if subs.len() < before {
            log::info!(
                "{} subscription(s) expired without a heartbeat ({} now)",
                before - subs.len(),
                subs.len()
            );
        }
        filled
    }

    /// Publishes the counters and pending samples. Without `force` it gives
    /// up if a reader holds the lock, unless the pending samples are full.
    /// Publishes what the output counted; returns the figures, still
    /// locked, for the caller to add its own, or `None` if a reader holds
    /// them and this can wait.
    fn publish(
        &mut self,
        sent: SenderCounts,
        force: bool,
    ) -> Option<MutexGuard<'_, BroadcastFigures>> {
        let mut figures = match self.shared.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock)
                if !force && self.pending_late.len() < PENDING_SAMPLES =>
            {
                return None
            }
            Err(TryLockError::WouldBlock) => lock(&self.shared),
        };
        let c = self.batch.counts();
        figures.ticks_sent = sent.ticks_sent;
        figures.ticks_skipped = sent.ticks_skipped;
        figures.packets_sent = sent.packets_sent;
        figures.datagrams_sent = c.datagrams_sent;
        figures.bytes_sent = c.bytes_sent;
        figures.send_errors = c.send_errors;
        figures.send_syscalls = c.syscalls;
        figures.gso_datagrams = c.gso_datagrams;
        publish_path(&mut figures, &self.batch);
        if let Some(e) = self.pending_error.take() {
            figures.last_error = Some(e);
        }
        if figures.halted.is_none() {
            figures.halted.clone_from(&self.halt);
        }
        if let Some(subs) = &self.subs {
            figures.subscribers = subs.len();
            figures.subscriptions = subs.counts();
        }
        for ns in self.pending_late.drain(..) {
            figures.lateness.saturating_record(ns);
        }
        Some(figures)
    }
}

/// Publishes how `batch` sends: its path now and why GSO is off, if it is.
fn publish_path(figures: &mut BroadcastFigures, batch: &BatchSender) {
    figures.send_path = batch.path();
    figures.gso_fallbacks = batch.gso_fallbacks();
    if figures.gso_error.as_deref() != batch.gso_error() {
        figures.gso_error = batch.gso_error().map(str::to_string);
    }
}

/// Everything the broadcast thread owns.
pub(super) struct Runner {
    schedule: Schedule,
    /// Ticks to run: the ticks due within the duration.
    limit: Option<u64>,
    rate_hz: f64,
    wake: WakeMargin,
    world: Source,
    /// What goes on the wire: numbers, parts, seals, reports, the goodbye.
    sender: Sender,
    /// The batch being sent: its datagrams back to back (cleared and
    /// reused for each batch) ...
    buf: Vec<u8>,
    /// ... and where each is in `buf`.
    batch: Vec<Range<usize>>,
    out: Output,
    stop: Arc<AtomicBool>,
    /// [`BroadcastConfig::give_up_after`].
    give_up_after: Option<Duration>,
    frames: FrameCounts,
    /// [`BroadcastConfig::duration`], which under the game's clock is a
    /// time limit rather than a tick count.
    duration: Option<Duration>,
}

/// Where each tick's entities come from.
pub(super) enum Source {
    /// The built-in simulated world.
    Sim(Box<SimWorld>),
    /// A game's published frames, and whose clock they run on.
    Published(Feed, PublishClock),
}

/// What the thread did with a game's frames, published with the figures.
#[derive(Default)]
struct FrameCounts {
    taken: u64,
    refused: u64,
    last_refusal: Option<String>,
}

/// Where the thread sends from and to.
pub(super) struct Endpoints {
    pub(super) socket: UdpSocket,
    /// The fixed targets (destinations, group, broadcast addresses).
    pub(super) targets: Vec<Target>,
    /// The subscription table; `None` when subscriptions are off.
    pub(super) subs: Option<Subscriptions>,
}

impl Runner {
    pub(super) fn new(
        config: &BroadcastConfig,
        endpoints: Endpoints,
        session: u64,
        first_seq: u32,
        shared: &Arc<Mutex<BroadcastFigures>>,
        stop: &Arc<AtomicBool>,
        feed: Option<(Feed, PublishClock)>,
    ) -> Runner {
        let Endpoints {
            socket,
            targets,
            subs,
        } = endpoints;
        let rx_len = if subs.is_some() {
            wire::MAX_DATAGRAM
        } else {
            0
        };
        let schedule = Schedule::from_rate_hz(config.rate_hz).expect("validated rate");
        let sender = Sender::new(config.sender_config(session, first_seq, feed.is_some()))
            .expect("a validated config makes a valid sender");
        let batch = BatchSender::new(&socket, config.send_path);
        publish_path(&mut lock(shared), &batch);
        Runner {
            limit: config.duration.map(|d| schedule.ticks_within(d)),
            schedule,
            rate_hz: config.rate_hz,
            wake: WakeMargin::new(config.spin),
            world: match feed {
                Some((feed, clock)) => Source::Published(feed, clock),
                None => Source::Sim(Box::new(SimWorld::with_kind(
                    config.world,
                    config.entities,
                    config.seed,
                ))),
            },
            frames: FrameCounts::default(),
            duration: config.duration,
            buf: Vec::with_capacity(BATCH_DATAGRAMS * sender.max_datagram_len()),
            batch: Vec::with_capacity(BATCH_DATAGRAMS),
            sender,
            out: Output {
                socket,
                batch_targets: targets.clone(),
                targets,
                batch,
                rx_buf: vec![0; rx_len],
                rx_cmsg: Vec::new(),
                subs,
                errors_seen: Vec::new(),
                pending_error: None,
                unlogged: Vec::new(),
                first_error: None,
                first_refusal: None,
                halt: None,
                pending_late: Vec::with_capacity(PENDING_SAMPLES),
                shared: Arc::clone(shared),
                key: config.key.clone(),
            },
            stop: Arc::clone(stop),
            give_up_after: config.give_up_after,
        }
    }

    pub(super) fn run(mut self) {
        // This thread wants its deadlines, not batched wake-ups.
        clock::precise_wakeups();
        // Deadlines and reports are kept on the monotonic clock from the
        // anchor (t0) and deadlines stamped in the wall clock from its base
        // (wall0); the pair is read as one (see paired_now). The
        // subscription table is given the anchor's reading: monotonic, so a
        // wall-clock step cannot expire every lease at once, yet in the
        // protocol's ns since the Unix epoch (as in a pong).
        let anchor = Anchor::paired();
        if matches!(self.world, Source::Published(_, PublishClock::Game)) {
            self.run_game_clock(&anchor);
        } else {
            self.run_schedule(&anchor);
        }
        self.sender.finish();
        self.send_queued();
        self.publish(true);
    }

    /// Publishes the figures: the sender's counts, and the frames'.
    fn publish(&mut self, force: bool) {
        let frames = match &self.world {
            Source::Published(feed, _) => Some((
                feed.counts.committed.load(Ordering::Relaxed),
                feed.counts.replaced.load(Ordering::Relaxed),
            )),
            Source::Sim(_) => None,
        };
        let Some(mut figures) = self.out.publish(self.sender.counts(), force) else {
            return;
        };
        if let Some((committed, replaced)) = frames {
            figures.frames_committed = committed;
            figures.frames_replaced = replaced;
            figures.frames_sent = self.frames.taken;
            figures.frames_refused = self.frames.refused;
            if figures.last_refusal != self.frames.last_refusal {
                figures.last_refusal.clone_from(&self.frames.last_refusal);
            }
        }
        figures.compact = self.sender.compact_counts();
        if let Some(l) = self.sender.lifecycle_counts() {
            figures.spawned = l.spawned;
            figures.despawned = l.despawned;
            figures.rosters = l.rosters;
            figures.live_entities = self.sender.live_ids().map_or(0, |ids| ids.len() as u64);
        }
    }

    /// Queues tick `tick` from the source: the simulated world's positions
    /// computed into the sender's copy, or the game's frame copied in.
    /// Returns false if the game's frame was refused (then nothing is queued).
    fn push_tick(&mut self, tick: u64, scheduled_ns: u64) -> bool {
        let pushed = match &mut self.world {
            Source::Sim(world) => {
                let rate_hz = self.rate_hz;
                self.sender.push_tick_with(tick, scheduled_ns, |buf| {
                    world.positions_into(tick, rate_hz, buf)
                })
            }
            Source::Published(feed, _) => {
                let frame = feed.latest();
                self.sender.push_tick(tick, scheduled_ns, &frame.entities)
            }
        };
        self.on_pushed(tick, pushed)
    }

    /// Counts a game frame taken or refused; a refusal is logged the first time.
    fn on_pushed(&mut self, tick: u64, pushed: Result<(), PushError>) -> bool {
        match pushed {
            Ok(()) => {
                self.frames.taken += u64::from(matches!(self.world, Source::Published(..)));
                true
            }
            Err(e @ (PushError::Pending | PushError::Finished)) => {
                unreachable!("one tick at a time, none after the goodbye: {e}")
            }
            // A game's frame (or, with a bound too small for it, the
            // simulated world) that cannot be sent: refused and counted.
            Err(e) => {
                let why = format!("tick {tick} not sent: {e}");
                if self.frames.refused == 0 {
                    log::warn!("{why}");
                }
                self.frames.refused += 1;
                self.frames.last_refusal = Some(why);
                false
            }
        }
    }

    /// Under the game's clock: each frame the game sends goes out at once,
    /// under its tick number, stamped with the time the game sent it.
    fn run_game_clock(&mut self, anchor: &Anchor) {
        loop {
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            if self.duration.is_some_and(|d| anchor.elapsed() >= d) {
                break;
            }
            let Source::Published(feed, _) = &mut self.world else {
                unreachable!("only published frames run on the game's clock")
            };
            feed.drain_wakes();
            if let Some(frame) = feed.take_new() {
                let (tick, stamp) = (frame.tick, frame.stamp_ns);
                let pushed = self.sender.push_tick(tick, stamp, &frame.entities);
                if self.on_pushed(tick, pushed) {
                    self.send_queued();
                    // The stamp is on the publisher's monotonic anchor:
                    // read this side's, not the wall clock.
                    let late = anchor.now_ns().saturating_sub(stamp);
                    self.out.pending_late.push(late.min(LATENCY_MAX_NS));
                }
                if !self.after_tick(anchor) {
                    break;
                }
                continue;
            }
            self.sender.handle_timeout(anchor.elapsed());
            self.send_queued();
            // Sleep on the wake-up socket (and the request socket, with
            // subscriptions) until a frame comes or the stop check is due.
            let Source::Published(feed, _) = &self.world else {
                unreachable!()
            };
            let woken = feed
                .woken
                .as_ref()
                .expect("the game's clock has a wake-up socket");
            let serve = self.out.subs.as_ref().map(|_| &self.out.socket);
            if let Ok(Some(net::Ready::Second)) = net::wait_either(woken, serve, STOP_CHECK) {
                self.out.serve(anchor.now_ns());
            }
        }
    }

    /// What follows each tick's send, on either clock: a report if one is
    /// due (looked for once the tick is out), the figures, and the requests
    /// waiting (once per tick, right after it: nothing stands between a
    /// deadline and its send). False when every send has failed for too
    /// long: the broadcast stops.
    fn after_tick(&mut self, anchor: &Anchor) -> bool {
        self.sender.handle_timeout(anchor.elapsed());
        self.send_queued();
        if self
            .out
            .every_send_failed(anchor.elapsed(), self.give_up_after)
        {
            return false;
        }
        self.publish(false);
        self.out.serve(anchor.now_ns());
        true
    }

    /// Under tickcast's clock: the schedule's ticks, each with the
    /// source's entities as of its deadline.
    fn run_schedule(&mut self, anchor: &Anchor) {
        let anchor = *anchor;
        loop {
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            if self.limit.is_some_and(|n| self.schedule.next_tick() >= n) {
                break;
            }
            match self.schedule.poll(anchor.elapsed()) {
                Action::Wait { until } => self.wait_until(&anchor, until),
                Action::Send {
                    tick,
                    late,
                    skipped,
                } => {
                    if let Some(n) = self.limit.filter(|&n| tick >= n) {
                        // Only the ticks within the duration count as skipped.
                        self.sender.skip(n - (tick - skipped));
                        break;
                    }
                    self.sender.skip(skipped);
                    let scheduled_ns = anchor.ns_at(self.schedule.deadline(tick));
                    // The positions are computed (or the frame copied) into
                    // the sender's copy of the tick, where they are encoded from.
                    if !self.push_tick(tick, scheduled_ns) {
                        self.sender.skip(1);
                    }
                    self.send_queued();
                    let late_ns = u64::try_from(late.as_nanos()).unwrap_or(u64::MAX);
                    self.out.pending_late.push(late_ns.min(LATENCY_MAX_NS));
                    if !self.after_tick(&anchor) {
                        break;
                    }
                }
            }
        }
    }

    /// Sends what the sender has queued, in batches of up to
    /// [`BATCH_DATAGRAMS`]: each batch is stamped with one reading of the
    /// wall clock taken just before it is encoded, then handed to the
    /// kernel for every target before the next is encoded.
    fn send_queued(&mut self) {
        loop {
            self.buf.clear();
            self.batch.clear();
            let now_ns = clock::now_ns();
            while self.batch.len() < BATCH_DATAGRAMS {
                match self.sender.poll_transmit(now_ns, &mut self.buf) {
                    Some(t) => self.batch.push(t.range()),
                    None => break,
                }
            }
            if self.batch.is_empty() {
                break;
            }
            self.out.send(&self.buf, &self.batch);
        }
    }

    /// Sleeps until `until − spin`, then spins to `until`; returns early if
    /// stopped, looking at the stop flag at least every [`STOP_CHECK`]. With
    /// subscriptions on, it sleeps on the socket instead, and answers what
    /// arrives at once; only sleeps that ran their full time teach the
    /// [`WakeMargin`].
    fn wait_until(&mut self, anchor: &Anchor, until: Duration) {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let now = anchor.elapsed();
            if now >= until {
                return;
            }
            let left = until - now;
            let margin = self.wake.margin();
            if left > margin {
                let asked = (left - margin).min(STOP_CHECK);
                let before = anchor.elapsed();
                if self.out.subs.is_none() {
                    thread::park_timeout(asked);
                } else if matches!(net::wait_readable(&self.out.socket, asked), Ok(true)) {
                    self.out.serve(anchor.now_ns());
                    continue;
                }
                self.wake.record(asked, anchor.elapsed() - before);
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_socket::{collect, config_to, receiver};
    use super::super::{Broadcaster, SendPath, GOODBYE_COPIES};
    use super::*;
    use crate::wire::auth;
    use crate::wire::{Body, Entity, Goodbye};
    use std::collections::BTreeMap;
    use std::net::{Ipv4Addr, SocketAddr};

    #[test]
    fn sealed_datagrams_never_exceed_the_payload_budget() {
        let sock = receiver();
        let key = Key::from_bytes([3; auth::KEY_LEN]);
        let budget = wire::DEFAULT_PAYLOAD_BUDGET;
        let config = BroadcastConfig {
            entities: 500,
            rate_hz: 200.0,
            duration: Some(Duration::from_millis(50)),
            key: Some(key.clone()),
            ..config_to(&sock)
        };
        let per_part = wire::entities_per_part(budget - auth::TAG_LEN).unwrap();
        assert_eq!(config.packet_budget(), budget - auth::TAG_LEN);
        assert!(per_part < wire::entities_per_part(budget).unwrap());
        let b = Broadcaster::start(config).unwrap();
        let mut buf = vec![0u8; wire::MAX_DATAGRAM];
        let (mut goodbyes, mut full_parts, mut datagrams) = (0u32, 0, 0u64);
        while goodbyes < GOODBYE_COPIES {
            let n = sock.recv(&mut buf).expect("the run ends with its goodbye");
            datagrams += 1;
            assert!(
                n <= budget,
                "a {n}-byte datagram over a {budget}-byte budget"
            );
            let inner = auth::open(&key, &buf[..n]).expect("every datagram is sealed");
            let mut entities = Vec::new();
            let p = wire::decode_opened(inner, &mut entities).unwrap();
            assert!(entities.len() <= per_part);
            full_parts += usize::from(entities.len() == per_part);
            goodbyes += u32::from(matches!(p.body, Body::Goodbye(_)));
        }
        let f = b.wait();
        assert_eq!(datagrams, f.datagrams_sent);
        assert!(
            full_parts > 0,
            "no part was full: the bound was not exercised"
        );
    }

    /// `world` reaches the runner: every tick sent is the players world's,
    /// not the linear one's (whose positions every entity differs from).
    #[test]
    fn a_players_config_sends_the_players_world() {
        use crate::core::sim::WorldKind;
        let sock = receiver();
        let config = BroadcastConfig {
            entities: 150,
            rate_hz: 100.0,
            duration: Some(Duration::from_millis(200)),
            seed: 4,
            world: WorldKind::Players,
            ..config_to(&sock)
        };
        let b = Broadcaster::start(config).unwrap();
        let got = collect(&sock);
        b.wait();
        let mut players = SimWorld::with_kind(WorldKind::Players, 150, 4);
        let mut linear = SimWorld::new(150, 4);
        let mut checked = 0;
        for (p, entities, _) in &got {
            let Body::Snapshot(h) = p.body else { continue };
            let want = players.positions(h.tick, 100.0);
            let other = linear.positions(h.tick, 100.0).to_vec();
            for e in entities {
                assert_eq!(*e, want[e.id as usize], "tick {}", h.tick);
                assert_ne!(*e, other[e.id as usize], "tick {}", h.tick);
                assert_eq!(e.z, 0.0, "on the ground");
                checked += 1;
            }
        }
        assert!(checked >= 150 * 10, "only {checked} entities arrived");
    }

    #[test]
    fn a_run_is_one_contiguous_sequence_that_covers_every_entity_each_tick() {
        let sock = receiver();
        let first_seq = u32::MAX - 5;
        let config = BroadcastConfig {
            entities: 200,
            rate_hz: 60.0,
            duration: Some(Duration::from_millis(300)),
            seed: 9,
            report_interval: Duration::from_millis(100),
            first_seq: Some(first_seq),
            ..config_to(&sock)
        };
        let b = Broadcaster::start(config).unwrap();
        let session = b.session();
        let got = collect(&sock);
        let figures = b.wait();

        // One session, one sequence, +1 each packet, wrapping past u32::MAX.
        assert!(got.iter().all(|(p, _, _)| p.session == session));
        assert_eq!(got[0].0.seq, first_seq);
        for w in got.windows(2) {
            assert_eq!(w[1].0.seq, w[0].0.seq.wrapping_add(1));
        }
        // u32::MAX - 5 + 6 packets wraps to 0 (only 6 were sent if every tick was skipped).
        let wrapped = got.iter().any(|(p, _, _)| p.seq == 0);
        assert_eq!(wrapped, got.len() > 6);

        // Each tick: parts 0..3 in order, together ids 0..200 once each, at
        // the world's positions; scheduled times exactly a deadline apart.
        let per_part = wire::entities_per_part(wire::DEFAULT_PAYLOAD_BUDGET).unwrap();
        let parts = 200usize.div_ceil(per_part) as u16;
        let mut ticks: BTreeMap<u64, (Vec<u16>, Vec<Entity>, u64)> = BTreeMap::new();
        let mut last_tick = None;
        let mut world = SimWorld::new(200, 9);
        let schedule = Schedule::from_rate_hz(60.0).unwrap();
        for (i, (p, entities, _)) in got.iter().enumerate() {
            match p.body {
                Body::Snapshot(h) => {
                    assert_eq!(h.parts, parts);
                    assert!(last_tick <= Some(h.tick), "ticks go forward");
                    last_tick = Some(h.tick);
                    let t = ticks
                        .entry(h.tick)
                        .or_insert((vec![], vec![], h.scheduled_ns));
                    assert_eq!(t.2, h.scheduled_ns, "one scheduled time per tick");
                    t.0.push(h.part);
                    t.1.extend_from_slice(entities);
                }
                Body::SenderReport(r) => {
                    assert_eq!(r.packets_sent, i as u64 + 1, "a report counts itself");
                    assert_eq!(r.ticks_sent, ticks.len() as u64);
                }
                Body::Goodbye(_) => assert!(i >= got.len() - GOODBYE_COPIES as usize),
                other => panic!("not a stream packet: {other:?}"),
            }
        }
        let (&first, first_t) = ticks.iter().next().unwrap();
        for (&tick, (part_ids, entities, scheduled_ns)) in &ticks {
            assert_eq!(*part_ids, (0..parts).collect::<Vec<_>>(), "tick {tick}");
            assert_eq!(
                entities.as_slice(),
                world.positions(tick, 60.0),
                "tick {tick}"
            );
            let apart = schedule.deadline(tick) - schedule.deadline(first);
            assert_eq!(scheduled_ns - first_t.2, apart.as_nanos() as u64);
        }
        assert!(
            *ticks.keys().last().unwrap() < 18,
            "0.3 s at 60 Hz is ticks 0..18"
        );

        // The goodbye: three copies, naming the last one and the total.
        let goodbyes: Vec<Goodbye> = got[got.len() - 3..]
            .iter()
            .map(|(p, _, _)| match p.body {
                Body::Goodbye(g) => g,
                other => panic!("expected a goodbye, got {other:?}"),
            })
            .collect();
        let last = got.last().unwrap().0.seq;
        for g in &goodbyes {
            assert_eq!(g.final_seq, last);
            assert_eq!(g.packets_sent, got.len() as u64);
        }

        // The figures agree with what arrived (loopback loses nothing).
        assert_eq!(figures.session, session);
        assert_eq!(figures.ticks_sent, ticks.len() as u64);
        assert_eq!(figures.ticks_sent + figures.ticks_skipped, 18);
        assert_eq!(figures.packets_sent, got.len() as u64);
        assert_eq!(figures.datagrams_sent, got.len() as u64);
        let bytes: usize = got.iter().map(|(_, _, n)| n).sum();
        assert_eq!(figures.bytes_sent, bytes as u64);
        assert_eq!(figures.send_errors, 0);
        assert_eq!(figures.last_error, None);
        // Batched: each tick's three parts are one GSO call, each report
        // a call of its own after its tick, the goodbye's copies one more.
        let reports = got
            .iter()
            .filter(|(p, _, _)| matches!(p.body, Body::SenderReport(_)))
            .count() as u64;
        assert_eq!(figures.send_path, SendPath::Gso);
        assert_eq!(
            (figures.gso_fallbacks, figures.gso_error.as_deref()),
            (0, None)
        );
        assert_eq!(figures.send_syscalls, figures.ticks_sent + reports + 1);
        assert_eq!(figures.gso_datagrams, 3 * figures.ticks_sent + 3);
        assert_eq!(figures.lateness.len(), figures.ticks_sent);
        assert_eq!(
            figures.summary().lateness_us.map_or(0, |l| l.samples),
            figures.ticks_sent
        );
    }

    #[test]
    fn every_send_path_sends_the_whole_stream_and_counts_its_calls() {
        for path in SendPath::ALL {
            let sock = receiver();
            let config = BroadcastConfig {
                entities: 200,
                rate_hz: 200.0,
                duration: Some(Duration::from_millis(50)),
                send_path: path,
                ..config_to(&sock)
            };
            let b = Broadcaster::start(config).unwrap();
            let got = collect(&sock);
            let f = b.wait();
            assert_eq!(f.send_path, path);
            let n = got.len() as u64;
            assert_eq!((f.packets_sent, f.datagrams_sent, f.send_errors), (n, n, 0));
            for w in got.windows(2) {
                assert_eq!(w[1].0.seq, w[0].0.seq.wrapping_add(1), "{path}");
            }
            match path {
                SendPath::SendTo => assert_eq!(f.send_syscalls, n),
                // A call per tick, per report and for the goodbye.
                _ => assert!(f.send_syscalls <= f.ticks_sent + 2, "{path}: {f:?}"),
            }
            assert_eq!(f.gso_datagrams > 0, path == SendPath::Gso, "{path}");
        }
    }

    #[test]
    fn an_empty_world_still_sends_one_empty_part_per_tick() {
        let sock = receiver();
        let config = BroadcastConfig {
            entities: 0,
            duration: Some(Duration::from_millis(50)),
            ..config_to(&sock)
        };
        let b = Broadcaster::start(config).unwrap();
        let got = collect(&sock);
        let figures = b.wait();
        let snapshots: Vec<_> = got
            .iter()
            .filter_map(|(p, e, _)| match p.body {
                Body::Snapshot(h) => Some((h, e.len())),
                _ => None,
            })
            .collect();
        assert_eq!(snapshots.len() as u64, figures.ticks_sent);
        assert!(snapshots
            .iter()
            .all(|(h, n)| h.part == 0 && h.parts == 1 && *n == 0));
        assert_eq!(figures.ticks_sent + figures.ticks_skipped, 3);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_failing_target_is_counted_and_the_others_still_get_everything() {
        // Linux refuses to send to port 0 with EINVAL before anything leaves.
        let sock = receiver();
        let mut config = BroadcastConfig {
            entities: 5,
            duration: Some(Duration::from_millis(50)),
            ..config_to(&sock)
        };
        config
            .destinations
            .insert(0, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        let b = Broadcaster::start(config).unwrap();
        let got = collect(&sock);
        let figures = b.wait();
        assert_eq!(figures.send_errors, figures.packets_sent);
        assert_eq!(figures.datagrams_sent, figures.packets_sent);
        assert_eq!(figures.packets_sent, got.len() as u64);
        let message = figures.last_error.expect("the error is kept");
        assert!(message.starts_with("sending to 127.0.0.1:0: "), "{message}");
        assert_eq!(figures.halted, None, "one target reached: it goes on");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_broadcast_that_reaches_no_target_stops_itself_and_says_why() {
        // Port 0 is refused (EINVAL) before anything leaves the host.
        let nowhere = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let config = BroadcastConfig {
            destinations: vec![nowhere],
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            max_subscribers: 0,
            entities: 5,
            duration: Some(Duration::from_secs(20)),
            give_up_after: Some(Duration::from_millis(100)),
            ..BroadcastConfig::default()
        };
        let started = std::time::Instant::now();
        let figures = Broadcaster::start(config.clone()).unwrap().wait();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "stopped after {:?}",
            started.elapsed()
        );
        assert_eq!(figures.datagrams_sent, 0);
        let Some(Halt::EverySendFailed {
            refused,
            window,
            first_error,
        }) = figures.halted.clone()
        else {
            panic!("not halted: {figures:?}");
        };
        assert!(refused > 0 && refused <= figures.send_errors, "{refused}");
        assert!(window >= Duration::from_millis(100), "{window:?}");
        assert!(
            first_error.starts_with("sending to 127.0.0.1:0: "),
            "{first_error}"
        );
        let said = figures.halted.as_ref().unwrap().to_string();
        assert!(
            said.starts_with(&format!(
                "stopped: the OS refused all {refused} sends in 0.1 s"
            )),
            "{said}"
        );
        assert!(said.ends_with(&first_error), "{said}");
        assert_eq!(figures.summary().halted, Some(said));

        // Told never to give up, it runs its whole duration.
        let figures = Broadcaster::start(BroadcastConfig {
            duration: Some(Duration::from_millis(300)),
            give_up_after: None,
            ..config
        })
        .unwrap()
        .wait();
        assert_eq!(figures.halted, None);
        assert_eq!(figures.ticks_sent + figures.ticks_skipped, 18);
        assert_eq!(figures.datagrams_sent, 0);
    }

    #[test]
    fn broadcast_destinations_get_every_packet_with_so_broadcast_set() {
        // The tests send to 127.0.0.1 only: a broadcast "destination" here is
        // a loopback socket, which checks the SO_BROADCAST path and delivery;
        // real subnet broadcast is exercised across network namespaces.
        let sock = receiver();
        let config = BroadcastConfig {
            broadcast: vec![sock.local_addr().unwrap()],
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            max_subscribers: 0,
            entities: 5,
            duration: Some(Duration::from_millis(100)),
            ..BroadcastConfig::default()
        };
        assert_eq!(config.validate(), Ok(()));
        let b = Broadcaster::start(config).unwrap();
        let got = collect(&sock);
        let figures = b.wait();
        assert_eq!(figures.packets_sent, got.len() as u64);
        assert_eq!(figures.send_errors, 0);
        assert_eq!(figures.subscribers, 0);
    }
}
