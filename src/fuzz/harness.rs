//! The harness: runs every input through the decoder and one sans-IO
//! ingest and world, and reports what broke a promise of the spec.

use std::collections::BTreeMap;
use std::fmt;
use std::mem::Discriminant;
use std::panic::{self, AssertUnwindSafe};

use crate::core::compact::Decoder;
use crate::core::ingest::{Ingest, Outcome};
use crate::core::world::{World, WorldWriter};
use crate::wire::bits::BitWriter;
use crate::wire::{self, Body, DecodeError, Kind, Packet, Payload, Records};

use super::{hex, known_kinds, CAPACITY, FLAGS, KIND_AT, T0, VERSION_AT};

/// The whole world is scanned for garbage once per this many inputs.
pub const FULL_SCAN_EVERY: u64 = 1 << 16;
const _: () = assert!(FULL_SCAN_EVERY.is_power_of_two());
/// Inputs per session of the harness's own compact decoder.
pub const COMPACT_EPOCH_INPUTS: u64 = 1 << 12;
/// How many findings (crashers, mismatches) a report keeps, as hex.
pub const MAX_FINDINGS: usize = 8;

/// Which check an input failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// `wire::decode_records` panicked.
    DecodePanic,
    /// `Ingest::handle` panicked.
    IngestPanic,
    /// A decoded packet did not re-encode to the same bytes.
    ReencodeMismatch,
    /// The ingest's outcome disagreed with the decoder (malformed or not),
    /// or it handed back a subscription packet other than the decoded one.
    MalformedMismatch,
    /// The world held an entity it must not, or changed on a rejected input.
    Garbage,
}

/// One failing input, kept so it can become a regression case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The check it failed.
    pub failure: Failure,
    /// The panic message, or what was wrong.
    pub message: String,
    /// The input, as space-separated hex byte pairs (a vector file's body).
    pub hex: String,
}

/// How one packet kind's decoder was exercised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindReach {
    /// The kind's name, once an input of it decoded.
    pub name: Option<&'static str>,
    /// Inputs with a valid magic, version and flags and this kind byte: the
    /// ones that reached this kind's body decoder.
    pub reached: u64,
    /// Of those, the ones that decoded.
    pub decoded_ok: u64,
}

/// What a fuzz run found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FuzzReport {
    /// Inputs fed.
    pub inputs: u64,
    /// Inputs the decoder accepted.
    pub decoded_ok: u64,
    /// Of those, per protocol version (the header's version byte).
    pub decoded_by_version: BTreeMap<u8, u64>,
    /// Inputs the decoder rejected, per `DecodeError` variant.
    pub rejected: BTreeMap<String, u64>,
    /// Per kind byte the decoder knows: inputs that reached its body decoder.
    pub kinds: BTreeMap<u8, KindReach>,
    /// Inputs on which the decoder or the ingest panicked.
    pub panics: u64,
    /// Of those, the ones where the decoder returned and the ingest panicked.
    pub ingest_panics: u64,
    /// Entities seen in the world with an id at or above the capacity, or a
    /// coordinate non-finite or beyond `MAX_COORD`; rejected inputs that
    /// changed the world; and lifecycle packets after which it held more.
    pub garbage_applied: u64,
    /// Decoded packets that did not re-encode to the same bytes.
    pub reencode_mismatch: u64,
    /// Inputs whose ingest outcome disagreed with the decoder.
    pub malformed_mismatch: u64,
    /// The ingest's own `malformed` figure at the end.
    pub malformed: u64,
    /// The ingest's own `datagrams` figure at the end.
    pub datagrams: u64,
    /// Entities in the world at the end.
    pub world_entities: usize,
    /// Entities the harness's own keyframe decoder placed from decoded
    /// compact parts (outside the sequence tracking, so every decoded part
    /// reaches it): keyframes, and deltas against keyframes it held.
    pub compact_placed: u64,
    /// Of those, the deltas.
    pub compact_deltas_placed: u64,
    /// Deltas it could not place (no keyframe held for them, or a position
    /// beyond the limits).
    pub compact_undecodable: u64,
    /// The first [`MAX_FINDINGS`] failing inputs.
    pub findings: Vec<Finding>,
}

impl FuzzReport {
    /// Inputs the decoder rejected, over all reasons.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Every broken promise, in words; empty for a clean run.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let mut nonzero = |n: u64, what: &str| {
            if n > 0 {
                p.push(format!("{n} {what}"));
            }
        };
        nonzero(self.panics, "panics");
        nonzero(self.garbage_applied, "garbage entities or changes applied");
        nonzero(self.reencode_mismatch, "re-encode mismatches");
        nonzero(
            self.malformed_mismatch,
            "outcomes disagreeing with the decoder",
        );
        if self.malformed != self.rejected_total() {
            p.push(format!(
                "ingest counted {} malformed, the decoder rejected {}",
                self.malformed,
                self.rejected_total()
            ));
        }
        if self.datagrams != self.inputs {
            p.push(format!(
                "ingest counted {} datagrams of {} inputs",
                self.datagrams, self.inputs
            ));
        }
        p
    }

    /// True when no promise was broken.
    pub fn is_clean(&self) -> bool {
        self.problems().is_empty()
    }
}

impl fmt::Display for FuzzReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "inputs            {}", self.inputs)?;
        writeln!(f, "decoded ok        {}", self.decoded_ok)?;
        for (version, n) in &self.decoded_by_version {
            writeln!(f, "  version {version:<12}{n}")?;
        }
        writeln!(
            f,
            "rejected          {} (ingest counted {} malformed)",
            self.rejected_total(),
            self.malformed
        )?;
        for (reason, n) in &self.rejected {
            writeln!(f, "  {reason:<20}{n}")?;
        }
        writeln!(f, "per kind          reached body decoder / decoded ok")?;
        for (kind, k) in &self.kinds {
            let name = format!("{kind} {}", k.name.unwrap_or("?"));
            writeln!(f, "  {name:<20}{} / {}", k.reached, k.decoded_ok)?;
        }
        writeln!(
            f,
            "panics            {} ({} in the ingest)",
            self.panics, self.ingest_panics
        )?;
        writeln!(f, "garbage applied   {}", self.garbage_applied)?;
        writeln!(f, "re-encode diffs   {}", self.reencode_mismatch)?;
        writeln!(f, "outcome diffs     {}", self.malformed_mismatch)?;
        writeln!(f, "world entities    {}", self.world_entities)?;
        writeln!(
            f,
            "compact placed    {} entities, {} of them from deltas ({} deltas undecodable)",
            self.compact_placed, self.compact_deltas_placed, self.compact_undecodable
        )?;
        for x in &self.findings {
            writeln!(f, "finding {:?}: {}\n  {}", x.failure, x.message, x.hex)?;
        }
        match self.problems() {
            p if p.is_empty() => write!(f, "clean"),
            p => write!(f, "NOT CLEAN: {}", p.join("; ")),
        }
    }
}

/// Runs inputs through the decoder and one ingest + world, checking each.
pub struct Harness {
    /// Writes the world (it holds the one writer).
    ingest: Ingest,
    /// Reads it, as any reader would.
    world: World,
    /// The records of the input just decoded.
    records: Records,
    /// Every decoded compact part's records go through this keyframe
    /// decoder too, and what it places is checked. It takes them as one
    /// session per [`COMPACT_EPOCH_INPUTS`] inputs, so a keyframe of a
    /// fuzzed far-future tick, which no later keyframe of its session
    /// replaces, holds its id for that long only.
    compact: Decoder,
    placed: Vec<wire::Entity>,
    /// Per id below the capacity: the session and the newest tick a fresh
    /// lifecycle packet of it stated the id absent as of. A snapshot record
    /// of that session at or before that tick may be refused by a tombstone
    /// (see `check_touched`); any other session's record cannot be, as a
    /// fresh packet of another session means it replaced that one.
    stated: Vec<Option<(u64, u64)>>,
    buf: Vec<u8>,
    /// Rejections per `DecodeError` variant, named on first sight.
    rejections: Vec<(Discriminant<DecodeError>, String, u64)>,
    report: FuzzReport,
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

impl fmt::Debug for Harness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Harness")
            .field("inputs", &self.report.inputs)
            .finish()
    }
}

impl Harness {
    /// A harness with a fresh ingest and a world of [`CAPACITY`] entities.
    pub fn new() -> Harness {
        let mut report = FuzzReport::default();
        for k in known_kinds() {
            report.kinds.insert(k, KindReach::default());
        }
        let ingest = Ingest::new(WorldWriter::new(CAPACITY));
        Harness {
            world: ingest.world().clone(),
            ingest,
            records: Records::default(),
            compact: Decoder::new(CAPACITY),
            placed: Vec::new(),
            stated: vec![None; CAPACITY as usize],
            buf: vec![0; wire::MAX_DATAGRAM],
            rejections: Vec::new(),
            report,
        }
    }

    /// Feeds one input and checks it (see the module docs).
    pub fn feed(&mut self, input: &[u8]) {
        let i = self.report.inputs;
        self.report.inputs += 1;
        if let Some(k) = self.reached_kind(input) {
            k.reached += 1;
        }
        let records = &mut self.records;
        let decoded =
            match panic::catch_unwind(AssertUnwindSafe(|| wire::decode_records(input, records))) {
                Ok(d) => d,
                Err(payload) => {
                    self.report.panics += 1;
                    self.find(Failure::DecodePanic, panic_message(&*payload), input);
                    return; // the ingest would run the same decode
                }
            };
        match &decoded {
            Ok(packet) => {
                self.check_reencode(packet, input);
                if let Body::Compact(head) = packet.body {
                    if !self.place_compact(&head, input) {
                        return; // the ingest would run the same decoder
                    }
                }
            }
            Err(e) => self.count_rejection(e),
        }
        let before = (self.world.len(), self.world.count());
        let arrival = T0 + i * 1_000;
        let ingest = &mut self.ingest;
        let outcome = match panic::catch_unwind(AssertUnwindSafe(|| ingest.handle(input, arrival)))
        {
            Ok(o) => o,
            Err(payload) => {
                self.report.panics += 1;
                self.report.ingest_panics += 1;
                self.find(Failure::IngestPanic, panic_message(&*payload), input);
                return;
            }
        };
        if let Ok(p) = &decoded {
            if fresh(&outcome) {
                self.note_statements(p);
            }
            if matches!(p.body, Body::Despawn(_) | Body::Roster(_)) && self.world.len() > before.0 {
                self.report.garbage_applied += 1;
                let msg = format!("a lifecycle packet grew the world to {}", self.world.len());
                self.find(Failure::Garbage, msg, input);
            }
        }
        match (decoded, outcome) {
            (Err(e), Outcome::Malformed(m)) if e == m => {
                if (self.world.len(), self.world.count()) != before {
                    self.report.garbage_applied += 1;
                    self.find(
                        Failure::Garbage,
                        "a rejected input changed the world",
                        input,
                    );
                }
            }
            (Ok(p), Outcome::Subscription(q)) if p != q => {
                self.report.malformed_mismatch += 1;
                let msg = format!("decoder said {p:?}, ingest handed back {q:?}");
                self.find(Failure::MalformedMismatch, msg, input);
            }
            (Ok(p), o) if !matches!(o, Outcome::Malformed(_)) => {
                self.check_touched(&p, matches!(o, Outcome::Applied { .. }), input)
            }
            (d, o) => {
                self.report.malformed_mismatch += 1;
                let msg = format!("decoder said {:?}, ingest said {o:?}", d.map(|_| ()));
                self.find(Failure::MalformedMismatch, msg, input);
            }
        }
        // A mask, not `%`: FULL_SCAN_EVERY is a power of two.
        if self.report.inputs & (FULL_SCAN_EVERY - 1) == 0 {
            self.scan_world();
        }
    }

    /// Scans the whole world once more and returns the report.
    pub fn finish(mut self) -> FuzzReport {
        self.scan_world();
        let f = self.ingest.figures();
        self.report.malformed = f.counters.malformed;
        self.report.datagrams = f.counters.datagrams;
        self.report.world_entities = self.world.len();
        for (_, name, n) in &self.rejections {
            self.report.rejected.insert(name.clone(), *n);
        }
        self.report
    }

    /// The kind whose body decoder `d` reaches: a valid magic, a version
    /// the decoder reads, a kind that version defines, and no flags.
    fn reached_kind(&mut self, d: &[u8]) -> Option<&mut KindReach> {
        if d.len() < wire::HEADER_LEN || d[..VERSION_AT] != wire::MAGIC || d[FLAGS] != [0, 0] {
            return None;
        }
        let version = d[VERSION_AT];
        let kind = Kind::from_u8(d[KIND_AT])?;
        if !(wire::MIN_VERSION..=wire::VERSION).contains(&version) || kind.since_version() > version
        {
            return None;
        }
        self.report.kinds.get_mut(&d[KIND_AT])
    }

    /// Re-encodes a decoded packet with its records: the input's bytes,
    /// but for the version byte, which the encoder writes as its own.
    fn check_reencode(&mut self, packet: &Packet, input: &[u8]) {
        self.report.decoded_ok += 1;
        *self
            .report
            .decoded_by_version
            .entry(input[VERSION_AT])
            .or_default() += 1;
        let kind = packet.body.kind();
        if let Some(k) = self.report.kinds.get_mut(&(kind as u8)) {
            k.decoded_ok += 1;
            k.name = Some(kind.name());
        }
        let r = &self.records;
        // A compact part's section as it came, re-encoded with its head.
        let section = input.get(wire::COMPACT_FIXED_LEN..).unwrap_or_default();
        let records = match kind {
            Kind::Snapshot => Payload::Entities(&r.entities),
            Kind::Despawn => Payload::Despawned(&r.despawned),
            Kind::Roster => Payload::Runs(&r.runs),
            Kind::Compact => Payload::Compact(section),
            _ => Payload::None,
        };
        let same = |out: &[u8]| {
            out.len() == input.len()
                && out[VERSION_AT] == wire::VERSION
                && out[..VERSION_AT] == input[..VERSION_AT]
                && out[VERSION_AT + 1..] == input[VERSION_AT + 1..]
        };
        match wire::encode_records(packet, records, &mut self.buf) {
            Ok(n) if same(&self.buf[..n]) => {}
            other => {
                self.report.reencode_mismatch += 1;
                let msg = format!("re-encoded as {:?}", other.map(|n| &self.buf[..n]));
                self.find(Failure::ReencodeMismatch, msg, input);
            }
        }
        if kind == Kind::Compact {
            // Its records, written again: the same bits, padding and all.
            let mut bits = Vec::with_capacity(section.len());
            let mut w = BitWriter::new(&mut bits);
            let mut prev = None;
            for rec in &self.records.compact {
                wire::write_record(&mut w, prev, rec);
                prev = Some(rec.id());
            }
            w.finish();
            if bits != section {
                self.report.reencode_mismatch += 1;
                let msg = format!("records {:?} write as {}", self.records.compact, hex(&bits));
                self.find(Failure::ReencodeMismatch, msg, input);
            }
        }
    }

    /// Runs a decoded compact part's records through the harness's keyframe
    /// decoder: it must not panic, and must place only entities below the
    /// capacity with sound coordinates. False if it panicked.
    fn place_compact(&mut self, head: &wire::CompactHead, input: &[u8]) -> bool {
        let (dec, recs, placed) = (&mut self.compact, &self.records.compact, &mut self.placed);
        placed.clear();
        let epoch = 1 + (self.report.inputs / COMPACT_EPOCH_INPUTS) as u32;
        let outcome =
            panic::catch_unwind(AssertUnwindSafe(|| dec.decode(epoch, head, recs, placed)));
        let o = match outcome {
            Ok(o) => o,
            Err(payload) => {
                self.report.panics += 1;
                self.report.ingest_panics += 1;
                let msg = format!("the compact decoder: {}", panic_message(&*payload));
                self.find(Failure::IngestPanic, msg, input);
                return false;
            }
        };
        let deltas = recs
            .iter()
            .filter(|r| matches!(r, wire::Record::Delta { id, .. } if *id < CAPACITY))
            .count() as u64;
        self.report.compact_placed += self.placed.len() as u64;
        self.report.compact_deltas_placed += deltas - u64::from(o.undecodable);
        self.report.compact_undecodable += u64::from(o.undecodable);
        let bad = self
            .placed
            .iter()
            .find(|e| e.id >= CAPACITY || !sound(&[e.x, e.y, e.z]))
            .copied();
        if let Some(e) = bad {
            self.report.garbage_applied += 1;
            self.find(
                Failure::Garbage,
                format!("the compact decoder placed {e:?}"),
                input,
            );
        }
        true
    }

    fn count_rejection(&mut self, e: &DecodeError) {
        let d = std::mem::discriminant(e);
        match self.rejections.iter_mut().find(|(x, _, _)| *x == d) {
            Some((_, _, n)) => *n += 1,
            None => {
                let name = format!("{e:?}");
                let name = name.split('(').next().unwrap_or_default().to_string();
                self.rejections.push((d, name, 1));
            }
        }
    }

    /// Notes what a fresh despawn or roster stated absent (ids below the
    /// capacity), for `check_touched`.
    fn note_statements(&mut self, p: &Packet) {
        let session = p.session;
        let note = |stated: &mut [Option<(u64, u64)>], id: u32, tick: u64| {
            if let Some(slot) = stated.get_mut(id as usize) {
                *slot = match *slot {
                    Some((s, t)) if s == session => Some((s, t.max(tick))),
                    _ => Some((session, tick)),
                };
            }
        };
        match p.body {
            Body::Despawn(_) => {
                for d in &self.records.despawned {
                    note(&mut self.stated, d.id, d.tick);
                }
            }
            Body::Roster(h) => {
                // The ids of the range in no run, below the capacity.
                let end = u64::from(h.last_id).min(u64::from(CAPACITY) - 1);
                let mut id = u64::from(h.first_id);
                let runs = self
                    .records
                    .runs
                    .iter()
                    .map(|r| (u64::from(r.first), u64::from(r.first) + u64::from(r.count)));
                for (first, after) in runs.chain([(end + 1, end + 1)]) {
                    while id < first.min(end + 1) {
                        note(&mut self.stated, id as u32, h.tick);
                        id += 1;
                    }
                    id = id.max(after);
                    if id > end {
                        break;
                    }
                }
            }
            _ => {}
        }
    }

    /// The entities of the input just handled: absent if their id is at or
    /// above the capacity, sound if present, and present if the part was
    /// `applied` (each record was written, or a newer one is held), unless
    /// a fresh lifecycle packet of its session stated the id absent at or
    /// after its tick (a tombstone may refuse it). A compact part's
    /// keyframes are records like a snapshot's; its deltas place an entity
    /// only if the ingest held their keyframe, so for them only what is
    /// there is checked.
    fn check_touched(&mut self, p: &Packet, applied: bool, input: &[u8]) {
        let tick = match p.body {
            Body::Snapshot(h) => h.tick,
            Body::Compact(h) => {
                for i in 0..self.records.compact.len() {
                    let (id, must) = match self.records.compact[i] {
                        wire::Record::Key { id, .. } => (id, applied),
                        wire::Record::Delta { id, .. } => (id, false),
                    };
                    self.check_entity(p, h.tick, id, must, input);
                }
                return;
            }
            _ => return,
        };
        for i in 0..self.records.entities.len() {
            let e = self.records.entities[i];
            self.check_entity(p, tick, e.id, applied, input);
        }
    }

    /// Entity `id`, just touched by a record of `tick` in `p`: absent if its
    /// id is at or above the capacity, sound if present, and present if
    /// `must` unless a tombstone may have refused it.
    fn check_entity(&mut self, p: &Packet, tick: u64, id: u32, must: bool, input: &[u8]) {
        let tombstoned = self
            .stated
            .get(id as usize)
            .copied()
            .flatten()
            .is_some_and(|(s, t)| s == p.session && tick <= t);
        let bad = match self.world.get(id) {
            Some(s) => id >= CAPACITY || !sound(&[s.x, s.y, s.z]),
            None => must && id < CAPACITY && !tombstoned,
        };
        if bad {
            self.report.garbage_applied += 1;
            let msg = format!("entity {id} after applying {:?}", p.body);
            self.find(Failure::Garbage, msg, input);
        }
    }

    fn scan_world(&mut self) {
        let mut all = Vec::new();
        self.world.read_all(&mut all);
        for s in all {
            if s.id >= CAPACITY || !sound(&[s.x, s.y, s.z]) {
                self.report.garbage_applied += 1;
                self.find(Failure::Garbage, format!("world holds {s:?}"), &[]);
            }
        }
        if self.world.len() > CAPACITY as usize {
            self.report.garbage_applied += 1;
            let msg = format!("world holds {} entities", self.world.len());
            self.find(Failure::Garbage, msg, &[]);
        }
    }

    fn find(&mut self, failure: Failure, message: impl Into<String>, input: &[u8]) {
        if self.report.findings.len() < MAX_FINDINGS {
            self.report.findings.push(Finding {
                failure,
                message: message.into(),
                hex: hex(input),
            });
        }
    }
}

/// Whether the ingest took the packet as fresh stream news: not refused,
/// not a duplicate, not stale, not held on probation.
fn fresh(o: &Outcome) -> bool {
    !matches!(
        o,
        Outcome::Malformed(_)
            | Outcome::AuthFailed(_)
            | Outcome::Replayed(_)
            | Outcome::StaleSealed { .. }
            | Outcome::Duplicate
            | Outcome::Stale
            | Outcome::Unproven
    )
}

fn sound(coords: &[f32]) -> bool {
    coords
        .iter()
        .all(|v| v.is_finite() && v.abs() <= wire::MAX_COORD)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match (
        payload.downcast_ref::<&str>(),
        payload.downcast_ref::<String>(),
    ) {
        (Some(s), _) => s.to_string(),
        (_, Some(s)) => s.clone(),
        _ => "panic with a non-string payload".to_string(),
    }
}
