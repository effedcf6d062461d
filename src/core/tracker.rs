//! The sequence tracker: classifies each packet by `(session, seq)` and keeps
//! `expected` and `received` exactly. Sans-IO: it is fed header fields and
//! never reads a clock or touches a socket.
//!
//! Sequence numbers are 32-bit and compared with RFC 1982 serial arithmetic:
//! `b` is after `a` when `(b - a) mod 2^32` is in `1..2^31`. Each number is
//! extended to 64 bits against the highest one seen, so wrap-around is
//! invisible to the counting. A distance of exactly 2^31 is undefined in
//! RFC 1982; the tracker reads it as "behind".
//!
//! Per session: `expected = highest - lowest + 1` over the extended numbers
//! received (the highest raised to a goodbye's `final_seq`), `received`
//! counts each number once, and `lost = expected - received` is never
//! negative. A new session id ends the current session (its figures are kept
//! in the totals) and starts counting afresh: that is a restart. Packets of a
//! replaced session that arrive later are stale.

use std::collections::VecDeque;

/// How many sequence numbers behind the highest one the tracker remembers,
/// to tell a duplicate from a late arrival. Older arrivals are stale.
pub const WINDOW: u64 = 1 << 16;
/// How many replaced session ids are remembered, so that their late packets
/// are recognised as stale rather than as yet another restart.
pub const PAST_SESSIONS: usize = 8;

/// Extended numbers start here so that a late packet from before the first
/// one can be placed below it without underflow.
const EXT_ORIGIN: u64 = 1 << 40;

/// Signed distance from `a` to `b` in RFC 1982 serial arithmetic, in
/// `-2^31 ..= 2^31 - 1`: positive when `b` is after `a`.
pub fn serial_distance(a: u32, b: u32) -> i64 {
    b.wrapping_sub(a) as i32 as i64
}

/// What the tracker made of one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// First arrival of this number in the current session: process it.
    Fresh {
        /// It arrived after a higher sequence number.
        reordered: bool,
        /// It is the first packet of a new session (a restart, or the first stream).
        new_session: bool,
    },
    /// This number was already received in this session.
    Duplicate,
    /// From a replaced session, or older than the tracking window.
    Stale,
}

/// Counters of one session, or of all sessions together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Sequence numbers the sender used in the span received (see module docs).
    pub expected: u64,
    /// Distinct sequence numbers received.
    pub received: u64,
    /// Arrivals of a number already received.
    pub duplicates: u64,
    /// Fresh arrivals after a higher number.
    pub reordered: u64,
    /// Arrivals from a replaced session or older than the window.
    pub stale: u64,
    /// New session ids seen after the first one.
    pub restarts: u64,
}

impl Counts {
    /// `expected - received`: never negative, as received numbers lie in the expected span.
    pub fn lost(&self) -> u64 {
        self.expected - self.received
    }
}

#[derive(Debug)]
struct Session {
    id: u64,
    lowest: u64,
    highest: u64,
    final_seq: Option<u64>,
    received: u64,
    /// Bit `e % WINDOW` is set when extended number `e` (within the window) was received.
    seen: Vec<u64>,
}

impl Session {
    fn new(id: u64, seq: u32) -> Session {
        let ext = EXT_ORIGIN + seq as u64;
        let mut s = Session {
            id,
            lowest: ext,
            highest: ext,
            final_seq: None,
            received: 1,
            seen: vec![0; (WINDOW / 64) as usize],
        };
        s.mark(ext);
        s
    }

    fn extend(&self, seq: u32) -> u64 {
        (self.highest as i64 + serial_distance(self.highest as u32, seq)) as u64
    }

    fn bit(ext: u64) -> (usize, u64) {
        let i = ext % WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn mark(&mut self, ext: u64) {
        let (w, b) = Self::bit(ext);
        self.seen[w] |= b;
    }

    fn is_marked(&self, ext: u64) -> bool {
        let (w, b) = Self::bit(ext);
        self.seen[w] & b != 0
    }

    fn expected(&self) -> u64 {
        self.highest.max(self.final_seq.unwrap_or(0)) - self.lowest + 1
    }

    /// Advances the highest number to `ext`, forgetting the slots it reuses.
    fn advance(&mut self, ext: u64) {
        if ext - self.highest >= WINDOW {
            self.seen.iter_mut().for_each(|w| *w = 0);
        } else {
            for e in self.highest + 1..=ext {
                let (w, b) = Self::bit(e);
                self.seen[w] &= !b;
            }
        }
        self.highest = ext;
    }

    fn classify(&mut self, seq: u32) -> Verdict {
        let ext = self.extend(seq);
        if ext > self.highest {
            self.advance(ext);
            self.mark(ext);
            self.received += 1;
            return Verdict::Fresh {
                reordered: false,
                new_session: false,
            };
        }
        if self.highest - ext >= WINDOW {
            return Verdict::Stale;
        }
        if ext >= self.lowest && self.is_marked(ext) {
            return Verdict::Duplicate;
        }
        self.lowest = self.lowest.min(ext);
        self.mark(ext);
        self.received += 1;
        Verdict::Fresh {
            reordered: true,
            new_session: false,
        }
    }
}

/// The sequence tracker for one receiver (any number of sessions, one at a time).
#[derive(Debug, Default)]
pub struct Tracker {
    current: Option<Session>,
    past: VecDeque<u64>,
    /// Expected and received of replaced sessions, plus every other counter.
    totals: Counts,
}

impl Tracker {
    /// A tracker that has seen nothing.
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// Classifies one packet of `session` numbered `seq` and counts it.
    pub fn on_packet(&mut self, session: u64, seq: u32) -> Verdict {
        let verdict = match &mut self.current {
            Some(s) if s.id == session => s.classify(seq),
            _ if self.past.contains(&session) => Verdict::Stale,
            _ => {
                self.start_session(session, seq);
                Verdict::Fresh {
                    reordered: false,
                    new_session: true,
                }
            }
        };
        match verdict {
            Verdict::Fresh {
                reordered: true, ..
            } => self.totals.reordered += 1,
            Verdict::Duplicate => self.totals.duplicates += 1,
            Verdict::Stale => self.totals.stale += 1,
            Verdict::Fresh { .. } => {}
        }
        verdict
    }

    /// Records the final sequence number a goodbye announced for `session`, so
    /// loss at the end of the stream counts. Call after `on_packet` said Fresh.
    pub fn on_goodbye(&mut self, session: u64, final_seq: u32) {
        if let Some(s) = self.current.as_mut().filter(|s| s.id == session) {
            let ext = s.extend(final_seq);
            if ext >= s.highest {
                s.final_seq = Some(ext);
            }
        }
    }

    /// Counts a packet that is stale for a reason the tracker cannot see
    /// (a snapshot part older than what is applied).
    pub fn count_stale(&mut self) {
        self.totals.stale += 1;
    }

    /// The id of the session being tracked, if any.
    pub fn session(&self) -> Option<u64> {
        self.current.as_ref().map(|s| s.id)
    }

    /// Counters over every session so far.
    pub fn counts(&self) -> Counts {
        let mut c = self.totals;
        if let Some(s) = &self.current {
            c.expected += s.expected();
            c.received += s.received;
        }
        c
    }

    fn start_session(&mut self, session: u64, seq: u32) {
        if let Some(old) = self.current.take() {
            self.totals.expected += old.expected();
            self.totals.received += old.received;
            self.totals.restarts += 1;
            if self.past.len() == PAST_SESSIONS {
                self.past.pop_front();
            }
            self.past.push_back(old.id);
        }
        self.current = Some(Session::new(session, seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRESH: Verdict = Verdict::Fresh {
        reordered: false,
        new_session: false,
    };
    const LATE: Verdict = Verdict::Fresh {
        reordered: true,
        new_session: false,
    };
    const NEW: Verdict = Verdict::Fresh {
        reordered: false,
        new_session: true,
    };

    fn feed(t: &mut Tracker, session: u64, seqs: &[u32]) -> Vec<Verdict> {
        seqs.iter().map(|&s| t.on_packet(session, s)).collect()
    }

    fn assert_invariant(c: &Counts) {
        assert!(c.received <= c.expected, "{c:?}");
        assert_eq!(c.received + c.lost(), c.expected);
    }

    #[test]
    fn serial_distance_follows_rfc1982() {
        assert_eq!(serial_distance(u32::MAX, 0), 1);
        assert_eq!(serial_distance(0, u32::MAX), -1);
        assert_eq!(serial_distance(5, 5), 0);
        assert_eq!(serial_distance(0, (1 << 31) - 1), (1 << 31) - 1);
        assert_eq!(serial_distance(0, 1 << 31), -(1 << 31));
    }

    #[test]
    fn in_order_stream_across_every_start_near_the_wrap() {
        // Exhaustive around the wrap: every start in the last 300 numbers
        // before 2^32, a 600-packet stream each, so each one crosses it.
        for start in (u32::MAX - 300)..=u32::MAX {
            let mut t = Tracker::new();
            let v = feed(
                &mut t,
                1,
                &(0..600).map(|i| start.wrapping_add(i)).collect::<Vec<_>>(),
            );
            assert_eq!(v[0], NEW);
            assert!(v[1..].iter().all(|&v| v == FRESH), "start {start}");
            let c = t.counts();
            assert_eq!((c.expected, c.received, c.lost()), (600, 600, 0));
        }
    }

    #[test]
    fn gaps_reorder_and_duplicates_across_the_wrap() {
        for start in (u32::MAX - 40)..=u32::MAX {
            let s = |i: u32| start.wrapping_add(i);
            let mut t = Tracker::new();
            // 0 1 3 2 2 5 (4 lost) 1 (dup)
            let v = feed(&mut t, 9, &[s(0), s(1), s(3), s(2), s(2), s(5), s(1)]);
            assert_eq!(
                v,
                [
                    NEW,
                    FRESH,
                    FRESH,
                    LATE,
                    Verdict::Duplicate,
                    FRESH,
                    Verdict::Duplicate
                ]
            );
            let c = t.counts();
            assert_eq!((c.expected, c.received, c.lost()), (6, 5, 1));
            assert_eq!((c.duplicates, c.reordered), (2, 1));
            assert_invariant(&c);
        }
    }

    #[test]
    fn duplicate_never_hides_a_loss() {
        let mut t = Tracker::new();
        feed(&mut t, 1, &[10, 11, 11, 13]);
        let c = t.counts();
        assert_eq!(
            (c.expected, c.received, c.lost(), c.duplicates),
            (4, 3, 1, 1)
        );
    }

    #[test]
    fn arrival_before_the_first_lowers_the_span() {
        let mut t = Tracker::new();
        let v = feed(&mut t, 1, &[100, 98, 101]);
        assert_eq!(v, [NEW, LATE, FRESH]);
        let c = t.counts();
        assert_eq!((c.expected, c.received, c.lost()), (4, 3, 1));
    }

    #[test]
    fn large_forward_jump_counts_the_gap_and_late_fillers_reduce_it() {
        let mut t = Tracker::new();
        feed(&mut t, 1, &[0, 100_000]);
        assert_eq!(t.counts().lost(), 99_999);
        // Within the window behind the highest: late but counted.
        assert_eq!(t.on_packet(1, 99_000), LATE);
        assert_eq!(t.counts().lost(), 99_998);
        // Beyond the window: stale, stays lost.
        assert_eq!(t.on_packet(1, 5), Verdict::Stale);
        let c = t.counts();
        assert_eq!((c.lost(), c.stale), (99_998, 1));
        assert_invariant(&c);
    }

    #[test]
    fn window_slots_are_forgotten_as_the_stream_advances() {
        let mut t = Tracker::new();
        let n = WINDOW as u32 * 3;
        for i in 0..n {
            assert_eq!(t.on_packet(1, i), if i == 0 { NEW } else { FRESH });
        }
        // One window behind the highest is still remembered as a duplicate.
        let highest = n - 1;
        assert_eq!(
            t.on_packet(1, highest - (WINDOW as u32 - 1)),
            Verdict::Duplicate
        );
        assert_eq!(t.on_packet(1, highest - WINDOW as u32), Verdict::Stale);
        assert_eq!(t.counts().lost(), 0);
    }

    #[test]
    fn half_space_distance_is_read_as_behind() {
        let mut t = Tracker::new();
        feed(&mut t, 1, &[0]);
        assert_eq!(t.on_packet(1, 1 << 31), Verdict::Stale);
        assert_eq!(t.counts().expected, 1);
    }

    #[test]
    fn restart_keeps_old_totals_and_old_session_is_stale() {
        let mut t = Tracker::new();
        feed(&mut t, 1, &[50, 51, 53]);
        assert_eq!(t.on_packet(2, 7), NEW);
        feed(&mut t, 2, &[8, 9]);
        // A late packet of session 1, even one it never delivered, is stale.
        assert_eq!(t.on_packet(1, 52), Verdict::Stale);
        let c = t.counts();
        assert_eq!((c.expected, c.received, c.lost()), (4 + 3, 3 + 3, 1));
        assert_eq!((c.restarts, c.stale), (1, 1));
        assert_invariant(&c);
    }

    #[test]
    fn past_sessions_are_bounded() {
        let mut t = Tracker::new();
        for id in 0..(PAST_SESSIONS as u64 + 3) {
            t.on_packet(id, 0);
        }
        assert_eq!(t.past.len(), PAST_SESSIONS);
        // The oldest was forgotten, so its reappearance is a new session.
        assert_eq!(t.on_packet(0, 1), NEW);
    }

    #[test]
    fn goodbye_counts_tail_loss() {
        let mut t = Tracker::new();
        feed(&mut t, 1, &[u32::MAX - 1, u32::MAX]);
        // Packets 0..=2 lost, goodbye copy 3 arrives announcing final seq 4.
        t.on_packet(1, 3);
        t.on_goodbye(1, 4);
        let c = t.counts();
        assert_eq!((c.expected, c.received, c.lost()), (7, 3, 4));
        // The last copy arriving later fills its own slot.
        t.on_packet(1, 4);
        assert_eq!(t.counts().lost(), 3);
        assert_invariant(&t.counts());
    }
}
