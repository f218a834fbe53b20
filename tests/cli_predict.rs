//! `marlin predict`: perturbation parsing, and that re-solving with the
//! inferred reward predicts the toy's response to a higher coding cost far
//! better than carrying the old policies over.

mod cli_common;

use marlin::commands::predict::{Perturbation, max_tv};
use std::process::Command;

fn marlin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_marlin"))
}

#[test]
fn perturbation_specs_parse_or_say_what_is_allowed() {
    let v = [-1.0, 1.0];
    assert_eq!(
        Perturbation::parse("kill:0,3", 8, &v).unwrap(),
        Perturbation::Kill(vec![0, 3])
    );
    assert_eq!(
        Perturbation::parse("lambda:1.5", 8, &v).unwrap(),
        Perturbation::Lambda(1.5)
    );
    match Perturbation::parse("input:0.1,0.9;0.5,0.5", 8, &v).unwrap() {
        Perturbation::Input(p) => assert_eq!(p.transition, vec![0.1, 0.9, 0.5, 0.5]),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        Perturbation::parse("topology:ring:2", 8, &v).unwrap(),
        Perturbation::Topology(marlin::topology::TopologySpec::Ring { k: 2 })
    );
    for (spec, needle) in [
        ("kill:9", "0 to 7"),
        ("kill:0,1,2,3,4,5,6,7", "survive"),
        ("lambda:-1", "positive"),
        ("input:0.2,0.9;0.5,0.5", "summing to 1"),
        ("input:0.5,0.5", "2×2"),
        ("walls:x", "allowed: kill, lambda, input, topology"),
        ("topology:ring:9", "K from 1 to 7"),
        ("topology:moebius", "allowed: none, all_to_all"),
        ("nonsense", "KIND:ARGS"),
    ] {
        let err = Perturbation::parse(spec, 8, &v).unwrap_err().to_string();
        assert!(err.contains(needle), "{spec}: {err}");
    }
}

#[test]
fn total_variation_is_half_the_l1_distance_maximised_over_inputs() {
    let a = vec![vec![1.0, 0.0], vec![0.5, 0.5]];
    let b = vec![vec![0.0, 1.0], vec![0.5, 0.5]];
    assert_eq!(max_tv(&a, &b), 1.0);
    assert_eq!(max_tv(&a, &a), 0.0);
}

#[test]
fn raising_lambda_is_predicted_better_than_naively() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = |c: &mut Command| assert!(c.status().unwrap().success());
    ok(marlin()
        .args(["-q", "solve", "scenarios/toy8.toml", "--out"])
        .arg(d.join("solve")));
    ok(marlin()
        .args(["-q", "simulate", "scenarios/toy8.toml", "--ticks", "300000", "--policy"])
        .arg(d.join("solve/policy.npz"))
        .arg("--out")
        .arg(d.join("simulate")));
    ok(marlin()
        .args(["-q", "infer"])
        .arg(d.join("simulate/trajectory.npz"))
        .args(["--lambda", "0.5"]));
    ok(marlin()
        .args([
            "-q",
            "predict",
            "--scenario",
            "scenarios/toy8.toml",
            "--perturb",
            "lambda:1.0",
            "--reward",
        ])
        .arg(d.join("infer/reward.npz"))
        .arg("--out")
        .arg(d.join("predict")));
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("predict/prediction.json")).unwrap()).unwrap();
    let (pred, naive) = (
        p["tv_pred_truth"].as_f64().unwrap(),
        p["tv_naive_truth"].as_f64().unwrap(),
    );
    assert!(
        naive > 0.15,
        "the old policies should be visibly wrong at λ = 1: {naive}"
    );
    assert!(pred < 0.08 && pred < naive / 2.5, "prediction {pred} vs naive {naive}");
    assert!(d.join("predict/prediction.svg").exists());
    // A reward file of the wrong shape is refused.
    let o = marlin()
        .args([
            "predict",
            "--scenario",
            "scenarios/toy20.toml",
            "--perturb",
            "lambda:1",
            "--reward",
        ])
        .arg(d.join("infer/reward.npz"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("count_reward"));
}

#[test]
fn cutting_the_recurrent_connections_is_predicted_with_partially_observed_best_responses() {
    // The toy's true reward as the "inferred" one: what is tested is the
    // re-solve under the new topology against the naive projection.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sc = marlin::scenario::Scenario::load(std::path::Path::new("scenarios/toy8.toml")).unwrap();
    let r = sc.reward.tabulate(8);
    // Written as a user's own code would: an archive without marlin's seal.
    let mut npz = ndarray_npy::NpzWriter::new(std::fs::File::create(d.join("reward.npz")).unwrap());
    npz.add_array("r", &ndarray::Array2::from_shape_vec((2, 256), r).unwrap())
        .unwrap();
    npz.finish().unwrap();
    let ok = marlin()
        .args([
            "-q",
            "predict",
            "--scenario",
            "scenarios/toy8.toml",
            "--perturb",
            "topology:none",
        ])
        .args(["--reward-model", "tabular", "--reward"])
        .arg(d.join("reward.npz"))
        .arg("--out")
        .arg(d.join("p"))
        .status()
        .unwrap();
    assert!(ok.success());
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("p/prediction.json")).unwrap()).unwrap();
    let (pred, naive) = (
        p["tv_pred_truth"].as_f64().unwrap(),
        p["tv_naive_truth"].as_f64().unwrap(),
    );
    assert!(pred < 1e-6, "the true reward re-solved is the truth: {pred}");
    assert!(
        naive > 0.05,
        "averaging the old policies over what is no longer seen is not optimal: {naive}"
    );
}

#[test]
fn a_partially_observed_network_is_predicted_from_its_recorded_equilibrium() {
    // Neurons that see only the input: several equilibria. The fitted
    // policies (reward.npz `policy`) reproduce the record, and continuing
    // from them predicts a coder's death where the naive prediction fails.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = |c: &mut Command| assert!(c.status().unwrap().success());
    let sc = "scenarios/toy8_blind.toml";
    ok(marlin().args(["-q", "solve", sc, "--out"]).arg(d.join("solve")));
    ok(marlin()
        .args(["-q", "simulate", sc, "--ticks", "100000", "--policy"])
        .arg(d.join("solve/policy.npz"))
        .arg("--out")
        .arg(d.join("simulate")));
    ok(marlin()
        .args(["-q", "infer", "--lambda", "0.5"])
        .arg(d.join("simulate/trajectory.npz")));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("infer/reward.json")).unwrap()).unwrap();
    assert_eq!(
        s["reward_model"], "count",
        "partially observed: maximum likelihood by default"
    );
    assert!(s["observation"].as_str().unwrap().starts_with("partial"));
    ok(marlin()
        .args([
            "-q",
            "predict",
            "--scenario",
            sc,
            "--perturb",
            "kill:1",
            "--equilibrium",
            "recorded",
        ])
        .arg("--reward")
        .arg(d.join("infer/reward.npz"))
        .arg("--out")
        .arg(d.join("predict")));
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("predict/prediction.json")).unwrap()).unwrap();
    let (pred, naive, base) = (
        p["tv_pred_truth"].as_f64().unwrap(),
        p["tv_naive_truth"].as_f64().unwrap(),
        p["tv_baseline"].as_f64().unwrap(),
    );
    assert!(base < 0.02, "the fitted equilibrium reproduces the record: {base}");
    assert!(naive > 0.5, "{naive}");
    assert!(pred < 0.05, "prediction {pred} vs naive {naive}");
}
