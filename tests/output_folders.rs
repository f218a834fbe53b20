//! Output folders belong to one run at a time and hold one run's results:
//! a second run into a busy folder is refused and leaves the first run's
//! record as a run alone writes it; another run's results, files marlin did
//! not write and an interrupted run are refused unless `--overwrite` (or
//! `--resume`); a finished run replaces the folder whole (no stale file); an
//! unwritable folder is refused before anything is computed.

mod cli_common;

use cli_common::{marlin, run_bad, run_ok};
use marlin::files::outdir::staging;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn simulate(out: &Path, ticks: u64, extra: &[&str]) -> Command {
    let mut c = marlin();
    c.args([
        "-q",
        "simulate",
        "scenarios/toy8.toml",
        "--untrained",
        "--ticks",
        &ticks.to_string(),
    ])
    .args(extra)
    .arg("--out")
    .arg(out);
    c
}

fn train(out: &Path, ticks: u64, seed: u64) -> Command {
    let mut c = marlin();
    c.args([
        "-q",
        "train",
        "scenarios/toy8.toml",
        "--policy",
        "tabular",
        "--rule",
        "actor_critic",
    ])
    .args([
        "--ticks",
        &ticks.to_string(),
        "--seed",
        &seed.to_string(),
        "--checkpoints",
        "2",
        "--out",
    ])
    .arg(out);
    c
}

fn lock_of(dir: &Path) -> PathBuf {
    dir.with_file_name(format!(".{}.lock", dir.file_name().unwrap().to_string_lossy()))
}

/// Start `c` and wait until it holds the lock of `dir`.
fn start_holding(mut c: Command, dir: &Path) -> Child {
    let child = c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    while !std::fs::read_to_string(lock_of(dir)).is_ok_and(|s| s.contains(&format!("pid {}", child.id()))) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file() && !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_second_simulation_into_a_busy_folder_is_refused_and_the_first_is_intact() {
    let t = tempfile::tempdir().unwrap();
    let shared = t.path().join("shared");
    let mut first = start_holding(simulate(&shared, 3_000_000, &[]), &shared);
    let out = simulate(&shared, 1000, &["--record-neurons", "0,1"]).output().unwrap();
    let still_running = first.try_wait().unwrap().is_none();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("being written by another marlin run") && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    assert!(
        still_running,
        "the first run ended before the second was refused: the test proves nothing"
    );
    assert!(first.wait().unwrap().success());
    let alone = t.path().join("alone");
    run_ok(&mut simulate(&alone, 3_000_000, &[]));
    let (a, b) = (files(&shared), files(&alone));
    assert_eq!(a.len(), b.len());
    for ((na, ba), (nb, bb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(ba == bb, "{na} differs from a run alone");
    }
}

#[test]
fn a_second_training_into_a_busy_folder_is_refused_and_the_first_is_intact() {
    let t = tempfile::tempdir().unwrap();
    let shared = t.path().join("shared");
    let mut first = start_holding(train(&shared, 2_000_000, 1), &shared);
    let err = run_bad(&mut train(&shared, 10_000, 2));
    assert!(first.try_wait().unwrap().is_none(), "the first run ended too soon");
    assert!(err.contains("being written by another marlin run"), "{err}");
    assert!(first.wait().unwrap().success());
    let alone = t.path().join("alone");
    run_ok(&mut train(&alone, 2_000_000, 1));
    let policy = |d: &Path| std::fs::read(d.join("learned_policy.npz")).unwrap();
    assert!(
        policy(&shared) == policy(&alone),
        "the learned policy differs from a run alone"
    );
}

#[test]
fn another_runs_results_are_refused_unless_overwritten_and_nothing_stale_survives() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("sim");
    run_ok(&mut simulate(&out, 1000, &[]));
    // The same run again replaces it.
    run_ok(&mut simulate(&out, 1000, &[]));
    std::fs::write(out.join("stale.txt"), "left by hand").unwrap();
    let err = run_bad(&mut simulate(&out, 2000, &[]));
    assert!(
        err.contains("holds the results of another run") && err.contains("--ticks 1000") && err.contains("--overwrite"),
        "{err}"
    );
    assert!(
        out.join("stale.txt").exists(),
        "a refused run leaves the folder as it was"
    );
    run_ok(simulate(&out, 2000, &[]).arg("--overwrite"));
    assert!(!out.join("stale.txt").exists(), "a stale file survived the replacement");
    let meta = cli_common::json(&out.join("trajectory.json"));
    assert_eq!(meta["ticks"], 2000, "{meta}");
    // Files marlin did not write.
    let mine = t.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "mine").unwrap();
    let err = run_bad(&mut simulate(&mine, 100, &[]));
    assert!(
        err.contains("files marlin did not write") && err.contains("notes.txt"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(mine.join("notes.txt")).unwrap(), "mine");
}

#[test]
fn an_interrupted_run_is_refused_without_resume_and_resumes_with_it() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("train");
    let done = train(&out, 400_000, 1)
        .args(["--checkpoint-every", "0"])
        .env("MARLIN_FAULT_ABORT_IN_CHECKPOINT", "2")
        .output()
        .unwrap();
    assert!(!done.status.success());
    assert!(
        staging(&out).join("checkpoint").exists(),
        "the interrupted run keeps its checkpoint"
    );
    let err = run_bad(&mut train(&out, 400_000, 1));
    assert!(
        err.contains("interrupted run") && err.contains(&format!("marlin train --resume {}", out.display())),
        "{err}"
    );
    assert!(
        staging(&out).join("checkpoint").exists(),
        "a refused run deletes no checkpoint"
    );
    run_ok(marlin().args(["-q", "train", "--resume"]).arg(&out));
    let alone = t.path().join("alone");
    run_ok(&mut train(&alone, 400_000, 1));
    let policy = |d: &Path| std::fs::read(d.join("learned_policy.npz")).unwrap();
    assert!(
        policy(&out) == policy(&alone),
        "the resumed run differs from a run alone"
    );
    assert!(!staging(&out).exists());
}

#[test]
fn a_sweep_then_a_plain_solve_leaves_no_stale_lambda_folders() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("solve");
    run_ok(
        marlin()
            .args(["-q", "solve", "scenarios/toy8.toml", "--sweep-lambda", "0.5,1", "--out"])
            .arg(&out),
    );
    assert!(out.join("lambda_1").exists());
    let err = run_bad(marlin().args(["-q", "solve", "scenarios/toy8.toml", "--out"]).arg(&out));
    assert!(err.contains("--sweep-lambda"), "{err}");
    run_ok(
        marlin()
            .args(["-q", "solve", "scenarios/toy8.toml", "--overwrite", "--out"])
            .arg(&out),
    );
    assert!(out.join("policy.npz").exists());
    assert!(
        !out.join("lambda_1").exists() && !out.join("lambda_0.5").exists(),
        "stale sweep folders survived"
    );
}

#[test]
fn an_unwritable_output_folder_is_refused_before_the_solve() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("a_file");
    std::fs::write(&file, "x").unwrap();
    let t0 = Instant::now();
    let err = run_bad(
        marlin()
            .args(["-q", "solve", "scenarios/toy20.toml", "--out"])
            .arg(file.join("out")),
    );
    assert!(
        err.contains("cannot create the output folder") && err.contains("a_file"),
        "{err}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "refused only after {:?}",
        t0.elapsed()
    );
}

#[test]
fn a_stage_of_a_study_is_not_replaced_alone() {
    let t = tempfile::tempdir().unwrap();
    let study = t.path().join("study");
    std::fs::create_dir_all(study.join("simulate")).unwrap();
    std::fs::write(
        study.join("marlin-run.json"),
        r#"{"run": {"command": "run", "scenario": "scenarios/toy8.toml", "settings": ["scenarios/toy8.toml"]}}"#,
    )
    .unwrap();
    let err = run_bad(&mut simulate(&study.join("simulate"), 100, &["--overwrite"]));
    assert!(err.contains("part of the results of `marlin run"), "{err}");
}
