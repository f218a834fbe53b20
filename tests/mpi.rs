//! Distributed runs under `mpirun` (cargo feature `mpi`): two ranks write
//! the trajectory one process writes, bit for bit, on the sparse engine and
//! on the agent engine, with any threads and shards per rank; checkpoints
//! written by any number of ranks resume on any other, a panicking agent
//! on one rank ends the job with a usable checkpoint; maze walkers split
//! over ranks learn what one process learns; what cannot run distributed
//! is refused. The test builds marlin with `--features mpi`
//! (into target/mpi) and needs Open MPI (`apt-get install openmpi-bin
//! libopenmpi-dev libclang-dev`, which `.ci/run` installs); without
//! `mpirun` it says SKIPPED.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

mod cli_common;

/// The MPI-enabled binary, built once per test run; `None` without MPI.
fn mpi_marlin() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        let here = Command::new("mpirun").arg("--version").output().is_ok();
        if !cli_common::tool_or_skip(
            here,
            "mpi",
            "mpirun",
            "apt-get install openmpi-bin libopenmpi-dev libclang-dev",
        ) {
            return None;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let target = cli_common::repo().join("target/mpi");
        let st = Command::new(cargo)
            .args([
                "build",
                "--release",
                "--package",
                "marlin-cli",
                "--features",
                "mpi",
                "--bin",
                "marlin",
                "--target-dir",
            ])
            .arg(&target)
            .current_dir(cli_common::repo())
            .status()
            .expect("cargo runs");
        assert!(st.success(), "building marlin with --features mpi failed");
        Some(target.join("release/marlin"))
    })
    .as_deref()
}

/// `mpirun -np ranks marlin args…` (root-safe, shared memory only).
fn mpirun(bin: &Path, ranks: usize, args: &[&str]) -> Output {
    mpirun_with(bin, ranks, args, ("MARLIN_NOTHING", ""))
}

fn ok(o: Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn npz(path: &Path) -> Vec<u8> {
    std::fs::read(path.join("trajectory.npz")).expect("a trajectory was written")
}

const FIXED: &str = r#"
seed = 4
[network]
neurons = 1000
update = "synchronous"
topology = { kind = "random_in_degree", k = 50 }
inputs = [0, 1, 2, 3]
[neurons]
bias = -0.6
input_weight = 1.0
weights = "dale"
excitatory_fraction = 0.8
excitatory_weight = 0.3
inhibitory_weight = -1.0
[input]
values = [-1.0, 1.0]
switch_probability = 0.02
[reward]
kind = "target_count"
targets = [250, 300]
[cost]
lambda = 0.1
kind = "fixed_prior"
prior = 0.3
"#;

/// FIXED (fixed neurons: the sparse engine), and for the agent engine the
/// same network without [neurons], random-partial, in `dir`.
fn scenarios(dir: &Path) -> (PathBuf, PathBuf) {
    let fixed = dir.join("fixed.toml");
    std::fs::write(&fixed, FIXED).unwrap();
    let agents = dir.join("agents.toml");
    let text = FIXED
        .replace("update = \"synchronous\"", "update = \"random_partial\"\nq = 0.2")
        .replace("[neurons]\nbias = -0.6\ninput_weight = 1.0\nweights = \"dale\"\nexcitatory_fraction = 0.8\nexcitatory_weight = 0.3\ninhibitory_weight = -1.0\n", "");
    assert!(!text.contains("[neurons]"), "FIXED changed");
    std::fs::write(&agents, text).unwrap();
    (fixed, agents)
}

#[test]
fn two_ranks_write_what_one_process_writes() {
    let Some(bin) = mpi_marlin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (fixed, agents) = scenarios(dir.path());
    for (scenario, extra) in [(&fixed, &[][..]), (&agents, &["--untrained"][..])] {
        let s = scenario.to_str().unwrap();
        let out = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
        let one = out("one");
        // Each scenario replaces the previous one's folders.
        let mut args = vec!["-q", "--overwrite", "simulate", s, "--ticks", "300", "--out", &one];
        args.extend(extra);
        ok(Command::new(bin).args(&args).output().unwrap());
        for (ranks, layout) in [
            (2, ["--threads", "1", "--shards", "1"]),
            (2, ["--threads", "2", "--shards", "3"]),
            (3, ["--threads", "1", "--shards", "2"]),
        ] {
            let many = out(&format!("r{ranks}_{}", layout[3]));
            let mut args = vec!["-q", "--overwrite", "simulate", s, "--ticks", "300", "--out", &many];
            args.extend(layout);
            args.extend(extra);
            ok(mpirun(bin, ranks, &args));
            assert!(
                npz(Path::new(&many)) == npz(Path::new(&one)),
                "{}: {ranks} ranks ({layout:?}) wrote another trajectory",
                scenario.display()
            );
        }
    }
}

#[test]
fn what_cannot_run_distributed_is_refused() {
    let Some(bin) = mpi_marlin() else { return };
    let o = mpirun(bin, 2, &["solve", "scenarios/toy8.toml", "--out", "/nonexistent/never"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("only `marlin simulate` and `marlin train`"), "{err}");
    // Two maze walkers fill two ranks at most; the toy's 8 neurons fit one rank.
    let o = mpirun(
        bin,
        3,
        &["train", "scenarios/maze_team.toml", "--out", "/nonexistent/never"],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("at most 2 MPI ranks"), "{err}");
    let o = mpirun(bin, 2, &["train", "scenarios/toy8.toml", "--out", "/nonexistent/never"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("at most 1 MPI rank ("), "{err}");
    // The toy has 8 neurons: one word of 64, so one rank at most.
    let o = mpirun(
        bin,
        2,
        &[
            "simulate",
            "scenarios/toy8.toml",
            "--untrained",
            "--ticks",
            "10",
            "--out",
            "/nonexistent/never",
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("at most 1 MPI rank ("), "{err}");
}

/// [`mpirun`] with an environment variable passed to every rank (a fault hook).
fn mpirun_with(bin: &Path, ranks: usize, args: &[&str], var: (&str, &str)) -> Output {
    Command::new("mpirun")
        .args(["--oversubscribe", "-np", &ranks.to_string(), "-x", var.0])
        .arg(bin)
        .args(args)
        .env(var.0, var.1)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl", "self,vader")
        .output()
        .expect("mpirun runs")
}

#[test]
fn distributed_runs_checkpoint_and_resume_on_any_layout() {
    let Some(bin) = mpi_marlin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (fixed, agents) = scenarios(dir.path());
    let args = |scenario: &Path, out: &Path, extra: &[&str]| -> Vec<String> {
        let (s, o) = (scenario.to_str().unwrap(), out.to_str().unwrap());
        let mut a = vec![
            "-q",
            "simulate",
            s,
            "--ticks",
            "3000",
            "--checkpoint-every",
            "0",
            "--out",
            o,
        ];
        a.extend(extra);
        a.into_iter().map(String::from).collect()
    };
    let resume = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut a = vec!["-q", "simulate", "--resume", out.to_str().unwrap()];
        a.extend(extra);
        a.into_iter().map(String::from).collect()
    };
    let run = |ranks: usize, a: &[String], var: Option<(&str, &str)>| -> Output {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        match (ranks, var) {
            (1, None) => Command::new(bin).args(&a).output().unwrap(),
            (1, Some((k, v))) => Command::new(bin).args(&a).env(k, v).output().unwrap(),
            (r, None) => mpirun(bin, r, &a),
            (r, Some(v)) => mpirun_with(bin, r, &a, v),
        }
    };
    for (name, scenario, extra) in [("fixed", &fixed, &[][..]), ("agents", &agents, &["--untrained"][..])] {
        let reference = dir.path().join(format!("{name}_reference"));
        ok(run(1, &args(scenario, &reference, extra), None));
        let want = npz(&reference);
        // (ranks of the run, the checkpoint write it aborts in, ranks and
        // layout of the resumed run)
        let cases: [(usize, &str, usize, &[&str]); 3] = [
            (2, "5", 2, &["--threads", "2"]),
            (2, "40", 1, &[]),
            (1, "20", 3, &["--shards", "2"]),
        ];
        for (i, (ranks, nth, again, layout)) in cases.into_iter().enumerate() {
            let out = dir.path().join(format!("{name}{i}"));
            let fault = ("MARLIN_FAULT_ABORT_IN_CHECKPOINT", nth);
            let o = run(ranks, &args(scenario, &out, extra), Some(fault));
            assert!(!o.status.success(), "{name} case {i}: the fault did not stop the run");
            assert!(!out.join("trajectory.npz").exists());
            ok(run(again, &resume(&out, layout), None));
            assert!(
                npz(&out) == want,
                "{name} case {i}: {ranks} ranks stopped, resumed on {again}: another trajectory"
            );
            assert!(
                !out.join("checkpoint").exists(),
                "the finished run removes its checkpoint"
            );
        }
    }
    // A panicking agent on rank 1 ends the whole job with its name and tick;
    // rank 0's last checkpoint resumes.
    let reference = dir.path().join("agents_reference");
    let out = dir.path().join("panicked");
    let o = run(
        2,
        &args(&agents, &out, &["--untrained"]),
        Some(("MARLIN_FAULT_PANIC_AT", "900:2000")),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{stderr}");
    assert!(stderr.contains("agent 900 panicked at tick 2000"), "{stderr}");
    assert!(stderr.contains("continue with: marlin simulate --resume"), "{stderr}");
    ok(run(2, &resume(&out, &[]), None));
    assert!(npz(&out) == npz(&reference), "resumed after a panic on rank 1");
}

/// learning.json without what may differ between runs of the same training
/// (wall time, output paths).
fn learning(out: &Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("learning.json")).unwrap()).unwrap();
    for r in v["runs"].as_array_mut().unwrap() {
        let r = r.as_object_mut().unwrap();
        for key in ["seconds", "ticks_per_second", "policy_file"] {
            r.remove(key);
        }
    }
    v
}

fn strs(a: &[String]) -> Vec<&str> {
    a.iter().map(String::as_str).collect()
}

/// Every learned_policy.npz under `out`, by path.
fn policies(out: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path().join("learned_policy.npz"))
        .filter(|p| p.exists())
        .map(|p| {
            (
                p.display().to_string().replace(&out.display().to_string(), ""),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "policies were written under {}", out.display());
    v
}

#[test]
fn distributed_training_learns_what_one_process_learns_and_resumes_anywhere() {
    let Some(bin) = mpi_marlin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (fixed, agents) = scenarios(dir.path());
    // The agent path too: logistic learners with a decaying trace run as agents.
    let decaying = dir.path().join("decaying.toml");
    let text = std::fs::read_to_string(&agents).unwrap() + "[learning]\ntrace_decay = 0.5\n";
    std::fs::write(&decaying, text).unwrap();
    let args = |scenario: &Path, out: &Path, extra: &[&str]| -> Vec<String> {
        let (s, o) = (scenario.to_str().unwrap(), out.to_str().unwrap());
        let mut a = vec![
            "-q",
            "train",
            s,
            "--ticks",
            "1200",
            "--checkpoints",
            "3",
            "--policy",
            "logistic",
        ];
        a.extend(["--rule", "reinforce,actor_critic", "--out", o]);
        a.extend(extra);
        a.into_iter().map(String::from).collect()
    };
    for (name, scenario) in [("arrays", &fixed), ("agents", &decaying)] {
        let reference = dir.path().join(format!("{name}_one"));
        ok(Command::new(bin)
            .args(args(scenario, &reference, &[]))
            .output()
            .unwrap());
        for (ranks, layout) in [(2, &[][..]), (3, &["--threads", "2"][..])] {
            let out = dir.path().join(format!("{name}_{ranks}"));
            ok(mpirun(bin, ranks, &strs(&args(scenario, &out, layout))));
            assert!(
                policies(&out) == policies(&reference),
                "{name}, {ranks} ranks: learned policies"
            );
            assert_eq!(
                learning(&out),
                learning(&reference),
                "{name}, {ranks} ranks: learning.json"
            );
        }
    }
    // Two ranks stopped in the middle of their 4th checkpoint write resume in
    // one process (and one process's checkpoint on 2 ranks).
    let reference = dir.path().join("arrays_one");
    for (i, (ranks, again)) in [(2, 1), (1, 2)].into_iter().enumerate() {
        let out = dir.path().join(format!("stopped{i}"));
        let a = args(&fixed, &out, &[]);
        let fault = ("MARLIN_FAULT_ABORT_IN_CHECKPOINT", "4");
        let o = match ranks {
            1 => Command::new(bin).args(&a).env(fault.0, fault.1).output().unwrap(),
            r => mpirun_with(bin, r, &strs(&a), fault),
        };
        assert!(!o.status.success(), "case {i}: the fault did not stop the run");
        assert!(!out.join("learning.json").exists());
        let resume = ["-q", "train", "--resume", out.to_str().unwrap()];
        match again {
            1 => ok(Command::new(bin).args(resume).output().unwrap()),
            r => ok(mpirun(bin, r, &resume)),
        }
        assert!(policies(&out) == policies(&reference), "case {i}: resumed policies");
        assert_eq!(learning(&out), learning(&reference), "case {i}: resumed learning.json");
    }
}

/// Maze walkers split over ranks learn what one process learns: the same
/// learned tables byte for byte and the same learning record.
#[test]
fn distributed_walkers_learn_what_one_process_learns() {
    let Some(bin) = mpi_marlin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one");
    let st = Command::new(bin)
        .args(["-q", "train", "scenarios/maze_team.toml", "--ticks", "100000", "--out"])
        .arg(&one)
        .status()
        .unwrap();
    assert!(st.success());
    let two = dir.path().join("two");
    let out = two.to_str().unwrap();
    ok(mpirun(
        bin,
        2,
        &[
            "-q",
            "train",
            "scenarios/maze_team.toml",
            "--ticks",
            "100000",
            "--out",
            out,
        ],
    ));
    let read = |d: &Path| std::fs::read(d.join("learned_policy.npz")).unwrap();
    assert!(read(&one) == read(&two), "the learned tables differ");
    let record = |d: &Path| {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("learning.json")).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("seconds");
        v
    };
    assert_eq!(record(&one), record(&two));
}
