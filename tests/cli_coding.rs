//! Sensory-coding scenarios end to end through the binary: bad files are
//! refused at their line with exit code 2; `solve` writes the code as a
//! network scenario the network commands accept; `run` infers a reward that
//! tracks log p(y | σ) and predicts the split into cell types better than
//! the naive prediction.

use std::process::Command;

mod cli_common;

use cli_common::{json, marlin, run_bad, run_ok};

const GOOD: &str = "name = \"c\"\n[coding]\npixels = 7\nthreshold = 3\npixel_probability = 0.5\n\
                    change_probability = 0.3\nneurons = 5\n[cost]\nlambda = 0.1\n";

#[test]
fn bad_coding_scenarios_are_refused_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    for (edit, needle) in [
        (("threshold = 3", "threshold = 7"), "c.toml:4"),
        (
            ("pixel_probability = 0.5", "pixel_probability = 1.0"),
            "coding.pixel_probability",
        ),
        (("neurons = 5", "neurons = 40"), "coding.neurons"),
        (("lambda = 0.1", "lambda = -1"), "cost.lambda"),
        (("neurons = 5", "neurons = 5\ncolour = 3"), "unknown field `colour`"),
        (
            ("lambda = 0.1", "lambda = 0.1\nkind = \"fixed_prior\""),
            "allowed: \"mutual_information\"",
        ),
    ] {
        std::fs::write(&path, GOOD.replace(edit.0, edit.1)).unwrap();
        let err = run_bad(marlin().arg("validate").arg(&path));
        assert!(err.contains(needle), "{edit:?}: {err}");
    }
    // A bad perturbation is refused before anything is written.
    std::fs::write(&path, format!("{GOOD}[study]\nperturbations = [\"pixels:0.2\"]\n")).unwrap();
    let out = dir.path().join("out");
    let err = run_bad(marlin().arg("run").arg(&path).arg("--out").arg(&out));
    assert!(err.contains("c.toml:") && err.contains("pixel_probability:Q"), "{err}");
    assert!(!out.exists(), "a refused run wrote {}", out.display());
    // Network commands point to what to do instead.
    std::fs::write(&path, GOOD).unwrap();
    let err = run_bad(marlin().arg("train").arg(&path));
    assert!(err.contains("sensory-coding") && err.contains("network.toml"), "{err}");
}

#[test]
fn run_infers_the_log_posterior_and_predicts_the_split() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_ok(
        marlin()
            .args([
                "-q",
                "run",
                "scenarios/efficient_coding.toml",
                "--ticks",
                "400000",
                "--out",
            ])
            .arg(&out),
    );
    let s = json(&out.join("summary.json"));
    assert!(s["warnings"].is_array(), "{s}");
    let code = &s["solve"];
    assert_eq!(code["cell_types"].as_array().unwrap().len(), 1, "{code}");
    assert_eq!(code["posterior_monotone"], true);
    assert!(code["information_y_bits"].as_f64().unwrap() > code["independent_information_y_bits"].as_f64().unwrap());
    let inf = &s["infer"];
    assert!(inf["correlation_with_truth"].as_f64().unwrap() >= 0.95, "{inf}");
    assert_eq!(inf["feature_recovered"], true, "{inf}");
    // Decentralised learners given the code's reward close most of the gap
    // between the state-blind network and the optimum (0.967–0.969 measured).
    let closed = s["train"]["gap_closed"].as_f64().unwrap();
    assert!(closed > 0.9, "{}", s["train"]);
    let p = &s["predict"][0];
    assert_eq!(p["truth"]["cell_types"].as_array().unwrap().len(), 2, "{p}");
    assert_eq!(
        p["predicted_objective"]["cell_types"].as_array().unwrap().len(),
        2,
        "{p}"
    );
    let (pred, naive) = (
        p["rate_error_objective"].as_f64().unwrap(),
        p["rate_error_naive"].as_f64().unwrap(),
    );
    assert!(pred < 0.05 && naive > 0.3, "rate error predicted {pred}, naive {naive}");
    for f in [
        "solve/tuning.svg",
        "solve/posterior.svg",
        "infer/reward_vs_log_posterior.svg",
        "train/learning_curve.svg",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    // The solved code is an ordinary network scenario.
    run_ok(marlin().arg("validate").arg(out.join("solve/network.toml")));
}

/// numpy reads what `solve` writes, with the documented shapes.
#[test]
fn numpy_loads_the_code() {
    if !cli_common::numpy_available() {
        panic!("numpy is required (the CI script installs it)");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, GOOD).unwrap();
    let out = dir.path().join("solve");
    run_ok(marlin().arg("-q").arg("solve").arg(&path).arg("--out").arg(&out));
    let script = format!(
        "import numpy as np\n\
         c = np.load('{d}/code.npz')\n\
         assert c['rates'].shape == (5, 8), c['rates'].shape\n\
         assert c['tuning'].shape == (5, 8, 5)\n\
         assert c['posterior'].shape == (32,)\n\
         assert list(c['feature']) == [-1]*4 + [1]*4\n\
         assert abs(c['pixel_count_probability'].sum() - 1) < 1e-12\n\
         r = np.load('{d}/reward.npy')\n\
         assert r.shape == (8, 32) and (r <= 0).all()\n\
         p = np.load('{d}/policy.npz')\n\
         assert p['p_fire'].shape == (8, 32, 5)\n\
         assert np.allclose(p['rho'].sum(), 1)\n",
        d = out.display()
    );
    let o = Command::new("python3").arg("-c").arg(&script).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
