//! `tickcast broadcast`'s lines (the broadcaster's in `demo` too): what it
//! sends to, once; its figures once a second; and its final figures.

use std::net::SocketAddr;
use std::time::Duration;

use super::us_or_dash;
use tickcast::runtime::broadcaster::{BroadcastConfig, BroadcastFigures};

/// The first line: the world, where it sends from, every kind of
/// destination in `config`, and the session id.
pub fn start_line(config: &BroadcastConfig, from: SocketAddr, session: u64) -> String {
    let mut targets: Vec<String> = config
        .destinations
        .iter()
        .map(|d| d.to_string())
        .chain(config.group.map(|g| format!("group {g}")))
        .chain(config.broadcast.iter().map(|d| format!("broadcast {d}")))
        .collect();
    if config.max_subscribers > 0 {
        targets.push(format!(
            "subscribers (up to {}, lease {})",
            config.max_subscribers,
            humantime::format_duration(config.lease)
        ));
    }
    format!(
        "broadcasting {} entities ({} world) at {} Hz from {} to {} (session {:016x})",
        config.entities,
        config.world,
        config.rate_hz,
        from,
        targets.join(", "),
        session
    )
}

/// One line of the broadcaster's figures, `t` into the run.
pub fn status_line(t: Duration, f: &BroadcastFigures) -> String {
    let s = f.summary();
    let mut line = format!(
        "{:>5.1}s  ticks sent {}  skipped {}  packets {}  datagrams {}  send errors {}  lateness p50 {} p99 {} max {}",
        t.as_secs_f64(),
        s.ticks_sent,
        s.ticks_skipped,
        s.packets_sent,
        s.datagrams_sent,
        s.send_errors,
        us_or_dash(s.lateness_us.map(|l| l.p50)),
        us_or_dash(s.lateness_us.map(|l| l.p99)),
        us_or_dash(s.lateness_us.map(|l| l.max)),
    );
    if s.subscribers > 0 || s.accepted > 0 || s.bad_cookie > 0 {
        line.push_str(&format!(
            "  subscribers {} (accepted {} refused {} bad cookie {} expired {})",
            s.subscribers, s.accepted, s.refused_full, s.bad_cookie, s.expired
        ));
    }
    if let Some(e) = &s.last_error {
        line.push_str(&format!("  (last error: {e})"));
    }
    if let Some(e) = &s.gso_error {
        line.push_str(&format!("  (sending with {}, GSO off: {e})", s.send_path));
    }
    line
}

/// The broadcaster's last line: [`status_line`] without its leading padding.
pub fn final_line(t: Duration, f: &BroadcastFigures) -> String {
    status_line(t, f).trim_start().to_string()
}

/// Why a run of `ran` sent no datagram, in one line, or `None` when it
/// sent one: every send failed, or there was no one to send to (a
/// broadcaster that only serves subscriptions on `from`, and none came).
pub fn sent_nothing(
    f: &BroadcastFigures,
    config: &BroadcastConfig,
    from: SocketAddr,
    ran: Duration,
) -> Option<String> {
    if f.datagrams_sent > 0 {
        return None;
    }
    let ran = ran.as_secs_f64();
    let subscriptions_only =
        config.destinations.is_empty() && config.group.is_none() && config.broadcast.is_empty();
    Some(if f.send_errors > 0 {
        format!(
            "sent nothing in {ran:.1} s: all {} sends failed (last error: {})",
            f.send_errors,
            f.last_error.as_deref().unwrap_or("unknown")
        )
    } else if subscriptions_only {
        // A socket bound to every address is reached at any of this host's.
        let at = if from.ip().is_unspecified() {
            format!("HOST:{}", from.port())
        } else {
            from.to_string()
        };
        format!(
            "sent nothing in {ran:.1} s: no receiver subscribed (a receiver subscribes with: tickcast receive --subscribe {at})"
        )
    } else {
        format!("sent nothing in {ran:.1} s: no tick was sent")
    })
}

/// Share of ticks skipped from which the end of a run warns of it.
const SKIPPED_WARNING_SHARE: f64 = 0.1;
/// Ticks due before a share skipped means anything (a second at 60 Hz).
const SKIPPED_WARNING_TICKS: u64 = 60;

/// A warning when the broadcaster skipped a tenth of its ticks or more:
/// it could not keep up with the rate.
pub fn skipped_warning(f: &BroadcastFigures, config: &BroadcastConfig) -> Option<String> {
    let due = f.ticks_sent + f.ticks_skipped;
    let share = f.ticks_skipped as f64 / due.max(1) as f64;
    (due >= SKIPPED_WARNING_TICKS && share >= SKIPPED_WARNING_SHARE).then(|| {
        format!(
            "warning: {} of {due} ticks ({:.0} %) were skipped: the broadcaster cannot keep up with {} entities at {} Hz on this host (lower --rate or --entities; tickcast bench --find-max-entities measures what it sustains)",
            f.ticks_skipped,
            share * 100.0,
            config.entities,
            config.rate_hz
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_line_names_every_kind_of_destination_in_order() {
        let config = BroadcastConfig {
            destinations: vec!["127.0.0.1:4000".parse().unwrap()],
            group: Some("239.255.77.1:47474".parse().unwrap()),
            broadcast: vec!["192.168.1.255:47474".parse().unwrap()],
            ..BroadcastConfig::default()
        };
        assert_eq!(
            start_line(&config, "0.0.0.0:5000".parse().unwrap(), 0xab),
            "broadcasting 100 entities (linear world) at 60 Hz from 0.0.0.0:5000 to 127.0.0.1:4000, \
             group 239.255.77.1:47474, broadcast 192.168.1.255:47474, \
             subscribers (up to 64, lease 5s) (session 00000000000000ab)"
        );
        let quiet = BroadcastConfig {
            max_subscribers: 0,
            ..config
        };
        assert!(start_line(&quiet, "0.0.0.0:5000".parse().unwrap(), 1)
            .contains("broadcast 192.168.1.255:47474 (session"));
    }

    #[test]
    fn a_run_that_sent_nothing_says_why() {
        let config = BroadcastConfig::default();
        let mut f = BroadcastFigures::default();
        let ran = Duration::from_millis(1_000);
        let from: SocketAddr = "127.0.0.1:47510".parse().unwrap();
        f.datagrams_sent = 1;
        assert_eq!(sent_nothing(&f, &config, from, ran), None);
        f.datagrams_sent = 0;
        (f.send_errors, f.last_error) = (63, Some("Connection refused".into()));
        assert_eq!(
            sent_nothing(&f, &config, from, ran).unwrap(),
            "sent nothing in 1.0 s: all 63 sends failed (last error: Connection refused)"
        );
        let subscriptions = BroadcastConfig {
            destinations: Vec::new(),
            ..BroadcastConfig::default()
        };
        (f.send_errors, f.last_error) = (0, None);
        assert!(sent_nothing(&f, &subscriptions, from, ran)
            .unwrap()
            .ends_with("no receiver subscribed (a receiver subscribes with: tickcast receive --subscribe 127.0.0.1:47510)"));
        let anywhere = "0.0.0.0:47510".parse().unwrap();
        assert!(sent_nothing(&f, &subscriptions, anywhere, ran)
            .unwrap()
            .ends_with("--subscribe HOST:47510)"));
    }

    #[test]
    fn skipping_a_tenth_of_the_ticks_is_warned_of() {
        let config = BroadcastConfig::default();
        let mut f = BroadcastFigures::default();
        (f.ticks_sent, f.ticks_skipped) = (91, 9);
        assert_eq!(skipped_warning(&f, &config), None);
        (f.ticks_sent, f.ticks_skipped) = (4, 1);
        assert_eq!(skipped_warning(&f, &config), None, "too few ticks to tell");
        (f.ticks_sent, f.ticks_skipped) = (90, 10);
        assert!(skipped_warning(&f, &config)
            .unwrap()
            .starts_with("warning: 10 of 100 ticks (10 %) were skipped"));
        assert_eq!(skipped_warning(&BroadcastFigures::default(), &config), None);
    }

    /// `bench --lan` reads the broadcaster child's status line back
    /// (`tickcast::bench::progress`); this keeps the two in step.
    #[test]
    fn the_status_line_reads_back_as_the_same_counters() {
        let mut f = BroadcastFigures::default();
        (f.ticks_sent, f.ticks_skipped, f.packets_sent) = (118, 2, 121);
        (f.datagrams_sent, f.send_errors) = (242, 1);
        let line = status_line(Duration::from_millis(2_000), &f);
        let back = tickcast::bench::progress::sender_figures(&line).expect(&line);
        assert_eq!(
            (
                back.ticks_sent,
                back.ticks_skipped,
                back.packets_sent,
                back.datagrams_sent,
                back.send_errors
            ),
            (118, 2, 121, 242, 1),
            "{line}"
        );
    }
}
