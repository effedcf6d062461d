//! The shared clock of the protocol: nanoseconds since the Unix epoch
//! (CLOCK_REALTIME). Two processes on one host, or clock-synced hosts, share
//! it, which makes one-way latency measurable. Only the runtime layer calls it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
