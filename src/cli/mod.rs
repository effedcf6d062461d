//! The `tickcast` command line: [`flags`] parses and checks the flags and
//! builds the library's configs, [`render`] makes every line a person
//! reads, and this file runs the commands: `broadcast`, `receive` and
//! `demo` here, `bench` and `impair` beside it. Everything that does work
//! lives in the library.
//!
//! Nothing here prints with `println!` or `eprintln!`, which panic when
//! their stream cannot be written (a closed pipe, a full disk): lines for
//! a person go through [`say!`], documents through [`output::stdout`].

/// A line for a person on stderr, as `eprintln!` writes it, but never a
/// panic: when stderr cannot be written (closed, on a full disk) there is
/// nowhere left to say so, and the run goes on.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Text that holds its own line ends on stderr, as `eprint!` writes it,
/// but never a panic (see [`say!`]).
macro_rules! say_text {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

mod bench;
mod flags;
mod impair;
mod output;
mod render;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

use flags::{BroadcastArgs, Cli, Command, DemoArgs, ReceiveArgs};
use render::{broadcast as broadcast_render, demo as demo_render, receive as receive_render};
use tickcast::core::cores;
use tickcast::core::figures::Figures;
use tickcast::core::schema::Versioned;
use tickcast::core::silence::likely_causes;
use tickcast::core::subscriber::SubscriptionState;
use tickcast::runtime::broadcaster::{BroadcastConfig, BroadcastFigures, Broadcaster};
use tickcast::runtime::receiver::{ReceiveMode, Receiver};
use tickcast::wire::auth::Key;

/// How long receivers keep listening after the broadcaster stops, so its
/// goodbye (and anything still in flight) is counted.
const GRACE: Duration = Duration::from_millis(200);

/// Parses the command line and runs it. A flag clap refuses gets clap's
/// own message, whole (what is missing, the valid values, "did you mean",
/// the usage), and exit code 2; so does a flag value the library refuses,
/// in one line ([`flags::FlagError`]); errors at run time exit 1.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print on stdout and exit 0; errors
            // (and the usage of a bare `tickcast`) on stderr with 2. A
            // help that cannot be written (a full disk) is exit 1; a
            // reader that closed early (`| head`) is not an error.
            if let Err(w) = e.print() {
                if w.kind() != std::io::ErrorKind::BrokenPipe && e.exit_code() == 0 {
                    say!("tickcast: cannot write to standard output: {w}");
                    return ExitCode::FAILURE;
                }
            }
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    init_logger(cli.log_level());
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            say!("tickcast: {}", one_line(&e));
            if e.chain().any(|c| c.is::<flags::FlagError>()) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// `e` and its causes in one line, `error: cause: cause`, leaving out a
/// cause whose words the line already ends with: a library error that
/// names its cause in its own message (`"cannot read {path}: {source}"`)
/// is not followed by that cause a second time.
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line == text || line.ends_with(&format!(": {text}")) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Prints the library's log records on stderr as `tickcast: MESSAGE`, one
/// line each, at `level` (-q and -v; warnings and errors by default), or
/// as `RUST_LOG` says when it is set (e.g. `RUST_LOG=off`, or
/// `RUST_LOG=tickcast=debug`). The library logs only what it has been
/// asked to, such as `ReceiverConfig::log_rejects`.
fn init_logger(level: log::LevelFilter) {
    let mut logger = env_logger::Builder::new();
    match std::env::var("RUST_LOG") {
        Ok(filters) if !filters.trim().is_empty() => logger.parse_filters(&filters),
        _ => logger.filter_level(level),
    };
    logger
        .format(|out, record| writeln!(out, "tickcast: {}", record.args()))
        .init();
}

fn run(cli: Cli) -> Result<ExitCode> {
    let stop = ctrl_c()?;
    match cli.command {
        Command::Completions { shell } => completions(shell),
        Command::Broadcast(a) => broadcast(a, &stop),
        Command::Receive(a) => receive(a, &stop),
        Command::Demo(a) => demo(a, &stop),
        Command::Bench(a) => bench::bench(a, &stop),
        Command::Impair(a) => impair::run(a, &stop),
    }
}

/// Prints `shell`'s completion script for every command and flag on
/// stdout. A reader that closes early (`| head`) ends it quietly.
fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    use clap_complete::Generator;
    let mut cmd = <Cli as clap::CommandFactory>::command();
    cmd.set_bin_name("tickcast");
    cmd.build();
    match shell.try_generate(&cmd, &mut std::io::stdout().lock()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write the completion script"))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// A channel that receives one message per Ctrl-C (SIGINT), SIGTERM or
/// SIGHUP: each ends a run the same way, with its summary, its JSON and
/// the broadcaster's goodbye. (ctrlc's `termination` feature; signal-hook
/// would do the same with more code, and ctrlc already runs the handler
/// on its own thread, outside signal context.)
fn ctrl_c() -> Result<mpsc::Receiver<()>> {
    let (tx, rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .context("cannot install the handler of Ctrl-C, SIGTERM and SIGHUP")?;
    Ok(rx)
}

/// Calls `tick` once a second until `duration` passes (if any) or Ctrl-C.
/// Returns true if it ended because of Ctrl-C.
fn every_second(
    stop: &mpsc::Receiver<()>,
    duration: Option<Duration>,
    mut tick: impl FnMut(Duration) -> bool,
) -> bool {
    let start = Instant::now();
    let mut next = Duration::from_secs(1);
    loop {
        let end = duration.map_or(next, |d| d.min(next));
        let wait = end.saturating_sub(start.elapsed());
        match stop.recv_timeout(wait) {
            Ok(()) => return true,
            Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let elapsed = start.elapsed();
        if duration.is_some_and(|d| elapsed >= d) {
            return false;
        }
        if elapsed >= next {
            if !tick(elapsed) {
                return false;
            }
            next += Duration::from_secs(1);
        }
    }
}

/// The key in `--key-file`, if given; its errors are one line naming the file.
fn load_key(path: Option<&PathBuf>) -> Result<Option<Key>> {
    Ok(path.map(Key::from_file).transpose()?)
}

fn broadcast(a: BroadcastArgs, stop: &mpsc::Receiver<()>) -> Result<ExitCode> {
    let key = load_key(a.key_file.as_ref())?;
    let config = a.config(key)?;
    let b = Broadcaster::start(config.clone())?;
    let started = Instant::now();
    say!(
        "{}",
        broadcast_render::start_line(&config, b.local_addr(), b.session())
    );
    every_second(stop, a.duration, |t| {
        // A broadcast that stopped itself has its one line to say, below.
        if b.is_finished() {
            return false;
        }
        say!("{}", broadcast_render::status_line(t, &b.figures()));
        !b.is_finished()
    });
    let from = b.local_addr();
    let f = b.stop();
    let ran = started.elapsed();
    if a.json {
        output::stdout(&serde_json::to_string(&Versioned::new(f.summary()))?)?;
    } else if f.halted.is_none() {
        say!("{}", broadcast_render::final_line(ran, &f));
    }
    broadcast_outcome(&f, &config, from, ran)?;
    Ok(ExitCode::SUCCESS)
}

/// How a broadcaster's run ends: an error (one line, exit 1) when it
/// halted or sent nothing at all, a warning when it skipped many ticks.
fn broadcast_outcome(
    f: &BroadcastFigures,
    config: &BroadcastConfig,
    from: SocketAddr,
    ran: Duration,
) -> Result<()> {
    if let Some(halt) = &f.halted {
        // Nothing got out: one line naming the error, exit 1.
        return Err(halt.clone().into());
    }
    if let Some(why) = broadcast_render::sent_nothing(f, config, from, ran) {
        bail!(why);
    }
    if let Some(w) = broadcast_render::skipped_warning(f, config) {
        say!("tickcast: {w}");
    }
    Ok(())
}

/// How long a receiver that has taken nothing waits before it says why.
const SILENCE_WARNING: Duration = Duration::from_secs(3);

fn receive(a: ReceiveArgs, stop: &mpsc::Receiver<()>) -> Result<ExitCode> {
    let key = load_key(a.key_file.as_ref())?;
    let keyless = key.is_none();
    let config = a.config(key)?;
    let subscribe = config.subscribe;
    let busy_poll = config.mode == ReceiveMode::BusyPoll;
    let cores = tickcast::runtime::realtime::cores_available();
    if let Some(w) = cores::core_warning(usize::from(busy_poll), 0, cores, false) {
        say!("{}", render::core_warning(&w));
    }
    if busy_poll && config.realtime.is_some() {
        say!("{}", render::FIFO_BUSY_POLL_WARNING);
    }
    let r = Receiver::start(config)?;
    let started = Instant::now();
    say!("{}", receive_render::listening(r.local_addrs()));
    if let Some(server) = subscribe {
        say!("{}", receive_render::subscribing(server, r.local_addr()));
    }
    let mut prev = Figures::default();
    let (mut warned, mut warned_stale) = (false, false);
    let mut warn_once = |f: &Figures| {
        if keyless && f.counters.auth_unexpected > 0 && !warned {
            warned = true;
            say!("{}", receive_render::AUTH_UNEXPECTED_WARNING);
        }
        if f.counters.stale_sealed > 0 && !warned_stale {
            warned_stale = true;
            say!("{}", receive_render::STALE_SEALED_WARNING);
        }
    };
    let mut silence_said = false;
    every_second(stop, a.duration, |t| {
        let now = r.figures();
        warn_once(&now);
        let line = receive_render::receive_line(t, &now, &prev, a.subscribe.is_some());
        say!("{line}");
        if t >= SILENCE_WARNING && !silence_said && !now.received_any() {
            silence_said = true;
            let causes = likely_causes(r.listening(), &now);
            say_text!("{}", receive_render::silence_warning(t, &causes));
        }
        // A subscription that gave up ends the run: nothing more will come.
        let gave_up = matches!(now.subscription, SubscriptionState::Failed(_));
        prev = now;
        r.is_running() && !gave_up
    });
    let elapsed = started.elapsed();
    let listening = r.listening().clone();
    let counts = r.subscriber_counts();
    let f = r.stop().context("receiver thread failed")?;
    warn_once(&f);
    let s = f.summary();
    if a.json {
        output::stdout(&serde_json::to_string(&Versioned::new(&s))?)?;
    } else {
        say_text!("{}", receive_render::summary(&s));
        say_text!("{}", receive_render::subscription_summary(&s));
    }
    if let (SubscriptionState::Failed(why), Some(server)) = (f.subscription, subscribe) {
        bail!(receive_render::subscription_failed(server, why, counts));
    }
    if !s.received_any {
        if silence_said {
            bail!(receive_render::received_nothing(elapsed));
        }
        let causes = likely_causes(&listening, &f);
        say_text!("{}", receive_render::silence_warning(elapsed, &causes));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn demo(a: DemoArgs, stop: &mpsc::Receiver<()>) -> Result<ExitCode> {
    a.check()?;
    let key = load_key(a.key_file.as_ref())?;
    let receivers = (0..a.receivers)
        .map(|_| Receiver::start(a.receiver_config(key.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let config = a.broadcast_config(receivers.iter().map(|r| r.local_addr()).collect(), key)?;
    let start_line = demo_render::start_line(&config, receivers.len(), a.duration);
    let b = Broadcaster::start(config.clone())?;
    let started = Instant::now();
    say!("{start_line}");
    let mut prev: Vec<Figures> = vec![Figures::default(); receivers.len()];
    every_second(stop, Some(a.duration), |t| {
        say!("{}", broadcast_render::status_line(t, &b.figures()));
        for (i, r) in receivers.iter().enumerate() {
            let now = r.figures();
            say!("{}", demo_render::receiver_line(i, t, &now, &prev[i]));
            prev[i] = now;
        }
        !b.is_finished()
    });
    let from = b.local_addr();
    let bf = b.stop();
    // How long it ran: the duration, or less after Ctrl-C.
    let ran = started.elapsed();
    std::thread::sleep(GRACE);
    let mut rows = Vec::new();
    for (i, r) in receivers.into_iter().enumerate() {
        let name = demo_render::receiver_name(i, r.local_addr());
        rows.push((name, r.stop().context("receiver thread failed")?.summary()));
    }
    output::stdout(&demo_render::broadcaster_line(ran, &bf))?;
    output::stdout(&demo_render::table(&rows))?;
    broadcast_outcome(&bf, &config, from, ran)?;
    if rows.iter().all(|(_, s)| !s.received_any) {
        bail!(demo_render::received_nothing(rows.len(), ran));
    }
    Ok(ExitCode::SUCCESS)
}
