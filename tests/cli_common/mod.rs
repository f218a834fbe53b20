//! Running the `marlin` binary from the command-line tests: the command,
//! "must succeed" and "must be refused as bad input (exit code 2)" with the
//! output in the failure message, and reading a JSON output.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// The repository's top folder (this crate is crates/marlin-cli).
pub fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository's top")
}

/// Test processes start in this crate's folder; the tests' relative paths
/// (scenarios/…, docs/…, out/…) lead from the repository's top.
#[ctor::ctor(unsafe)]
fn at_the_repository_top() {
    std::env::set_current_dir(repo()).expect("the repository's top");
}

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

/// The Python the tests run: `$MARLIN_PYTHON` (the README's test command,
/// `tests/run.sh`, points it at the virtual environment it sets up), else
/// `python3`.
pub fn python() -> Command {
    Command::new(std::env::var("MARLIN_PYTHON").unwrap_or_else(|_| "python3".into()))
}

/// Whether that Python has numpy.
pub fn numpy_available() -> bool {
    python()
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether a test that needs `tool` can run: true when `available`. When
/// not, under the README's test command or CI (`MARLIN_REQUIRE_TOOLS=1`,
/// set by `tests/run.sh`, which installs every tool) the test fails; under
/// a plain `cargo test` it prints a SKIPPED line where the user sees it
/// (past the test harness's output capture) and the caller returns.
pub fn tool_or_skip(available: bool, test: &str, tool: &str, install: &str) -> bool {
    use std::io::Write;
    if available {
        return true;
    }
    if std::env::var("MARLIN_REQUIRE_TOOLS").is_ok_and(|v| v == "1") {
        panic!("{test} needs {tool}, which tests/run.sh should have installed ({install})");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {test}: no {tool} here ({install}; tests/run.sh installs it and then requires it)"
    );
    false
}

/// [`tool_or_skip`] for numpy.
pub fn numpy(test: &str) -> bool {
    tool_or_skip(numpy_available(), test, "python3 with numpy", "pip install numpy")
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
