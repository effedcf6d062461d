//! The C ABI from C: `tests/c/roundtrip.c`, which knows nothing but
//! `include/tickcast.h`, compiled with gcc (C11, every warning an error)
//! and linked twice to the library this test run built: to the shared
//! library with an rpath, as an engine loads it, and to the static one,
//! as a C program links it. Each build must exit 0 within the limit.
//! Without gcc the test says so and passes, unless CI=true.
// Tests own their files, processes and clocks; the layer wall
// (clippy.toml) is for the library.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

#[path = "common/native.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{installed, library_dir, run, skip, TempDir};

/// Each run takes well under a second here; the limit is for a host
/// under load, and for a hang.
const LIMIT: Duration = Duration::from_secs(60);

/// The system libraries a Rust static library needs on Linux (as `rustc
/// --print native-static-libs` lists them).
const STATIC_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

fn compile(dir: &TempDir, name: &str, link: &[&str]) -> std::path::PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = dir.path().join(name);
    let mut gcc = Command::new("gcc");
    gcc.args([
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-O1",
    ])
    .arg("-I")
    .arg(crate_dir.join("include"))
    .arg(crate_dir.join("tests/c/roundtrip.c"))
    .arg("-o")
    .arg(&exe)
    .args(link);
    let out = run(gcc, dir.path(), &format!("gcc-{name}"), LIMIT);
    assert!(
        out.status.success(),
        "gcc failed for {name}:\n{}",
        out.text()
    );
    exe
}

fn roundtrip(dir: &TempDir, exe: &Path, name: &str) {
    let out = run(Command::new(exe), dir.path(), name, LIMIT);
    println!("{name}:\n{}{}", out.stdout, out.stderr);
    assert!(out.status.success(), "{name} failed:\n{}", out.text());
    assert!(
        out.stdout.contains("roundtrip: every check passed"),
        "{}",
        out.text()
    );
}

#[test]
fn the_c_roundtrip_passes_against_the_shared_and_the_static_library() {
    if !installed("gcc", "--version") {
        return skip("gcc not found");
    }
    let lib = library_dir();
    let dir = TempDir::new("c");
    let shared = compile(
        &dir,
        "roundtrip-shared",
        &[
            &format!("-L{}", lib.display()),
            "-ltickcast",
            &format!("-Wl,-rpath,{}", lib.display()),
            "-lm",
        ],
    );
    roundtrip(&dir, &shared, "roundtrip-shared");
    let archive = lib.join("libtickcast.a");
    let mut link = vec![archive.to_str().expect("a UTF-8 path")];
    link.extend_from_slice(STATIC_LIBS);
    let fixed = compile(&dir, "roundtrip-static", &link);
    roundtrip(&dir, &fixed, "roundtrip-static");
}
