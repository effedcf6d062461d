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
//! negative. Packets of a replaced session that arrive later are stale.
//!
//! `expected` starts at the lowest number received, so the packets a
//! session sent before it say nothing by themselves. A sender report or a
//! goodbye does: its `packets_sent` counts every packet of the session up
//! to a number the receiver knows (the report's own, the goodbye's
//! `final_seq`), so the packets before the lowest received are
//! `head_loss = packets_sent - (last - lowest + 1)` (extended numbers,
//! never negative), kept apart from `lost` ([`Counts::head_loss`]).
//!
//! # One datagram changes nothing
//!
//! Without a key anyone who can reach the receiver can send it a
//! well-formed datagram, so no single datagram is believed when believing
//! it would change what the receiver follows (RFC 3550 appendix A.1 does the
//! same for RTP sources):
//!
//! * **Session probation.** The first session a tracker sees is taken at
//!   once (there is nothing yet to protect). After that, a new session id is
//!   a *candidate*: its packets are [`Verdict::Unproven`], not applied, until
//!   it shows [`MIN_SEQUENTIAL`] consecutive sequence numbers with no fresh
//!   packet of the current session in between. Then it is promoted: the
//!   consecutive run becomes the new session's first received numbers, the
//!   old session is replaced (a restart) and the promoting packet is fresh.
//!   A fresh packet of the current session drops the candidate (the current
//!   session is alive, so the candidate is not its successor); a packet of
//!   another new id replaces it (one candidate at a time). If the current
//!   session has said goodbye (a goodbye was received and nothing numbered
//!   after its `final_seq` since), a new session is promoted on its first
//!   packet: a clean restart costs nothing.
//! * **Jump confirmation.** A number more than [`MAX_DROPOUT`] ahead of the
//!   highest is held, [`Verdict::Unproven`], and changes nothing. It is
//!   believed when another number within [`MAX_MISORDER`] of it arrives:
//!   then both are received and the highest moves there. A held jump is
//!   forgotten when another far number replaces it or when the stream's
//!   highest comes within [`MAX_DROPOUT`] of it. A goodbye's `final_seq`
//!   more than [`MAX_DROPOUT`] ahead of the highest is not believed either.
//!
//! Unproven packets count in [`Counts::unproven`]. Those that take part in
//! a promotion or a confirmation also count in `received` from then on (they
//! lie in the span); the others count nowhere else, and if a later arrival
//! widens the span over their number, they count as lost: they were never
//! taken.
//!
//! Memory is fixed: one tracked session (a bitmap of [`WINDOW`] bits), one
//! candidate, one held jump and [`PAST_SESSIONS`] ids.

use std::collections::VecDeque;

/// How many sequence numbers behind the highest one the tracker remembers,
/// to tell a duplicate from a late arrival. Older arrivals are stale. A
/// protocol constant (`proto/PROTOCOL.md`), as [`PAST_SESSIONS`] is.
pub const WINDOW: u64 = 1 << 16;
/// How many replaced session ids are remembered, so that their late packets
/// are recognised as stale rather than as yet another restart. A protocol
/// constant (`proto/PROTOCOL.md`, "One datagram changes nothing"): the
/// figures depend on it, as a packet of the ninth session back is taken for
/// a new session id and counts as `unproven` (or a restart), not `stale`.
pub const PAST_SESSIONS: usize = 8;
/// Consecutive sequence numbers a new session id must show, with no fresh
/// packet of the current session in between, before it replaces the
/// current session (RFC 3550 appendix A.1's `MIN_SEQUENTIAL`).
pub const MIN_SEQUENTIAL: u32 = 2;
/// A sequence number more than this far ahead of the highest received is
/// held until confirmed (RFC 3550's `MAX_DROPOUT`). Below [`WINDOW`], so a
/// believed jump never makes a number behind it stale.
pub const MAX_DROPOUT: u64 = 3000;
/// How close to a held jump another number must be to confirm it (RFC
/// 3550's `MAX_MISORDER`).
pub const MAX_MISORDER: u64 = 100;

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
        /// It is the first packet processed of a new session (a restart, or
        /// the first stream).
        new_session: bool,
    },
    /// This number was already received in this session.
    Duplicate,
    /// From a replaced session, or older than the tracking window.
    Stale,
    /// Held on probation and not processed: a packet of a new session id
    /// that has not proven itself, or a number far ahead not yet confirmed.
    Unproven,
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
    /// New sessions promoted after the first one.
    pub restarts: u64,
    /// Packets held on probation (see module docs), whatever became of them.
    pub unproven: u64,
    /// Packets sent before the lowest number received, as the newest sender
    /// report or goodbye of each session tells (see module docs); 0 for a
    /// session that sent neither. Not in `expected`, so not in `lost`.
    pub head_loss: u64,
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
    /// A goodbye's final number, while nothing numbered after it arrived.
    final_seq: Option<u64>,
    received: u64,
    /// A number more than [`MAX_DROPOUT`] ahead of `highest`, held until confirmed.
    jump: Option<u64>,
    /// From the newest sender report or goodbye: (the extended number of
    /// the last packet its `packets_sent` counts, `packets_sent`).
    sent_up_to: Option<(u64, u64)>,
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
            jump: None,
            sent_up_to: None,
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

    /// Packets sent before the lowest number received: `packets_sent` less
    /// the numbers from the lowest to the last one it counts, never
    /// negative. It shrinks when a late arrival lowers the lowest.
    fn head_loss(&self) -> u64 {
        self.sent_up_to.map_or(0, |(last, sent)| {
            sent.saturating_sub(last.saturating_sub(self.lowest) + 1)
        })
    }

    /// Whether the session has said goodbye: a goodbye was received and
    /// nothing numbered after its final number has arrived since.
    fn said_goodbye(&self) -> bool {
        self.final_seq.is_some()
    }

    /// Advances the highest number to `ext`, forgetting the slots it reuses,
    /// a goodbye it passes (the session went on, so it did not end there)
    /// and a held jump it comes within [`MAX_DROPOUT`] of.
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
        if self.final_seq.is_some_and(|f| ext > f) {
            self.final_seq = None;
        }
        if self.jump.is_some_and(|j| j <= ext + MAX_DROPOUT) {
            self.jump = None;
        }
    }

    fn classify(&mut self, seq: u32) -> Verdict {
        let ext = self.extend(seq);
        if ext > self.highest + MAX_DROPOUT {
            return self.far_ahead(ext);
        }
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

    /// A number more than [`MAX_DROPOUT`] ahead: held, or, when it is within
    /// [`MAX_MISORDER`] of the held one (and not the same), the confirmation
    /// that moves the highest there.
    fn far_ahead(&mut self, ext: u64) -> Verdict {
        match self.jump {
            Some(held) if held != ext && held.abs_diff(ext) <= MAX_MISORDER => {
                self.advance(held.max(ext));
                self.mark(held);
                self.mark(ext);
                self.received += 2;
                Verdict::Fresh {
                    reordered: ext < held,
                    new_session: false,
                }
            }
            _ => {
                self.jump = Some(ext);
                Verdict::Unproven
            }
        }
    }
}

/// A new session id on probation: its latest run of consecutive numbers.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    id: u64,
    /// The first number of the run.
    first: u32,
    /// The last number of the run.
    last: u32,
    /// How many consecutive numbers the run holds.
    run: u32,
}

/// The sequence tracker for one receiver (any number of sessions, one at a
/// time; see the module docs for how a new one takes over).
#[derive(Debug, Default)]
pub struct Tracker {
    current: Option<Session>,
    candidate: Option<Candidate>,
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
        let verdict = if let Some(s) = self.current.as_mut().filter(|s| s.id == session) {
            let v = s.classify(seq);
            if matches!(v, Verdict::Fresh { .. }) {
                // The current session is alive: the candidate is not its successor.
                self.candidate = None;
            }
            v
        } else if self.past.contains(&session) {
            Verdict::Stale
        } else if self.current.as_ref().is_some_and(|s| !s.said_goodbye()) {
            self.probation(session, seq)
        } else {
            // The first session, or the successor of one that said goodbye.
            self.promote(session, seq, 1)
        };
        match verdict {
            Verdict::Fresh {
                reordered: true, ..
            } => self.totals.reordered += 1,
            Verdict::Duplicate => self.totals.duplicates += 1,
            Verdict::Stale => self.totals.stale += 1,
            Verdict::Unproven => self.totals.unproven += 1,
            Verdict::Fresh { .. } => {}
        }
        verdict
    }

    /// Records the final sequence number a goodbye announced for `session`, so
    /// loss at the end of the stream counts, and the session counts as having
    /// said goodbye. Call after `on_packet` said Fresh. A final number behind
    /// the highest received, or more than [`MAX_DROPOUT`] ahead of it, is
    /// not believed.
    pub fn on_goodbye(&mut self, session: u64, final_seq: u32) {
        if let Some(s) = self.current.as_mut().filter(|s| s.id == session) {
            let ext = s.extend(final_seq);
            if ext >= s.highest && ext - s.highest <= MAX_DROPOUT {
                s.final_seq = Some(ext);
            }
        }
    }

    /// Records that `session` has sent `packets_sent` packets up to and
    /// including number `last`: a sender report's own number and its
    /// `packets_sent`, or a goodbye's `final_seq` and `packets_sent`. Call
    /// after `on_packet` said Fresh for the report or goodbye. It sets
    /// [`Counts::head_loss`]; only a `last` after the one held replaces
    /// it (RFC 1982 order, as extended numbers), and a `last` behind the lowest number received or
    /// more than [`MAX_DROPOUT`] ahead of the highest is not believed.
    pub fn on_packets_sent(&mut self, session: u64, last: u32, packets_sent: u64) {
        if let Some(s) = self.current.as_mut().filter(|s| s.id == session) {
            let ext = s.extend(last);
            let believed = ext >= s.lowest && ext <= s.highest + MAX_DROPOUT;
            if believed && s.sent_up_to.is_none_or(|(held, _)| ext > held) {
                s.sent_up_to = Some((ext, packets_sent));
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

    /// The id of the new session on probation, if any.
    pub fn candidate(&self) -> Option<u64> {
        self.candidate.map(|c| c.id)
    }

    /// Counters over every session so far.
    pub fn counts(&self) -> Counts {
        let mut c = self.totals;
        if let Some(s) = &self.current {
            c.expected += s.expected();
            c.received += s.received;
            // Saturating: head loss is as large as a report says, and a
            // forged or broken one may say up to u64::MAX.
            c.head_loss = c.head_loss.saturating_add(s.head_loss());
        }
        c
    }

    /// A packet of a new session id while the current one has not said
    /// goodbye: extends the candidate's run of consecutive numbers (or starts
    /// one), and promotes it once the run is [`MIN_SEQUENTIAL`] long.
    fn probation(&mut self, session: u64, seq: u32) -> Verdict {
        let c = match self.candidate {
            Some(c) if c.id == session && seq == c.last.wrapping_add(1) => Candidate {
                last: seq,
                run: c.run + 1,
                ..c
            },
            _ => Candidate {
                id: session,
                first: seq,
                last: seq,
                run: 1,
            },
        };
        if c.run >= MIN_SEQUENTIAL {
            self.promote(session, c.first, c.run)
        } else {
            self.candidate = Some(c);
            Verdict::Unproven
        }
    }

    /// Makes `session` the current one, with the `run` consecutive numbers
    /// from `first` received; the replaced session's figures go to the totals.
    fn promote(&mut self, session: u64, first: u32, run: u32) -> Verdict {
        self.candidate = None;
        if let Some(old) = self.current.take() {
            self.totals.expected += old.expected();
            self.totals.received += old.received;
            self.totals.head_loss = self.totals.head_loss.saturating_add(old.head_loss());
            self.totals.restarts += 1;
            if self.past.len() == PAST_SESSIONS {
                self.past.pop_front();
            }
            self.past.push_back(old.id);
        }
        let mut s = Session::new(session, first);
        for i in 1..run {
            s.classify(first.wrapping_add(i));
        }
        self.current = Some(s);
        Verdict::Fresh {
            reordered: false,
            new_session: true,
        }
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
    fn large_forward_jump_counts_the_gap_once_confirmed_and_late_fillers_reduce_it() {
        let mut t = Tracker::new();
        let v = feed(&mut t, 1, &[0, 100_000, 100_001]);
        assert_eq!(v, [NEW, Verdict::Unproven, FRESH]);
        assert_eq!(t.counts().lost(), 99_999);
        // Within the window behind the highest: late but counted.
        assert_eq!(t.on_packet(1, 99_000), LATE);
        assert_eq!(t.counts().lost(), 99_998);
        // Beyond the window: stale, stays lost.
        assert_eq!(t.on_packet(1, 5), Verdict::Stale);
        let c = t.counts();
        assert_eq!((c.lost(), c.stale, c.unproven), (99_998, 1, 1));
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
        // No goodbye: the new session proves itself with MIN_SEQUENTIAL numbers.
        assert_eq!(feed(&mut t, 2, &[7, 8, 9]), [Verdict::Unproven, NEW, FRESH]);
        // A late packet of session 1, even one it never delivered, is stale.
        assert_eq!(t.on_packet(1, 52), Verdict::Stale);
        let c = t.counts();
        assert_eq!((c.expected, c.received, c.lost()), (4 + 3, 3 + 3, 1));
        assert_eq!((c.restarts, c.stale, c.unproven), (1, 1, 1));
        assert_invariant(&c);
    }

    #[test]
    fn past_sessions_are_bounded() {
        let mut t = Tracker::new();
        for id in 0..(PAST_SESSIONS as u64 + 3) {
            feed(&mut t, id, &[0, 1]);
            assert_eq!(t.session(), Some(id));
        }
        assert_eq!(t.past.len(), PAST_SESSIONS);
        // The oldest was forgotten, so its reappearance is a new candidate.
        assert_eq!(t.on_packet(0, 2), Verdict::Unproven);
        assert_eq!(t.on_packet(0, 3), NEW);
        assert_eq!(t.counts().restarts, PAST_SESSIONS as u64 + 3);
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

    #[test]
    fn a_report_or_a_goodbye_counts_the_packets_before_the_first_received() {
        // The session began at u32::MAX - 4 and the receiver joined late:
        // its first packet is 0, after the wrap, so 5 came before it.
        let mut t = Tracker::new();
        feed(&mut t, 1, &[0, 1]);
        assert_eq!(t.counts().head_loss, 0, "nothing says where it began");
        // Sender report number 2 counts itself: 5 before, then 0, 1, 2.
        t.on_packet(1, 2);
        t.on_packets_sent(1, 2, 8);
        let c = t.counts();
        assert_eq!((c.expected, c.received, c.head_loss), (3, 3, 5));
        // A late arrival from before the span moves two numbers into it.
        assert_eq!(t.on_packet(1, u32::MAX - 1), LATE);
        let c = t.counts();
        assert_eq!((c.expected, c.lost(), c.head_loss), (5, 1, 3));
        // An older report (by number) is not taken, whatever it says.
        t.on_packets_sent(1, 1, 1_000);
        assert_eq!(t.counts().head_loss, 3);
        // 3 and 4 lost; goodbye copy 5 of final 7 says 13 in all.
        t.on_packet(1, 5);
        t.on_goodbye(1, 7);
        t.on_packets_sent(1, 7, 13);
        let c = t.counts();
        assert_eq!((c.expected, c.received, c.head_loss), (10, 5, 3));
        assert_eq!(c.expected + c.head_loss, 13, "every packet sent");
        assert_invariant(&c);
        // A replaced session's head loss stays in the totals.
        assert_eq!(t.on_packet(2, 40), NEW);
        assert_eq!(t.counts().head_loss, 3);
        // A count smaller than the span it covers gives no head loss.
        t.on_packet(2, 41);
        t.on_packets_sent(2, 41, 1);
        assert_eq!(t.counts().head_loss, 3);
        // Regression (found by the fuzzer): a report claiming u64::MAX
        // packets, in two sessions, saturates instead of overflowing.
        t.on_packet(2, 42);
        t.on_packets_sent(2, 42, u64::MAX);
        t.on_goodbye(2, 42);
        assert_eq!(t.on_packet(3, 7), NEW);
        t.on_packets_sent(3, 7, u64::MAX);
        assert_eq!(t.counts().head_loss, u64::MAX);
    }

    // ---- session probation ----

    #[test]
    fn first_session_is_taken_at_once() {
        let mut t = Tracker::new();
        assert_eq!(t.on_packet(5, 100), NEW);
        let c = t.counts();
        assert_eq!(
            (c.expected, c.received, c.unproven, c.restarts),
            (1, 1, 0, 0)
        );
    }

    #[test]
    fn candidate_is_promoted_after_min_sequential_across_the_wrap_with_exact_figures() {
        // A broadcaster that died without a goodbye restarts; its new
        // numbers cross the wrap during probation for some starts.
        for start in (u32::MAX - 3)..=u32::MAX {
            let mut t = Tracker::new();
            feed(&mut t, 1, &(10..20).collect::<Vec<_>>());
            let seqs: Vec<u32> = (0..50).map(|i| start.wrapping_add(i)).collect();
            let v = feed(&mut t, 2, &seqs);
            assert_eq!(v[..MIN_SEQUENTIAL as usize - 1], [Verdict::Unproven]);
            assert_eq!(v[MIN_SEQUENTIAL as usize - 1], NEW, "start {start}");
            assert!(v[MIN_SEQUENTIAL as usize..].iter().all(|&v| v == FRESH));
            assert_eq!(t.session(), Some(2));
            let c = t.counts();
            // Nothing is lost: the probation packet counts once promoted.
            assert_eq!((c.expected, c.received, c.lost()), (60, 60, 0));
            assert_eq!((c.restarts, c.unproven, c.stale), (1, 1, 0));
            assert_invariant(&c);
        }
    }

    #[test]
    fn single_forged_new_session_is_abandoned_when_the_current_session_goes_on() {
        let mut t = Tracker::new();
        feed(&mut t, 1, &[0, 1, 2]);
        assert_eq!(t.on_packet(0xbad, 77), Verdict::Unproven);
        assert_eq!(t.candidate(), Some(0xbad));
        assert_eq!(t.on_packet(1, 3), FRESH);
        assert_eq!(t.candidate(), None, "the live session dropped it");
        let v = feed(&mut t, 1, &(4..100).collect::<Vec<_>>());
        assert!(v.iter().all(|&v| v == FRESH));
        let c = t.counts();
        assert_eq!((c.expected, c.received, c.lost()), (100, 100, 0));
        assert_eq!((c.restarts, c.unproven, c.stale), (0, 1, 0));
        assert_eq!(t.session(), Some(1));
    }

    #[test]
    fn forged_new_session_interleaved_with_the_real_stream_never_takes_over() {
        // Consecutive forged numbers, one between each pair of real packets.
        let mut t = Tracker::new();
        for i in 0..1_000u32 {
            assert_eq!(t.on_packet(1, i), if i == 0 { NEW } else { FRESH });
            assert_eq!(t.on_packet(0xbad, 5_000 + i), Verdict::Unproven);
        }
        let c = t.counts();
        assert_eq!((c.expected, c.received, c.lost()), (1_000, 1_000, 0));
        assert_eq!((c.restarts, c.unproven, c.stale), (0, 1_000, 0));
        assert_eq!(t.session(), Some(1));
    }

    #[test]
    fn abandoned_candidate_counts_only_as_unproven() {
        let mut t = Tracker::new();
        feed(&mut t, 1, &[0, 1]);
        // A broken run starts over; its first packet is never taken.
        assert_eq!(
            feed(&mut t, 2, &[7, 9, 10, 11]),
            [Verdict::Unproven, Verdict::Unproven, NEW, FRESH]
        );
        let c = t.counts();
        assert_eq!((c.expected, c.received, c.lost()), (2 + 3, 2 + 3, 0));
        assert_eq!((c.restarts, c.unproven), (1, 2));
        // 8 arrives late: the span widens to 8, fresh. 7, never taken,
        // arrives again: a reordered arrival like any other.
        assert_eq!(t.on_packet(2, 8), LATE);
        assert_eq!(t.on_packet(2, 7), LATE);
        let c = t.counts();
        assert_eq!((c.expected, c.received, c.lost()), (2 + 5, 2 + 5, 0));
        assert_invariant(&c);
    }

    #[test]
    fn a_duplicate_of_a_candidate_packet_does_not_prove_it() {
        let mut t = Tracker::new();
        feed(&mut t, 1, &[0]);
        assert_eq!(
            feed(&mut t, 2, &[7, 7, 7]),
            [Verdict::Unproven, Verdict::Unproven, Verdict::Unproven]
        );
        assert_eq!(t.session(), Some(1));
        assert_eq!(t.on_packet(2, 8), NEW);
    }

    #[test]
    fn one_candidate_at_a_time_the_newest_replaces_it() {
        let mut t = Tracker::new();
        feed(&mut t, 1, &[0]);
        assert_eq!(t.on_packet(2, 7), Verdict::Unproven);
        assert_eq!(t.on_packet(3, 1), Verdict::Unproven);
        assert_eq!(t.candidate(), Some(3));
        // Session 2's next number starts its run over, replacing 3.
        assert_eq!(t.on_packet(2, 8), Verdict::Unproven);
        assert_eq!(t.on_packet(3, 2), Verdict::Unproven);
        assert_eq!(t.on_packet(3, 3), NEW);
        assert_eq!(t.session(), Some(3));
        let c = t.counts();
        assert_eq!(
            (c.expected, c.received, c.unproven, c.restarts),
            (1 + 2, 1 + 2, 4, 1)
        );
    }

    #[test]
    fn goodbye_then_new_session_promotes_at_once() {
        let mut t = Tracker::new();
        feed(&mut t, 1, &[0, 1, 2, 3]);
        t.on_goodbye(1, 5); // copy 3 of final 5: 4 and 5 lost
        assert_eq!(t.on_packet(2, 900), NEW);
        assert_eq!(t.on_packet(1, 4), Verdict::Stale);
        let c = t.counts();
        assert_eq!((c.expected, c.received, c.lost()), (6 + 1, 4 + 1, 2));
        assert_eq!((c.restarts, c.unproven, c.stale), (1, 0, 1));
        assert_invariant(&c);
    }

    #[test]
    fn a_goodbye_the_session_outlived_lets_no_new_session_in_at_once() {
        // A forged goodbye (keyless), then the real stream goes on past it.
        let mut t = Tracker::new();
        feed(&mut t, 1, &[0, 1]);
        assert_eq!(t.on_packet(1, 2), FRESH);
        t.on_goodbye(1, 2);
        assert_eq!(t.on_packet(1, 3), FRESH);
        assert_eq!(t.on_packet(0xbad, 0), Verdict::Unproven);
        assert_eq!(t.on_packet(1, 4), FRESH);
        let c = t.counts();
        assert_eq!((c.expected, c.received, c.restarts), (5, 5, 0));
    }

    #[test]
    fn a_goodbye_far_ahead_is_not_believed() {
        let mut t = Tracker::new();
        feed(&mut t, 1, &[0, 1, 2]);
        t.on_goodbye(1, 2 + MAX_DROPOUT as u32 + 1);
        assert_eq!((t.counts().expected, t.counts().lost()), (3, 0));
        // Not a goodbye either: a new session still needs probation.
        assert_eq!(t.on_packet(2, 0), Verdict::Unproven);
        // Within MAX_DROPOUT it is believed, tail loss and all.
        t.on_goodbye(1, 2 + MAX_DROPOUT as u32);
        assert_eq!(t.counts().lost(), MAX_DROPOUT);
        assert_eq!(t.on_packet(3, 0), NEW);
    }

    // ---- jump confirmation ----

    #[test]
    fn single_forged_jump_is_ignored() {
        let mut t = Tracker::new();
        feed(&mut t, 1, &(0..10).collect::<Vec<_>>());
        assert_eq!(t.on_packet(1, 100_009), Verdict::Unproven);
        // Sent twice, it still does not confirm itself.
        assert_eq!(t.on_packet(1, 100_009), Verdict::Unproven);
        let v = feed(&mut t, 1, &(10..5_000).collect::<Vec<_>>());
        assert!(v.iter().all(|&v| v == FRESH), "no real packet made stale");
        let c = t.counts();
        assert_eq!((c.expected, c.received, c.lost()), (5_000, 5_000, 0));
        assert_eq!((c.unproven, c.stale, c.duplicates), (2, 0, 0));
    }

    #[test]
    fn jump_is_held_then_confirmed_either_way_round() {
        let far = MAX_DROPOUT as u32 + 1;
        let mut t = Tracker::new();
        feed(&mut t, 1, &[0]);
        assert_eq!(feed(&mut t, 1, &[far, far + 1]), [Verdict::Unproven, FRESH]);
        let c = t.counts();
        assert_eq!(
            (c.expected, c.received, c.lost()),
            (u64::from(far) + 2, 3, u64::from(far) - 1)
        );
        // The confirming number may be just below the held one: reordered.
        let mut t = Tracker::new();
        feed(&mut t, 1, &[0]);
        assert_eq!(feed(&mut t, 1, &[far + 1, far]), [Verdict::Unproven, LATE]);
        assert_eq!(t.counts().received, 3);
        assert_eq!(t.on_packet(1, far + 1), Verdict::Duplicate);
    }

    #[test]
    fn jump_thresholds_are_exact() {
        // Exactly MAX_DROPOUT ahead is believed at once; one more is held.
        let mut t = Tracker::new();
        feed(&mut t, 1, &[0]);
        assert_eq!(t.on_packet(1, MAX_DROPOUT as u32), FRESH);
        assert_eq!(
            t.on_packet(1, 2 * MAX_DROPOUT as u32 + 1),
            Verdict::Unproven
        );
        // MAX_MISORDER away confirms; one more replaces the held number.
        let held = 2 * MAX_DROPOUT as u32 + 1;
        let mut u = Tracker::new();
        feed(&mut u, 1, &[0, MAX_DROPOUT as u32, held]);
        assert_eq!(
            u.on_packet(1, held + MAX_MISORDER as u32 + 1),
            Verdict::Unproven
        );
        assert_eq!(
            u.on_packet(1, held + 2 * MAX_MISORDER as u32 + 1),
            FRESH,
            "confirms the number that replaced the first held one"
        );
        assert_eq!(u.counts().unproven, 2);
        assert_eq!(t.counts().unproven, 1);
    }

    #[test]
    fn jump_across_the_wrap_is_held_then_confirmed() {
        for start in [u32::MAX - 10, u32::MAX - 2_000, u32::MAX] {
            let mut t = Tracker::new();
            feed(&mut t, 1, &[start, start.wrapping_add(1)]);
            let far = start.wrapping_add(10_000); // past the wrap
            assert_eq!(t.on_packet(1, far), Verdict::Unproven);
            assert_eq!(t.counts().expected, 2);
            assert_eq!(t.on_packet(1, far.wrapping_add(2)), FRESH);
            let c = t.counts();
            assert_eq!((c.expected, c.received, c.lost()), (10_003, 4, 9_999));
            // A forged jump across the wrap from there is ignored.
            assert_eq!(t.on_packet(1, far.wrapping_add(1 << 30)), Verdict::Unproven);
            assert_eq!(t.on_packet(1, far.wrapping_add(3)), FRESH);
            assert_eq!(t.counts().lost(), 9_999);
            assert_invariant(&t.counts());
        }
    }

    #[test]
    fn held_jump_is_forgotten_once_the_stream_comes_near_it() {
        let mut t = Tracker::new();
        feed(&mut t, 1, &[0]);
        let held = 5_000u32;
        assert_eq!(t.on_packet(1, held), Verdict::Unproven);
        // The stream advances to within MAX_DROPOUT of the held number.
        feed(&mut t, 1, &(1..=2_000).collect::<Vec<_>>());
        // Now the held number counts as never taken: its neighbour, far
        // from 2000 again, is held in turn rather than confirming it.
        assert_eq!(
            t.on_packet(1, 5_001 + MAX_DROPOUT as u32),
            Verdict::Unproven
        );
        let c = t.counts();
        assert_eq!((c.expected, c.received, c.unproven), (2_001, 2_001, 2));
    }

    #[test]
    fn far_behind_stays_stale_with_a_jump_held() {
        let mut t = Tracker::new();
        let n = WINDOW as u32 + 10;
        feed(&mut t, 1, &(0..n).collect::<Vec<_>>());
        assert_eq!(t.on_packet(1, n + 50_000), Verdict::Unproven);
        assert_eq!(t.on_packet(1, 5), Verdict::Stale);
        assert_eq!(t.counts().lost(), 0);
    }
}
