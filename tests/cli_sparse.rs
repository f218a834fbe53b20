//! `marlin simulate` on a scenario with fixed `[neurons]`: it runs on the
//! sparse engine without a policy file, writes the run the library computes
//! (the same trajectory with any threads and shards), and refuses what does
//! not apply with exit code 2.

mod cli_common;
use cli_common::{marlin, run_bad, run_ok};
use marlin::record::Recorder;
use marlin::runtime::sparse::SparseEngine;
use marlin::runtime::{Layout, RunState};
use marlin::scenario::Scenario;
use ndarray::{Array1, Array2};
use ndarray_npy::NpzReader;
use std::path::Path;

const SCENARIO: &str = r#"
name = "ei_small"
seed = 3
[network]
neurons = 700
update = "random_partial"
q = 0.5
topology = { kind = "random_in_degree", k = 60 }
inputs = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
[neurons]
bias = -0.4
input_weight = 1.5
weights = "dale"
excitatory_fraction = 0.8
excitatory_weight = 0.25
inhibitory_weight = -1.0
[input]
values = [-1.0, 1.0]
switch_probability = 0.05
[reward]
kind = "target_count"
targets = [150, 200]
[cost]
lambda = 0.1
kind = "fixed_prior"
prior = 0.25
"#;

fn read(dir: &Path) -> (Vec<i64>, Vec<u8>, Vec<f64>, serde_json::Value) {
    let mut npz = NpzReader::new(std::fs::File::open(dir.join("trajectory.npz")).unwrap()).unwrap();
    let x: Array1<i64> = npz.by_name("x").unwrap();
    let spikes: Array2<u8> = npz.by_name("spikes").unwrap();
    let reward: Array1<f64> = npz.by_name("reward").unwrap();
    let meta = cli_common::json(&dir.join("trajectory.json"));
    (x.to_vec(), spikes.iter().copied().collect(), reward.to_vec(), meta)
}

#[test]
fn fixed_neurons_simulate_on_the_sparse_engine_as_the_library_runs_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ei.toml");
    std::fs::write(&path, SCENARIO).unwrap();
    let ticks = 300u64;
    let sim = |out: &str, layout: &[&str]| {
        let out = dir.path().join(out);
        run_ok(
            marlin()
                .args(["-q", "simulate"])
                .arg(&path)
                .args(["--ticks", &ticks.to_string(), "--out"])
                .arg(&out)
                .args(layout),
        );
        read(&out)
    };
    let one = sim("one", &["--threads", "1", "--shards", "1"]);
    let two = sim("two", &["--threads", "2", "--shards", "5"]);
    assert_eq!(
        (&one.0, &one.1, &one.2),
        (&two.0, &two.1, &two.2),
        "the layout changed the run"
    );
    assert!(
        one.3["policy"].as_str().unwrap().contains("[neurons]"),
        "{}",
        one.3["policy"]
    );
    assert_eq!(one.3["n"], 700);
    // The library's run of the same scenario, recorded in memory.
    let sc = Scenario::load(&path).unwrap();
    let net = sc.runtime_network();
    let ln = sc.logistic_neurons(&net).unwrap();
    let mut engine = SparseEngine::new(&net, &ln, Layout::single(), sc.seed).unwrap();
    let mut rec = Recorder::new((0..net.n).collect(), ticks);
    engine.run(RunState::initial(&net, sc.seed), ticks, &mut rec);
    assert_eq!(one.0, rec.x);
    assert_eq!(one.1, rec.spikes);
    assert_eq!(one.2, rec.reward);
    // The input reaches the ten neurons that receive it: they fire more at x = +1.
    let rate = |xv: i64, ks: std::ops::Range<usize>| {
        let rows: Vec<&[u8]> = one
            .1
            .chunks(700)
            .zip(&one.0)
            .filter(|(_, x)| **x == xv)
            .map(|(r, _)| r)
            .collect();
        rows.iter()
            .map(|r| r[ks.clone()].iter().map(|&s| s as f64).sum::<f64>())
            .sum::<f64>()
            / (rows.len() * ks.len()) as f64
    };
    assert!(
        rate(1, 0..10) > rate(0, 0..10) + 0.2,
        "{} vs {}",
        rate(1, 0..10),
        rate(0, 0..10)
    );
}

#[test]
fn what_does_not_apply_to_fixed_neurons_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ei.toml");
    std::fs::write(&path, SCENARIO).unwrap();
    let out = dir.path().join("sim");
    let err = run_bad(
        marlin()
            .args(["simulate"])
            .arg(&path)
            .args(["--ticks", "10", "--actors", "4", "--out"])
            .arg(&out),
    );
    assert!(err.contains("--actors") && err.contains("sparse engine"), "{err}");
    assert!(!out.exists(), "nothing is written");
    // A network without [neurons] needs a policy or --untrained.
    let err = run_bad(
        marlin()
            .args(["simulate", "scenarios/toy8.toml", "--ticks", "10", "--out"])
            .arg(&out),
    );
    assert!(
        err.contains("--policy") && err.contains("--untrained") && err.contains("[neurons]"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn a_network_too_large_for_memory_is_refused_before_building() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.toml");
    let text = SCENARIO
        .replace("neurons = 700", "neurons = 10_000_000")
        .replace("k = 60", "k = 1000")
        .replace("targets = [150, 200]", "targets = [1, 2]");
    std::fs::write(&path, text).unwrap();
    let out = dir.path().join("sim");
    let t0 = std::time::Instant::now();
    let err = run_bad(
        marlin()
            .args(["simulate"])
            .arg(&path)
            .args(["--ticks", "1", "--out"])
            .arg(&out),
    );
    assert!(
        err.contains("huge.toml") && err.contains("MiB") && err.contains("available"),
        "{err}"
    );
    assert!(!out.exists(), "nothing is written");
    // Refused from the estimate, not after building 10¹⁰ synapses.
    assert!(t0.elapsed().as_secs() < 10, "took {:?}", t0.elapsed());
}
