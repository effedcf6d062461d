//! The game client's handle on a receiver: [`GameClient`], taken from
//! [`Receiver::take_client`](crate::Receiver::take_client) when the
//! receiver was started with [`ReceiverConfig::client`](crate::ReceiverConfig::client).
//!
//! It reads what the receiver thread hands over ([`crate::core::feed`]):
//! the latest tick-consistent [`Frame`] of the whole world, in `O(1)` and
//! without waiting on the receiver, and the bounded queue of [`Event`]s.
//!
//! Thread-safety: a `GameClient` is `Send` and not `Clone`; its methods
//! take `&mut self`, so one thread at a time uses it (move it to the
//! game's render or logic thread). None of them blocks or makes the
//! receiver thread wait.

use crate::core::feed::{Event, FeedReader, Frame, DEFAULT_EVENT_CAPACITY};

/// What a game client is fed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClientConfig {
    /// Events the queue holds before it drops (and counts) the newest
    /// (default [`DEFAULT_EVENT_CAPACITY`]).
    pub event_capacity: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            event_capacity: DEFAULT_EVENT_CAPACITY,
        }
    }
}

/// A game's view of a receiver (see the [module docs](self)).
#[derive(Debug)]
pub struct GameClient {
    feed: FeedReader,
}

impl GameClient {
    pub(crate) fn new(feed: FeedReader, _config: ClientConfig) -> GameClient {
        GameClient { feed }
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
