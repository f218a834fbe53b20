//! Checkpoint and resume of `marlin train` and `marlin simulate`: a run
//! killed with SIGKILL at pseudo-random moments (fixed seed), or aborted
//! in the middle of writing a checkpoint, or stopped with Ctrl-C, and then
//! resumed, ends with the same bits as a run never interrupted —
//! learned_policy.npz and the trajectory byte for byte, learning.json in
//! every field but wall time. Damaged checkpoints and changed inputs are
//! refused.

mod cli_common;

use cli_common::{json, marlin, run_bad, run_ok, sparse_scenario};
use marlin::files::outdir::staging;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const COMBOS: [&str; 2] = ["actor_critic_tabular", "actor_critic_logistic"];

fn train(out: &Path) -> Command {
    let mut c = marlin();
    c.args([
        "-q",
        "train",
        "scenarios/toy8.toml",
        "--ticks",
        "1200000",
        "--checkpoints",
        "4",
        "--rule",
        "actor_critic",
        "--policy",
        "tabular,logistic",
        "--checkpoint-every",
        "0",
        "--out",
    ])
    .arg(out);
    c
}

fn resume(out: &Path) -> Command {
    let mut c = marlin();
    c.args(["-q", "train", "--resume"]).arg(out);
    c
}

/// learning.json without wall-time fields, and every learned policy's bytes.
fn result(out: &Path) -> (serde_json::Value, Vec<Vec<u8>>) {
    let mut j = json(&out.join("learning.json"));
    for r in j["runs"].as_array_mut().unwrap() {
        let r = r.as_object_mut().unwrap();
        for k in ["seconds", "ticks_per_second", "policy_file"] {
            assert!(r.remove(k).is_some(), "learning.json lost {k}");
        }
    }
    let policies = COMBOS
        .iter()
        .map(|c| std::fs::read(out.join(c).join("learned_policy.npz")).unwrap())
        .collect();
    (j, policies)
}

fn reference(dir: &Path) -> (serde_json::Value, Vec<Vec<u8>>) {
    let out = dir.join("reference");
    run_ok(&mut train(&out));
    result(&out)
}

fn checkpoint(out: &Path) -> PathBuf {
    staging(&out).join("checkpoint").join("train.ckpt")
}

/// Start `run` and kill it (SIGKILL) `delay` after the file `first`
/// appeared. Whether it was still running when killed.
fn kill_after(mut run: Command, first: &Path, delay: Duration) -> bool {
    let mut child = run.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    while !first.exists() {
        assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap_or(()); // SIGKILL
    child.wait().unwrap();
    running
}

#[test]
fn killed_runs_resume_to_the_bits_of_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let want = reference(dir.path());
    // Pseudo-random kill moments (a fixed LCG), spread over the run.
    let mut lcg = 0x2545_f491_4f6c_dd1du64;
    let mut killed = 0;
    let points = 6;
    for i in 0..points {
        lcg = lcg.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = Duration::from_millis((lcg >> 33) % 400);
        let out = dir.path().join(format!("killed{i}"));
        if kill_after(train(&out), &checkpoint(&out), delay) {
            killed += 1;
        }
        // Resume (it may be killed again: a second kill, then a last resume).
        if i % 2 == 1 && checkpoint(&out).exists() {
            let mut child = resume(&out)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(delay / 2);
            child.kill().unwrap_or(());
            child.wait().unwrap();
        }
        // A run that finished before its kill landed has no checkpoint left
        // (and its result must be the reference all the same).
        if checkpoint(&out).exists() {
            run_ok(&mut resume(&out));
        }
        assert_eq!(
            result(&out),
            want,
            "kill point {i} ({delay:?} after the first checkpoint)"
        );
    }
    eprintln!("{killed} of {points} runs killed mid-run with SIGKILL and resumed: all bit-identical");
    assert!(
        killed >= points / 2,
        "only {killed} runs were still running when killed"
    );
}

#[test]
fn a_kill_in_a_checkpoint_write_or_a_panicking_agent_leaves_a_usable_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let want = reference(dir.path());
    for nth in [2, 5] {
        let out = dir.path().join(format!("abort{nth}"));
        let status = train(&out)
            .env("MARLIN_FAULT_ABORT_IN_CHECKPOINT", nth.to_string())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "the fault hook did not stop the run");
        let leftovers: Vec<_> = std::fs::read_dir(staging(&out).join("checkpoint"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert_eq!(
            leftovers.len(),
            1,
            "the half-written checkpoint stays as a temporary file"
        );
        // The folder may move before it is resumed: results go where it is now.
        let moved = dir.path().join(format!("moved{nth}"));
        std::fs::rename(staging(&out), staging(&moved)).unwrap();
        let out = moved;
        run_ok(&mut resume(&out));
        assert_eq!(result(&out), want, "abort in checkpoint write {nth}");
        assert!(
            !staging(&out).join("checkpoint").exists(),
            "the finished run removes its checkpoint"
        );
    }
    // A panicking agent stops the run with its name and tick; the last
    // checkpoint is usable.
    let out = dir.path().join("panicked");
    let done = train(&out).env("MARLIN_FAULT_PANIC_AT", "5:700000").output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("agent 5 panicked at tick 700000"), "{stderr}");
    assert!(stderr.contains("continue with: marlin train --resume"), "{stderr}");
    assert!(checkpoint(&out).exists(), "no checkpoint left after the panic");
    assert!(!out.join("learning.json").exists(), "a failed run wrote its summary");
    run_ok(&mut resume(&out));
    assert_eq!(result(&out), want, "resumed after a panicking agent");
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_exits_130_and_resume_on_other_threads_matches() {
    let dir = tempfile::tempdir().unwrap();
    let want = reference(dir.path());
    let out = dir.path().join("interrupted");
    let child = train(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !checkpoint(&out).exists() {
        assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(50));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let done = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    if done.status.code() == Some(0) {
        eprintln!("the run finished before Ctrl-C arrived; resuming the finished run instead");
    } else {
        assert_eq!(done.status.code(), Some(130), "{stderr}");
        assert!(
            stderr.contains("interrupted at tick") && stderr.contains("--resume"),
            "{stderr}"
        );
    }
    // The thread count never changes results, so a resume may use another.
    run_ok(resume(&out).args(["--threads", "2", "--shards", "3"]));
    assert_eq!(result(&out), want);
}

#[test]
fn damaged_checkpoints_and_changed_scenarios_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // An interrupted run (aborted in its 4th checkpoint write) keeps its 3rd:
    // damage it in the middle, then cut it.
    let status = train(&out)
        .env("MARLIN_FAULT_ABORT_IN_CHECKPOINT", "4")
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
    let ck = checkpoint(&out);
    let bytes = std::fs::read(&ck).unwrap();
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x20;
    std::fs::write(&ck, &flipped).unwrap();
    let e = run_bad(&mut resume(&out));
    assert!(e.contains("train.ckpt") && e.contains("damaged"), "{e}");
    std::fs::write(&ck, &bytes[..bytes.len() - 7]).unwrap();
    let e = run_bad(&mut resume(&out));
    assert!(e.contains("truncated"), "{e}");
    std::fs::remove_file(&ck).unwrap();
    let e = run_bad(&mut resume(&out));
    assert!(e.contains("holds no checkpoint"), "{e}");
    // A finished run removes its checkpoint.
    run_ok(&mut train(&out));
    assert!(!staging(&out).exists() && !out.join("checkpoint").exists());
    let e = run_bad(&mut resume(&out));
    assert!(e.contains("holds no interrupted run"), "{e}");

    // A checkpoint of a scenario that changed since.
    let scenario = dir.path().join("toy.toml");
    std::fs::copy("scenarios/toy8.toml", &scenario).unwrap();
    let out = dir.path().join("changed");
    let status = marlin()
        .args(["-q", "train"])
        .arg(&scenario)
        .args(["--ticks", "20000", "--checkpoints", "4", "--policy", "tabular", "--out"])
        .arg(&out)
        .env("MARLIN_FAULT_ABORT_IN_CHECKPOINT", "3")
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
    let text = std::fs::read_to_string(&scenario).unwrap();
    std::fs::write(&scenario, text + "\n# edited\n").unwrap();
    let e = run_bad(&mut resume(&out));
    assert!(e.contains("changed since the checkpoint"), "{e}");
    // --resume takes everything from the checkpoint: other settings are refused.
    let out = marlin()
        .args(["-q", "train", "--resume"])
        .arg(dir.path().join("changed"))
        .args(["--ticks", "5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}

/// `simulate` of the toy (untrained, asynchronous) or of a fixed [neurons]
/// network on the sparse engine, recording events.
fn simulate(scenario: &Path, ticks: u64, extra: &[&str], out: &Path) -> Command {
    let mut c = marlin();
    c.args(["-q", "simulate"])
        .arg(scenario)
        .args(["--ticks", &ticks.to_string(), "--checkpoint-every", "0"])
        .args(extra)
        .arg("--out")
        .arg(out);
    c
}

fn resume_simulate(out: &Path) -> Command {
    let mut c = marlin();
    c.args(["-q", "simulate", "--resume"]).arg(out);
    c
}

#[test]
fn a_killed_simulation_resumes_to_the_same_trajectory_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let toy = PathBuf::from("scenarios/toy8.toml");
    let ei = sparse_scenario(dir.path());
    let cases: [(&Path, u64, &[&str]); 2] = [
        (&toy, 3_000_000, &["--untrained"]),
        (&ei, 60_000, &["--record-format", "events"]),
    ];
    let mut lcg = 0x9e37_79b9_7f4a_7c15u64;
    let mut killed = 0;
    let mut tried = 0;
    for (c, (scenario, ticks, extra)) in cases.iter().enumerate() {
        let want = dir.path().join(format!("reference{c}"));
        run_ok(&mut simulate(scenario, *ticks, extra, &want));
        let files = ["trajectory.npz", "trajectory.json"];
        let want: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(want.join(f)).unwrap()).collect();
        for i in 0..3 {
            lcg = lcg.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let delay = Duration::from_millis((lcg >> 33) % 300);
            let out = dir.path().join(format!("killed{c}_{i}"));
            let ck = staging(&out).join("checkpoint").join("simulate.ckpt");
            tried += 1;
            if kill_after(simulate(scenario, *ticks, extra, &out), &ck, delay) {
                killed += 1;
            }
            if ck.exists() {
                run_ok(&mut resume_simulate(&out));
            }
            let got: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(out.join(f)).unwrap()).collect();
            assert!(
                got == want,
                "case {c}, kill point {i} ({delay:?}): the trajectory differs"
            );
            assert!(
                !staging(&out).join("checkpoint").exists(),
                "a finished simulation removes its checkpoint"
            );
            let hidden: Vec<_> = std::fs::read_dir(&out)
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
                .collect();
            assert!(hidden.is_empty(), "left behind: {hidden:?}");
        }
    }
    eprintln!("{killed} of {tried} simulations killed mid-run with SIGKILL and resumed: all byte-identical");
    assert!(
        killed >= tried / 2,
        "only {killed} of {tried} runs were still running when killed"
    );
}

#[test]
fn a_simulation_aborted_in_a_checkpoint_write_or_stopped_by_ctrl_c_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let toy = Path::new("scenarios/toy8.toml");
    let want = dir.path().join("reference");
    run_ok(&mut simulate(toy, 2_000_000, &["--untrained"], &want));
    let want = std::fs::read(want.join("trajectory.npz")).unwrap();
    let out = dir.path().join("aborted");
    let status = simulate(toy, 2_000_000, &["--untrained"], &out)
        .env("MARLIN_FAULT_ABORT_IN_CHECKPOINT", "3")
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
    run_ok(resume_simulate(&out).args(["--threads", "2"]));
    assert!(std::fs::read(out.join("trajectory.npz")).unwrap() == want);

    // An agent that panics (on two threads: the other one must not hang)
    // stops the run with its name and tick, writes no trajectory and leaves
    // a usable checkpoint.
    let out = dir.path().join("panicked");
    let done = simulate(toy, 2_000_000, &["--untrained", "--threads", "2"], &out)
        .env("MARLIN_FAULT_PANIC_AT", "6:1500000")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("agent 6 panicked at tick 1500000"), "{stderr}");
    assert!(stderr.contains("continue with: marlin simulate --resume"), "{stderr}");
    assert!(!out.join("trajectory.npz").exists(), "a failed run wrote a trajectory");
    run_ok(&mut resume_simulate(&out));
    assert!(std::fs::read(out.join("trajectory.npz")).unwrap() == want);

    // Ctrl-C, and SIGTERM (what batch schedulers send): save and stop.
    for signal in ["-INT", "-TERM"] {
        let out = dir.path().join(format!("interrupted{signal}"));
        let child = simulate(toy, 2_000_000, &["--untrained"], &out)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let ck = staging(&out).join("checkpoint").join("simulate.ckpt");
        let t0 = Instant::now();
        while !ck.exists() {
            assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
            std::thread::sleep(Duration::from_millis(2));
        }
        Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        let done = child.wait_with_output().unwrap();
        if done.status.code() != Some(0) {
            let stderr = String::from_utf8_lossy(&done.stderr);
            assert_eq!(done.status.code(), Some(130), "{signal}: {stderr}");
            assert!(stderr.contains("marlin simulate --resume"), "{stderr}");
            assert!(
                !out.join("trajectory.npz").exists(),
                "an interrupted run wrote a trajectory"
            );
            run_ok(&mut resume_simulate(&out));
        }
        assert!(std::fs::read(out.join("trajectory.npz")).unwrap() == want, "{signal}");
    }
}

#[test]
fn a_command_that_does_not_checkpoint_stops_at_the_first_ctrl_c() {
    // Solving the 20-neuron toy takes most of a minute.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("solve");
    let mut child = marlin()
        .args(["-q", "solve", "scenarios/toy20.toml", "--out"])
        .arg(&out)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("solve went on after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(130));
    assert!(!out.join("summary.json").exists(), "a stopped solve wrote its summary");
}

/// summary.json of a study without its wall times and paths.
fn study_numbers(out: &Path) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|k, _| {
                    !["seconds", "ticks_per_second", "output", "report", "policy_file"].contains(&k.as_str())
                });
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut s = json(&out.join("summary.json"));
    strip(&mut s);
    s
}

fn study(out: &Path, ticks: u64) -> Command {
    let mut c = marlin();
    c.args([
        "-q",
        "run",
        "scenarios/toy8.toml",
        "--ticks",
        &ticks.to_string(),
        "--out",
    ])
    .arg(out);
    c
}

/// A study killed in its training stage (in the middle of a checkpoint
/// write, in its first and in its second learner), at the end of every
/// stage (an abort), or in its simulation stage (SIGKILL), then `marlin run
/// --resume`, gives the summary numbers and the figures of an uninterrupted
/// study, keeping the stages that had finished.
#[test]
fn a_killed_study_resumes_as_a_whole_to_the_same_summary() {
    let dir = tempfile::tempdir().unwrap();
    // Every run goes into the same folder, so recorded paths agree too.
    let out = dir.path().join("study");
    let figures = |out: &Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = ["solve", "train", "simulate", "infer"]
            .iter()
            .flat_map(|s| std::fs::read_dir(out.join(s)).unwrap().flatten())
            .filter(|e| e.path().extension().is_some_and(|x| x == "svg" || x == "npz"))
            .map(|e| {
                (
                    e.path().strip_prefix(out).unwrap().display().to_string(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    run_ok(&mut study(&out, 400_000));
    let (want, want_figures) = (study_numbers(&out), figures(&out));
    for nth in [2, 7] {
        std::fs::remove_dir_all(&out).unwrap();
        let st = study(&out, 400_000)
            .env("MARLIN_FAULT_ABORT_IN_CHECKPOINT", nth.to_string())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(!st.success(), "the study was not aborted");
        assert!(!out.exists(), "an interrupted study shows no results");
        assert!(
            staging(&out).join("train/checkpoint").exists(),
            "abort {nth}: no checkpoint of the train stage"
        );
        let e = run_bad(&mut study(&out, 400_000));
        assert!(e.contains(&format!("marlin run --resume {}", out.display())), "{e}");
        run_ok(marlin().args(["-q", "run", "--resume"]).arg(&out));
        assert_eq!(study_numbers(&out), want, "abort in checkpoint write {nth}");
        let got = figures(&out);
        assert_eq!(got.len(), want_figures.len());
        for ((name, a), (_, b)) in got.iter().zip(&want_figures) {
            assert!(a == b, "abort {nth}: {name} differs from the uninterrupted study's");
        }
        assert!(!staging(&out).exists());
    }
    // An abort in every stage once its results are written but before the
    // study records it as finished (a SIGKILL stops it the same way): the
    // resume keeps the stages before it untouched (their files are not
    // rewritten) and gives the same numbers and figures.
    let stamp = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    for (stage, kept) in [
        ("solve", &[][..]),
        ("train", &["solve/policy.npz"][..]),
        ("simulate", &["solve/policy.npz", "train/learning.json"][..]),
        ("infer", &["solve/policy.npz", "simulate/trajectory.npz"][..]),
        (
            "predict/1_kill_1",
            &[
                "simulate/trajectory.npz",
                "infer/reward.npz",
                "predict/0_lambda_1.0/prediction.json",
            ][..],
        ),
    ] {
        std::fs::remove_dir_all(&out).unwrap();
        let st = study(&out, 400_000)
            .env("MARLIN_FAULT_ABORT_IN_STAGE", stage)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(!st.success(), "{stage}: the study was not aborted");
        assert!(!out.exists(), "{stage}: an interrupted study shows no results");
        let before: Vec<_> = kept.iter().map(|f| stamp(&staging(&out).join(f))).collect();
        run_ok(marlin().args(["-q", "run", "--resume"]).arg(&out));
        assert_eq!(study_numbers(&out), want, "aborted in stage {stage}");
        let got = figures(&out);
        assert_eq!(got.len(), want_figures.len());
        for ((name, a), (_, b)) in got.iter().zip(&want_figures) {
            assert!(
                a == b,
                "aborted in {stage}: {name} differs from the uninterrupted study's"
            );
        }
        for (f, t) in kept.iter().zip(before) {
            assert_eq!(
                stamp(&out.join(f)),
                t,
                "aborted in {stage}: the finished stage's {f} was written again"
            );
        }
        assert!(!out.join("study-progress.json").exists());
    }
    // A finished stage whose archive was damaged meanwhile runs again.
    std::fs::remove_dir_all(&out).unwrap();
    let st = study(&out, 400_000)
        .env("MARLIN_FAULT_ABORT_IN_STAGE", "infer")
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!st.success());
    let traj = staging(&out).join("simulate/trajectory.npz");
    let mut bytes = std::fs::read(&traj).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&traj, bytes).unwrap();
    run_ok(marlin().args(["-q", "run", "--resume"]).arg(&out));
    assert_eq!(study_numbers(&out), want, "a damaged finished stage, run again");
    assert!(
        figures(&out) == want_figures,
        "a damaged finished stage, run again: the figures differ"
    );
    // SIGKILL in the simulation stage of a longer study.
    std::fs::remove_dir_all(&out).unwrap();
    run_ok(&mut study(&out, 4_000_000));
    let want = study_numbers(&out);
    std::fs::remove_dir_all(&out).unwrap();
    let mut child = study(&out, 4_000_000).spawn().unwrap();
    let t0 = Instant::now();
    while !staging(&out).join("simulate").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the simulation stage never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    run_ok(marlin().args(["-q", "run", "--resume"]).arg(&out));
    assert_eq!(study_numbers(&out), want, "killed in the simulation stage");
}
