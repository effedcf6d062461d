//! The game client's handle on a receiver: [`GameClient`], taken from
//! [`Receiver::take_client`](crate::Receiver::take_client) when the
//! receiver was started with [`ReceiverConfig::client`](crate::ReceiverConfig::client).
//!
//! It reads what the receiver thread hands over ([`crate::core::feed`]):
//! the latest tick-consistent [`Frame`] of the whole world, in `O(1)` and
//! without waiting on the receiver, and the bounded queue of [`Event`]s;
//! and it keeps an [`Interpolator`] fed from the frames, so a game asks
//! for positions at its render time ([`GameClient::sample`]).
//!
//! Thread-safety: a `GameClient` is `Send` and not `Clone`; its methods
//! take `&mut self`, so one thread at a time uses it (move it to the
//! game's render or logic thread). None of them blocks or makes the
//! receiver thread wait.

use crate::core::feed::{Event, FeedReader, Frame, DEFAULT_EVENT_CAPACITY};
use crate::core::interpolate::{InterpolationConfig, InterpolationFigures, Interpolator, Sample};
use crate::runtime::clock;

/// What a game client is fed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClientConfig {
    /// Events the queue holds before it drops (and counts) the newest
    /// (default [`DEFAULT_EVENT_CAPACITY`]).
    pub event_capacity: usize,
    /// How [`GameClient::sample`] interpolates (default: 2 ticks plus a
    /// 4 ms margin of delay, extrapolation up to 250 ms, then hold). Its
    /// `capacity` is set to the receiver's
    /// ([`ReceiverConfig::capacity`](crate::ReceiverConfig::capacity))
    /// when the receiver starts, so every id the world holds is drawn.
    pub interpolation: InterpolationConfig,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            event_capacity: DEFAULT_EVENT_CAPACITY,
            interpolation: InterpolationConfig::default(),
        }
    }
}

/// A game's view of a receiver (see the [module docs](self)).
#[derive(Debug)]
pub struct GameClient {
    feed: FeedReader,
    interpolator: Interpolator,
    /// The ids the interpolator holds, ascending (those of the last frame fed).
    fed: Vec<u32>,
    /// The tick and session of the last frame fed to it.
    fed_frame: Option<(Option<u64>, Option<u64>)>,
    /// Scratch for the ids of the frame being fed (reused).
    ids: Vec<u32>,
}

impl GameClient {
    pub(crate) fn new(feed: FeedReader, config: ClientConfig) -> GameClient {
        GameClient {
            feed,
            interpolator: Interpolator::new(config.interpolation),
            fed: Vec::new(),
            fed_frame: None,
            ids: Vec::new(),
        }
    }

    /// Every entity's position at render time for local time `now_ns`
    /// (the protocol's clock, ns since the Unix epoch, as
    /// [`clock::now_ns`] reads it), appended to `out` (cleared first),
    /// ascending by id, each with how it was found ([`Sample::mode`]):
    /// between the two snapshots that bracket `now − delay`, extrapolated
    /// (at most 250 ms by default) or held. The latest frame is fed to the
    /// interpolator first; a despawned entity leaves the samples when the
    /// render time reaches the first tick without it, so its last moves
    /// are drawn, a render delay late, as everything is.
    pub fn sample_at(&mut self, now_ns: u64, out: &mut Vec<Sample>) {
        self.feed_interpolator();
        self.interpolator.sample(now_ns, out);
    }

    /// [`GameClient::sample_at`] now.
    pub fn sample(&mut self, out: &mut Vec<Sample>) {
        self.sample_at(clock::now_ns(), out);
    }

    /// The interpolation delay in force (ns): what the default costs in
    /// latency, on top of the network's.
    pub fn interpolation_delay_ns(&self) -> u64 {
        self.interpolator.delay_ns()
    }

    /// How often entities were interpolated, extrapolated, held or snapped.
    pub fn interpolation_figures(&self) -> InterpolationFigures {
        self.interpolator.figures()
    }

    /// Feeds the latest frame to the interpolator if it was not fed yet:
    /// each entity's snapshot (ignored if its tick is not newer), and the
    /// removal of every id the frame no longer holds. A new session starts
    /// the interpolator over.
    fn feed_interpolator(&mut self) {
        let frame = self.feed.frame();
        let key = (frame.session, frame.tick);
        if self.fed_frame == Some(key) {
            return;
        }
        // A new session starts the interpolator over; the empty frame of
        // before the first datagram is no session to restart from.
        if self
            .fed_frame
            .is_some_and(|(session, _)| session.is_some() && session != frame.session)
        {
            self.interpolator.reset();
            self.fed.clear();
        }
        self.fed_frame = Some(key);
        self.ids.clear();
        for e in &frame.entities {
            self.interpolator
                .push(e.id, e.tick, e.tick_ns, e.arrival_ns, [e.x, e.y, e.z]);
            self.ids.push(e.id);
        }
        // Both ascending: what was fed and is not in this frame is gone as
        // of this frame's tick, and is drawn until the render time gets
        // there (a render delay later), as its last moves are.
        let mut now = self.ids.iter().peekable();
        for &id in &self.fed {
            while now.next_if(|&&n| n < id).is_some() {}
            if now.peek() != Some(&&id) {
                self.interpolator.remove_at(id, frame.tick_ns);
            }
        }
        std::mem::swap(&mut self.fed, &mut self.ids);
    }

    /// The latest frame: every entity alive as of the newest complete tick
    /// (or, if a part was lost, each as of its own latest tick: see
    /// [`Frame::complete`]), ascending by id, each with its tick, its
    /// arrival time and the sender's stamp of its tick. `O(1)`: no copy, no
    /// lock; valid until the next call.
    pub fn frame(&mut self) -> &Frame {
        self.feed.frame()
    }

    /// Whether a frame newer than the last one read is waiting.
    pub fn has_new_frame(&self) -> bool {
        self.feed.has_new_frame()
    }

    /// Appends every waiting event to `out`, oldest first; returns how many.
    pub fn drain_events(&mut self, out: &mut Vec<Event>) -> usize {
        self.feed.drain_events(out)
    }

    /// Takes the oldest waiting event, if any.
    pub fn next_event(&mut self) -> Option<Event> {
        self.feed.next_event()
    }

    /// Events dropped because the queue was full (the game did not drain it).
    pub fn events_dropped(&self) -> u64 {
        self.feed.events_dropped()
    }
}
