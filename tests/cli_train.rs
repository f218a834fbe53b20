//! `marlin train` end to end: the toy acceptance (one seed), outputs that
//! numpy and `marlin simulate` can load, and clear refusals.

use std::process::Command;

mod cli_common;

fn marlin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_marlin"))
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn trains_the_toy_to_near_the_optimum_and_writes_loadable_policies() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("train");
    let st = marlin()
        .args([
            "-q",
            "train",
            "scenarios/toy8.toml",
            "--ticks",
            "5000000",
            "--checkpoints",
            "5",
            "--out",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let s = json(&out.join("learning.json"));
    let g_star = s["optimum_g"].as_f64().unwrap();
    assert!(g_star > 0.5, "{g_star}");
    let runs = s["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "actor_critic × {{tabular, logistic}}");
    for (run, bound) in runs.iter().zip([0.95, 0.90]) {
        let cps = run["checkpoints"].as_array().unwrap();
        assert_eq!(cps.len(), 6, "tick 0 and five checkpoints");
        assert_eq!(cps[5]["tick"], 5_000_000);
        let ratio = cps[5]["exact"]["ratio"].as_f64().unwrap();
        assert!(ratio >= bound, "{}: g/g* = {ratio}", run["label"]);
        let first = cps[0]["exact"]["ratio"].as_f64().unwrap();
        assert!(first < 0.5, "untrained start {first}");
        let label = run["label"].as_str().unwrap();
        assert!(out.join(label).join("learned_policy.npz").exists());
    }
    assert!(out.join("actor_critic_logistic/weights.svg").exists());
    let curve = std::fs::read_to_string(out.join("learning_curve.svg")).unwrap();
    assert!(curve.contains("actor critic tabular") && curve.contains("g / g*"));
    let w = &runs[1]["weights"];
    assert!(w["mean_input_weight"].as_f64().unwrap() > 0.0, "{w}");

    // The tabulated learned policy has the solver's layout: simulate runs it.
    let sim = dir.path().join("sim");
    let st = marlin()
        .args(["-q", "simulate", "scenarios/toy8.toml", "--ticks", "20000", "--policy"])
        .arg(out.join("actor_critic_tabular/learned_policy.npz"))
        .arg("--out")
        .arg(&sim)
        .status()
        .unwrap();
    assert!(st.success());

    // numpy reads the same numbers.
    if !cli_common::numpy("cli_train::trains_the_toy_to_near_the_optimum_and_writes_loadable_policies (its numpy part)")
    {
        return;
    }
    let script = format!(
        "import numpy as np\nd = np.load(r'{}')\nassert d['p_fire'].shape == (2, 256, 8)\nassert d['weights'].shape == (8, 8)\nassert np.all(np.diag(d['weights']) == 0)\nprint(float(d['input_weight'].mean()))",
        out.join("actor_critic_logistic/learned_policy.npz").display()
    );
    let py = cli_common::python().args(["-c", &script]).output().unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let mean: f64 = String::from_utf8_lossy(&py.stdout).trim().parse().unwrap();
    assert!((mean - w["mean_input_weight"].as_f64().unwrap()).abs() < 1e-12);
}

#[test]
fn bad_training_requests_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let o = marlin()
        .args(["train", "scenarios/toy8.toml", "--rule", "sarsa", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("actor_critic"));
    // A tabular policy over a 40-neuron all-to-all network cannot fit.
    let big = dir.path().join("big.toml");
    let text = std::fs::read_to_string("scenarios/toy8.toml")
        .unwrap()
        .replace("neurons = 8", "neurons = 40")
        .replace("targets = [2, 6]", "targets = [10, 30]");
    std::fs::write(&big, text).unwrap();
    let o = marlin()
        .args(["train", big.to_str().unwrap(), "--policy", "tabular", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("tabular policy for neuron 0") && err.contains("logistic"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written for a refused run");
    // A [learning] key that does not exist names the place.
    let typo = dir.path().join("typo.toml");
    let text = std::fs::read_to_string("scenarios/toy8.toml").unwrap() + "\n[learning]\nlearning_rat = 0.1\n";
    std::fs::write(&typo, text).unwrap();
    let o = marlin().args(["train", typo.to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("typo.toml:") && err.contains("learning_rat"), "{err}");
}

#[test]
fn a_partially_observing_network_trains_with_the_count_critic() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r64");
    let st = marlin()
        .args([
            "-q",
            "train",
            "scenarios/rand64.toml",
            "--ticks",
            "2000000",
            "--rule",
            "actor_critic",
        ])
        .args(["--checkpoints", "4", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let s = json(&out.join("learning.json"));
    assert!(s["optimum_g"].is_null());
    assert_eq!(s["learning"]["critic"], "counts");
    let untrained = s["untrained"]["running_reward"].as_f64().unwrap();
    let run = &s["runs"][0];
    let last = run["checkpoints"].as_array().unwrap().last().unwrap().clone();
    assert!(last["exact"].is_null(), "64 neurons are not scored exactly");
    let learned = last["running_reward"].as_f64().unwrap();
    assert!(
        learned > untrained + 0.2,
        "learned ⟨r⟩ {learned} vs untrained {untrained}"
    );
    let svg = std::fs::read_to_string(out.join("learning_curve.svg")).unwrap();
    assert!(svg.contains("running g"));
}

#[test]
fn the_actor_engine_learns_the_same_network() {
    let dir = tempfile::tempdir().unwrap();
    let train = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let st = marlin()
            .args([
                "-q",
                "train",
                "scenarios/toy8.toml",
                "--ticks",
                "60001",
                "--checkpoints",
                "3",
            ])
            .args(["--policy", "logistic", "--out"])
            .arg(&out)
            .args(extra)
            .status()
            .unwrap();
        assert!(st.success());
        let s = json(&out.join("learning.json"));
        let cps = s["runs"][0]["checkpoints"].clone();
        let exact: Vec<f64> = cps
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["exact"]["g"].as_f64().unwrap())
            .collect();
        let policy = std::fs::read(out.join("learned_policy.npz")).unwrap();
        (exact, policy)
    };
    let barrier = train("barrier", &[]);
    let actors = train("actors", &["--actors", "3", "--threads", "2"]);
    assert_eq!(barrier.0, actors.0, "exact g at every checkpoint");
    assert!(barrier.0[3] > barrier.0[0], "it learned something");
    assert!(barrier.1 == actors.1, "learned_policy.npz byte for byte");
}

/// A small synchronous network with fixed `[neurons]` (Dale weights), for
/// the array path of logistic learning.
fn dale_scenario(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("dale.toml");
    std::fs::write(
        &path,
        r#"
name = "dale"
seed = 4
[network]
neurons = 300
update = "synchronous"
topology = { kind = "random_in_degree", k = 20 }
[neurons]
bias = -0.6
weights = "dale"
excitatory_fraction = 0.8
excitatory_weight = 0.25
inhibitory_weight = -0.5
[input]
values = [-1.0, 1.0]
switch_probability = 0.01
[reward]
kind = "target_count"
targets = [60, 120]
value = 1.0
[cost]
lambda = 0.05
kind = "fixed_prior"
prior = 0.3
"#,
    )
    .unwrap();
    path
}

#[test]
fn logistic_learners_start_from_the_scenarios_neurons_and_every_engine_learns_the_same_bits() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dale_scenario(dir.path());
    let train = |name: &str, ticks: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let st = marlin()
            .args(["-q", "train"])
            .arg(&scenario)
            .args([
                "--ticks",
                ticks,
                "--checkpoints",
                "2",
                "--policy",
                "logistic",
                "--rule",
                "reinforce",
            ])
            .arg("--out")
            .arg(&out)
            .args(extra)
            .status()
            .unwrap();
        assert!(st.success(), "{name}");
        out.join("learned_policy.npz")
    };
    // After one tick (from all silent) the saved learners have taken one
    // step on their bias and input weight only — no partner had spiked, so
    // no synapse carries a trace: the scenario's weights, widened to f64.
    let mut npz = ndarray_npy::NpzReader::new(std::fs::File::open(train("one", "1", &[])).unwrap()).unwrap();
    let bias: ndarray::Array1<f64> = npz.by_name("bias").unwrap();
    assert!(bias.iter().all(|&b| (b + 0.6).abs() < 0.05), "bias {bias}");
    let pre: ndarray::Array1<i64> = npz.by_name("synapse_pre").unwrap();
    let w: ndarray::Array1<f64> = npz.by_name("synapse_weight").unwrap();
    assert_eq!(w.len(), 300 * 20);
    for (&j, &w) in pre.iter().zip(&w) {
        let dale = if j < 240 { 0.25f32 } else { -0.5f32 } as f64;
        assert_eq!(w, dale, "synapse from {j}");
    }
    // The arrays (default engine, 1 or 2 threads) and the actor engine's
    // agents learn the same weights bit for bit.
    let arrays = std::fs::read(train("arrays", "400", &["--threads", "1"])).unwrap();
    let two = std::fs::read(train("two", "400", &["--threads", "2", "--shards", "5"])).unwrap();
    let actors = std::fs::read(train("actors", "400", &["--actors", "64", "--threads", "2"])).unwrap();
    assert!(arrays == two, "1 and 2 threads");
    assert!(arrays == actors, "arrays and the actor engine");
    let mut npz = ndarray_npy::NpzReader::new(std::io::Cursor::new(arrays)).unwrap();
    let learned: ndarray::Array1<f64> = npz.by_name("synapse_weight").unwrap();
    assert!(learned != w, "it learned something");
}
