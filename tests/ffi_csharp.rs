//! The C ABI from C#: `tests/csharp/RoundTrip.cs` over `bindings/Tickcast.cs`,
//! compiled with mcs (warnings are errors) and run with mono against the
//! shared library this test run built, copied into a fresh directory as
//! `libtickcast.so`: the name `[DllImport("tickcast")]` loads, as a game
//! would ship it. It must exit 0 within the limit. Without mcs or mono the
//! test says so and passes, unless CI=true.
// Tests own their files, processes and clocks; the layer wall
// (clippy.toml) is for the library.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

#[path = "common/native.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{installed, library_dir, run, skip, TempDir};

/// mono's start and the run take a few seconds here; the limit is for a
/// host under load, and for a hang.
const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn the_csharp_roundtrip_passes_under_mono() {
    if !installed("mcs", "--version") || !installed("mono", "--version") {
        return skip("mcs/mono not found");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = TempDir::new("csharp");
    let exe = dir.path().join("RoundTrip.exe");
    let mut mcs = Command::new("mcs");
    mcs.args(["-warnaserror+", "-warn:4", "-target:exe"])
        .arg(format!("-out:{}", exe.display()))
        .arg(root.join("bindings/Tickcast.cs"))
        .arg(root.join("tests/csharp/RoundTrip.cs"));
    let out = run(mcs, dir.path(), "mcs", LIMIT);
    assert!(out.status.success(), "mcs failed:\n{}", out.text());

    std::fs::copy(
        library_dir().join("libtickcast.so"),
        dir.path().join("libtickcast.so"),
    )
    .expect("copy the library next to the program");
    let mut mono = Command::new("mono");
    mono.arg(&exe)
        .current_dir(dir.path())
        // Where mono's dlopen finds libtickcast.so: beside the program,
        // and nowhere else.
        .env("LD_LIBRARY_PATH", dir.path());
    let out = run(mono, dir.path(), "roundtrip", LIMIT);
    println!("RoundTrip.exe:\n{}{}", out.stdout, out.stderr);
    assert!(
        out.status.success(),
        "RoundTrip.exe failed:\n{}",
        out.text()
    );
    assert!(
        out.stdout.contains("roundtrip: every check passed"),
        "{}",
        out.text()
    );
}

/// The C# binding states the ABI version of the header it follows, which
/// is the library's: `Native.CheckAbi` compares the two at run time, and a
/// binding left behind by a layout change fails here first.
#[test]
fn the_csharp_binding_follows_this_abi_version() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cs = std::fs::read_to_string(root.join("bindings/Tickcast.cs")).unwrap();
    let line = cs
        .lines()
        .find(|l| l.contains("public const uint AbiVersion"))
        .expect("Tickcast.cs declares AbiVersion");
    let n: u32 = line
        .trim()
        .trim_start_matches("public const uint AbiVersion =")
        .trim_end_matches(';')
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    assert_eq!(n, tickcast::ffi::TC_ABI_VERSION);
    assert_eq!(tickcast::ffi::tc_abi_version(), n);
}
