//! The expected-figures oracle: from the conditioner's own decisions, and
//! never from [`crate::core::tracker::Tracker`], what a tickcast receiver
//! that gets exactly the released datagrams, in release order, must report
//! ([`ExpectedFigures`]; the rules are in the parent module's "Exact counts,
//! in the receiver's terms").
//!
//! It keeps one [`Book`] per recent session: the numbers the conditioner saw
//! go missing (dropped, held, or released too late) and, once something of
//! the session was delivered, the receiver's view of it (a [`Span`]). It
//! shares only the RFC 1982 rule, [`serial_distance`], with the tracker: the
//! span, window, duplicate and restart logic is its own, so the two check
//! each other.

use std::collections::{BTreeSet, VecDeque};

use serde::Serialize;

use crate::core::tracker::{
    serial_distance, MAX_DROPOUT, MAX_MISORDER, MIN_SEQUENTIAL, PAST_SESSIONS, WINDOW,
};

/// Extended numbers start here (a multiple of 2^32, so an extended number's
/// low 32 bits are its sequence number) so that arrivals below the first
/// one never underflow.
const EXT_ORIGIN: u64 = 1 << 40;
/// Sessions whose drops are remembered at once; the oldest beyond that
/// (never the one being tracked) is forgotten.
const MAX_BOOKS: usize = 64;

/// The figures a tickcast receiver that gets exactly the released datagrams,
/// in release order, must report (same names and meanings as
/// [`crate::core::figures::Figures`]); computed from the conditioner's own decisions.
/// `received + lost + unseen == expected` always holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ExpectedFigures {
    /// Per session, highest − lowest number delivered + 1, the highest
    /// raised to a delivered goodbye's `final_seq`; summed over sessions.
    pub expected: u64,
    /// Distinct numbers delivered (each once).
    pub received: u64,
    /// Numbers in the expected span that the conditioner saw and the
    /// receiver did not receive: dropped, held right now, or released too
    /// late to count. A receiver's `lost` is `lost + unseen`.
    pub lost: u64,
    /// Deliveries of a number already delivered in that session.
    pub duplicates: u64,
    /// First deliveries after a higher number of the same session.
    pub reordered: u64,
    /// New session ids delivered after the first.
    pub restarts: u64,
    /// Delivered datagrams that do not decode.
    pub malformed: u64,
    /// Delivered valid datagrams outside the stream (subscription kinds).
    pub control_datagrams: u64,
    /// Every datagram delivered (the receiver's `datagrams`).
    pub datagrams: u64,
    /// Numbers in the expected span that never reached the conditioner (lost
    /// before it): 0 when it is the only place datagrams are lost.
    pub unseen: u64,
}

/// What the conditioner read from a stream datagram.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tag {
    session: u64,
    seq: u32,
    /// Extended against the newest number pushed in this session.
    ext: u64,
    goodbye_final: Option<u32>,
}

/// `seq` extended against the extended number `near`.
fn extend(near: u64, seq: u32) -> u64 {
    near.wrapping_add_signed(serial_distance(near as u32, seq))
}

/// What a receiver tracks of one session, rebuilt from the delivered order.
#[derive(Debug)]
struct Span {
    lowest: u64,
    highest: u64,
    /// A delivered goodbye's final number, while nothing after it was delivered.
    final_ext: Option<u64>,
    /// A number more than `MAX_DROPOUT` ahead of `highest`, held until confirmed.
    jump: Option<u64>,
    received: u64,
    /// Numbers delivered within the window behind `highest`.
    delivered: BTreeSet<u64>,
}

impl Span {
    fn top(&self) -> u64 {
        self.highest.max(self.final_ext.unwrap_or(0))
    }

    fn expected(&self) -> u64 {
        self.top() - self.lowest + 1
    }

    /// The highest moves up to `ext`: a goodbye it passes and a held jump
    /// it comes within `MAX_DROPOUT` of are forgotten, as the receiver does.
    fn raise(&mut self, ext: u64) {
        self.highest = ext;
        if self.final_ext.is_some_and(|f| ext > f) {
            self.final_ext = None;
        }
        if self.jump.is_some_and(|j| j <= ext + MAX_DROPOUT) {
            self.jump = None;
        }
    }
}

/// Everything known about one session: drops, and the receiver's view once
/// something of it was delivered.
#[derive(Debug)]
struct Book {
    id: u64,
    /// Newest number pushed, extended.
    pushed_highest: u64,
    /// Newest number delivered, extended (for the conditioner's `reordered` count).
    delivered_highest: Option<u64>,
    /// Numbers pushed (dropped, held, or released too late) and not
    /// received, extended; those `WINDOW` behind the highest are settled.
    missing: BTreeSet<u64>,
    /// Missing numbers settled as inside the span for good.
    settled_lost: u64,
    span: Option<Span>,
}

impl Book {
    fn new(id: u64, ext: u64) -> Book {
        Book {
            id,
            pushed_highest: ext,
            delivered_highest: None,
            missing: BTreeSet::new(),
            settled_lost: 0,
            span: None,
        }
    }

    /// Lost as a receiver counts it: missing numbers in the span.
    fn lost(&self) -> u64 {
        self.span.as_ref().map_or(0, |s| {
            self.settled_lost + self.missing.range(s.lowest..=s.top()).count() as u64
        })
    }

    /// Notes a number the conditioner saw that is not received (yet).
    fn note_missing(&mut self, ext: u64) {
        match &self.span {
            Some(s) if s.delivered.contains(&ext) => {}
            // Stale if it is ever released: missing for good, if in the span.
            Some(s) if s.highest - ext.min(s.highest) >= WINDOW => {
                self.settled_lost += u64::from(ext >= s.lowest);
            }
            _ => {
                self.missing.insert(ext);
            }
        }
    }

    /// Forgets what is `WINDOW` or more behind the highest delivered: such
    /// numbers are stale for the receiver, so a missing one there is settled
    /// (inside the span now means inside it for good, as the lowest can only
    /// move to numbers within the window) and a delivery there is never a
    /// duplicate.
    fn settle(&mut self) {
        let Some(s) = &mut self.span else { return };
        let keep_from = s.highest.saturating_sub(WINDOW) + 1;
        s.delivered = s.delivered.split_off(&keep_from);
        let recent = self.missing.split_off(&keep_from);
        let old = std::mem::replace(&mut self.missing, recent);
        self.settled_lost += old.range(s.lowest..).count() as u64;
    }
}

/// How a delivered datagram looks to the receiver's sequence tracking.
enum Verdict {
    Fresh {
        reordered: bool,
    },
    Duplicate,
    Stale,
    /// Held by the receiver's probation: not received (yet).
    Unproven,
}

/// A new session id on probation, as the receiver keeps it.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    id: u64,
    /// Extended number of the first of its run of consecutive numbers.
    first_ext: u64,
    last: u32,
    run: u32,
}

/// What a receiver behind the conditioner must report, kept from the
/// conditioner's decisions as datagrams are pushed and released.
#[derive(Debug, Default)]
pub(super) struct Oracle {
    books: Vec<Book>,
    /// The session the receiver tracks now.
    current: Option<u64>,
    /// The new session the receiver holds on probation.
    candidate: Option<Candidate>,
    /// Sessions the receiver replaced, newest last, at most [`PAST_SESSIONS`].
    past: VecDeque<u64>,
    /// Figures of replaced sessions plus the session-independent counters.
    totals: ExpectedFigures,
}

impl Oracle {
    /// A stream datagram of `session` numbered `seq` was pushed (a goodbye
    /// announcing `goodbye_final`): its tag, the number extended against the
    /// newest one pushed in its session.
    pub(super) fn tag(&mut self, session: u64, seq: u32, goodbye_final: Option<u32>) -> Tag {
        let i = self.book_index(session, EXT_ORIGIN + u64::from(seq));
        let book = &mut self.books[i];
        let ext = extend(book.pushed_highest, seq);
        book.pushed_highest = book.pushed_highest.max(ext);
        Tag {
            session,
            seq,
            ext,
            goodbye_final,
        }
    }

    /// The fate of a pushed stream datagram was decided: until it is
    /// delivered, its number is missing.
    pub(super) fn note_pushed(&mut self, tag: Tag) {
        let i = self.book_index(tag.session, tag.ext);
        self.books[i].note_missing(tag.ext);
    }

    /// A datagram that does not decode was released: the receiver counts it
    /// malformed.
    pub(super) fn deliver_undecoded(&mut self) {
        self.totals.datagrams += 1;
        self.totals.malformed += 1;
    }

    /// A valid datagram outside the stream was released.
    pub(super) fn deliver_control(&mut self) {
        self.totals.datagrams += 1;
        self.totals.control_datagrams += 1;
    }

    /// The figures so far (see [`ExpectedFigures`]).
    pub(super) fn figures(&self) -> ExpectedFigures {
        let mut f = self.totals;
        if let Some(b) = self.current.and_then(|id| self.book(id)) {
            let s = b.span.as_ref().expect("the current session has a span");
            f.expected += s.expected();
            f.received += s.received;
            f.lost += b.lost();
        }
        // Never negative for a source that sends each number once.
        f.unseen = f.expected.saturating_sub(f.received + f.lost);
        f
    }

    fn book(&self, id: u64) -> Option<&Book> {
        self.books.iter().find(|b| b.id == id)
    }

    /// The book of session `id`, created with `ext` as its newest number if
    /// there is none.
    fn book_index(&mut self, id: u64, ext: u64) -> usize {
        if let Some(i) = self.books.iter().position(|b| b.id == id) {
            return i;
        }
        if self.books.len() == MAX_BOOKS {
            let current = self.current;
            if let Some(i) = self.books.iter().position(|b| Some(b.id) != current) {
                self.books.remove(i);
            }
        }
        self.books.push(Book::new(id, ext));
        self.books.len() - 1
    }

    /// Accounts one released stream datagram (`copy`: a duplicate's second
    /// release) as the receiver will see it. Returns whether the
    /// conditioner reordered it ([`ConditionerCounts::reordered`]).
    ///
    /// [`ConditionerCounts::reordered`]: super::ConditionerCounts::reordered
    pub(super) fn deliver(&mut self, tag: Tag, copy: bool) -> bool {
        self.totals.datagrams += 1;
        let i = self.book_index(tag.session, tag.ext);
        let book = &mut self.books[i];
        let overtaken = !copy && book.delivered_highest.is_some_and(|h| tag.ext < h);
        book.delivered_highest = Some(book.delivered_highest.map_or(tag.ext, |h| h.max(tag.ext)));

        let verdict = if self.current == Some(tag.session) {
            let v = Self::classify(&mut self.books[i], tag.seq);
            if matches!(v, Verdict::Fresh { .. }) {
                self.candidate = None;
            }
            v
        } else if self.past.contains(&tag.session) {
            Verdict::Stale
        } else if self.current_said_goodbye() == Some(false) {
            self.probation(tag)
        } else {
            self.start_session(tag.session, tag.ext, 1);
            Verdict::Fresh { reordered: false }
        };
        match verdict {
            Verdict::Stale | Verdict::Unproven => {}
            Verdict::Duplicate => self.totals.duplicates += 1,
            Verdict::Fresh { reordered } => {
                self.totals.reordered += u64::from(reordered);
                if let Some(final_seq) = tag.goodbye_final {
                    let i = self.book_index(tag.session, tag.ext);
                    let s = self.books[i].span.as_mut().expect("fresh means tracked");
                    let f = extend(s.highest, final_seq);
                    if f >= s.highest && f - s.highest <= MAX_DROPOUT {
                        s.final_ext = Some(f);
                    }
                }
            }
        }
        overtaken
    }

    /// Whether the current session said goodbye (`None`: there is none).
    fn current_said_goodbye(&self) -> Option<bool> {
        let b = self.book(self.current?)?;
        Some(b.span.as_ref().is_some_and(|s| s.final_ext.is_some()))
    }

    /// A delivery of a new session id while the current one has not said
    /// goodbye: the receiver's probation.
    fn probation(&mut self, tag: Tag) -> Verdict {
        let c = match self.candidate {
            Some(c) if c.id == tag.session && tag.seq == c.last.wrapping_add(1) => Candidate {
                last: tag.seq,
                run: c.run + 1,
                ..c
            },
            _ => Candidate {
                id: tag.session,
                first_ext: tag.ext,
                last: tag.seq,
                run: 1,
            },
        };
        if c.run >= MIN_SEQUENTIAL {
            self.start_session(c.id, c.first_ext, c.run);
            Verdict::Fresh { reordered: false }
        } else {
            self.candidate = Some(c);
            Verdict::Unproven
        }
    }

    /// The receiver's classification of a number of the current session.
    fn classify(book: &mut Book, seq: u32) -> Verdict {
        let s = book.span.as_mut().expect("the current session has a span");
        let ext = extend(s.highest, seq);
        let reordered = if ext > s.highest + MAX_DROPOUT {
            match s.jump {
                Some(held) if held != ext && held.abs_diff(ext) <= MAX_MISORDER => {
                    s.raise(held.max(ext));
                    s.jump = None;
                    s.delivered.insert(held);
                    s.received += 1;
                    book.missing.remove(&held);
                    ext < held
                }
                _ => {
                    s.jump = Some(ext);
                    return Verdict::Unproven;
                }
            }
        } else if ext > s.highest {
            s.raise(ext);
            false
        } else if s.highest - ext >= WINDOW {
            return Verdict::Stale;
        } else if ext >= s.lowest && s.delivered.contains(&ext) {
            return Verdict::Duplicate;
        } else {
            s.lowest = s.lowest.min(ext);
            true
        };
        let s = book.span.as_mut().expect("the current session has a span");
        s.delivered.insert(ext);
        s.received += 1;
        book.missing.remove(&ext);
        book.settle();
        Verdict::Fresh { reordered }
    }

    /// A session the receiver takes over, with the `run` consecutive
    /// numbers from `first_ext` received: the current session's figures go
    /// to the totals and counting starts afresh.
    fn start_session(&mut self, session: u64, first_ext: u64, run: u32) {
        self.candidate = None;
        if let Some(old) = self.current.take() {
            if let Some(i) = self.books.iter().position(|b| b.id == old) {
                let b = self.books.remove(i);
                let s = b.span.as_ref().expect("the current session has a span");
                self.totals.expected += s.expected();
                self.totals.received += s.received;
                self.totals.lost += b.lost();
            }
            self.totals.restarts += 1;
            if self.past.len() == PAST_SESSIONS {
                self.past.pop_front();
            }
            self.past.push_back(old);
        }
        let i = self.book_index(session, first_ext);
        let book = &mut self.books[i];
        let run: Vec<u64> = (0..u64::from(run)).map(|k| first_ext + k).collect();
        for ext in &run {
            book.missing.remove(ext);
        }
        book.span = Some(Span {
            lowest: first_ext,
            highest: first_ext + run.len() as u64 - 1,
            final_ext: None,
            jump: None,
            received: run.len() as u64,
            delivered: run.into_iter().collect(),
        });
        book.settle();
        self.current = Some(session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::conditioner::testkit::{
        check_invariants, cond, control, goodbye, receiver_figures, run, snap, stream, MS,
    };
    use crate::core::conditioner::Decision;
    use crate::wire::{Body, Ping, Pong};

    /// The hand-built case: every figure is known in advance.
    #[test]
    fn scripted_decisions_give_exact_counts() {
        let s = |i: u32| (u32::MAX - 2).wrapping_add(i); // wraps between 2 and 3
        let keep = Decision::default();
        let drop = Decision { drop: true, ..keep };
        let hold = Decision {
            hold_back: true,
            ..keep
        };
        let dup = Decision {
            duplicate: true,
            ..keep
        };
        let ping = control(
            1,
            0,
            Body::Ping(Ping {
                nonce: 1,
                sent_ns: 1,
            }),
        );
        let mut c = cond("gap=10ms");
        let script: Vec<(Vec<u8>, Decision)> = vec![
            (snap(1, s(0), 0), drop), // before the first delivered: invisible
            (snap(1, s(1), 1), hold), // overtaken by 2 and 3: reordered, widens the span
            (snap(1, s(2), 2), keep),
            (snap(1, s(3), 3), drop),         // inside the span: lost
            (snap(1, s(4), 4), dup),          // one duplicate
            (b"not tickcast".to_vec(), drop), // undecodable: passed, the decision is ignored
            (snap(1, s(5), 5), keep),
            (ping, keep),                   // outside the stream: control
            (goodbye(1, s(6), s(8)), drop), // goodbye copies 6 and 7 dropped,
            (goodbye(1, s(7), s(8)), drop),
            (goodbye(1, s(8), s(8)), keep), // 8 delivered: tail loss 6, 7 counted
            (snap(1, s(9), 9), drop),       // after the goodbye's end: invisible
        ];
        let mut out = Vec::new();
        for (i, (d, decision)) in script.iter().enumerate() {
            c.push_decided(i as u64 * MS, d, *decision);
            while let Some(d) = c.poll_transmit(i as u64 * MS) {
                out.push(d);
            }
        }
        while let Some(d) = c.poll_transmit(u64::MAX) {
            out.push(d);
        }
        let k = c.counts();
        assert_eq!(
            (k.datagrams_in, k.passed_undecoded, k.dropped, k.duplicated),
            (12, 1, 5, 1)
        );
        assert_eq!(
            (k.held_back, k.delivered, k.reordered, k.held),
            (1, 8, 1, 0)
        );
        let e = c.expected_receiver_figures();
        // Span s(1)..=s(8): 8 numbers; received 1, 2, 4, 5, 8; lost 3, 6, 7.
        assert_eq!(
            (e.expected, e.received, e.lost, e.duplicates, e.reordered),
            (8, 5, 3, 1, 1)
        );
        assert_eq!(
            (
                e.malformed,
                e.control_datagrams,
                e.datagrams,
                e.unseen,
                e.restarts
            ),
            (1, 1, 8, 0, 0)
        );
        assert_eq!(receiver_figures(&out), e);
        check_invariants(&c);
    }

    #[test]
    fn drops_before_the_first_delivered_are_invisible_until_a_late_one_widens_the_span() {
        let keep = Decision::default();
        let drop = Decision { drop: true, ..keep };
        let mut c = cond("gap=10ms");
        c.push_decided(0, &snap(1, 10, 0), drop);
        c.push_decided(
            0,
            &snap(1, 11, 0),
            Decision {
                hold_back: true,
                ..keep
            },
        );
        c.push_decided(0, &snap(1, 12, 0), drop);
        c.push_decided(0, &snap(1, 13, 0), keep);
        c.poll_transmit(0);
        let e = c.expected_receiver_figures();
        assert_eq!((e.expected, e.received, e.lost), (1, 1, 0));
        assert_eq!(c.counts().dropped, 2);
        c.poll_transmit(u64::MAX);
        let e = c.expected_receiver_figures();
        // 11 arrives late: span 11..=13, and the drop of 12 is now visible; 10 never is.
        assert_eq!((e.expected, e.received, e.lost, e.reordered), (3, 2, 1, 1));
    }

    #[test]
    fn restart_and_late_packets_of_the_old_session() {
        let keep = Decision::default();
        let hold = Decision {
            hold_back: true,
            ..keep
        };
        let drop = Decision { drop: true, ..keep };
        let mut c = cond("gap=10ms");
        let mut out = Vec::new();
        let script = [
            (snap(1, 100, 0), keep),
            (snap(1, 101, 1), drop),
            (snap(1, 102, 2), hold), // released after session 2 started: stale
            (snap(1, 103, 3), keep),
            // No goodbye: session 2 takes over at its second consecutive number.
            (snap(2, 7, 0), keep),
            (snap(2, 8, 1), keep),
            (snap(2, 9, 2), drop),
            (snap(2, 10, 3), keep),
        ];
        for (d, decision) in &script {
            c.push_decided(0, d, *decision);
            while let Some(d) = c.poll_transmit(0) {
                out.push(d);
            }
        }
        while let Some(d) = c.poll_transmit(u64::MAX) {
            out.push(d);
        }
        let e = c.expected_receiver_figures();
        // Session 1: span 100..=103, received 100 and 103, lost 101 (dropped)
        // and 102 (held at the restart, released stale after it).
        // Session 2: 7..=10, lost 9.
        assert_eq!(
            (e.expected, e.received, e.lost, e.restarts, e.unseen),
            (4 + 4, 2 + 3, 2 + 1, 1, 0)
        );
        assert_eq!(receiver_figures(&out), e);
    }

    /// The receiver's probation and jump rules, modelled: a candidate
    /// dropped by a late packet of the current session, one promoted, a
    /// forged jump ignored and a real one confirmed.
    #[test]
    fn probation_and_jumps_match_the_receiver() {
        let keep = Decision::default();
        let hold = Decision {
            hold_back: true,
            ..keep
        };
        let mut c = cond("gap=10ms");
        let mut out = Vec::new();
        let far = MAX_DROPOUT as u32 + 50;
        let script = [
            (snap(1, 0, 0), keep),
            (snap(1, 1, 1), hold), // released after session 2 took over: stale
            (snap(1, 2, 2), keep),
            (snap(1, 2 + far, 3), keep), // a lone jump: held, never confirmed
            (snap(1, 3, 4), keep),
            (snap(2, 40, 0), keep),
            (snap(2, 41, 1), keep),
        ];
        for (i, (d, decision)) in script.iter().enumerate() {
            let now = i as u64 * MS;
            c.push_decided(now, d, *decision);
            while let Some(d) = c.poll_transmit(now) {
                out.push(d);
            }
        }
        for (d, decision) in [
            (snap(2, 42, 2), keep),
            (snap(2, 42 + far, 3), keep), // a real outage: held...
            (snap(2, 43 + far, 4), keep), // ...and confirmed
            (snap(3, 0, 0), keep),        // a candidate...
            (snap(2, 44 + far, 5), keep), // ...dropped by the live session
            (snap(3, 1, 1), keep),        // so this starts a new run
        ] {
            c.push_decided(100 * MS, &d, decision);
            while let Some(d) = c.poll_transmit(100 * MS) {
                out.push(d);
            }
        }
        while let Some(d) = c.poll_transmit(u64::MAX) {
            out.push(d);
        }
        let e = c.expected_receiver_figures();
        // Session 1: 0..=3, 1 lost (stale), the lone jump outside the span.
        // Session 2: 40..=44+far, 6 received; the outage was never pushed.
        assert_eq!(
            (e.expected, e.received, e.lost),
            (4 + 5 + u64::from(far), 3 + 6, 1)
        );
        assert_eq!((e.restarts, e.unseen), (1, u64::from(far) - 1));
        let r = receiver_figures(&out);
        assert_eq!(
            (r.expected, r.received, r.lost, r.restarts),
            (e.expected, e.received, e.lost + e.unseen, e.restarts)
        );
        check_invariants(&c);
    }

    /// Random fates against the real receive pipeline (`Ingest`), across the
    /// wrap, with restarts (after a goodbye, and on probation without one),
    /// goodbyes, reports and garbage: every figure equal.
    #[test]
    fn random_runs_match_the_receive_pipeline_exactly() {
        let specs = [
            "loss=0.05,dup=0.02,reorder=0.02,gap=20ms,delay=2ms",
            "preset=bad",
            "preset=mobile,reorder=0.1,gap=3ms",
            "ge=0.2/0.2/0.1/0.9,dup=0.3,reorder=0.3,gap=5ms,jitter=10ms,jitter_reorder=true",
            "loss=0.5,reorder=0.5,gap=50ms",
            "loss=1",
        ];
        for spec in specs {
            for seed in 0..6 {
                let mut input = stream(0xa, u32::MAX - 500, 1_500);
                input.insert(700, b"garbage in the middle".to_vec());
                for at in [0, 300, 900] {
                    let pong = Pong {
                        nonce: at as u64,
                        ping_sent_ns: 1,
                        bc_recv_ns: 2,
                    };
                    input.insert(at, control(0xa, 0, Body::Pong(pong)));
                }
                // 0xb dies without a goodbye: 0xc passes probation, with
                // 0xb's late packets in its way.
                let mut b = stream(0xb, 12, 400);
                b.truncate(b.len() - 3);
                input.extend(b);
                input.extend(stream(0xc, u32::MAX - 1, 300));
                input.extend(stream(0xa, 2_000, 5)); // an old session, stale
                let mut c = cond(&format!("{spec},seed={seed}"));
                let out = run(&mut c, &input);
                let e = c.expected_receiver_figures();
                assert_eq!(e.unseen, 0, "{spec} seed {seed}");
                assert_eq!(receiver_figures(&out), e, "{spec} seed {seed}");
                check_invariants(&c);
            }
        }
    }

    #[test]
    fn window_rules_match_the_receiver() {
        // A number far behind the highest is stale; its drop is settled.
        let keep = Decision::default();
        let drop = Decision { drop: true, ..keep };
        let hold = Decision {
            hold_back: true,
            ..keep
        };
        let mut c = cond("gap=1s");
        let mut input: Vec<(Vec<u8>, Decision)> = vec![
            (snap(1, 0, 0), keep),
            (snap(1, 1, 1), drop),
            (snap(1, 2, 2), hold),
        ];
        let far = WINDOW as u32 + 10;
        input.push((snap(1, far, 3), keep));
        input.push((snap(1, far + 1, 4), drop));
        input.push((snap(1, far + 2, 5), keep));
        let mut out = Vec::new();
        for (d, decision) in &input {
            c.push_decided(0, d, *decision);
            while let Some(d) = c.poll_transmit(0) {
                out.push(d);
            }
        }
        while let Some(d) = c.poll_transmit(u64::MAX) {
            out.push(d);
        }
        let e = c.expected_receiver_figures();
        // Span 0..=far+2; received 0, far, far+2; lost 1, far+1 (dropped)
        // and 2 (released WINDOW late: stale); 3..far never pushed.
        assert_eq!((e.expected, e.received, e.lost), (u64::from(far) + 3, 3, 3));
        assert_eq!(e.unseen, u64::from(far) - 3);
        let r = receiver_figures(&out);
        assert_eq!(
            (r.expected, r.received, r.lost),
            (e.expected, e.received, e.lost + e.unseen)
        );
    }

    #[test]
    fn extend_follows_rfc1982_across_the_wrap() {
        let top = EXT_ORIGIN + u64::from(u32::MAX);
        assert_eq!(extend(top, 0), top + 1);
        assert_eq!(extend(top + 1, u32::MAX), top);
        assert_eq!(extend(top, u32::MAX), top);
        // Exactly 2^31 away reads as behind, as in the receiver.
        assert_eq!(extend(EXT_ORIGIN, 1 << 31), EXT_ORIGIN - (1 << 31));
    }
}
