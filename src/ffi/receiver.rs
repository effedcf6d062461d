//! The receiver behind a `tc_receiver*`: the library's [`Receiver`],
//! always started with a game client, and that [`GameClient`] behind a
//! mutex (the library's takes `&mut`), with the buffer its samples are
//! drawn into. Bulk reads copy into the caller's buffer; one too small is
//! `TC_ERR_BUFFER_TOO_SMALL` with the count needed, and nothing copied.

use std::mem::MaybeUninit;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::core::figures::Figures;
use crate::core::interpolate::Sample;
use crate::{GameClient, Receiver, ReceiverConfig, ReceiverError};

use crate::ffi::error::Failure;
use crate::ffi::types::{
    tc_entity_state, tc_event, tc_frame_info, tc_receive_figures, tc_sample,
    TC_ERR_BUFFER_TOO_SMALL, TC_ERR_CONFIG, TC_ERR_IO,
};

/// A running receiver and its game client (opaque to C).
pub struct tc_receiver {
    receiver: Receiver,
    client: Mutex<Client>,
}

// C threads share a handle (figures from one, the game on another), and
// stop may run on any thread: it must be Sync and Send, or this fails to
// compile.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<tc_receiver>();
};

struct Client {
    client: GameClient,
    /// What the interpolator drew last (reused).
    samples: Vec<Sample>,
}

/// Copies `items` into `out` if they all fit; `n` is set to how many
/// there are either way.
fn fill<T>(
    items: impl ExactSizeIterator<Item = T>,
    out: &mut [MaybeUninit<T>],
    n: &mut usize,
    what: &str,
) -> Result<(), Failure> {
    *n = items.len();
    if *n > out.len() {
        return Err(Failure::new(
            TC_ERR_BUFFER_TOO_SMALL,
            format_args!("{what}: {} needed, the buffer holds {}", *n, out.len()),
        ));
    }
    for (slot, item) in out.iter_mut().zip(items) {
        slot.write(item);
    }
    Ok(())
}

fn start_failure(e: ReceiverError) -> Failure {
    let status = match e {
        ReceiverError::Config(_) => TC_ERR_CONFIG,
        _ => TC_ERR_IO,
    };
    Failure::new(status, e)
}

impl tc_receiver {
    /// Starts a receiver of `config`, which has a client config.
    pub(crate) fn start(config: ReceiverConfig) -> Result<tc_receiver, Failure> {
        debug_assert!(config.client.is_some());
        let receiver = Receiver::start(config).map_err(start_failure)?;
        let client = receiver
            .take_client()
            .expect("started with a client config, taken once");
        Ok(tc_receiver {
            receiver,
            client: Mutex::new(Client {
                client,
                samples: Vec::new(),
            }),
        })
    }

    fn client(&self) -> MutexGuard<'_, Client> {
        // The client's state is whole between calls; a panic leaves it so.
        self.client.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn local_port(&self) -> u16 {
        self.receiver.local_addr().port()
    }

    /// Copies the latest frame into `out`; `n` its entity count.
    pub(crate) fn world(
        &self,
        out: &mut [MaybeUninit<tc_entity_state>],
        n: &mut usize,
    ) -> (tc_frame_info, Result<(), Failure>) {
        let mut client = self.client();
        let frame = client.client.frame();
        let info = tc_frame_info {
            session: frame.session.unwrap_or(0),
            tick: frame.tick.unwrap_or(0),
            tick_ns: frame.tick_ns,
            has_frame: u32::from(frame.tick.is_some()),
            complete: u32::from(frame.complete),
        };
        let states = frame.entities.iter().map(|e| tc_entity_state {
            id: e.id,
            x: e.x,
            y: e.y,
            z: e.z,
            tick: e.tick,
            arrival_ns: e.arrival_ns,
            tick_ns: e.tick_ns,
        });
        (info, fill(states, out, n, "world"))
    }

    /// Takes up to `out.len()` waiting events, oldest first; the rest wait.
    pub(crate) fn events(&self, out: &mut [MaybeUninit<tc_event>]) -> usize {
        let mut client = self.client();
        let mut taken = 0;
        for slot in out.iter_mut() {
            let Some(e) = client.client.next_event() else {
                break;
            };
            slot.write(tc_event {
                kind: e.kind as u32,
                id: e.id,
                tick: e.tick,
                session: e.session,
            });
            taken += 1;
        }
        taken
    }

    /// Every entity's position at render time for `now_ns` (now if `None`).
    pub(crate) fn sample(
        &self,
        now_ns: Option<u64>,
        out: &mut [MaybeUninit<tc_sample>],
        n: &mut usize,
    ) -> Result<(), Failure> {
        let client = &mut *self.client();
        match now_ns {
            Some(now) => client.client.sample_at(now, &mut client.samples),
            None => client.client.sample(&mut client.samples),
        }
        let samples = client.samples.iter().map(|s| tc_sample {
            id: s.id,
            x: s.x,
            y: s.y,
            z: s.z,
            mode: s.mode as u32,
        });
        fill(samples, out, n, "samples")
    }

    pub(crate) fn figures(&self) -> tc_receive_figures {
        let figures = self.receiver.figures();
        figures_of(&figures, &self.client().client)
    }

    /// Stops it and returns the final, exact figures.
    pub(crate) fn stop(self) -> Result<tc_receive_figures, Failure> {
        let client = self
            .client
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        let figures = self.receiver.stop().map_err(|e| {
            Failure::new(TC_ERR_IO, format_args!("the receiver thread failed: {e}"))
        })?;
        Ok(figures_of(&figures, &client.client))
    }
}

fn figures_of(f: &Figures, client: &GameClient) -> tc_receive_figures {
    let c = &f.counters;
    let i = client.interpolation_figures();
    let latency = |q: f64| match f.latency.is_empty() {
        true => 0,
        false => f.latency.value_at_quantile(q),
    };
    tc_receive_figures {
        size: std::mem::size_of::<tc_receive_figures>() as u64,
        expected: c.expected,
        received: c.received,
        lost: c.lost,
        duplicates: c.duplicates,
        reordered: c.reordered,
        stale: c.stale,
        malformed: c.malformed,
        auth_failed: c.auth_failed,
        replayed: c.replayed,
        restarts: c.restarts,
        socket_drops: c.socket_drops,
        ticks_applied: c.ticks_applied,
        entities_applied: c.entities_applied,
        entities_stale: c.entities_stale,
        entities_rejected: c.entities_rejected,
        entities_despawned: c.entities_despawned,
        entities_removed_by_roster: c.entities_removed_by_roster,
        datagrams: c.datagrams,
        bytes: c.bytes,
        count: f.count.unwrap_or(0),
        latency_samples: f.latency.len(),
        latency_p50_ns: latency(0.5),
        latency_p99_ns: latency(0.99),
        latency_max_ns: f.latency.max(),
        // A float of ns; as u64 saturates, and NaN is 0.
        jitter_ns: f.jitter_ns as u64,
        events_dropped: client.events_dropped(),
        interpolated: i.interpolated,
        extrapolated: i.extrapolated,
        held: i.held,
        snapped: i.snapped,
        teleports: i.teleports,
        interpolation_delay_ns: client.interpolation_delay_ns(),
        has_count: u32::from(f.count.is_some()),
        goodbye: u32::from(f.goodbye),
    }
}
