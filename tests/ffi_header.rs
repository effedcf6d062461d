//! The committed header, `include/tickcast.h`, is what cbindgen makes of
//! `src/ffi/` today, byte for byte: a change to the ABI that was not
//! regenerated fails here. `TICKCAST_BLESS=1` writes the new header
//! instead of comparing.
// Tests own their files; the layer wall (clippy.toml) is for the library.
#![allow(clippy::disallowed_methods)]

use std::path::Path;

const REGENERATE: &str = "TICKCAST_BLESS=1 cargo test --test ffi_header";

fn generate() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("include/cbindgen.toml"))
        .expect("include/cbindgen.toml");
    // From the source files, not `cargo metadata`: no cargo process inside
    // the test, and the dependencies are not needed (the ABI's types are
    // all this crate's).
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

#[test]
fn the_committed_header_is_the_generated_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/tickcast.h");
    let generated = generate();
    if std::env::var_os("TICKCAST_BLESS").is_some_and(|v| v == "1") {
        // In CI the committed header is checked, never rewritten.
        assert!(
            std::env::var_os("CI").is_none_or(|v| v != "true"),
            "TICKCAST_BLESS=1 under CI=true would pass without checking the header"
        );
        std::fs::write(&path, &generated).expect("write include/tickcast.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()))
            + 1;
        panic!(
            "include/tickcast.h is not what cbindgen generates from src/ffi/ \
             (they differ from line {line}); regenerate it with: {REGENERATE}"
        );
    }
}
