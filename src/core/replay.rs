//! The replay window and the freshness rule, sans-IO: a captured sealed
//! datagram sent again is refused.
//!
//! A MAC proves who sent a datagram, not when. [`ReplayWindow`] accepts each
//! `(session, seq)` once: within the session it tracks, a number at most
//! [`REPLAY_WINDOW`] − 1 behind the highest accepted is accepted if not seen
//! before, anything older or already seen is a replay (RFC 1982 serial
//! arithmetic, [`serial_distance`], so the 32-bit wrap is invisible). Packets
//! of the last [`RECENT_SESSIONS`] sessions it replaced are replays.
//!
//! **The join floor.** A window can vouch only for what it saw. Numbers
//! below the first one it accepted in a session were sent before it was
//! listening (a receiver that joins a running stream, or the first packets
//! of a restart that arrived out of order): it cannot tell a late original
//! from a replay of a capture, so it refuses them ([`Replay::BeforeJoin`]).
//! Without that, a receiver started after an attacker recorded the stream
//! would take every recorded datagram within the window as fresh. The
//! floor needs no clock; its cost is an honest packet reordered across the
//! first one accepted, refused as a replay.
//!
//! A session it has never seen is a restart only if its packet was sent
//! (`sent_ns`, covered by the MAC) after every packet accepted so far;
//! otherwise it is a replay from a session too old to remember
//! ([`Replay::StaleSession`]). Without that rule one captured datagram from
//! an old session, replayed, would look like a restart and retire the live
//! session. It needs no clock shared with the sender, only that a
//! broadcaster's clock does not step back across its restart; if it does,
//! the new session is refused until its clock passes the old one's, then
//! accepted by itself.
//!
//! **Freshness** ([`is_fresh`]), checked before the window: a sealed
//! stream datagram whose `sent_ns` is further than a window (default
//! [`DEFAULT_FRESHNESS`]) from its arrival time on the receiver's clock is
//! refused, and counted apart (`stale_sealed`). It bounds how old a replay
//! can be, whatever the window remembers, including for a receiver that
//! has accepted nothing yet; it assumes the clocks agree within the window.
//!
//! Memory is fixed: one tracked session (128 bytes of bitmap) and
//! [`RECENT_SESSIONS`] ids.

use std::collections::VecDeque;
use std::time::Duration;

use crate::core::tracker::serial_distance;

/// Sequence numbers behind the highest accepted that are still told apart.
/// A protocol constant (`proto/PROTOCOL.md`, "Authentication"): `replayed`
/// depends on it.
pub const REPLAY_WINDOW: u32 = 1024;
/// Replaced session ids remembered; their packets are replays. A protocol
/// constant, as [`REPLAY_WINDOW`] is.
pub const RECENT_SESSIONS: usize = 16;
/// The default freshness window: a sealed stream datagram sent further
/// than this from its arrival (either way, on the receiver's clock) is
/// refused. Wide enough for any network delay and for clocks kept by NTP;
/// narrow enough that a capture is useless two seconds later.
pub const DEFAULT_FRESHNESS: Duration = Duration::from_secs(2);

/// Whether a datagram sent at `sent_ns` (its own field, covered by the
/// tag) and arriving at `arrival_ns` (the receiver's clock) is within
/// `window` of it, either way. Exact for any two `u64` times.
pub fn is_fresh(sent_ns: u64, arrival_ns: u64, window: Duration) -> bool {
    u128::from(sent_ns.abs_diff(arrival_ns)) <= window.as_nanos()
}

/// Why [`ReplayWindow::check`] refused a packet. Every one counts as `replayed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Replay {
    /// This `(session, seq)` was already accepted (a replay, or a network
    /// duplicate: they cannot be told apart).
    #[error("sequence number already accepted")]
    Seen,
    /// [`REPLAY_WINDOW`] or more numbers behind the highest accepted.
    #[error("sequence number behind the replay window")]
    TooOld,
    /// Below the first number accepted in its session: sent before this
    /// window was listening, so it cannot tell a late original from a
    /// replay (see the module docs).
    #[error("sequence number below the first one accepted in its session")]
    BeforeJoin,
    /// From one of the [`RECENT_SESSIONS`] sessions replaced by a newer one.
    #[error("packet of a replaced session")]
    RetiredSession,
    /// A session not seen before, whose packet was sent no later than the
    /// newest accepted: a replay from a session too old to remember.
    #[error("new session older than the newest packet accepted")]
    StaleSession,
}

#[derive(Clone, Debug)]
struct Tracked {
    id: u64,
    highest: u32,
    /// How far `highest` is above the first number accepted, while that is
    /// less than [`REPLAY_WINDOW`] (beyond, the floor is behind the window
    /// and [`Replay::TooOld`] covers it).
    above_floor: Option<u32>,
    /// Bit `seq % REPLAY_WINDOW` is set when `seq` (within the window) was
    /// accepted. 2^32 is a multiple of the window, so the wrap keeps slots.
    seen: [u64; REPLAY_WINDOW as usize / 64],
}

impl Tracked {
    fn new(id: u64, seq: u32) -> Tracked {
        let mut t = Tracked {
            id,
            highest: seq,
            above_floor: Some(0),
            seen: [0; REPLAY_WINDOW as usize / 64],
        };
        t.mark(seq);
        t
    }

    fn slot(seq: u32) -> (usize, u64) {
        let i = seq % REPLAY_WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn mark(&mut self, seq: u32) {
        let (w, b) = Tracked::slot(seq);
        self.seen[w] |= b;
    }

    fn is_marked(&self, seq: u32) -> bool {
        let (w, b) = Tracked::slot(seq);
        self.seen[w] & b != 0
    }

    fn check(&mut self, seq: u32) -> Result<(), Replay> {
        let d = serial_distance(self.highest, seq);
        if d > 0 {
            if d >= i64::from(REPLAY_WINDOW) {
                self.seen = [0; REPLAY_WINDOW as usize / 64];
            } else {
                // Forget the slots the numbers skipped over will reuse.
                for s in 1..=d as u32 {
                    let (w, b) = Tracked::slot(self.highest.wrapping_add(s));
                    self.seen[w] &= !b;
                }
            }
            self.highest = seq;
            self.above_floor = self
                .above_floor
                .map(|a| i64::from(a) + d)
                .filter(|&a| a < i64::from(REPLAY_WINDOW))
                .map(|a| a as u32);
        } else if -d >= i64::from(REPLAY_WINDOW) {
            return Err(Replay::TooOld);
        } else if self.above_floor.is_some_and(|a| -d > i64::from(a)) {
            return Err(Replay::BeforeJoin);
        } else if self.is_marked(seq) {
            return Err(Replay::Seen);
        }
        self.mark(seq);
        Ok(())
    }
}

/// Accepts each authenticated `(session, seq)` once (see the module docs).
/// Bounded: one session's window and [`RECENT_SESSIONS`] ids.
#[derive(Clone, Debug, Default)]
pub struct ReplayWindow {
    current: Option<Tracked>,
    recent: VecDeque<u64>,
    /// The largest `sent_ns` of any packet accepted.
    newest_sent_ns: Option<u64>,
}

impl ReplayWindow {
    /// A window that has accepted nothing.
    pub fn new() -> ReplayWindow {
        ReplayWindow::default()
    }

    /// Accepts or refuses an authenticated packet of `session` numbered `seq`,
    /// sent at `sent_ns` (the packet's own field). Call it only for packets
    /// whose tag checked, and only for sequenced kinds.
    pub fn check(&mut self, session: u64, seq: u32, sent_ns: u64) -> Result<(), Replay> {
        match &mut self.current {
            Some(t) if t.id == session => t.check(seq)?,
            _ if self.recent.contains(&session) => return Err(Replay::RetiredSession),
            _ => {
                if self.newest_sent_ns.is_some_and(|n| sent_ns <= n) {
                    return Err(Replay::StaleSession);
                }
                if let Some(old) = self.current.replace(Tracked::new(session, seq)) {
                    if self.recent.len() == RECENT_SESSIONS {
                        self.recent.pop_front();
                    }
                    self.recent.push_back(old.id);
                }
            }
        }
        self.newest_sent_ns = Some(self.newest_sent_ns.map_or(sent_ns, |n| n.max(sent_ns)));
        Ok(())
    }

    /// The session being tracked, if any.
    pub fn session(&self) -> Option<u64> {
        self.current.as_ref().map(|t| t.id)
    }
}

/// What authentication refused, as plain data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthCounts {
    /// Datagrams refused by [`open`](crate::wire::auth::open): too short, not sealed, or a tag that
    /// does not match (forged, tampered, another key). Never applied.
    pub auth_failed: u64,
    /// Authenticated packets refused by [`ReplayWindow::check`]: seen
    /// before, behind the window, of a replaced session, or of an unknown
    /// session older than the newest packet. Never applied.
    pub replayed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_of_an_accepted_packet_is_rejected() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.check(1, 10, 100), Ok(()));
        assert_eq!(w.check(1, 10, 100), Err(Replay::Seen));
        assert_eq!(w.check(1, 12, 101), Ok(()));
        // Late but never seen: accepted once.
        assert_eq!(w.check(1, 11, 100), Ok(()));
        assert_eq!(w.check(1, 11, 100), Err(Replay::Seen));
    }

    #[test]
    fn window_slides_across_the_u32_wrap() {
        for start in [u32::MAX - 1_500, u32::MAX - 1_023, u32::MAX - 3, u32::MAX] {
            let mut w = ReplayWindow::new();
            let mut seq = start;
            for i in 0..3_000u32 {
                seq = start.wrapping_add(i);
                assert_eq!(w.check(1, seq, 1), Ok(()), "start {start} i {i}");
            }
            // Every number in the window is remembered, the wrap included...
            for back in 0..REPLAY_WINDOW {
                assert_eq!(w.check(1, seq.wrapping_sub(back), 1), Err(Replay::Seen));
            }
            // ...and one more is too old.
            let old = seq.wrapping_sub(REPLAY_WINDOW);
            assert_eq!(w.check(1, old, 1), Err(Replay::TooOld));
            assert_eq!(
                w.check(1, seq.wrapping_sub(1 << 31), 1),
                Err(Replay::TooOld)
            );
        }
    }

    #[test]
    fn a_gap_forgets_slots_it_reuses_and_a_jump_clears_them() {
        let mut w = ReplayWindow::new();
        w.check(1, u32::MAX - 5, 1).unwrap();
        // Jump 1024 + 3 ahead, over the wrap: the slot of MAX-5 is reused by
        // a number now in the window, which must not read as seen.
        let far = (u32::MAX - 5).wrapping_add(REPLAY_WINDOW + 3);
        assert_eq!(w.check(1, far, 1), Ok(()));
        assert_eq!(w.check(1, far.wrapping_sub(3), 1), Ok(()));
        // A gap of 10: the 9 skipped numbers are new, not seen.
        assert_eq!(w.check(1, far.wrapping_add(10), 1), Ok(()));
        for s in 1..10 {
            assert_eq!(w.check(1, far.wrapping_add(s), 1), Ok(()));
        }
    }

    #[test]
    fn replaced_sessions_are_replays_and_a_stale_new_session_changes_nothing() {
        let mut w = ReplayWindow::new();
        w.check(1, 0, 1_000).unwrap();
        w.check(1, 1, 2_000).unwrap();
        // A restart: a new session sent later.
        assert_eq!(w.check(2, 500, 3_000), Ok(()));
        assert_eq!(w.check(1, 2, 2_500), Err(Replay::RetiredSession));
        // A session never seen, sent before the newest packet: an old one replayed.
        assert_eq!(w.check(99, 7, 2_999), Err(Replay::StaleSession));
        assert_eq!(w.session(), Some(2));
        assert_eq!(w.check(2, 501, 3_001), Ok(()));
    }

    #[test]
    fn recent_sessions_are_bounded() {
        let mut w = ReplayWindow::new();
        for id in 0..10_000u64 {
            w.check(id, 0, id + 1).unwrap();
        }
        assert_eq!(w.recent.len(), RECENT_SESSIONS);
        let oldest = 10_000 - 1 - RECENT_SESSIONS as u64;
        assert_eq!(w.check(oldest, 1, 1), Err(Replay::RetiredSession));
        // Forgotten, but still refused: it was sent before the newest packet.
        assert_eq!(w.check(oldest - 1, 1, 1), Err(Replay::StaleSession));
    }

    #[test]
    fn a_late_joiner_refuses_numbers_below_its_first() {
        // Joined at 500: 499 and below were sent before it listened.
        for first in [500u32, 3, u32::MAX - 1] {
            let mut w = ReplayWindow::new();
            w.check(1, first, 10).unwrap();
            for back in 1..=REPLAY_WINDOW {
                let r = w.check(1, first.wrapping_sub(back), 9);
                assert!(
                    matches!(r, Err(Replay::BeforeJoin) | Err(Replay::TooOld)),
                    "first {first} back {back}: {r:?}"
                );
            }
            assert_eq!(
                w.check(1, first.wrapping_sub(1), 9),
                Err(Replay::BeforeJoin)
            );
            // Above the floor, the window works as ever: late ones accepted once.
            assert_eq!(w.check(1, first.wrapping_add(5), 11), Ok(()));
            assert_eq!(w.check(1, first.wrapping_add(2), 11), Ok(()));
            assert_eq!(w.check(1, first.wrapping_add(2), 11), Err(Replay::Seen));
            assert_eq!(
                w.check(1, first.wrapping_sub(1), 9),
                Err(Replay::BeforeJoin)
            );
        }
    }

    #[test]
    fn the_floor_gives_way_to_the_window_as_the_stream_moves_on() {
        let mut w = ReplayWindow::new();
        w.check(1, 0, 1).unwrap();
        // Less than a window above the floor: the floor still refuses what
        // the window would otherwise take.
        w.check(1, REPLAY_WINDOW - 2, 1).unwrap();
        assert_eq!(w.check(1, u32::MAX, 1), Err(Replay::BeforeJoin));
        // One more: the floor is behind the window, TooOld says it all.
        w.check(1, REPLAY_WINDOW, 1).unwrap();
        assert_eq!(w.check(1, 0, 1), Err(Replay::TooOld));
        assert_eq!(w.check(1, 1, 1), Ok(()), "in the window, never seen");
        // A jump of nearly half the space does not bring the floor back.
        let mut v = ReplayWindow::new();
        v.check(1, 0, 1).unwrap();
        let far = (1u32 << 31) - 1;
        v.check(1, far, 1).unwrap();
        assert_eq!(v.check(1, far - 10, 1), Ok(()));
    }

    #[test]
    fn each_new_session_has_its_own_floor() {
        let mut w = ReplayWindow::new();
        w.check(1, 100, 1_000).unwrap();
        w.check(2, 50, 2_000).unwrap();
        assert_eq!(w.check(2, 49, 2_001), Err(Replay::BeforeJoin));
        assert_eq!(w.check(2, 51, 2_001), Ok(()));
    }

    #[test]
    fn freshness_edges() {
        let s = Duration::from_secs(2);
        let t = 1_700_000_000_000_000_000u64;
        let w = s.as_nanos() as u64;
        assert!(is_fresh(t, t, s));
        assert!(is_fresh(t - w, t, s), "exactly the window old");
        assert!(!is_fresh(t - w - 1, t, s), "one ns older");
        assert!(
            is_fresh(t + w, t, s),
            "sent the window ahead: a clock ahead"
        );
        assert!(!is_fresh(t + w + 1, t, s));
        assert!(!is_fresh(0, u64::MAX, s));
        assert!(!is_fresh(u64::MAX, 0, s));
        assert!(is_fresh(0, u64::MAX, Duration::MAX));
        assert!(!is_fresh(t - 1, t, Duration::ZERO));
    }
}
