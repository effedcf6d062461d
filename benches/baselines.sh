#!/usr/bin/env bash
# tickcast side by side with two standard tools, on 127.0.0.1 only, in one run:
#
#   benches/baselines.sh [--install] [--duration SECONDS]
#
#   --install    first `apt-get update` and `apt-get install -y sockperf iperf3`
#                (Debian's packages; needs root). Without it nothing is installed
#                and the script stops if either tool is missing.
#   --duration   seconds of each measurement (default 10; at most 300).
#
# What runs, one after another (about 5 × duration in all):
#   1. sockperf server + `sockperf under-load --mps 60 -m 1200 -t D --reply-every 1`:
#      60 messages/s of 1200 bytes, every one answered. sockperf's "latency" is
#      half the round trip (RTT/2), not a one-way measurement.
#   2. iperf3 server + `iperf3 -u -b 0 -l 1200 -t D`: UDP with no rate limit,
#      1200-byte datagrams; datagrams/s sent (and received by its server).
#   3. `tickcast bench --receivers 1 --entities 71 --rate 60`: one datagram per
#      tick of 56 + 71 × 16 = 1192 bytes (plus a 52-byte sender report each
#      second), one-way latency from the send time, measured (one host, one clock).
#   3b. the same with `--receive-mode predict`: the receiver thread sleeps until
#      just before each tick is due, then busy-polls, so its wake-up is out of the
#      latency (see README, "Receive modes").
#   4. `tickcast bench --receivers 1 --entities 71000 --rate 10000`: ticks of
#      1000 datagrams asked ten thousand times a second (10 M datagrams/s),
#      far more than one core sends. The broadcaster skips the ticks it has no
#      time for (counted, never sent late) and starts the next one at most one
#      period (0.1 ms) after finishing a tick of several ms, so it sends
#      nearly back to back. That is its top datagram rate doing its real work
#      (simulate, encode, number, send), the honest match for iperf3's "-b 0",
#      which sends the same buffer over and over.
# Then tickcast's figures as ratios to theirs: latency p50 and p99 (lower is
# better), datagrams/s (higher is better).
#
# The tickcast binary is target/release/tickcast, built first if missing.
# Servers are killed on exit (trap), every step has a timeout, and every
# socket is on 127.0.0.1. Figures on a busy machine are noisy: the load
# average is printed before each step.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=10
INSTALL=0
SIZE=1200
RATE=60
SOCKPERF_PORT=${SOCKPERF_PORT:-11111}
IPERF_PORT=${IPERF_PORT:-15201}
while [ $# -gt 0 ]; do
    case "$1" in
        --install) INSTALL=1 ;;
        --duration)
            DURATION=${2:?--duration needs a number of seconds}
            shift
            ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "baselines.sh: unknown argument $1 (try --help)" >&2
            exit 2
            ;;
    esac
    shift
done
if ! [[ "$DURATION" =~ ^[0-9]+$ ]] || [ "$DURATION" -lt 1 ] || [ "$DURATION" -gt 300 ]; then
    echo "baselines.sh: --duration must be a whole number of seconds in 1..300" >&2
    exit 2
fi

if [ "$INSTALL" = 1 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y sockperf iperf3
fi
for tool in sockperf iperf3 python3 timeout; do
    if ! command -v "$tool" >/dev/null; then
        echo "baselines.sh: $tool is missing (run with --install for sockperf and iperf3)" >&2
        exit 1
    fi
done

BIN=target/release/tickcast
if [ ! -x "$BIN" ]; then
    echo "== building $BIN"
    cargo build --release
fi

TMP=$(mktemp -d)
SERVER_PIDS=()
cleanup() {
    for pid in "${SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

load() { echo "   (load average: $(cut -d' ' -f1-3 /proc/loadavg))"; }
# Waits (at most 5 s) until something listens on UDP 127.0.0.1:$1.
wait_udp() {
    for _ in $(seq 50); do
        if grep -q ":$(printf '%04X' "$1") " /proc/net/udp 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "baselines.sh: no server came up on udp 127.0.0.1:$1" >&2
    return 1
}
# Waits (at most 5 s) until something listens on TCP 127.0.0.1:$1.
wait_tcp() {
    for _ in $(seq 50); do
        if grep -q ":$(printf '%04X' "$1") 00000000:0000 0A" /proc/net/tcp 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "baselines.sh: no server came up on tcp 127.0.0.1:$1" >&2
    return 1
}
LIMIT=$((DURATION + 30))

echo "== 1/4 sockperf under-load: $RATE msg/s, $SIZE bytes, ${DURATION}s"
load
sockperf server -i 127.0.0.1 -p "$SOCKPERF_PORT" >"$TMP/sockperf-server.txt" 2>&1 &
SERVER_PIDS+=($!)
wait_udp "$SOCKPERF_PORT"
timeout "$LIMIT" sockperf under-load -i 127.0.0.1 -p "$SOCKPERF_PORT" \
    --mps "$RATE" -m "$SIZE" -t "$DURATION" --reply-every 1 >"$TMP/sockperf.txt" 2>&1
kill "${SERVER_PIDS[-1]}" 2>/dev/null || true

echo "== 2/4 iperf3 UDP, no rate limit, $SIZE-byte datagrams, ${DURATION}s"
load
iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT" -1 >"$TMP/iperf3-server.txt" 2>&1 &
SERVER_PIDS+=($!)
wait_tcp "$IPERF_PORT"
timeout "$LIMIT" iperf3 -c 127.0.0.1 -p "$IPERF_PORT" -u -b 0 -l "$SIZE" -t "$DURATION" -J >"$TMP/iperf3.json"

echo "== 3/4 tickcast bench: 1 receiver, one ~${SIZE}-byte datagram per tick at $RATE Hz, ${DURATION}s"
load
timeout "$LIMIT" "$BIN" bench --receivers 1 --entities 71 --rate "$RATE" --payload-budget "$SIZE" \
    --duration "${DURATION}s" --json "$TMP/tickcast-latency.json" >"$TMP/tickcast-latency.txt" 2>&1

echo "== 3b/4 the same, --receive-mode predict"
load
timeout "$LIMIT" "$BIN" bench --receivers 1 --entities 71 --rate "$RATE" --payload-budget "$SIZE" \
    --duration "${DURATION}s" --receive-mode predict --json "$TMP/tickcast-predict.json" \
    >"$TMP/tickcast-predict.txt" 2>&1

echo "== 4/4 tickcast bench at its top rate: 1 receiver, 71000 entities at 10000 Hz (saturated), ${DURATION}s"
load
timeout "$LIMIT" "$BIN" bench --receivers 1 --entities 71000 --rate 10000 --payload-budget "$SIZE" \
    --duration "${DURATION}s" --json "$TMP/tickcast-rate.json" >"$TMP/tickcast-rate.txt" 2>&1

python3 - "$TMP" <<'PY'
import json, re, sys
tmp = sys.argv[1]

text = open(f"{tmp}/sockperf.txt").read()
def pct(p):
    m = re.search(r"percentile %s\s*=\s*([0-9.]+)" % re.escape(p), text)
    if not m:
        sys.exit("baselines.sh: no percentile %s in sockperf's output:\n%s" % (p, text[-2000:]))
    return float(m.group(1))
sp = {"p50": pct("50.000"), "p99": pct("99.000"), "max": float(re.search(r"<MAX> observation\s*=\s*([0-9.]+)", text).group(1))}
sp_obs = int(re.search(r"Total (\d+) observations", text).group(1))

ip = json.load(open(f"{tmp}/iperf3.json"))["end"]
ip_sent = ip["sum_sent"]["packets"] / ip["sum_sent"]["seconds"]
# iperf3's own CPU use of its client process (user + system over wall time).
ip_cpu = ip.get("cpu_utilization_percent", {}).get("host_total")
ip_recv = (ip["sum_received"]["packets"] - ip["sum_received"]["lost_packets"]) / ip["sum_received"]["seconds"]

lat = json.load(open(f"{tmp}/tickcast-latency.json"))
tl = lat["total"]["figures"]
tsize = lat["sender"]["figures"]["bytes_sent"] / max(1, lat["sender"]["figures"]["datagrams_sent"])
rate = json.load(open(f"{tmp}/tickcast-rate.json"))
rs = rate["sender"]
rr = rate["total"]

def row(name, tc, base, unit, better):
    r = tc / base if base else float("nan")
    print(f"  {name:<34} tickcast {tc:>12.1f} {unit:<5} baseline {base:>12.1f} {unit:<5} ratio {r:>7.3f}  ({better} is better)")

print()
print("latency, one datagram at 60/s (µs):")
# sockperf measures at the application, so tickcast's figure to match is
# latency_taken_us (send time to its receiver thread taking the datagram);
# latency_us ends at the kernel's arrival stamp, before the thread woke.
tk = tl.get("latency_taken_us") or tl["latency_us"]
print(f"  sockperf: RTT/2 over {sp_obs} round trips; tickcast: one-way send time to its receiver thread over "
      f"{tk['samples']} datagrams (mean {tsize:.0f} bytes), lost {tl['lost']}")
row("p50 (tickcast / sockperf)", tk["p50"], sp["p50"], "µs", "lower")
row("p99 (tickcast / sockperf)", tk["p99"], sp["p99"], "µs", "lower")
row("max (tickcast / sockperf)", tk["max"], sp["max"], "µs", "lower")
print(f"  tickcast to the kernel's arrival stamp (the wake-up left out): p50 {tl['latency_us']['p50']:.1f} µs, "
      f"p99 {tl['latency_us']['p99']:.1f} µs")
print(f"  tickcast from the tick's scheduled time: p50 {tl['latency_scheduled_us']['p50']:.1f} µs, "
      f"p99 {tl['latency_scheduled_us']['p99']:.1f} µs; tick lateness p99 "
      f"{lat['sender']['figures']['lateness_us']['p99']:.1f} µs")
pl = json.load(open(f"{tmp}/tickcast-predict.json"))["total"]["figures"]
pk = pl.get("latency_taken_us") or pl["latency_us"]
print(f"  with --receive-mode predict ({pk['samples']} datagrams, lost {pl['lost']}):")
row("p50 predict (tickcast / sockperf)", pk["p50"], sp["p50"], "µs", "lower")
row("p99 predict (tickcast / sockperf)", pk["p99"], sp["p99"], "µs", "lower")
print()
print("datagrams per second, 1200-byte datagrams, no rate limit:")
print(f"  tickcast skipped {rs['figures']['ticks_skipped']} of "
      f"{rs['figures']['ticks_skipped'] + rs['figures']['ticks_sent']} ticks (saturated when > 0); "
      f"sender CPU {rs['cpu']['percent_of_core'] if rs['cpu'] else float('nan'):.0f}% of a core")
# Older tickcast reports have no send path: they sent one sendto per datagram.
sf = rs["figures"]
if "send_path" in sf:
    print(f"  tickcast sent with {sf['send_path']}: {rs.get('syscalls_per_datagram', float('nan')):.3f} "
          f"system calls per datagram, {sf['gso_datagrams']} of {sf['datagrams_sent']} as GSO segments"
          + (f" (GSO off: {sf['gso_error']})" if sf.get("gso_error") else ""))
else:
    print("  tickcast sent with sendto: 1 system call per datagram (a build from before batching)")
row("sent/s (tickcast / iperf3)", rs["datagrams_per_s"], ip_sent, "dg/s", "higher")
row("received/s (tickcast / iperf3)", rr["datagrams_per_s"], ip_recv, "dg/s", "higher")
# Per CPU-second of the sender: less at the mercy of how busy the machine is.
if rs["cpu"] and rs["cpu"]["percent_of_core"] > 0 and ip_cpu:
    row("sent per sender CPU-second", rs["datagrams_per_s"] / (rs["cpu"]["percent_of_core"] / 100),
        ip_sent / (ip_cpu / 100), "dg/s", "higher")
    print(f"  (sender CPU: tickcast {rs['cpu']['percent_of_core']:.0f}% of a core, its thread; "
          f"iperf3 {ip_cpu:.0f}%, its client process)")
print(f"  receivers lost: tickcast {rr['figures']['loss_ratio'] * 100:.1f}% "
      f"(socket drops {rr['figures']['socket_drops']}), iperf3 {ip['sum_received']['lost_percent']:.1f}%")
PY
