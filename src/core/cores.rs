//! Whether receivers that spin leave a broadcaster on the same machine a
//! core of its own: the rule behind the one-line warning of `tickcast
//! bench` and `tickcast receive`. Pure: given how many receivers spin and
//! how many cores there are.
//!
//! A `busy-poll` receiver spins all the time, a whole core; a `predict`
//! one spins around each tick's arrival, which is just when the
//! broadcaster is sending that tick, so to the broadcaster both are busy
//! threads. It needs a core at every deadline. On a machine with `C`
//! cores, `B` busy threads leave it none of its own when `B ≥ C`, and one
//! to share with everything else (the process's other threads, the OS,
//! other programs) when `B = C − 1`: the warning is given from `B ≥ C −
//! 1`. A receiver with no broadcaster beside it (`tickcast receive`) is
//! warned only when its busy-polling takes every core (`B ≥ C`, a machine
//! of one core); its predicting does not count there, as it spins only
//! while its own datagrams arrive. The rule counts threads, not CPU pins
//! (`--cpu`).

use std::fmt;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

/// Busy receivers that crowd out a broadcaster, as [`core_warning`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreWarning {
    /// Receivers in `busy-poll` mode.
    pub busy_poll: usize,
    /// Receivers in `predict` mode (counted only with a broadcaster here).
    pub predict: usize,
    /// Cores this process may use.
    pub cores: usize,
    /// Whether a broadcaster runs on this machine too (a bench).
    pub broadcaster_here: bool,
}

/// The warning for `busy_poll` busy-polling and `predict` predicting
/// receivers on a machine of `cores` cores, with or without a broadcaster
/// on it (see the module docs), or `None` when it has a core to spare (or
/// `cores` is 0: unknown).
pub fn core_warning(
    busy_poll: usize,
    predict: usize,
    cores: usize,
    broadcaster_here: bool,
) -> Option<CoreWarning> {
    if cores == 0 {
        return None; // unknown: nothing to say
    }
    let (predict, warn) = if broadcaster_here {
        let busy = busy_poll + predict;
        (predict, busy > 0 && busy + 1 >= cores)
    } else {
        (0, busy_poll > 0 && busy_poll >= cores)
    };
    warn.then_some(CoreWarning {
        busy_poll,
        predict,
        cores,
        broadcaster_here,
    })
}

impl CoreWarning {
    /// The busy threads counted.
    pub fn busy(&self) -> usize {
        self.busy_poll + self.predict
    }

    /// Whether they leave no core at all (rather than one to share).
    pub fn leaves_none(&self) -> bool {
        self.busy() >= self.cores
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

impl fmt::Display for CoreWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (b, p, c) = (self.busy_poll, self.predict, self.cores);
        let n = self.busy();
        match (b, p) {
            (_, 0) => write!(f, "{b} busy-polling receiver{}", plural(b))?,
            (0, _) => write!(
                f,
                "{p} predicting receiver{} (spinning around each tick)",
                plural(p)
            )?,
            _ => write!(
                f,
                "{b} busy-polling and {p} predicting receiver{}",
                plural(n)
            )?,
        }
        let s = if n == 1 { "s" } else { "" };
        write!(f, " on {c} core{} ", plural(c))?;
        if !self.broadcaster_here {
            write!(
                f,
                "take{s} every core from everything else on this machine: \
                 a broadcaster here would be late"
            )
        } else if self.leaves_none() {
            write!(
                f,
                "leave{s} the broadcaster no core of its own: its lateness will rise"
            )
        } else {
            write!(
                f,
                "leave{s} the broadcaster one core to share with everything else \
                 on this machine: its lateness may rise"
            )
        }
    }
}

impl Serialize for CoreWarning {
    /// The counts and the `message` said on stderr.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("CoreWarning", 5)?;
        st.serialize_field("busy_poll", &self.busy_poll)?;
        st.serialize_field("predict", &self.predict)?;
        st.serialize_field("cores", &self.cores)?;
        st.serialize_field("broadcaster_here", &self.broadcaster_here)?;
        st.serialize_field("message", &self.to_string())?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_threads_from_cores_less_one_are_warned_of_beside_a_broadcaster() {
        // (busy-poll, predict, cores) → warned?
        for (b, p, c, warned) in [
            (0, 0, 1, false),
            (0, 0, 2, false),
            (1, 0, 1, true),
            (1, 0, 2, true),
            (2, 0, 2, true),
            (0, 2, 2, true),
            (1, 1, 2, true),
            (1, 0, 3, false),
            (2, 0, 3, true),
            (0, 1, 4, false),
            (3, 0, 4, true),
            (8, 0, 64, false),
            (2, 0, 0, false),
        ] {
            assert_eq!(
                core_warning(b, p, c, true).is_some(),
                warned,
                "{b} busy-poll, {p} predict, {c} cores"
            );
        }
    }

    #[test]
    fn a_lone_receiver_is_warned_only_when_busy_polling_takes_every_core() {
        assert!(core_warning(1, 0, 1, false).is_some());
        assert!(core_warning(1, 0, 2, false).is_none());
        assert!(
            core_warning(0, 1, 1, false).is_none(),
            "predict sleeps between ticks"
        );
        assert!(core_warning(0, 0, 1, false).is_none());
    }

    #[test]
    fn the_warning_says_who_crowds_out_whom() {
        let said = |b, p, c, here| core_warning(b, p, c, here).unwrap().to_string();
        assert_eq!(
            said(2, 0, 2, true),
            "2 busy-polling receivers on 2 cores leave the broadcaster no core of its own: \
             its lateness will rise"
        );
        assert_eq!(
            said(1, 0, 2, true),
            "1 busy-polling receiver on 2 cores leaves the broadcaster one core to share \
             with everything else on this machine: its lateness may rise"
        );
        assert_eq!(
            said(0, 2, 2, true),
            "2 predicting receivers (spinning around each tick) on 2 cores leave the \
             broadcaster no core of its own: its lateness will rise"
        );
        assert_eq!(
            said(1, 1, 2, true),
            "1 busy-polling and 1 predicting receivers on 2 cores leave the broadcaster \
             no core of its own: its lateness will rise"
        );
        assert_eq!(
            said(1, 0, 1, false),
            "1 busy-polling receiver on 1 core takes every core from everything else on \
             this machine: a broadcaster here would be late"
        );
    }

    #[test]
    fn the_json_carries_the_counts_and_the_message() {
        let w = core_warning(2, 0, 2, true).unwrap();
        let v = serde_json::to_value(w).unwrap();
        assert_eq!(v["busy_poll"], 2);
        assert_eq!(v["predict"], 0);
        assert_eq!(v["cores"], 2);
        assert_eq!(v["broadcaster_here"], true);
        assert_eq!(v["message"], w.to_string());
    }
}
