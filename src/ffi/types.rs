//! Every type the C ABI shows: the status and other codes (integer
//! typedefs with `#define`d values), and the plain `#[repr(C)]` structs of
//! configs, entities, frames, events, samples and figures. Nothing here
//! owns memory or points anywhere the library keeps: a struct is copied in
//! or out whole, and the strings and key a config points to are read
//! during the call that takes it and never kept.
//!
//! The codes are integer typedefs, not Rust enums: a value that comes in
//! from C may be any integer, and a Rust enum holding an undeclared value
//! is undefined behaviour. Every field is an integer, a float or a
//! pointer (no `bool`, no `size_t` in a struct), so each struct is
//! blittable in C# as it is declared in `csharp/Tickcast.cs`.

use std::mem::{offset_of, size_of};
use std::os::raw::c_char;

/// What a call did: `TC_OK`, or why it did nothing (each function says
/// which of its outputs it wrote on failure). `tc_last_error` gives the
/// message of the latest failure on the calling thread.
pub type tc_status = i32;

/// The version of this header's layouts: every struct's fields and every
/// function's parameters. A binding built against one header checks that
/// `tc_abi_version()` returns its `TC_ABI_VERSION` before any other call:
/// a library built from another header would read and write its structs
/// at the wrong offsets. Raised with every change to a layout or a
/// signature; a change that only adds a function, or appends fields to a
/// struct that begins with its `size`, keeps it. 2:
/// `tc_receiver_config` gained `gro`. 3: the configs and figures begin
/// with their `size`, and the calls that write them take the caller's
/// `sizeof`, so that from now on a struct can grow at its end without a
/// new version (see `size`).
pub const TC_ABI_VERSION: u32 = 3;

/// Success.
pub const TC_OK: tc_status = 0;
/// A null pointer, a misaligned pointer, a length too large for memory, a
/// string that is not UTF-8, or a code (clock, mode) the library does not
/// know. Nothing was done.
pub const TC_ERR_INVALID_ARGUMENT: tc_status = 1;
/// The configuration cannot run: an address that does not parse or
/// resolve, a rate out of range, nowhere to send, an unusable key or key
/// file, and so on. The message names the field.
pub const TC_ERR_CONFIG: tc_status = 2;
/// The operating system refused: a socket, a bind (address in use), a
/// multicast join, a thread.
pub const TC_ERR_IO: tc_status = 3;
/// The broadcaster has stopped (its duration ran out, or every send
/// failed): nothing more goes out. Stop it to free it.
pub const TC_ERR_STOPPED: tc_status = 4;
/// The caller's buffer is too small; the count written says how many
/// elements are needed.
pub const TC_ERR_BUFFER_TOO_SMALL: tc_status = 5;
/// The library panicked (a bug in tickcast): the panic was caught at the
/// boundary, and the message is in `tc_last_error`. The handle may still
/// be used and must still be stopped.
pub const TC_ERR_PANIC: tc_status = 6;
/// The call does not fit the broadcaster's clock: `tc_broadcaster_send`
/// under `TC_CLOCK_TICKCAST`, or `tc_broadcaster_publish` under
/// `TC_CLOCK_GAME`.
pub const TC_ERR_WRONG_CLOCK: tc_status = 7;
/// An entity's coordinate is NaN, infinite or beyond the protocol's
/// range; the message names the entity. Nothing was published.
pub const TC_ERR_BAD_COORDINATE: tc_status = 8;
/// Under `TC_CLOCK_GAME`, a tick number not after the last one sent.
pub const TC_ERR_TICK_NOT_AFTER: tc_status = 9;
/// A frame the broadcaster cannot send: an entity id listed twice, with
/// compact snapshots an id of 2^24 or more, or more entities than 65535
/// datagrams hold; the message says which. Nothing was published.
pub const TC_ERR_BAD_FRAME: tc_status = 10;

/// Who decides when a published frame goes out.
pub type tc_clock = u32;
/// tickcast ticks at `rate_hz` and sends the latest frame the game
/// published (`tc_broadcaster_publish`), under its own tick numbers.
pub const TC_CLOCK_TICKCAST: tc_clock = 0;
/// The game ticks: each `tc_broadcaster_send` goes out at once, under the
/// game's tick number.
pub const TC_CLOCK_GAME: tc_clock = 1;

/// How a receiver's thread waits for datagrams (latency against CPU).
pub type tc_receive_mode = u32;
/// Sleep until the kernel reports a datagram: least CPU.
pub const TC_RECEIVE_WAIT: tc_receive_mode = 0;
/// Sleep until just before the next tick is predicted, then busy-poll.
pub const TC_RECEIVE_PREDICT: tc_receive_mode = 1;
/// Never sleep: lowest latency, a whole core.
pub const TC_RECEIVE_BUSY_POLL: tc_receive_mode = 2;

/// What an event says happened (`tc_event.kind`).
pub type tc_event_kind = u32;
/// Entity `id` appeared at `tick` (first seen, or back after a despawn).
pub const TC_EVENT_SPAWNED: tc_event_kind = 1;
/// Entity `id` is gone as of `tick`.
pub const TC_EVENT_DESPAWNED: tc_event_kind = 2;
/// The first session the receiver took (`session`).
pub const TC_EVENT_SESSION_STARTED: tc_event_kind = 3;
/// A new session replaced the one before (a restarted broadcaster).
pub const TC_EVENT_SESSION_RESTARTED: tc_event_kind = 4;
/// The broadcaster said goodbye: the stream `session` ended.
pub const TC_EVENT_STREAM_ENDED: tc_event_kind = 5;
/// The subscription was accepted (`id` 0).
pub const TC_EVENT_SUBSCRIBED: tc_event_kind = 6;
/// The subscription was refused (`id` is the reason) or given up on (`id` 0).
pub const TC_EVENT_SUBSCRIPTION_FAILED: tc_event_kind = 7;

/// How a sample's position was found (`tc_sample.mode`).
pub type tc_sample_mode = u32;
/// Between two snapshots, on the line joining them.
pub const TC_SAMPLE_INTERPOLATED: tc_sample_mode = 0;
/// Past the newest snapshot, on the line through the last two.
pub const TC_SAMPLE_EXTRAPOLATED: tc_sample_mode = 1;
/// Standing still for want of data.
pub const TC_SAMPLE_HELD: tc_sample_mode = 2;
/// Across a teleport: the earlier snapshot, then the later, never between.
pub const TC_SAMPLE_SNAPPED: tc_sample_mode = 3;

/// A struct that begins with its `size` (the configs and the figures),
/// which the library reads and writes within the size a caller gives.
pub(crate) trait SizedStruct: Copy {
    /// The bytes of its layout in ABI 3, the first with a `size`: the
    /// least a caller's size may say. It is the end of the struct's last
    /// ABI 3 field, on this target, so it stays where it is when a later
    /// header appends fields (a whole number of 8-byte words at a time):
    /// the library keeps it to read and write an older header's struct.
    const LEAST: usize;
}

impl SizedStruct for tc_broadcast_config {
    const LEAST: usize = offset_of!(tc_broadcast_config, bound) + size_of::<f64>();
}

impl SizedStruct for tc_receiver_config {
    const LEAST: usize = offset_of!(tc_receiver_config, reserved) + size_of::<u32>();
}

impl SizedStruct for tc_broadcast_figures {
    const LEAST: usize = offset_of!(tc_broadcast_figures, finished) + size_of::<u32>();
}

impl SizedStruct for tc_receive_figures {
    const LEAST: usize = offset_of!(tc_receive_figures, goodbye) + size_of::<u32>();
}

/// Bytes of a pre-shared key (`key` in the configs).
pub const TC_KEY_LEN: usize = 32;

/// One entity as the game publishes it. 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct tc_entity {
    /// Entity id, chosen by the game: at most once in a frame.
    pub id: u32,
    /// X coordinate, in world units.
    pub x: f32,
    /// Y coordinate, in world units.
    pub y: f32,
    /// Z coordinate, in world units.
    pub z: f32,
}

/// One entity as a receiver holds it. 40 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct tc_entity_state {
    /// Entity id.
    pub id: u32,
    /// X coordinate.
    pub x: f32,
    /// Y coordinate.
    pub y: f32,
    /// Z coordinate.
    pub z: f32,
    /// Tick of the update that set this position.
    pub tick: u64,
    /// When the datagram that set it arrived, on this host's clock (ns
    /// since the Unix epoch; the kernel's stamp where there is one).
    pub arrival_ns: u64,
    /// The sender's stamp of that tick (ns since the Unix epoch, its clock).
    pub tick_ns: u64,
}

/// What `tc_receiver_world` copied: which tick the frame is as of. 32 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct tc_frame_info {
    /// The session the frame is from (0 while `has_frame` is 0).
    pub session: u64,
    /// The tick it is as of (0 while `has_frame` is 0).
    pub tick: u64,
    /// The sender's stamp of `tick` (ns since the Unix epoch).
    pub tick_ns: u64,
    /// 1 once a frame has arrived; 0 before (then the world is empty).
    pub has_frame: u32,
    /// 1 if every part of `tick` was applied; 0 if a part was lost or
    /// late, and the entities it held are as of their own latest tick.
    pub complete: u32,
}

/// One event (`tc_receiver_events`). 24 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct tc_event {
    /// What happened: a `TC_EVENT_*` value.
    pub kind: tc_event_kind,
    /// The entity, for spawns and despawns; the refusal reason for
    /// `TC_EVENT_SUBSCRIPTION_FAILED`; else 0.
    pub id: u32,
    /// The tick it happened at (0 where there is none).
    pub tick: u64,
    /// The session it happened in.
    pub session: u64,
}

/// One entity's position at render time (`tc_receiver_sample`). 20 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct tc_sample {
    /// Entity id.
    pub id: u32,
    /// X coordinate.
    pub x: f32,
    /// Y coordinate.
    pub y: f32,
    /// Z coordinate.
    pub z: f32,
    /// How the position was found: a `TC_SAMPLE_*` value.
    pub mode: tc_sample_mode,
}

/// What to broadcast, where and how fast. Fill it with
/// `tc_broadcast_config_default`, then set what differs. The strings are
/// NUL-terminated UTF-8, read during `tc_broadcaster_start` only; NULL
/// means "none" or the default named.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct tc_broadcast_config {
    /// `sizeof` this struct in the caller's header, set by its `_default`
    /// function from the size it is passed. The library reads this many
    /// bytes and no more: a struct from an older header (smaller, should a
    /// later one append fields) gets the defaults for what it lacks, one
    /// from a newer header has its extra fields ignored. Below the size of
    /// ABI 3's layout (0: the struct was not filled by its `_default`) is
    /// `TC_ERR_INVALID_ARGUMENT`.
    pub size: u64,
    /// Unicast destinations, comma-separated: `"127.0.0.1:47474"`,
    /// `"[::1]:47474,10.0.0.2:47474"`, or host names (`"localhost:47474"`,
    /// resolved at start by the system, on the calling thread). NULL or
    /// empty: none.
    pub destinations: *const c_char,
    /// A multicast group and port to send to as well (`"239.255.71.71:47474"`);
    /// NULL: none.
    pub group: *const c_char,
    /// The group's outgoing interface: an address (`"192.168.1.10"`) or an
    /// interface name (`"eth0"`). NULL: the loopback address of the group's
    /// family.
    pub interface: *const c_char,
    /// The local address to send from, where receivers also subscribe.
    /// NULL: `"0.0.0.0:0"` (`"[::]:0"` when every target is IPv6).
    pub bind: *const c_char,
    /// A pre-shared key of `TC_KEY_LEN` bytes: every datagram is then
    /// sealed with it. NULL: none. Not with `key_file`.
    pub key: *const u8,
    /// A key file (64 hex digits, owner-only permissions) to read the key
    /// from. NULL: none. Not with `key`.
    pub key_file: *const c_char,
    /// Ticks per second, in (0, 10000]. Default 60.
    pub rate_hz: f64,
    /// How long to run, in milliseconds; 0 runs until stopped (the default).
    pub duration_ms: u64,
    /// Ticks between two rosters of the live entities, which bound how
    /// long an entity whose every despawn was lost lives on at a receiver
    /// (0 is taken as 1). Default 60.
    pub roster_interval: u64,
    /// Most receivers subscribed at once; 0 turns subscriptions off. Default 64.
    pub max_subscribers: u32,
    /// Largest snapshot datagram, in bytes (72 to 65507). Default 1200.
    pub payload_budget: u32,
    /// Multicast TTL or hop limit, at most 255. Default 1 (this subnet).
    pub multicast_ttl: u32,
    /// Nonzero: this host's own members of the group receive it. Default 1.
    pub multicast_loop: u32,
    /// Nonzero: send compact snapshots (protocol version 2's kind 6),
    /// positions quantized to 1/`quanta_per_unit` of a unit (1000: 1 mm)
    /// and delta-coded, a few bytes an entity. 0 (the default): full
    /// snapshots, `f32` coordinates, 16 bytes an entity.
    pub quanta_per_unit: u32,
    /// With compact snapshots: ticks between an entity's keyframes, at
    /// most 65535 (0: the default, 60).
    pub keyframe_interval: u32,
    /// With compact snapshots: the largest absolute coordinate, in world
    /// units (0: the default, 1e6); a publish beyond it is
    /// `TC_ERR_BAD_COORDINATE`.
    pub bound: f64,
    /// Appended after ABI 3's first layout: a struct from a header
    /// without them gets the defaults, and a library older than this
    /// header ignores them (its `_default` then sets `size` below
    /// `offsetof(tc_broadcast_config, cpu) + 4`: check that before relying on
    /// them). Run the broadcast thread under SCHED_FIFO at this priority, 1
    /// to 99; 0 (the default): an ordinary thread. Above 99 is
    /// `TC_ERR_CONFIG`. It needs root, CAP_SYS_NICE or an RLIMIT_RTPRIO
    /// this high: a refusal is `TC_ERR_IO` from start, with nothing left
    /// running. The process's memory is not locked (`mlockall` is the
    /// whole process's, for good): a game that wants its pages resident
    /// locks them itself.
    pub realtime_priority: u32,
    /// Pin the broadcast thread to this CPU; -1 (the default): wherever the
    /// system puts it. Below -1 is `TC_ERR_CONFIG`; a CPU the process may
    /// not run on is `TC_ERR_IO` from start.
    pub cpu: i32,
}

/// What a receiver listens to, and how its game client draws positions.
/// Fill it with `tc_receiver_config_default`, then set at least one of
/// `bind`, `group` and `subscribe`. Strings as in `tc_broadcast_config`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct tc_receiver_config {
    /// `sizeof` this struct in the caller's header, set by its `_default`
    /// function from the size it is passed. The library reads this many
    /// bytes and no more: a struct from an older header (smaller, should a
    /// later one append fields) gets the defaults for what it lacks, one
    /// from a newer header has its extra fields ignored. Below the size of
    /// ABI 3's layout (0: the struct was not filled by its `_default`) is
    /// `TC_ERR_INVALID_ARGUMENT`.
    pub size: u64,
    /// A unicast address to listen on (`"127.0.0.1:0"` picks a free port:
    /// `tc_receiver_local_port` tells which). NULL: none, or with
    /// `subscribe` a free port on every address.
    pub bind: *const c_char,
    /// A multicast group and port to join. NULL: none.
    pub group: *const c_char,
    /// The interface to join the group on: an address or a name. NULL: the
    /// loopback address of the group's family.
    pub interface: *const c_char,
    /// A broadcaster's address to subscribe to: the stream then comes by
    /// unicast for as long as the receiver runs. NULL: none.
    pub subscribe: *const c_char,
    /// A pre-shared key of `TC_KEY_LEN` bytes: only datagrams sealed with
    /// it are taken. NULL: none. Not with `key_file`.
    pub key: *const u8,
    /// A key file to read the key from. NULL: none. Not with `key`.
    pub key_file: *const c_char,
    /// The render delay of `tc_receiver_sample`, ns; negative (the
    /// default, -1): two tick periods plus a jitter margin, measured.
    pub interpolation_delay_ns: i64,
    /// How long past the newest snapshot an entity is extrapolated before
    /// it is held, ns; 0 never extrapolates. Default 250 ms.
    pub max_extrapolation_ns: u64,
    /// Entity ids accepted are `0..capacity`, at least 1; memory is
    /// bounded by it: the world about 48 bytes an id, allocated a page of
    /// 1024 ids at a time, and the interpolator about 250 bytes an id, a
    /// page of 256 ids at a time, each page made when one of its ids
    /// arrives. Default 1048576.
    pub capacity: u32,
    /// Events held before the newest are dropped (and counted in
    /// `events_dropped`) because the game did not read them: 1 to 1048576
    /// (32 bytes each, allocated at start; beyond is `TC_ERR_CONFIG`).
    /// Default 65536.
    pub event_capacity: u32,
    /// Socket receive buffer to ask for, in bytes; 0 leaves the system's.
    /// Default 4 MiB.
    pub recv_buffer: u32,
    /// How the receiver thread waits: a `TC_RECEIVE_*` value. Default
    /// `TC_RECEIVE_WAIT`.
    pub mode: tc_receive_mode,
    /// Two snapshots of one entity farther apart than this (world units)
    /// are a teleport: snapped, never slid between. Positive (INFINITY:
    /// never snap; NaN, 0 or below is `TC_ERR_CONFIG`). Default 10.
    pub teleport_distance: f32,
    /// Nonzero: with an automatic delay, widen the margin to three times
    /// the measured arrival jitter when that is more. Default 0.
    pub adaptive_delay: u32,
    /// Nonzero (the default): take runs of datagrams the kernel coalesced
    /// (UDP GRO, Linux), queued and copied once each, which about halves
    /// the receiver's CPU; a run dropped at a full socket then counts once
    /// in `socket_drops`. 0: one datagram at a time, each drop counted.
    pub gro: u32,
    /// Always 0 (another value is `TC_ERR_CONFIG`). It makes the struct a
    /// whole number of 8-byte words, so that a field appended later never
    /// lies in an older struct's padding.
    pub reserved: u32,
    /// Appended after ABI 3's first layout: a struct from a header
    /// without them gets the defaults, and a library older than this
    /// header ignores them (its `_default` then sets `size` below
    /// `offsetof(tc_receiver_config, cpu) + 4`: check that before relying on
    /// them). Run the receiver thread under SCHED_FIFO at this priority, 1
    /// to 99; 0 (the default): an ordinary thread. Above 99 is
    /// `TC_ERR_CONFIG`. It needs root, CAP_SYS_NICE or an RLIMIT_RTPRIO
    /// this high: a refusal is `TC_ERR_IO` from start, with nothing left
    /// running. The process's memory is not locked (`mlockall` is the
    /// whole process's, for good): a game that wants its pages resident
    /// locks them itself.
    pub realtime_priority: u32,
    /// Pin the receiver thread to this CPU; -1 (the default): wherever the
    /// system puts it. Below -1 is `TC_ERR_CONFIG`; a CPU the process may
    /// not run on is `TC_ERR_IO` from start.
    pub cpu: i32,
}

/// What a broadcaster has done so far. Counters only go up.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct tc_broadcast_figures {
    /// The bytes the library wrote: the size the caller passed (`sizeof`
    /// the struct in its header), or less when the library is older than
    /// the header and knows fewer fields (those beyond keep what they
    /// held). A size below ABI 3's layout is `TC_ERR_INVALID_ARGUMENT`, and
    /// nothing is written.
    pub size: u64,
    /// The session id every packet carries.
    pub session: u64,
    /// Ticks whose snapshot was sent (all its parts).
    pub ticks_sent: u64,
    /// Ticks given up because their slot passed before they could be sent.
    pub ticks_skipped: u64,
    /// Sequence numbers used (snapshot parts, reports, goodbye copies),
    /// each once however many targets it went to.
    pub packets_sent: u64,
    /// Datagrams the system accepted: one per packet per target.
    pub datagrams_sent: u64,
    /// Bytes of those datagrams (UDP payload).
    pub bytes_sent: u64,
    /// Datagrams the system refused, one per packet per target. Never fatal.
    pub send_errors: u64,
    /// System calls that handed stream datagrams to the system.
    pub send_syscalls: u64,
    /// Of `datagrams_sent`, those sent as segments of UDP GSO messages.
    pub gso_datagrams: u64,
    /// Receivers subscribed now.
    pub subscribers: u64,
    /// Frames the game published or sent, and the broadcaster took.
    pub frames_committed: u64,
    /// Frames published over one not yet sent (under `TC_CLOCK_GAME`,
    /// those frames were never sent).
    pub frames_replaced: u64,
    /// Ticks sent from the game's frames.
    pub frames_sent: u64,
    /// Frames refused by the broadcast thread; the tick is skipped. What a
    /// publish or send can check is refused there instead
    /// (`TC_ERR_BAD_COORDINATE`, `TC_ERR_BAD_FRAME`), so this counts the
    /// rest: with compact snapshots, a tick the encoder could not split
    /// into 65535 parts.
    pub frames_refused: u64,
    /// Entities that appeared: new ids, and ids back after a despawn.
    pub spawned: u64,
    /// Entities despawned: in one frame sent and not in the next.
    pub despawned: u64,
    /// Rosters sent.
    pub rosters: u64,
    /// Entities in the last frame sent.
    pub live_entities: u64,
    /// Ticks whose lateness (actual send start − deadline) was measured.
    pub lateness_samples: u64,
    /// Median lateness, ns (0 without samples).
    pub lateness_p50_ns: u64,
    /// 99th percentile of lateness, ns (0 without samples).
    pub lateness_p99_ns: u64,
    /// Largest lateness, ns (0 without samples).
    pub lateness_max_ns: u64,
    /// 1 if the broadcast stopped itself because every send failed.
    pub halted: u32,
    /// 1 once the broadcast thread has ended (duration over, stopped or halted).
    pub finished: u32,
}

/// What a receiver got so far, and what its game client drew. Counters
/// only go up; `received + lost == expected` in every copy.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct tc_receive_figures {
    /// The bytes the library wrote: the size the caller passed (`sizeof`
    /// the struct in its header), or less when the library is older than
    /// the header and knows fewer fields (those beyond keep what they
    /// held). A size below ABI 3's layout is `TC_ERR_INVALID_ARGUMENT`, and
    /// nothing is written.
    pub size: u64,
    /// Sequenced packets the broadcaster sent in the span this receiver saw.
    pub expected: u64,
    /// Distinct sequenced packets received.
    pub received: u64,
    /// `expected - received`.
    pub lost: u64,
    /// Arrivals of a sequence number already received.
    pub duplicates: u64,
    /// Fresh arrivals after a higher sequence number.
    pub reordered: u64,
    /// Datagrams not applied because what they carry is older than what is.
    pub stale: u64,
    /// Datagrams the decoder rejected.
    pub malformed: u64,
    /// With a key: datagrams that failed authentication.
    pub auth_failed: u64,
    /// With a key: datagrams refused as replays.
    pub replayed: u64,
    /// New sessions that took over after the first (broadcaster restarts).
    pub restarts: u64,
    /// Datagrams the kernel dropped at the socket for lack of buffer space.
    pub socket_drops: u64,
    /// Times the newest applied tick advanced.
    pub ticks_applied: u64,
    /// Entity records written into the world.
    pub entities_applied: u64,
    /// Entity records not written because a newer tick was applied.
    pub entities_stale: u64,
    /// Entity records refused: id beyond `capacity`.
    pub entities_rejected: u64,
    /// Entities removed by a despawn record.
    pub entities_despawned: u64,
    /// Entities removed by a roster that no longer listed them.
    pub entities_removed_by_roster: u64,
    /// Every datagram handed to the receiver.
    pub datagrams: u64,
    /// Bytes of those datagrams.
    pub bytes: u64,
    /// The newest tick applied (valid when `has_count` is 1).
    pub count: u64,
    /// One-way latency samples (arrival − send stamp) recorded.
    pub latency_samples: u64,
    /// Median one-way latency, ns (0 without samples).
    pub latency_p50_ns: u64,
    /// 99th percentile of one-way latency, ns (0 without samples).
    pub latency_p99_ns: u64,
    /// Largest one-way latency, ns (0 without samples).
    pub latency_max_ns: u64,
    /// Interarrival jitter (RFC 3550), ns.
    pub jitter_ns: u64,
    /// Events dropped because the game did not read them in time.
    pub events_dropped: u64,
    /// Samples drawn between two snapshots.
    pub interpolated: u64,
    /// Samples drawn past the newest snapshot.
    pub extrapolated: u64,
    /// Samples held still for want of data.
    pub held: u64,
    /// Samples snapped across a teleport.
    pub snapped: u64,
    /// Teleports seen.
    pub teleports: u64,
    /// The render delay `tc_receiver_sample` uses now, ns.
    pub interpolation_delay_ns: u64,
    /// 1 once a tick was applied (then `count` holds it).
    pub has_count: u32,
    /// 1 once the current session's goodbye arrived.
    pub goodbye: u32,
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use crate::core::feed::EventKind;
    use crate::core::interpolate::SampleMode;

    use super::*;

    /// `bindings/Tickcast.cs` declares the same structs field by field;
    /// these are the sizes `tests/csharp/RoundTrip.cs` checks on its side.
    #[test]
    fn the_structs_have_the_sizes_the_csharp_binding_declares() {
        assert_eq!(size_of::<tc_entity>(), 16);
        assert_eq!(size_of::<tc_entity_state>(), 40);
        assert_eq!(size_of::<tc_frame_info>(), 32);
        assert_eq!(size_of::<tc_event>(), 24);
        assert_eq!(size_of::<tc_sample>(), 20);
        assert_eq!(size_of::<tc_broadcast_figures>(), 192);
        assert_eq!(size_of::<tc_receive_figures>(), 272);
        #[cfg(target_pointer_width = "64")]
        {
            assert_eq!(size_of::<tc_broadcast_config>(), 120);
            assert_eq!(size_of::<tc_receiver_config>(), 112);
        }
    }

    /// The sized structs begin with their size. The least sizes the
    /// library takes are ABI 3's first layouts (written out, so a field
    /// inserted before their last one, which would move the computed
    /// constants with it, fails here); the fields appended since change
    /// the structs' sizes, not these.
    #[test]
    fn the_sized_structs_are_abi_3s_and_begin_with_their_size() {
        assert_eq!(tc_broadcast_figures::LEAST, 192);
        assert_eq!(tc_receive_figures::LEAST, 272);
        assert_eq!(
            size_of::<tc_broadcast_figures>(),
            tc_broadcast_figures::LEAST
        );
        assert_eq!(size_of::<tc_receive_figures>(), tc_receive_figures::LEAST);
        #[cfg(target_pointer_width = "64")]
        {
            assert_eq!(tc_broadcast_config::LEAST, 112);
            assert_eq!(tc_receiver_config::LEAST, 104);
            // Each has grown since by one 8-byte word: the real-time
            // priority and the CPU.
            assert_eq!(
                size_of::<tc_broadcast_config>(),
                tc_broadcast_config::LEAST + 8
            );
            assert_eq!(
                size_of::<tc_receiver_config>(),
                tc_receiver_config::LEAST + 8
            );
        }
        assert_eq!(std::mem::offset_of!(tc_broadcast_config, size), 0);
        assert_eq!(std::mem::offset_of!(tc_receiver_config, size), 0);
        assert_eq!(std::mem::offset_of!(tc_broadcast_figures, size), 0);
        assert_eq!(std::mem::offset_of!(tc_receive_figures, size), 0);
    }

    #[test]
    fn the_event_and_sample_codes_are_the_librarys() {
        let kinds = [
            (EventKind::Spawned, TC_EVENT_SPAWNED),
            (EventKind::Despawned, TC_EVENT_DESPAWNED),
            (EventKind::SessionStarted, TC_EVENT_SESSION_STARTED),
            (EventKind::SessionRestarted, TC_EVENT_SESSION_RESTARTED),
            (EventKind::StreamEnded, TC_EVENT_STREAM_ENDED),
            (EventKind::Subscribed, TC_EVENT_SUBSCRIBED),
            (EventKind::SubscriptionFailed, TC_EVENT_SUBSCRIPTION_FAILED),
        ];
        for (kind, code) in kinds {
            assert_eq!(kind as u32, code, "{kind:?}");
        }
        let modes = [
            (SampleMode::Interpolated, TC_SAMPLE_INTERPOLATED),
            (SampleMode::Extrapolated, TC_SAMPLE_EXTRAPOLATED),
            (SampleMode::Held, TC_SAMPLE_HELD),
            (SampleMode::Snapped, TC_SAMPLE_SNAPPED),
        ];
        for (mode, code) in modes {
            assert_eq!(mode as u32, code, "{mode:?}");
        }
        assert_eq!(TC_KEY_LEN, crate::wire::auth::KEY_LEN);
    }
}
