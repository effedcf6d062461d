//! The game examples together on loopback: `game_server` publishes its
//! own world (spawning and despawning every second) and `game_client`
//! renders it; at the end the client's world must be the server's last
//! state exactly (the same digest of every id and coordinate bit).
// Tests own their clocks, processes and sockets; the layer wall in
// clippy.toml is for the library core.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Where cargo put the examples: beside the test binary's `deps` folder.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(name);
    if !path.exists() {
        // `cargo test` builds the examples; `cargo test --test examples` does not.
        let profile = dir.parent().unwrap().file_name().unwrap().to_str().unwrap();
        let profile = if profile == "debug" { "dev" } else { profile };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let built = Command::new(cargo)
            .args([
                "build",
                "--profile",
                profile,
                "--example",
                "game_server",
                "--example",
                "game_client",
            ])
            .status()
            .unwrap();
        assert!(built.success(), "cannot build the examples");
    }
    path
}

/// The `final entities N digest D` line of an example's output.
fn final_line(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("final entities"))
        .unwrap_or_else(|| panic!("no final line in:\n{out}"))
}

fn run_pair(clock: &str) {
    let port = common::free_udp_port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(example("game_client"));
    cmd.args(["--listen", &addr, "--seconds", "30", "--quiet"]);
    // The client is listening once it says so.
    let client = common::Ready::start(cmd, true, "listening on", Duration::from_secs(10));
    let started = Instant::now();
    let server = Command::new(example("game_server"))
        .args([
            "--to",
            &addr,
            "--entities",
            "2000",
            "--seconds",
            "4",
            "--churn",
            "50",
        ])
        .args(["--clock", clock])
        .output()
        .unwrap();
    let server_out = String::from_utf8_lossy(&server.stdout).into_owned();
    assert!(
        server.status.success(),
        "server: {server_out}{}",
        String::from_utf8_lossy(&server.stderr)
    );
    let client = client.wait();
    let client_out = String::from_utf8_lossy(&client.stdout).into_owned();
    assert!(
        client.status.success(),
        "the client did not see the goodbye: {client_out}{}",
        String::from_utf8_lossy(&client.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        final_line(&client_out),
        final_line(&server_out),
        "{client_out}"
    );
    // The server despawned some, and the client saw each go.
    let despawned = |out: &str| -> u64 {
        let at = out.find("despawned ").expect("a despawned count") + "despawned ".len();
        out[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(despawned(&server_out) > 0, "{server_out}");
    assert_eq!(
        despawned(&client_out),
        despawned(&server_out),
        "{client_out}"
    );
    assert!(client_out.contains("(0 lost)"), "{client_out}");
}

#[test]
fn the_client_ends_with_the_servers_world_on_the_games_clock() {
    run_pair("game");
}

#[test]
fn the_client_ends_with_the_servers_world_on_tickcasts_clock() {
    run_pair("tickcast");
}
