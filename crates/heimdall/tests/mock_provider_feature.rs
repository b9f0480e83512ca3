//! `heimdall mock-provider` follows the `mock-provider` cargo feature: with
//! it (the default) the command serves the mock; without it
//! (`cargo nextest run -p heimdall --no-default-features --test
//! mock_provider_feature`) the command fails with a message that says the
//! binary was built without the mock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn heimdall() -> Command {
    Command::new(env!("CARGO_BIN_EXE_heimdall"))
}

#[cfg(feature = "mock-provider")]
#[test]
fn with_the_feature_the_mock_provider_serves() {
    let mut child = heimdall()
        .args(["mock-provider", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start heimdall mock-provider");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let listening = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("mock provider listening") => break true,
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening, "the mock did not start: {seen:?}");
}

#[cfg(not(feature = "mock-provider"))]
#[test]
fn without_the_feature_the_command_says_so() {
    let out = heimdall()
        .args(["mock-provider", "--listen", "127.0.0.1:0"])
        .output()
        .expect("run heimdall mock-provider");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("built without the mock provider"),
        "stderr: {stderr}"
    );
}
