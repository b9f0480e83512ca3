//! Runs the end-to-end tests with the official OpenAI and Anthropic Python
//! SDKs (`tests/e2e/run.sh`) against the `heimdall` binary this test build
//! produced, so that `cargo test --workspace` is the whole test suite.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

#[test]
fn official_sdks_work_against_heimdall() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("tests/e2e/run.sh");
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(&root)
        .env("HEIMDALL_BIN", env!("CARGO_BIN_EXE_heimdall"))
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "the SDK end-to-end tests failed (see the pytest output above)"
    );
}
