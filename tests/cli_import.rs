//! `marlin import`: spike times and a stimulus table (CSV) into the
//! trajectory format. A simulated record written out as spike times comes
//! back bin for bin, `infer` recovers the toy's reward from it without the
//! actors, and malformed CSV is refused with its file and line.

mod cli_common;

use ndarray::{Array1, Array2};
use std::io::Write;
use std::path::Path;
use std::process::Command;

fn marlin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_marlin"))
}

const BIN: f64 = 0.01;

/// Write a trajectory's spikes as `neuron,time` (mid-bin) and its input
/// changes as `time,input`.
fn export(traj: &Path, dir: &Path) -> (Array1<i64>, Array2<u8>) {
    let mut npz = ndarray_npy::NpzReader::new(std::fs::File::open(traj).unwrap()).unwrap();
    let x: Array1<i64> = npz.by_name("x").unwrap();
    let spikes: Array2<u8> = npz.by_name("spikes").unwrap();
    let values: Array1<f64> = npz.by_name("input_values").unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("spikes.csv")).unwrap());
    writeln!(f, "neuron,time").unwrap();
    for (t, row) in spikes.rows().into_iter().enumerate() {
        for (k, &b) in row.iter().enumerate() {
            if b == 1 {
                writeln!(f, "{k},{}", (t as f64 + 0.5) * BIN).unwrap();
            }
        }
    }
    drop(f);
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("stimulus.csv")).unwrap());
    writeln!(f, "time,input").unwrap();
    for t in 0..x.len() {
        if t == 0 || x[t] != x[t - 1] {
            writeln!(f, "{},{}", t as f64 * BIN, values[x[t] as usize]).unwrap();
        }
    }
    (x, spikes)
}

#[test]
fn a_record_exported_as_spike_times_imports_bin_for_bin_and_its_reward_is_inferred() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(
        marlin()
            .args(["-q", "solve", "scenarios/toy8.toml", "--out"])
            .arg(d.join("solve"))
            .status()
            .unwrap()
            .success()
    );
    assert!(
        marlin()
            .args(["-q", "simulate", "scenarios/toy8.toml", "--ticks", "100000", "--policy"])
            .arg(d.join("solve/policy.npz"))
            .arg("--out")
            .arg(d.join("sim"))
            .status()
            .unwrap()
            .success()
    );
    let (x, spikes) = export(&d.join("sim/trajectory.npz"), d);
    let ticks = x.len();
    let st = marlin()
        .args(["-q", "import"])
        .arg(d.join("spikes.csv"))
        .arg("--stimulus")
        .arg(d.join("stimulus.csv"))
        .args([
            "--bin",
            "0.01",
            "--start",
            "0",
            "--neurons",
            "8",
            "--update",
            "asynchronous",
        ])
        .args(["--end", &format!("{}", ticks as f64 * BIN)])
        .arg("--out")
        .arg(d.join("imported"))
        .status()
        .unwrap();
    assert!(st.success());
    let mut npz = ndarray_npy::NpzReader::new(std::fs::File::open(d.join("imported/trajectory.npz")).unwrap()).unwrap();
    let x2: Array1<i64> = npz.by_name("x").unwrap();
    let spikes2: Array2<u8> = npz.by_name("spikes").unwrap();
    let actor: Array1<i64> = npz.by_name("actor").unwrap();
    assert_eq!(x2, x);
    assert_eq!(spikes2, spikes);
    assert!(actor.iter().all(|&a| a == -1));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("imported/import.json")).unwrap()).unwrap();
    assert_eq!(summary["spikes_merged_in_bins"], 0);
    assert_eq!(summary["spikes_outside_window"], 0);
    // Without actors the likelihood treats every neuron's next state as a
    // response (q = 1/8); the reward still peaks at the toy's counts.
    let st = marlin()
        .args([
            "-q",
            "infer",
            "--lambda",
            "0.5",
            "--scenario",
            "scenarios/toy8.toml",
            "--out",
        ])
        .arg(d.join("infer"))
        .arg(d.join("imported/trajectory.npz"))
        .status()
        .unwrap();
    assert!(st.success());
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("infer/reward.json")).unwrap()).unwrap();
    assert_eq!(s["reward_model"], "count");
    assert_eq!(s["argmax_count"], serde_json::json!([2, 6]), "{}", s["count_reward"]);
    let corr = s["centred_correlation_with_truth"].as_f64().unwrap();
    assert!(corr >= 0.9, "{corr}");
}

#[test]
fn malformed_csv_is_refused_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |spikes: &str, stimulus: Option<&str>, extra: &[&str]| -> (Option<i32>, String) {
        std::fs::write(d.join("s.csv"), spikes).unwrap();
        let mut cmd = marlin();
        cmd.arg("import")
            .arg(d.join("s.csv"))
            .args(["--bin", "0.01", "--out"])
            .arg(d.join("o"));
        if let Some(stim) = stimulus {
            std::fs::write(d.join("x.csv"), stim).unwrap();
            cmd.arg("--stimulus").arg(d.join("x.csv"));
        }
        let o = cmd.args(extra).output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (code, err) = run("neuron,time\n0,0.1\n1,abc\n", None, &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("s.csv:3") && err.contains("two numbers"), "{err}");
    let (code, err) = run("0,0.1\n1.5,0.2\n", None, &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("s.csv:2") && err.contains("integer"), "{err}");
    let (code, err) = run("0,0.1\n3,0.2\n", None, &["--neurons", "2"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("s.csv:2") && err.contains("0 to 1"), "{err}");
    let (code, err) = run("0,0.1,7\n", None, &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("s.csv:1") && err.contains("exactly 2"), "{err}");
    let (code, err) = run("0,0.1\n0,0.5\n", Some("0.0,1\n0.3,-1\n0.2,1\n"), &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("x.csv:3") && err.contains("increasing"), "{err}");
    let (code, err) = run("0,0.1\n0,0.5\n", Some("0.2,1\n"), &["--start", "0"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("every bin needs an input"), "{err}");
    let (code, err) = run("0,0.1\n", None, &["--update", "sideways"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("allowed: synchronous"), "{err}");
    assert!(!d.join("o/trajectory.npz").exists(), "nothing written on bad input");
}
