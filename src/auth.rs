//! Optional packet authentication with a pre-shared key, sans-IO: a keyed
//! MAC on every datagram and a replay window on `(session, seq)`.
//!
//! # The tag
//!
//! A sealed datagram is the encoded packet with bit [`FLAG_AUTH`] set in the
//! header's `flags`, followed by a [`TAG_LEN`]-byte tag: the BLAKE3 keyed hash
//! ([`blake3::keyed_hash`], a MAC by design, no HMAC construction needed) of
//! every byte before the tag, header and flag included, truncated to its
//! first 16 bytes. [`seal`] sets the flag and appends the tag; [`open`]
//! checks both, comparing tags in constant time, and returns the datagram
//! without its tag. A sealed datagram is [`TAG_LEN`] bytes longer than the
//! packet, so a sender sizes its payload budget to leave room for it.
//!
//! Mixed setups fail loudly, not silently: a receiver without a key rejects a
//! sealed datagram (`wire::DecodeError::Sealed`, counted in
//! `auth_unexpected` and warned about by the CLI), and a receiver with a key
//! counts an unsealed one in `auth_failed`. Neither is applied.
//!
//! # The replay window
//!
//! A MAC proves who sent a datagram, not when. [`ReplayWindow`] accepts each
//! `(session, seq)` once: within the session it tracks, a number at most
//! [`REPLAY_WINDOW`] − 1 behind the highest accepted is accepted if not seen
//! before, anything older or already seen is a replay (RFC 1982 serial
//! arithmetic, [`serial_distance`], so the 32-bit wrap is invisible). Packets
//! of the last [`RECENT_SESSIONS`] sessions it replaced are replays.
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
//! Memory is fixed: one tracked session (128 bytes of bitmap) and
//! [`RECENT_SESSIONS`] ids.
//!
//! # Cost
//!
//! One BLAKE3 hash of the datagram per seal or open. For a full 1,200-byte
//! snapshot part that is in the order of a microsecond or two: the same order
//! as, and up to about twice, the decode, track and apply it guards. BLAKE3
//! rather than HMAC-SHA256: its keyed mode is a MAC by design, and it is no
//! slower at 1,200 bytes and several times faster on small control packets
//! and large parts (HMAC's two extra compressions, SHA-256's serial chain).
//! The figures are measured in `benches/`, not asserted here.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::tracker::serial_distance;
use crate::wire;

/// The header's `flags` bit that says the datagram carries a tag.
pub const FLAG_AUTH: u16 = 0x0001;
/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// Bytes of the tag appended to a sealed datagram.
pub const TAG_LEN: usize = 16;
/// Sequence numbers behind the highest accepted that are still told apart.
pub const REPLAY_WINDOW: u32 = 1024;
/// Replaced session ids remembered; their packets are replays.
pub const RECENT_SESSIONS: usize = 16;

/// The header's `flags` field (u16 little-endian), where `wire` puts it.
const FLAGS: Range<usize> = wire::field::FLAGS;
/// Longest key file read: a key and a line ending, with room to tell the
/// user what is wrong with a longer one.
const MAX_KEY_FILE: u64 = 4096;

/// The header's `flags`, or `None` for a datagram too short to have them.
pub fn flags(datagram: &[u8]) -> Option<u16> {
    let b = datagram.get(FLAGS)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

/// Whether a datagram says it carries a tag (its AUTH flag is set).
pub fn is_sealed(datagram: &[u8]) -> bool {
    flags(datagram).is_some_and(|f| f & FLAG_AUTH != 0)
}

/// A 32-byte pre-shared key. Its `Debug` output does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; KEY_LEN]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// Why a key file could not be used. Each message is one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No file at that path.
    #[error("key file {} does not exist (make one with: openssl rand -hex 32 > FILE; chmod 600 FILE)", .0.display())]
    Missing(PathBuf),
    /// The file exists but could not be read.
    #[error("cannot read key file {}: {source}", .path.display())]
    Unreadable {
        /// The key file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// Group or others may read the file.
    #[error("key file {} is readable by group or others (mode {mode:03o}): run chmod 600 {}", .path.display(), .path.display())]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Fewer than 64 hex digits: less than 32 bytes of key.
    #[error("key file {} holds {digits} hex digits; a key is 64 (32 bytes, e.g. openssl rand -hex 32)", .path.display())]
    TooShort {
        /// The key file.
        path: PathBuf,
        /// Hex digits found.
        digits: usize,
    },
    /// More than 64 hex digits.
    #[error("key file {} holds more than 64 hex digits; a key is exactly 64 (32 bytes)", .path.display())]
    TooLong {
        /// The key file.
        path: PathBuf,
    },
    /// A character that is not a hex digit (other than one final line ending).
    #[error("key file {} has a non-hex character at byte {offset}; it must hold 64 hex digits and nothing else", .path.display())]
    NotHex {
        /// The key file.
        path: PathBuf,
        /// Offset of the first bad byte.
        offset: usize,
    },
}

impl Key {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        Key(bytes)
    }

    /// Loads a key file. The format: exactly 64 hexadecimal digits (either
    /// case), the 32 bytes of the key, optionally followed by one line ending
    /// (`\n` or `\r\n`), e.g. as written by `openssl rand -hex 32`. Text, so
    /// it survives copy and paste and a stray newline cannot become key
    /// material. On Unix the file must not be readable by group or others
    /// (`chmod 600`): the key is refused otherwise.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Key, KeyError> {
        let path = path.as_ref();
        let unreadable = |source| KeyError::Unreadable {
            path: path.to_path_buf(),
            source,
        };
        // One open, then checks on that handle: nothing can swap the file
        // between the permission check and the read.
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(KeyError::Missing(path.to_path_buf()))
            }
            Err(e) => return Err(unreadable(e)),
        };
        let meta = file.metadata().map_err(unreadable)?;
        if meta.is_dir() {
            return Err(unreadable(io::Error::other("it is a directory")));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::TooOpen {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        let mut text = Vec::new();
        file.take(MAX_KEY_FILE)
            .read_to_end(&mut text)
            .map_err(unreadable)?;
        Key::parse_hex(&text).map_err(|e| e.at(path))
    }

    /// Parses the key file format (see [`Key::from_file`]).
    fn parse_hex(text: &[u8]) -> Result<Key, HexProblem> {
        let text = text
            .strip_suffix(b"\n")
            .map(|t| t.strip_suffix(b"\r").unwrap_or(t))
            .unwrap_or(text);
        if let Some(offset) = text.iter().position(|b| !b.is_ascii_hexdigit()) {
            return Err(HexProblem::NotHex(offset));
        }
        match text.len() {
            n if n < 2 * KEY_LEN => return Err(HexProblem::TooShort(n)),
            n if n > 2 * KEY_LEN => return Err(HexProblem::TooLong),
            _ => {}
        }
        let mut key = [0u8; KEY_LEN];
        for (k, pair) in key.iter_mut().zip(text.chunks_exact(2)) {
            *k = (hex_digit(pair[0]) << 4) | hex_digit(pair[1]);
        }
        Ok(Key(key))
    }
}

enum HexProblem {
    NotHex(usize),
    TooShort(usize),
    TooLong,
}

impl HexProblem {
    fn at(self, path: &Path) -> KeyError {
        let path = path.to_path_buf();
        match self {
            HexProblem::NotHex(offset) => KeyError::NotHex { path, offset },
            HexProblem::TooShort(digits) => KeyError::TooShort { path, digits },
            HexProblem::TooLong => KeyError::TooLong { path },
        }
    }
}

fn hex_digit(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10, // checked is_ascii_hexdigit
    }
}

fn tag(key: &Key, data: &[u8]) -> [u8; TAG_LEN] {
    let hash = blake3::keyed_hash(&key.0, data);
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&hash.as_bytes()[..TAG_LEN]);
    tag
}

/// Seals an encoded packet in place: sets [`FLAG_AUTH`] in its flags and
/// appends the tag over every byte, header included.
///
/// # Panics
///
/// If `datagram` is shorter than the common header (it is not a packet).
pub fn seal(key: &Key, datagram: &mut Vec<u8>) {
    let len = datagram.len();
    datagram.resize(len + TAG_LEN, 0);
    seal_into(key, datagram, len);
}

/// Seals the packet in `buf[..len]` without allocating: sets [`FLAG_AUTH`],
/// writes the tag to `buf[len..len + TAG_LEN]` and returns the sealed
/// length, `len + TAG_LEN`. For a sender that encodes into a fixed buffer.
///
/// # Panics
///
/// If `len` is shorter than the common header, or `buf` has no room for the tag.
pub fn seal_into(key: &Key, buf: &mut [u8], len: usize) -> usize {
    assert!(
        len >= wire::HEADER_LEN && buf.len() >= len + TAG_LEN,
        "seal: a {len}-byte packet in a {}-byte buffer",
        buf.len()
    );
    let flags = flags(buf).unwrap_or(0) | FLAG_AUTH;
    buf[FLAGS].copy_from_slice(&flags.to_le_bytes());
    let t = tag(key, &buf[..len]);
    buf[len..len + TAG_LEN].copy_from_slice(&t);
    len + TAG_LEN
}

/// Why [`open`] refused a datagram. Every one counts as `auth_failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Too short to hold a header and a tag.
    #[error("datagram too short to carry a tag")]
    TooShort,
    /// The AUTH flag is not set: the sender has no key, or it was cleared.
    #[error("datagram is not sealed (AUTH flag clear)")]
    NotSealed,
    /// The tag does not match: forged, tampered, or another key.
    #[error("tag does not match")]
    BadTag,
}

/// Checks a sealed datagram's flag and tag (in constant time) and returns
/// the datagram without its tag. The AUTH flag is still set in what it
/// returns; the decoder is told the datagram was opened.
pub fn open<'a>(key: &Key, datagram: &'a [u8]) -> Result<&'a [u8], AuthError> {
    if datagram.len() < wire::HEADER_LEN + TAG_LEN {
        return Err(AuthError::TooShort);
    }
    if !is_sealed(datagram) {
        return Err(AuthError::NotSealed);
    }
    let (packet, got) = datagram.split_at(datagram.len() - TAG_LEN);
    let got: &[u8; TAG_LEN] = got.try_into().map_err(|_| AuthError::TooShort)?;
    if constant_time_eq::constant_time_eq_16(&tag(key, packet), got) {
        Ok(packet)
    } else {
        Err(AuthError::BadTag)
    }
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
    /// Bit `seq % REPLAY_WINDOW` is set when `seq` (within the window) was
    /// accepted. 2^32 is a multiple of the window, so the wrap keeps slots.
    seen: [u64; REPLAY_WINDOW as usize / 64],
}

impl Tracked {
    fn new(id: u64, seq: u32) -> Tracked {
        let mut t = Tracked {
            id,
            highest: seq,
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
        } else if -d >= i64::from(REPLAY_WINDOW) {
            return Err(Replay::TooOld);
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
    /// Datagrams refused by [`open`]: too short, not sealed, or a tag that
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
    use crate::wire::{Body, Entity, Packet, SnapshotHead};

    const KEY: Key = Key([7; KEY_LEN]);

    fn packet() -> Vec<u8> {
        let p = Packet {
            session: 0xf0e1_d2c3_b4a5_9687,
            seq: u32::MAX,
            body: Body::Snapshot(SnapshotHead {
                tick: 9,
                scheduled_ns: 1,
                sent_ns: 2,
                part: 0,
                parts: 1,
            }),
        };
        let e = [Entity {
            id: 3,
            x: 1.0,
            y: -2.0,
            z: 0.5,
        }];
        wire::encode_to_vec(&p, &e).unwrap()
    }

    fn sealed() -> Vec<u8> {
        let mut d = packet();
        seal(&KEY, &mut d);
        d
    }

    #[test]
    fn good_tag_is_accepted_and_open_returns_the_packet_with_its_flag() {
        let d = sealed();
        let mut want = packet();
        want[FLAGS].copy_from_slice(&FLAG_AUTH.to_le_bytes());
        assert_eq!(d.len(), want.len() + TAG_LEN);
        assert_eq!(open(&KEY, &d), Ok(&want[..]));
        assert!(is_sealed(&d) && !is_sealed(&packet()));
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let d = sealed();
        for bit in 0..d.len() * 8 {
            let mut t = d.clone();
            t[bit / 8] ^= 1 << (bit % 8);
            let want = if bit / 8 == FLAGS.start && bit % 8 == 0 {
                AuthError::NotSealed
            } else {
                AuthError::BadTag
            };
            assert_eq!(open(&KEY, &t), Err(want), "bit {bit}");
        }
    }

    #[test]
    fn seal_into_a_fixed_buffer_equals_seal() {
        let p = packet();
        let mut buf = vec![0xa5; 512];
        buf[..p.len()].copy_from_slice(&p);
        let n = seal_into(&KEY, &mut buf, p.len());
        assert_eq!(buf[..n], sealed()[..]);
        assert!(buf[n..].iter().all(|&b| b == 0xa5));
    }

    #[test]
    fn wrong_key_is_rejected() {
        let mut other = [7; KEY_LEN];
        other[31] = 6;
        assert_eq!(open(&Key(other), &sealed()), Err(AuthError::BadTag));
    }

    #[test]
    fn truncated_extended_or_unsealed_datagrams_are_rejected() {
        let d = sealed();
        for cut in 1..=TAG_LEN {
            assert!(open(&KEY, &d[..d.len() - cut]).is_err(), "cut {cut}");
        }
        let mut longer = d.clone();
        longer.push(0);
        assert_eq!(open(&KEY, &longer), Err(AuthError::BadTag));
        assert_eq!(open(&KEY, &d[..wire::HEADER_LEN]), Err(AuthError::TooShort));
        // An unsealed packet with a tag-sized tail is refused on the flag.
        let mut plain = packet();
        plain.extend_from_slice(&[0; TAG_LEN]);
        assert_eq!(open(&KEY, &plain), Err(AuthError::NotSealed));
    }

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

    /// A fresh path under the temp dir, unique to this test and process.
    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("tickcast-auth-{}-{name}", std::process::id()))
    }

    #[cfg(unix)]
    fn key_file(name: &str, content: &[u8], mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = temp_path(name);
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    const HEX: &[u8] = b"000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";

    #[cfg(unix)]
    #[test]
    fn key_file_is_64_hex_digits_and_one_optional_line_ending() {
        let want = Key(std::array::from_fn(|i| i as u8));
        for (name, content) in [
            ("bare", HEX.to_vec()),
            ("lf", [HEX, b"\n"].concat()),
            ("crlf", [HEX, b"\r\n"].concat()),
        ] {
            let p = key_file(name, &content, 0o600);
            assert_eq!(Key::from_file(&p).unwrap(), want, "{name}");
            std::fs::remove_file(p).unwrap();
        }
    }

    #[cfg(unix)]
    #[test]
    fn key_file_errors_are_one_clear_line() {
        let check = |name: &str, content: &[u8], mode: u32, want: &str| {
            let p = key_file(name, content, mode);
            let err = Key::from_file(&p).unwrap_err().to_string();
            std::fs::remove_file(&p).unwrap();
            assert!(err.contains(want), "{name}: {err}");
            assert!(err.contains(&*p.to_string_lossy()), "{name}: {err}");
            assert!(!err.contains('\n'), "{name}: {err}");
        };
        check(
            "short",
            &HEX[..62],
            0o600,
            "holds 62 hex digits; a key is 64",
        );
        check("empty", b"", 0o600, "holds 0 hex digits");
        check(
            "long",
            &[HEX, b"00"].concat(),
            0o600,
            "more than 64 hex digits",
        );
        check(
            "two-lines",
            &[HEX, b"\n\n"].concat(),
            0o600,
            "non-hex character at byte 64",
        );
        check(
            "space",
            &[b" ", HEX].concat(),
            0o600,
            "non-hex character at byte 0",
        );
        check("world", HEX, 0o644, "(mode 644): run chmod 600");
        check("group", HEX, 0o640, "(mode 640): run chmod 600");
        check("others-write", HEX, 0o602, "(mode 602)");

        let missing = temp_path("missing");
        let err = Key::from_file(&missing).unwrap_err();
        assert!(matches!(err, KeyError::Missing(_)), "{err}");
        assert!(err.to_string().contains("does not exist"), "{err}");

        let dir = temp_path("dir");
        std::fs::create_dir_all(&dir).unwrap();
        let err = Key::from_file(&dir).unwrap_err();
        std::fs::remove_dir(&dir).unwrap();
        assert!(matches!(err, KeyError::Unreadable { .. }), "{err}");
        assert!(err.to_string().starts_with("cannot read key file"), "{err}");
    }

    #[test]
    fn debug_does_not_show_the_key() {
        assert_eq!(format!("{KEY:?}"), "Key(..)");
    }
}
