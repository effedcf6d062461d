//! What the C and C# tests share: where the library this test was built
//! with lies, whether a tool is installed, a fresh temporary directory
//! that removes itself, and running a program with a time limit.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The directory holding `libtickcast.so` and `.a` as this very test
/// run built them. `cargo test` builds the library with all its crate
/// types into `target/<profile>/deps/`, beside the test executable;
/// `cargo build` also copies them up to `target/<profile>/`. Looking
/// beside the executable first takes the fresh ones, whatever
/// `CARGO_TARGET_DIR` and the profile are.
pub fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let deps = exe.parent().expect("the test lies in a directory");
    for dir in [deps, deps.parent().unwrap_or(deps)] {
        if dir.join("libtickcast.so").is_file() && dir.join("libtickcast.a").is_file() {
            return dir.to_path_buf();
        }
    }
    panic!(
        "libtickcast.so and .a are not in {} or its parent: build them with \
         `cargo build` (cargo test builds them by itself)",
        deps.display()
    );
}

/// Whether `program` runs (`program ARG` exits, whatever its status).
pub fn installed(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Says why the test cannot run, and returns (the test passes) unless CI
/// is set: CI must not pass without running it.
pub fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}, and CI=true: CI must run this test");
    }
    println!("skipped: {why}");
}

/// A fresh directory under the system's temporary directory, removed
/// (with everything in it) when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "tickcast-native-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir(&dir).expect("create the temporary directory");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a program did: its exit status and everything it printed.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Both streams, labelled, for a message.
    pub fn text(&self) -> String {
        format!(
            "status: {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `command` to its end, or kills it after `limit` and panics. Its
/// output goes to files in `dir` (a pipe nobody reads while we wait could
/// fill and stall it).
pub fn run(mut command: Command, dir: &Path, what: &str, limit: Duration) -> Output {
    let (out, err) = (
        dir.join(format!("{what}.out")),
        dir.join(format!("{what}.err")),
    );
    command
        .stdin(Stdio::null())
        .stdout(File::create(&out).expect("create the stdout file"))
        .stderr(File::create(&err).expect("create the stderr file"));
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let printed = std::fs::read_to_string(&out).unwrap_or_default();
            let errors = std::fs::read_to_string(&err).unwrap_or_default();
            panic!("{what} did not finish within {limit:?}; it printed:\n{printed}{errors}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    }
}
