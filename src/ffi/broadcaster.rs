//! The broadcaster behind a `tc_broadcaster*`: the library's
//! [`Broadcaster`] and its [`Publisher`], folded into one handle. The
//! publisher is behind a mutex, so two threads publishing at once wait for
//! each other instead of racing (the library's `Publisher` takes `&mut`);
//! the figures and the port are read without it, from any thread.

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::wire::Entity;
use crate::{BroadcastConfig, BroadcastError, BroadcastFigures, Broadcaster, PublishClock};
use crate::{PublishError, Publisher};

use crate::ffi::error::Failure;
use crate::ffi::types::{
    tc_broadcast_figures, tc_entity, TC_ERR_BAD_COORDINATE, TC_ERR_BAD_FRAME, TC_ERR_CONFIG,
    TC_ERR_IO, TC_ERR_STOPPED, TC_ERR_TICK_NOT_AFTER, TC_ERR_WRONG_CLOCK,
};

/// A running broadcaster of the game's world (opaque to C).
pub struct tc_broadcaster {
    broadcaster: Broadcaster,
    game: Mutex<Game>,
}

/// The game's side: the publisher, and the copy `send` needs.
struct Game {
    publisher: Publisher,
    /// `tc_broadcaster_send`'s entities as the library's (reused).
    scratch: Vec<Entity>,
}

// C threads share a handle (figures from one, the game on another), and
// stop may run on any thread: it must be Sync and Send, or this fails to
// compile.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<tc_broadcaster>();
};

fn entity(e: &tc_entity) -> Entity {
    Entity {
        id: e.id,
        x: e.x,
        y: e.y,
        z: e.z,
    }
}

fn publish_failure(e: PublishError) -> Failure {
    // Messages that would name Rust's API name the C one here.
    let c_message = match e {
        PublishError::WrongClock(PublishClock::Game) => {
            Some("this broadcaster runs on TC_CLOCK_GAME: use tc_broadcaster_send".to_string())
        }
        PublishError::WrongClock(PublishClock::Tickcast) => Some(
            "this broadcaster runs on TC_CLOCK_TICKCAST: use tc_broadcaster_publish".to_string(),
        ),
        PublishError::OutOfBound { id } => Some(format!(
            "entity {id} has a coordinate beyond the world's bound (tc_broadcast_config.bound)"
        )),
        _ => None,
    };
    let status = match e {
        PublishError::BadCoordinate { .. } | PublishError::OutOfBound { .. } => {
            TC_ERR_BAD_COORDINATE
        }
        PublishError::DuplicateId(_)
        | PublishError::IdTooLarge { .. }
        | PublishError::TooManyEntities { .. } => TC_ERR_BAD_FRAME,
        PublishError::TickNotAfter { .. } => TC_ERR_TICK_NOT_AFTER,
        PublishError::WrongClock(_) => TC_ERR_WRONG_CLOCK,
        PublishError::Stopped => TC_ERR_STOPPED,
    };
    match c_message {
        Some(message) => Failure::new(status, message),
        None => Failure::new(status, e),
    }
}

fn start_failure(e: BroadcastError) -> Failure {
    let status = match e {
        BroadcastError::Config(_) => TC_ERR_CONFIG,
        _ => TC_ERR_IO,
    };
    Failure::new(status, e)
}

impl tc_broadcaster {
    /// Starts a broadcaster of a published world on `clock`.
    pub(crate) fn start(
        config: BroadcastConfig,
        clock: PublishClock,
    ) -> Result<tc_broadcaster, Failure> {
        let (broadcaster, publisher) =
            Broadcaster::start_published(config, clock).map_err(start_failure)?;
        Ok(tc_broadcaster {
            broadcaster,
            game: Mutex::new(Game {
                publisher,
                scratch: Vec::new(),
            }),
        })
    }

    fn game(&self) -> MutexGuard<'_, Game> {
        // A panic mid-publish leaves a frame unpublished, nothing worse.
        self.game.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The whole world, for tickcast's clock to send.
    pub(crate) fn publish(&self, entities: &[tc_entity]) -> Result<(), Failure> {
        let mut game = self.game();
        let mut frame = game.publisher.frame();
        frame.entities().extend(entities.iter().map(entity));
        frame.commit().map_err(publish_failure)
    }

    /// The whole world of the game's tick `tick`, sent at once.
    pub(crate) fn send(&self, tick: u64, entities: &[tc_entity]) -> Result<(), Failure> {
        let game = &mut *self.game();
        game.scratch.clear();
        game.scratch.extend(entities.iter().map(entity));
        game.publisher
            .send(tick, &game.scratch)
            .map_err(publish_failure)
    }

    pub(crate) fn local_port(&self) -> u16 {
        self.broadcaster.local_addr().port()
    }

    pub(crate) fn session(&self) -> u64 {
        self.broadcaster.session()
    }

    pub(crate) fn figures(&self) -> tc_broadcast_figures {
        figures(&self.broadcaster.figures(), self.broadcaster.is_finished())
    }

    /// Stops it (the goodbye is sent) and returns the final figures.
    pub(crate) fn stop(self) -> tc_broadcast_figures {
        figures(&self.broadcaster.stop(), true)
    }
}

fn figures(f: &BroadcastFigures, finished: bool) -> tc_broadcast_figures {
    let lateness = |q: f64| match f.lateness.is_empty() {
        true => 0,
        false => f.lateness.value_at_quantile(q),
    };
    tc_broadcast_figures {
        size: std::mem::size_of::<tc_broadcast_figures>() as u64,
        session: f.session,
        ticks_sent: f.ticks_sent,
        ticks_skipped: f.ticks_skipped,
        packets_sent: f.packets_sent,
        datagrams_sent: f.datagrams_sent,
        bytes_sent: f.bytes_sent,
        send_errors: f.send_errors,
        send_syscalls: f.send_syscalls,
        gso_datagrams: f.gso_datagrams,
        subscribers: f.subscribers as u64,
        frames_committed: f.frames_committed,
        frames_replaced: f.frames_replaced,
        frames_sent: f.frames_sent,
        frames_refused: f.frames_refused,
        spawned: f.spawned,
        despawned: f.despawned,
        rosters: f.rosters,
        live_entities: f.live_entities,
        lateness_samples: f.lateness.len(),
        lateness_p50_ns: lateness(0.5),
        lateness_p99_ns: lateness(0.99),
        lateness_max_ns: f.lateness.max(),
        halted: u32::from(f.halted.is_some()),
        finished: u32::from(finished),
    }
}
