-- Wireshark dissector for the tickcast wire protocol (proto/PROTOCOL.md).
--
-- Use:  tshark -X lua_script:proto/tickcast.lua -i eth0 -f "udp port 47474"
--       wireshark -X lua_script:proto/tickcast.lua
-- or copy this file into Wireshark's personal plugins folder
-- (Help > About > Folders > Personal Lua Plugins).
--
-- Every datagram starts with the 20-byte common header (magic "TKCS",
-- version, kind, flags, session, seq); all integers are little-endian and
-- f32 coordinates are IEEE-754 binary32, little-endian. It reads protocol
-- versions 1 and 2 (version 2 adds the despawn and roster kinds, 4 and 5,
-- and the compact snapshot part, 6, which version 1 does not define). The
-- dissector is
-- registered on UDP ports 47474 (stream) and 47475 (subscriptions), and as a
-- heuristic on every UDP datagram whose first four bytes are "TKCS", so a
-- stream on any port is decoded.
--
-- Each kind's fields are decoded at their spec offsets, and each record
-- (entity, despawn record, id run, compact record) as its own subtree;
-- padding is shown as padding. A compact part's records are read bit by
-- bit (least significant bit first; gamma, Exp-Golomb and zigzag codes) in
-- plain arithmetic on Lua numbers, exact below 2^53, so it runs on the Lua
-- 5.2 of Wireshark 4.0 as on the 5.4 of later versions, without a bit
-- library. Anything the reference decoder would reject (short, truncated,
-- trailing bytes, unknown version/kind, reserved flag bits, AUTH on a
-- datagram too short for a tag, impossible part, bad
-- coordinate, a despawn record after its tick, roster runs out of order or
-- range, a compact part's impossible head, codes, ids or padding) gets an
-- expert info entry instead of a Lua error, so no input can break it.

local tickcast = Proto("tickcast", "tickcast game state")

local HEADER_LEN = 20
-- The versions this dissector reads (PROTOCOL.md, "Versioning").
local MIN_VERSION, VERSION = 1, 2
-- flags bit 0x0001 (AUTH): a 16-byte tag follows the packet (see PROTOCOL.md,
-- "Authentication"). The dissector shows the tag; it cannot check it.
local FLAG_AUTH = 0x0001
local TAG_LEN = 16
local SNAPSHOT_FIXED_LEN = 56
local ENTITY_LEN = 16
local DESPAWN_FIXED_LEN = 44
local DESPAWN_RECORD_LEN = 12
local ROSTER_FIXED_LEN = 56
local ID_RUN_LEN = 8
local COMPACT_FIXED_LEN = 56
local MAX_COORD = 1.0e9
-- The largest q / quanta_per_unit (in f64) whose nearest f32 is within
-- 1e9: 1000000032 is halfway to the next f32, 1000000064, and rounds to the
-- even one, 1e9.
local MAX_COMPACT_COORD = 1000000032

local kind_names = {
    [1] = "snapshot",
    [2] = "sender_report",
    [3] = "goodbye",
    [4] = "despawn",
    [5] = "roster",
    [6] = "compact",
    [16] = "subscribe",
    [17] = "challenge",
    [18] = "confirm",
    [19] = "accept",
    [20] = "refuse",
    [21] = "unsubscribe",
    [22] = "ping",
    [23] = "pong",
}

-- The first version that defines a kind, where it is not 1.
local since_version = { [4] = 2, [5] = 2, [6] = 2 }

-- Subscription kinds a receiver sends (the others come from the broadcaster).
local from_receiver = { [16] = true, [18] = true, [21] = true, [22] = true }

local reason_names = {
    [1] = "full",
}

local f = tickcast.fields
-- Common header.
f.magic = ProtoField.string("tickcast.magic", "Magic")
f.version = ProtoField.uint8("tickcast.version", "Version", base.DEC)
f.kind = ProtoField.uint8("tickcast.kind", "Kind", base.DEC, kind_names)
f.flags = ProtoField.uint16("tickcast.flags", "Flags", base.HEX)
f.session = ProtoField.uint64("tickcast.session", "Session", base.HEX)
f.seq = ProtoField.uint32("tickcast.seq", "Sequence number", base.DEC)
-- Times shared by several kinds.
f.sent_ns = ProtoField.uint64("tickcast.sent_ns", "Sent (ns since epoch)", base.DEC)
-- Snapshot.
f.tick = ProtoField.uint64("tickcast.tick", "Tick", base.DEC)
f.scheduled_ns = ProtoField.uint64("tickcast.scheduled_ns", "Scheduled (ns since epoch)", base.DEC)
f.part = ProtoField.uint16("tickcast.part", "Part", base.DEC)
f.parts = ProtoField.uint16("tickcast.parts", "Parts", base.DEC)
f.entity_count = ProtoField.uint64("tickcast.entity_count", "Entity count", base.DEC)
f.entity = ProtoField.bytes("tickcast.entity", "Entity record")
f.entity_id = ProtoField.uint32("tickcast.entity.id", "Id", base.DEC)
f.entity_x = ProtoField.float("tickcast.entity.x", "X")
f.entity_y = ProtoField.float("tickcast.entity.y", "Y")
f.entity_z = ProtoField.float("tickcast.entity.z", "Z")
-- Despawn (version 2).
f.despawn_count = ProtoField.uint64("tickcast.despawn_count", "Despawn record count", base.DEC)
f.despawned = ProtoField.bytes("tickcast.despawned", "Despawn record")
f.despawned_id = ProtoField.uint32("tickcast.despawned.id", "Id", base.DEC)
f.despawned_tick = ProtoField.uint64("tickcast.despawned.tick", "Absent as of tick", base.DEC)
-- Roster (version 2); its tick, sent_ns, part and parts are the snapshot's fields.
f.roster_first_id = ProtoField.uint32("tickcast.roster.first_id", "First id of the range", base.DEC)
f.roster_last_id = ProtoField.uint32("tickcast.roster.last_id", "Last id of the range", base.DEC)
f.run_count = ProtoField.uint64("tickcast.run_count", "Run count", base.DEC)
f.run = ProtoField.bytes("tickcast.run", "Id run")
f.run_first = ProtoField.uint32("tickcast.run.first", "First id", base.DEC)
f.run_count_ids = ProtoField.uint32("tickcast.run.count", "Ids", base.DEC)
-- Compact snapshot part (version 2); its tick, times, part and parts are
-- the snapshot's fields. Each record is a subtree over the bytes its bits
-- touch, its fields given as values (they are not byte-aligned).
f.compact_quanta = ProtoField.uint32("tickcast.compact.quanta_per_unit", "Quanta per unit", base.DEC)
f.compact_interval = ProtoField.uint16("tickcast.compact.keyframe_interval", "Keyframe interval (ticks)", base.DEC)
f.compact_count = ProtoField.uint16("tickcast.compact.count", "Record count", base.DEC)
f.compact_record = ProtoField.string("tickcast.compact.record", "Compact record")
f.compact_id = ProtoField.uint32("tickcast.compact.id", "Id", base.DEC)
f.compact_type = ProtoField.string("tickcast.compact.type", "Record type")
f.compact_qx = ProtoField.int32("tickcast.compact.q.x", "Position x (quanta)", base.DEC)
f.compact_qy = ProtoField.int32("tickcast.compact.q.y", "Position y (quanta)", base.DEC)
f.compact_qz = ProtoField.int32("tickcast.compact.q.z", "Position z (quanta)", base.DEC)
f.compact_vx = ProtoField.int32("tickcast.compact.v.x", "Velocity x (1/16 quantum a tick)", base.DEC)
f.compact_vy = ProtoField.int32("tickcast.compact.v.y", "Velocity y (1/16 quantum a tick)", base.DEC)
f.compact_vz = ProtoField.int32("tickcast.compact.v.z", "Velocity z (1/16 quantum a tick)", base.DEC)
f.compact_age = ProtoField.uint32("tickcast.compact.age", "Keyframe age (ticks)", base.DEC)
f.compact_rx = ProtoField.int32("tickcast.compact.r.x", "Residual x (quanta)", base.DEC)
f.compact_ry = ProtoField.int32("tickcast.compact.r.y", "Residual y (quanta)", base.DEC)
f.compact_rz = ProtoField.int32("tickcast.compact.r.z", "Residual z (quanta)", base.DEC)
f.compact_padding = ProtoField.uint8("tickcast.compact.padding", "Padding bits", base.DEC)
-- Sender report.
f.report_packets_sent = ProtoField.uint64("tickcast.report.packets_sent", "Packets sent", base.DEC)
f.report_ticks_sent = ProtoField.uint64("tickcast.report.ticks_sent", "Ticks sent", base.DEC)
f.report_ticks_skipped = ProtoField.uint64("tickcast.report.ticks_skipped", "Ticks skipped", base.DEC)
-- Goodbye.
f.goodbye_final_seq = ProtoField.uint32("tickcast.goodbye.final_seq", "Final sequence number", base.DEC)
f.goodbye_packets_sent = ProtoField.uint64("tickcast.goodbye.packets_sent", "Packets sent", base.DEC)
-- Subscription and control kinds.
f.nonce = ProtoField.uint64("tickcast.nonce", "Nonce", base.HEX)
f.cookie_bucket = ProtoField.uint64("tickcast.cookie.bucket", "Cookie time bucket", base.DEC)
f.cookie_mac = ProtoField.bytes("tickcast.cookie.mac", "Cookie MAC")
f.lease_ms = ProtoField.uint32("tickcast.lease_ms", "Lease (ms)", base.DEC)
f.reason = ProtoField.uint8("tickcast.reason", "Reason", base.DEC, reason_names)
f.ping_sent_ns = ProtoField.uint64("tickcast.ping.sent_ns", "Ping sent (ns, receiver clock)", base.DEC)
f.pong_ping_sent_ns = ProtoField.uint64("tickcast.pong.ping_sent_ns", "Ping sent (ns, echoed)", base.DEC)
f.pong_bc_recv_ns = ProtoField.uint64("tickcast.pong.bc_recv_ns", "Ping received (ns, broadcaster clock)", base.DEC)
f.padding = ProtoField.bytes("tickcast.padding", "Padding")
f.trailing = ProtoField.bytes("tickcast.trailing", "Trailing bytes")
f.tag = ProtoField.bytes("tickcast.tag", "Authentication tag (BLAKE3 keyed, not checked)")

local e = {
    too_short = ProtoExpert.new("tickcast.too_short", "Shorter than the 20-byte header",
        expert.group.MALFORMED, expert.severity.ERROR),
    truncated = ProtoExpert.new("tickcast.truncated", "Body shorter than its fields",
        expert.group.MALFORMED, expert.severity.ERROR),
    trailing = ProtoExpert.new("tickcast.trailing_bytes", "Bytes after the body",
        expert.group.MALFORMED, expert.severity.ERROR),
    version = ProtoExpert.new("tickcast.unsupported_version", "Unsupported protocol version",
        expert.group.MALFORMED, expert.severity.ERROR),
    kind = ProtoExpert.new("tickcast.unknown_kind", "Unknown packet kind",
        expert.group.MALFORMED, expert.severity.ERROR),
    flags = ProtoExpert.new("tickcast.unknown_flags", "Reserved flag bits set",
        expert.group.MALFORMED, expert.severity.ERROR),
    -- AUTH is a defined flag, but a datagram too short for a header and a
    -- tag is no sealed datagram: a keyless receiver rejects it as Sealed
    -- (AUTH is checked before the body), a keyed one as auth_failed.
    sealed_short = ProtoExpert.new("tickcast.sealed_too_short",
        "AUTH set, but too short for the header and a tag",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_part = ProtoExpert.new("tickcast.bad_part", "Impossible part index (parts = 0 or part >= parts)",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_coord = ProtoExpert.new("tickcast.bad_coordinate", "Coordinate NaN, infinite or beyond 1e9",
        expert.group.MALFORMED, expert.severity.ERROR),
    padding = ProtoExpert.new("tickcast.bad_padding", "Padding holds a non-zero byte",
        expert.group.MALFORMED, expert.severity.ERROR),
    lifecycle = ProtoExpert.new("tickcast.bad_lifecycle",
        "Despawn record after its packet's tick, or roster range or runs impossible",
        expert.group.MALFORMED, expert.severity.ERROR),
    compact = ProtoExpert.new("tickcast.bad_compact",
        "Compact part impossible: zero quanta per unit or keyframe interval, an id or age past 0xffffffff, or a padding bit set",
        expert.group.MALFORMED, expert.severity.ERROR),
}
tickcast.experts = { e.too_short, e.truncated, e.trailing, e.version, e.kind,
    e.flags, e.sealed_short, e.bad_part, e.bad_coord, e.padding, e.lifecycle, e.compact }

-- Layouts of the fixed-size kinds (PROTOCOL.md, "Lengths and limits"): the
-- fields in order, then, for the kinds padded so that no reply is larger
-- than the request (subscribe, confirm, ping), zero padding up to `len`.
-- `len` is the exact datagram length the spec requires.
local U64, U32, U8 = 8, 4, 1
local layouts = {
    [2] = { len = 52, fields = {
        { f.sent_ns, U64 }, { f.report_packets_sent, U64 },
        { f.report_ticks_sent, U64 }, { f.report_ticks_skipped, U64 } } },
    [3] = { len = 40, fields = {
        { f.sent_ns, U64 }, { f.goodbye_final_seq, U32 }, { f.goodbye_packets_sent, U64 } } },
    [16] = { len = 52, padded = true, fields = { { f.nonce, U64 } } },
    [17] = { len = 52, fields = {
        { f.nonce, U64 }, { f.cookie_bucket, U64 }, { f.cookie_mac, 16 } } },
    [18] = { len = 52, padded = true, fields = {
        { f.nonce, U64 }, { f.cookie_bucket, U64 }, { f.cookie_mac, 16 } } },
    [19] = { len = 32, fields = { { f.nonce, U64 }, { f.lease_ms, U32 } } },
    [20] = { len = 29, fields = { { f.nonce, U64 }, { f.reason, U8 } } },
    [21] = { len = 52, fields = {
        { f.nonce, U64 }, { f.cookie_bucket, U64 }, { f.cookie_mac, 16 } } },
    [22] = { len = 44, padded = true, fields = { { f.nonce, U64 }, { f.ping_sent_ns, U64 } } },
    [23] = { len = 44, fields = {
        { f.nonce, U64 }, { f.pong_ping_sent_ns, U64 }, { f.pong_bc_recv_ns, U64 } } },
}

local function kind_name(k)
    return kind_names[k] or ("kind " .. k)
end

-- The UInt64 at `off` as a Lua number when it fits exactly (< 2^53), else nil.
local function small(range)
    local v = range:le_uint64()
    if v > UInt64(0xffffffff, 0x1fffff) then
        return nil
    end
    return v:tonumber()
end

-- Adds `tvb[off..len)` as trailing bytes with an expert, if any are left.
local function trailing(tvb, tree, off)
    local len = tvb:len()
    if len > off then
        tree:add(f.trailing, tvb(off, len - off))
            :add_proto_expert_info(e.trailing, string.format("%d bytes after the body", len - off))
    end
end

local function bad_coord(v)
    return v ~= v or v > MAX_COORD or v < -MAX_COORD
end

-- How many records of `record_len` bytes follow a `count` at `count_off`
-- (the last 8 bytes of `fixed_len`): the count, or the records that fit with
-- an expert if the count claims more. Returns the number to show and the
-- count as a Lua number (nil if it does not fit one).
local function record_count(tvb, count_item, count_off, fixed_len, record_len)
    local len = tvb:len()
    local room = math.floor((len - fixed_len) / record_len)
    local count = small(tvb(count_off, 8))
    if count == nil or count > room then
        count_item:add_proto_expert_info(e.truncated,
            string.format("count %s needs %s record bytes, %d present",
                tostring(tvb(count_off, 8):le_uint64()),
                count and tostring(count * record_len) or "more", len - fixed_len))
        return room, count
    end
    return count, count
end

local function truncated_fixed(tvb, tree, name, fixed_len)
    tree:add_proto_expert_info(e.truncated,
        string.format("%s needs %d bytes before its records, has %d", name, fixed_len, tvb:len()))
    return name .. " (truncated)"
end

local function dissect_snapshot(tvb, pinfo, tree)
    if tvb:len() < SNAPSHOT_FIXED_LEN then
        return truncated_fixed(tvb, tree, "snapshot", SNAPSHOT_FIXED_LEN)
    end
    tree:add_le(f.tick, tvb(20, 8))
    tree:add_le(f.scheduled_ns, tvb(28, 8))
    tree:add_le(f.sent_ns, tvb(36, 8))
    local part_item = tree:add_le(f.part, tvb(44, 2))
    tree:add_le(f.parts, tvb(46, 2))
    local count_item = tree:add_le(f.entity_count, tvb(48, 8))
    local part, parts = tvb(44, 2):le_uint(), tvb(46, 2):le_uint()
    if parts == 0 or part >= parts then
        part_item:add_proto_expert_info(e.bad_part, string.format("part %d of %d", part, parts))
    end
    local n, count = record_count(tvb, count_item, 48, SNAPSHOT_FIXED_LEN, ENTITY_LEN)
    for i = 0, n - 1 do
        local off = SNAPSHOT_FIXED_LEN + i * ENTITY_LEN
        local rec = tvb(off, ENTITY_LEN)
        local id = tvb(off, 4):le_uint()
        local x, y, z = tvb(off + 4, 4):le_float(), tvb(off + 8, 4):le_float(), tvb(off + 12, 4):le_float()
        local sub = tree:add(f.entity, rec)
        sub:set_text(string.format("Entity %d: (%g, %g, %g)", id, x, y, z))
        sub:add_le(f.entity_id, tvb(off, 4))
        for j, c in ipairs({ { f.entity_x, x }, { f.entity_y, y }, { f.entity_z, z } }) do
            local item = sub:add_le(c[1], tvb(off + 4 * j, 4))
            if bad_coord(c[2]) then
                item:add_proto_expert_info(e.bad_coord)
            end
        end
    end
    if n == count then
        trailing(tvb, tree, SNAPSHOT_FIXED_LEN + n * ENTITY_LEN)
    end
    return string.format("snapshot tick=%s part %d/%d, %s entities",
        tostring(tvb(20, 8):le_uint64()), part, parts, tostring(tvb(48, 8):le_uint64()))
end

local function dissect_despawn(tvb, pinfo, tree)
    if tvb:len() < DESPAWN_FIXED_LEN then
        return truncated_fixed(tvb, tree, "despawn", DESPAWN_FIXED_LEN)
    end
    tree:add_le(f.tick, tvb(20, 8))
    tree:add_le(f.sent_ns, tvb(28, 8))
    local count_item = tree:add_le(f.despawn_count, tvb(36, 8))
    local n, count = record_count(tvb, count_item, 36, DESPAWN_FIXED_LEN, DESPAWN_RECORD_LEN)
    local tick = tvb(20, 8):le_uint64()
    for i = 0, n - 1 do
        local off = DESPAWN_FIXED_LEN + i * DESPAWN_RECORD_LEN
        local id, t = tvb(off, 4):le_uint(), tvb(off + 4, 8):le_uint64()
        local sub = tree:add(f.despawned, tvb(off, DESPAWN_RECORD_LEN))
        sub:set_text(string.format("Despawned %d as of tick %s", id, tostring(t)))
        sub:add_le(f.despawned_id, tvb(off, 4))
        local tick_item = sub:add_le(f.despawned_tick, tvb(off + 4, 8))
        if t > tick then
            tick_item:add_proto_expert_info(e.lifecycle,
                string.format("record tick %s is after the packet's tick %s", tostring(t), tostring(tick)))
        end
    end
    if n == count then
        trailing(tvb, tree, DESPAWN_FIXED_LEN + n * DESPAWN_RECORD_LEN)
    end
    return string.format("despawn tick=%s, %s records", tostring(tick), tostring(tvb(36, 8):le_uint64()))
end

local function dissect_roster(tvb, pinfo, tree)
    if tvb:len() < ROSTER_FIXED_LEN then
        return truncated_fixed(tvb, tree, "roster", ROSTER_FIXED_LEN)
    end
    tree:add_le(f.tick, tvb(20, 8))
    tree:add_le(f.sent_ns, tvb(28, 8))
    local first_item = tree:add_le(f.roster_first_id, tvb(36, 4))
    tree:add_le(f.roster_last_id, tvb(40, 4))
    local part_item = tree:add_le(f.part, tvb(44, 2))
    tree:add_le(f.parts, tvb(46, 2))
    local count_item = tree:add_le(f.run_count, tvb(48, 8))
    local first_id, last_id = tvb(36, 4):le_uint(), tvb(40, 4):le_uint()
    local part, parts = tvb(44, 2):le_uint(), tvb(46, 2):le_uint()
    if parts == 0 or part >= parts then
        part_item:add_proto_expert_info(e.bad_part, string.format("part %d of %d", part, parts))
    end
    if first_id > last_id then
        first_item:add_proto_expert_info(e.lifecycle,
            string.format("empty range: first_id %d > last_id %d", first_id, last_id))
    end
    local n, count = record_count(tvb, count_item, 48, ROSTER_FIXED_LEN, ID_RUN_LEN)
    -- The first id the next run may start at (nil: the last run reached 0xffffffff).
    local next_free = first_id
    for i = 0, n - 1 do
        local off = ROSTER_FIXED_LEN + i * ID_RUN_LEN
        local first, ids = tvb(off, 4):le_uint(), tvb(off + 4, 4):le_uint()
        -- u32 values, so first + ids - 1 is exact in a Lua number.
        local last = first + ids - 1
        local sub = tree:add(f.run, tvb(off, ID_RUN_LEN))
        sub:set_text(string.format("Ids %d to %d exist", first, last))
        local first_run_item = sub:add_le(f.run_first, tvb(off, 4))
        local ids_item = sub:add_le(f.run_count_ids, tvb(off + 4, 4))
        if ids == 0 then
            ids_item:add_proto_expert_info(e.lifecycle, "a run holds at least one id")
        elseif next_free == nil or first < next_free then
            first_run_item:add_proto_expert_info(e.lifecycle,
                "run before the range, or not after the run before it (runs ascend, never overlap)")
        elseif last > last_id then
            ids_item:add_proto_expert_info(e.lifecycle,
                string.format("run ends at %d, past last_id %d", last, last_id))
        end
        if ids > 0 then
            next_free = (last < 0xffffffff) and (last + 1) or nil
        end
    end
    if n == count then
        trailing(tvb, tree, ROSTER_FIXED_LEN + n * ID_RUN_LEN)
    end
    return string.format("roster tick=%s part %d/%d, ids %d..=%d, %s runs",
        tostring(tvb(20, 8):le_uint64()), part, parts, first_id, last_id,
        tostring(tvb(48, 8):le_uint64()))
end

-- A reader of the bits of `len` bytes at `off`: least significant bit of
-- each byte first (PROTOCOL.md, "The bit-packed section").
local function bit_reader(tvb, off, len)
    local bytes = {}
    for i = 0, len - 1 do
        bytes[i] = tvb(off + i, 1):uint()
    end
    return { bytes = bytes, nbits = 8 * len, pos = 0 }
end

-- The next bit, or nil at the end.
local function read_bit(r)
    if r.pos >= r.nbits then
        return nil
    end
    local byte = r.bytes[math.floor(r.pos / 8)]
    local bit = math.floor(byte / 2 ^ (r.pos % 8)) % 2
    r.pos = r.pos + 1
    return bit
end

-- An n-bit field (n <= 32), least significant bit first; nil if cut short.
local function read_bits(r, n)
    local v = 0
    for i = 0, n - 1 do
        local b = read_bit(r)
        if b == nil then
            return nil
        end
        v = v + b * 2 ^ i
    end
    return v
end

-- An Elias gamma code: the value, or nil and why not.
local function read_gamma(r)
    local zeros = 0
    while true do
        local b = read_bit(r)
        if b == nil then
            return nil, "cut short by the end of the datagram"
        end
        if b == 1 then
            break
        end
        zeros = zeros + 1
        if zeros > 32 then
            return nil, "a gamma code with more than 32 zeros before its one"
        end
    end
    local rest = read_bits(r, zeros)
    if rest == nil then
        return nil, "cut short by the end of the datagram"
    end
    return 2 ^ zeros + rest
end

-- A signed value: zigzag, then Exp-Golomb (the gamma code of u + 1).
local function read_signed(r)
    local g, why = read_gamma(r)
    if g == nil then
        return nil, why
    end
    local u = g - 1
    if u >= 2 ^ 32 then
        return nil, "a signed value beyond the i32 range"
    end
    if u % 2 == 0 then
        return u / 2
    end
    return -(u + 1) / 2
end

-- Reads one record after the one with id `prev` (nil: the first). Returns
-- the record as a table, or nil, the expert and why.
local function read_record(r, prev)
    local rec = { start = r.pos }
    local gap, why = read_gamma(r)
    if gap == nil then
        return nil, e.truncated, "id gap " .. why
    end
    rec.id = prev and (prev + gap) or (gap - 1)
    if rec.id > 0xffffffff then
        return nil, e.compact, string.format("id %.0f is past 0xffffffff", rec.id)
    end
    local p1 = read_bit(r)
    local p2 = (p1 == 0) and read_bit(r) or nil
    if p1 == nil or (p1 == 0 and p2 == nil) then
        return nil, e.truncated, "prefix cut short by the end of the datagram"
    end
    local signed_axes = function(what)
        local v = {}
        for i = 1, 3 do
            local x, why = read_signed(r)
            if x == nil then
                return nil, what .. " " .. why
            end
            v[i] = x
        end
        return v
    end
    if p1 == 0 and p2 == 1 then
        rec.type = "keyframe"
        rec.q = {}
        for i = 1, 3 do
            local u = read_bits(r, 32)
            if u == nil then
                return nil, e.truncated, "position cut short by the end of the datagram"
            end
            rec.q[i] = (u >= 2 ^ 31) and (u - 2 ^ 32) or u
        end
        rec.v, why = signed_axes("velocity")
        if rec.v == nil then
            return nil, e.truncated, why
        end
    else
        rec.type = (p1 == 1) and "delta" or "delta-age"
        if rec.type == "delta-age" then
            rec.age, why = read_gamma(r)
            if rec.age == nil then
                return nil, e.truncated, "age " .. why
            end
            if rec.age > 0xffffffff then
                return nil, e.compact, string.format("age %.0f is past 0xffffffff", rec.age)
            end
        end
        rec.r, why = signed_axes("residual")
        if rec.r == nil then
            return nil, e.truncated, why
        end
    end
    rec.stop = r.pos
    return rec
end

-- The bytes a run of bits touches, within the section at `off`.
local function bits_range(tvb, off, from, to)
    local first = math.floor(from / 8)
    local last = math.max(first + 1, math.ceil(to / 8))
    return tvb(off + first, last - first)
end

local function dissect_compact(tvb, pinfo, tree)
    if tvb:len() < COMPACT_FIXED_LEN then
        return truncated_fixed(tvb, tree, "compact part", COMPACT_FIXED_LEN)
    end
    tree:add_le(f.tick, tvb(20, 8))
    tree:add_le(f.scheduled_ns, tvb(28, 8))
    tree:add_le(f.sent_ns, tvb(36, 8))
    local part_item = tree:add_le(f.part, tvb(44, 2))
    tree:add_le(f.parts, tvb(46, 2))
    local qpu_item = tree:add_le(f.compact_quanta, tvb(48, 4))
    local k_item = tree:add_le(f.compact_interval, tvb(52, 2))
    local count_item = tree:add_le(f.compact_count, tvb(54, 2))
    local part, parts = tvb(44, 2):le_uint(), tvb(46, 2):le_uint()
    local qpu, k, count = tvb(48, 4):le_uint(), tvb(52, 2):le_uint(), tvb(54, 2):le_uint()
    if parts == 0 or part >= parts then
        part_item:add_proto_expert_info(e.bad_part, string.format("part %d of %d", part, parts))
    end
    if qpu == 0 then
        qpu_item:add_proto_expert_info(e.compact, "at least 1 quantum a unit")
    end
    if k == 0 then
        k_item:add_proto_expert_info(e.compact, "at least 1 tick between keyframes")
    end
    local len = tvb:len() - COMPACT_FIXED_LEN
    if count * 4 > len * 8 then
        count_item:add_proto_expert_info(e.truncated,
            string.format("count %d: %d bits cannot hold that many records (5 bits or more each)", count, len * 8))
    end
    local r = bit_reader(tvb, COMPACT_FIXED_LEN, len)
    local prev, keyframes, ok = nil, 0, true
    local units = function(q)
        return (qpu > 0) and string.format(" = %.10g", q / qpu) or ""
    end
    for i = 0, count - 1 do
        local start = r.pos
        local rec, expert_info, why = read_record(r, prev)
        if rec == nil then
            local msg = string.format("record %d: %s", i, why)
            if len == 0 then
                count_item:add_proto_expert_info(expert_info, msg)
            else
                local from = math.min(start, 8 * len - 1)
                local item = tree:add(f.compact_record,
                    bits_range(tvb, COMPACT_FIXED_LEN, from, math.max(r.pos, from + 1)),
                    string.format("record %d: not a record", i))
                item:add_proto_expert_info(expert_info, msg)
            end
            ok = false
            break
        end
        prev = rec.id
        local range = bits_range(tvb, COMPACT_FIXED_LEN, rec.start, rec.stop)
        local text
        if rec.type == "keyframe" then
            keyframes = keyframes + 1
            text = string.format("Keyframe %.0f: q (%.0f%s, %.0f%s, %.0f%s), v (%.0f, %.0f, %.0f)", rec.id,
                rec.q[1], units(rec.q[1]), rec.q[2], units(rec.q[2]), rec.q[3], units(rec.q[3]),
                rec.v[1], rec.v[2], rec.v[3])
        elseif rec.type == "delta" then
            text = string.format("Delta %.0f against its window's keyframe: r (%.0f, %.0f, %.0f)", rec.id,
                rec.r[1], rec.r[2], rec.r[3])
        else
            text = string.format("Delta %.0f against its keyframe %.0f ticks old: r (%.0f, %.0f, %.0f)", rec.id,
                rec.age, rec.r[1], rec.r[2], rec.r[3])
        end
        local sub = tree:add(f.compact_record, range, rec.type)
        sub:set_text(string.format("%s (bits %d to %d)", text, rec.start, rec.stop - 1))
        sub:add(f.compact_id, range, rec.id)
        sub:add(f.compact_type, range, rec.type)
        if rec.type == "keyframe" then
            for j, fl in ipairs({ f.compact_qx, f.compact_qy, f.compact_qz }) do
                local item = sub:add(fl, range, rec.q[j])
                if qpu > 0 and math.abs(rec.q[j] / qpu) > MAX_COMPACT_COORD then
                    item:add_proto_expert_info(e.bad_coord,
                        string.format("%.0f quanta at %d a unit are beyond 1e9", rec.q[j], qpu))
                end
            end
            for j, fl in ipairs({ f.compact_vx, f.compact_vy, f.compact_vz }) do
                sub:add(fl, range, rec.v[j])
            end
        else
            if rec.age then
                sub:add(f.compact_age, range, rec.age)
            end
            for j, fl in ipairs({ f.compact_rx, f.compact_ry, f.compact_rz }) do
                sub:add(fl, range, rec.r[j])
            end
        end
    end
    if ok then
        -- Zero bits to the end of the last record's byte; nothing after it.
        local used = math.ceil(r.pos / 8)
        local pad = used * 8 - r.pos
        if pad > 0 then
            local bits = read_bits(r, pad)
            local item = tree:add(f.compact_padding, tvb(COMPACT_FIXED_LEN + used - 1, 1), pad)
            item:set_text(string.format("Padding: %d bits", pad))
            if bits ~= 0 then
                item:add_proto_expert_info(e.compact, "a padding bit is set")
            end
        end
        trailing(tvb, tree, COMPACT_FIXED_LEN + used)
    end
    return string.format("compact tick=%s part %d/%d, %d records (%d keyframes)",
        tostring(tvb(20, 8):le_uint64()), part, parts, count, keyframes)
end

local function dissect_fixed(tvb, pinfo, tree, kind, layout)
    local len = tvb:len()
    local off = HEADER_LEN
    local summary = kind_name(kind)
    for _, fl in ipairs(layout.fields) do
        local field, size = fl[1], fl[2]
        if off + size > len then
            tree:add_proto_expert_info(e.truncated,
                string.format("%s needs %d bytes, has %d", kind_name(kind), layout.len, len))
            return summary .. " (truncated)"
        end
        tree:add_le(field, tvb(off, size))
        off = off + size
    end
    if layout.padded then
        if len < layout.len then
            tree:add_proto_expert_info(e.truncated,
                string.format("%s is padded to %d bytes, has %d", kind_name(kind), layout.len, len))
        end
        local pad_len = math.min(len, layout.len) - off
        if pad_len > 0 then
            local pad = tvb(off, pad_len)
            local item = tree:add(f.padding, pad)
            for i = 0, pad_len - 1 do
                if pad(i, 1):uint() ~= 0 then
                    item:add_proto_expert_info(e.padding)
                    break
                end
            end
        end
        off = math.min(len, layout.len)
    end
    trailing(tvb, tree, off)
    if layout.fields[1][1] == f.nonce then
        summary = summary .. string.format(" nonce=0x%s", tvb(20, 8):le_uint64():tohex())
    end
    if kind == 3 then
        summary = summary .. string.format(" final_seq=%d", tvb(28, 4):le_uint())
    elseif kind == 20 then
        local r = tvb(28, 1):uint()
        summary = summary .. " reason=" .. (reason_names[r] or tostring(r))
    elseif kind == 19 then
        summary = summary .. string.format(" lease=%d ms", tvb(28, 4):le_uint())
    end
    return summary
end

function tickcast.dissector(tvb, pinfo, tree)
    local len = tvb:len()
    if len < 4 or tvb(0, 4):string() ~= "TKCS" then
        return 0
    end
    pinfo.cols.protocol = "TICKCAST"
    local root = tree:add(tickcast, tvb(), "tickcast")
    root:add(f.magic, tvb(0, 4))
    if len < HEADER_LEN then
        root:add_proto_expert_info(e.too_short,
            string.format("%d bytes, the header alone is %d", len, HEADER_LEN))
        pinfo.cols.info = "tickcast (shorter than the header)"
        return len
    end
    local version_item = root:add(f.version, tvb(4, 1))
    local kind_item = root:add(f.kind, tvb(5, 1))
    local flags_item = root:add_le(f.flags, tvb(6, 2))
    local session_item = root:add_le(f.session, tvb(8, 8))
    local seq_item = root:add_le(f.seq, tvb(16, 4))
    local version, kind, flags = tvb(4, 1):uint(), tvb(5, 1):uint(), tvb(6, 2):le_uint()
    if kind >= 16 and kind <= 23 then
        -- Subscription kinds are not sequenced, and a receiver's carry its
        -- client id where the broadcaster's carry its session.
        seq_item:append_text(" (not sequenced)")
        if from_receiver[kind] then
            session_item:append_text(" (receiver's client id)")
        end
    end
    local seq = tvb(16, 4):le_uint()
    if version < MIN_VERSION or version > VERSION then
        version_item:add_proto_expert_info(e.version,
            string.format("version %d, this dissector speaks %d to %d", version, MIN_VERSION, VERSION))
    end
    local datagram_len = len
    if flags == FLAG_AUTH and len >= HEADER_LEN + TAG_LEN then
        -- Sealed: the body is everything before the tag.
        flags_item:append_text(" (AUTH: sealed)")
        root:add(f.tag, tvb(len - TAG_LEN, TAG_LEN))
        tvb = tvb(0, len - TAG_LEN):tvb()
        len = len - TAG_LEN
    elseif flags == FLAG_AUTH then
        flags_item:add_proto_expert_info(e.sealed_short, string.format(
            "AUTH set, but %d bytes cannot hold the %d-byte header and a %d-byte tag", len, HEADER_LEN, TAG_LEN))
    elseif flags ~= 0 then
        flags_item:add_proto_expert_info(e.flags, string.format("flags 0x%04x, only 0x0001 (AUTH) is defined", flags))
    end
    local summary
    if since_version[kind] and version < since_version[kind] then
        kind_item:add_proto_expert_info(e.kind,
            string.format("kind %d (%s) is defined from version %d, not in version %d",
                kind, kind_name(kind), since_version[kind], version))
        summary = kind_name(kind) .. " (unknown in version " .. version .. ")"
        if len > HEADER_LEN then
            root:add(f.trailing, tvb(HEADER_LEN, len - HEADER_LEN))
        end
    elseif kind == 1 then
        summary = dissect_snapshot(tvb, pinfo, root)
    elseif kind == 4 then
        summary = dissect_despawn(tvb, pinfo, root)
    elseif kind == 5 then
        summary = dissect_roster(tvb, pinfo, root)
    elseif kind == 6 then
        summary = dissect_compact(tvb, pinfo, root)
    elseif layouts[kind] then
        summary = dissect_fixed(tvb, pinfo, root, kind, layouts[kind])
    else
        kind_item:add_proto_expert_info(e.kind, string.format("kind %d is not defined", kind))
        summary = kind_name(kind)
        if len > HEADER_LEN then
            root:add(f.trailing, tvb(HEADER_LEN, len - HEADER_LEN))
        end
    end
    root:append_text(string.format(", %s, seq %d", summary, seq))
    pinfo.cols.info = string.format("%s seq=%d", summary, seq)
    return datagram_len
end

local function heuristic(tvb, pinfo, tree)
    if tvb:len() < 4 or tvb(0, 4):string() ~= "TKCS" then
        return false
    end
    tickcast.dissector(tvb, pinfo, tree)
    return true
end

local udp_port = DissectorTable.get("udp.port")
udp_port:add(47474, tickcast)
udp_port:add(47475, tickcast)
tickcast:register_heuristic("udp", heuristic)
