//! The `tickcast` binary: a thin shell over the library (see `cli/`).
// Tests, benches, examples and the binary own their clocks, sockets and files;
// the layer wall in clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
