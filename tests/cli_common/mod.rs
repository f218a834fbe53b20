//! Running the `marlin` binary from the command-line tests: the command,
//! "must succeed" and "must be refused as bad input (exit code 2)" with the
//! output in the failure message, and reading a JSON output.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

pub fn marlin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_marlin"))
}

/// Run `c`, assert it succeeded, return its stdout.
pub fn run_ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        c,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run `c`, assert it exited with code 2 (bad input), return its stderr.
pub fn run_bad(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{:?}: {}",
        c,
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Whether python3 with numpy is here (`.ci/run` installs it).
pub fn numpy_available() -> bool {
    Command::new("python3")
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A [neurons] network small enough for a test (synchronous, sparse engine).
pub fn sparse_scenario(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string("scenarios/ei_network.toml")
        .unwrap()
        .replace("neurons = 10_000", "neurons = 300")
        .replace("k = 100", "k = 20")
        .replace("targets = [2700]", "targets = [81]");
    assert!(
        text.contains("neurons = 300") && text.contains("k = 20") && text.contains("[81]"),
        "ei_network.toml changed"
    );
    let p = dir.join("ei.toml");
    std::fs::write(&p, text).unwrap();
    p
}
