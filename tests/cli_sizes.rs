//! Size checks come first: a network too large to tabulate is refused
//! (exit 2, naming the file, the size and what is allowed) before anything
//! of it is allocated — under an address-space limit (`ulimit -v`), where an
//! allocation first would abort the process instead.

mod cli_common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// 4 GB of address space, as `ulimit -v 4000000` (KiB) gives.
const LIMIT_KIB: u64 = 4_000_000;

/// `marlin ARGS` run under `ulimit -v LIMIT_KIB`.
fn limited(args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("ulimit -v {LIMIT_KIB} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_marlin"))
        .args(args);
    c
}

/// The toy with `neurons` neurons (the count reward tabulates 2 × 2ⁿ entries).
fn toy(dir: &Path, neurons: usize) -> PathBuf {
    let text = std::fs::read_to_string("scenarios/toy8.toml")
        .unwrap()
        .replace("neurons = 8\n", &format!("neurons = {neurons}\n"));
    assert!(text.contains(&format!("neurons = {neurons}\n")), "toy8.toml changed");
    let p = dir.join(format!("toy{neurons}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

/// Run `c`, which must be refused (exit 2) within a few seconds with a
/// message naming `file`, the network's size and what is allowed; returns
/// the message.
fn refused_quickly(mut c: Command, file: &Path) -> String {
    let t0 = std::time::Instant::now();
    let out = c.output().unwrap();
    let seconds = t0.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{c:?}: {err}");
    // Refused from the dimensions alone: no tabulation first (which took
    // over 3 s for 28 neurons where it fitted).
    assert!(seconds < 3.0, "{c:?} took {seconds:.1} s: {err}");
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name), "the message names the file: {err}");
    assert!(err.contains("30 neurons"), "the message names the size: {err}");
    assert!(
        err.contains("MiB") && err.contains("allowed"),
        "…the memory and what is allowed: {err}"
    );
    err
}

#[test]
fn a_30_neuron_solve_is_refused_before_tabulating_its_reward() {
    let dir = tempfile::tempdir().unwrap();
    let sc = toy(dir.path(), 30);
    let out = dir.path().join("solve");
    let err = refused_quickly(
        limited(&["solve", sc.to_str().unwrap(), "--out", out.to_str().unwrap()]),
        &sc,
    );
    assert!(err.contains("network.neurons"), "{err}");
    assert!(!out.exists(), "a refused run writes nothing");
}

#[test]
fn a_30_neuron_study_is_refused_before_tabulating_its_reward() {
    let dir = tempfile::tempdir().unwrap();
    let sc = toy(dir.path(), 30);
    let out = dir.path().join("study");
    refused_quickly(
        limited(&["run", sc.to_str().unwrap(), "--out", out.to_str().unwrap()]),
        &sc,
    );
    assert!(!out.exists(), "a refused run writes nothing");
}

#[test]
fn a_30_neuron_simulation_with_a_solver_policy_is_refused_before_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let sc = toy(dir.path(), 30);
    // A real policy file (of the 8-neuron toy): the size is refused before it
    // is read, not by its shape.
    let solved = dir.path().join("toy8");
    cli_common::run_ok(
        cli_common::marlin()
            .args(["-q", "solve", "scenarios/toy8.toml", "--out"])
            .arg(&solved),
    );
    let policy = solved.join("policy.npz");
    let out = dir.path().join("sim");
    let err = refused_quickly(
        limited(&[
            "simulate",
            sc.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
            "--ticks",
            "10",
            "--out",
            out.to_str().unwrap(),
        ]),
        &sc,
    );
    assert!(err.contains("policy"), "{err}");
    assert!(!out.exists(), "a refused run writes nothing");
}
