//! `marlin infer` end to end: simulate the optimal toy, infer its reward;
//! inconsistent trajectories are rejected with a clear message.

mod cli_common;

use std::path::Path;
use std::process::Command;

fn marlin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_marlin"))
}

fn simulate(dir: &Path, scenario: &str, ticks: &str) -> std::path::PathBuf {
    let solve = dir.join("solve");
    assert!(
        marlin()
            .args(["-q", "solve", scenario, "--out"])
            .arg(&solve)
            .status()
            .unwrap()
            .success()
    );
    let sim = dir.join("simulate");
    assert!(
        marlin()
            .args(["-q", "simulate", scenario, "--ticks", ticks, "--policy"])
            .arg(solve.join("policy.npz"))
            .arg("--out")
            .arg(&sim)
            .status()
            .unwrap()
            .success()
    );
    sim.join("trajectory.npz")
}

#[test]
fn infers_the_toy_reward_from_its_simulated_record() {
    let dir = tempfile::tempdir().unwrap();
    let traj = simulate(dir.path(), "scenarios/toy8.toml", "100000");
    let st = marlin()
        .args(["-q", "infer"])
        .arg(&traj)
        .args(["--lambda", "0.5", "--bootstrap", "100"])
        .status()
        .unwrap();
    assert!(st.success());
    let out = dir.path().join("infer");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("reward.json")).unwrap()).unwrap();
    assert_eq!(s["argmax_count"], serde_json::json!([2, 6]));
    assert!(s["centred_correlation_with_truth"].as_f64().unwrap() >= 0.9, "{s}");
    // The optimum keeps some neurons always on or off: only states
    // consistent with them are visited.
    let visited = s["visited_states"].as_u64().unwrap();
    assert!(visited > 32 && visited <= 512, "{visited}");
    for f in [
        "reward.npz",
        "reward_by_count.svg",
        "reward_vs_value.svg",
        "inferred_vs_true.svg",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    // Acceptance: from 10⁵ ticks the bootstrap intervals of the rewarded
    // counts lie above those of every other count.
    assert_eq!(
        s["argmax_separated"],
        serde_json::json!([true, true]),
        "{}",
        s["count_reward_interval"]
    );
    let iv = &s["count_reward_interval"];
    for x in 0..2 {
        for k in 0..=8 {
            let (lo, hi) = (iv[x][k][0].as_f64(), iv[x][k][1].as_f64());
            if let (Some(lo), Some(hi)) = (lo, hi) {
                assert!(lo <= hi);
            }
        }
    }
    let mut npz = ndarray_npy::NpzReader::new(std::fs::File::open(out.join("reward.npz")).unwrap()).unwrap();
    let r: ndarray::Array2<f64> = npz.by_name("r").unwrap();
    let lo: ndarray::Array2<f64> = npz.by_name("r_lo").unwrap();
    let hi: ndarray::Array2<f64> = npz.by_name("r_hi").unwrap();
    let identified = r.iter().filter(|v| v.is_finite()).count();
    let inside = r
        .iter()
        .zip(lo.iter().zip(hi.iter()))
        .filter(|(v, (l, h))| **l <= **v && **v <= **h)
        .count();
    assert!(identified > 32, "{identified} identified states");
    assert!(
        inside as f64 >= 0.8 * identified as f64,
        "point estimates inside their intervals: {inside}/{identified}"
    );
    // Without λ the result is r/λ: the same correlation, scaled values.
    let out2 = dir.path().join("infer_scale_free");
    assert!(
        marlin()
            .args(["-q", "infer"])
            .arg(&traj)
            .arg("--out")
            .arg(&out2)
            .status()
            .unwrap()
            .success()
    );
    let s2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out2.join("reward.json")).unwrap()).unwrap();
    assert!(s2["units"].as_str().unwrap().contains("r/λ"));
    let (a, b) = (
        s["count_reward"][0][2].as_f64().unwrap(),
        s2["count_reward"][0][2].as_f64().unwrap(),
    );
    assert!((a - 0.5 * b).abs() < 1e-9, "{a} vs {b}");
}

#[test]
fn rejects_trajectories_it_cannot_invert() {
    let dir = tempfile::tempdir().unwrap();
    let sync = dir.path().join("sync.toml");
    std::fs::write(
        &sync,
        std::fs::read_to_string("scenarios/toy8.toml")
            .unwrap()
            .replace("\"asynchronous\"", "\"synchronous\""),
    )
    .unwrap();
    let traj = simulate(dir.path(), sync.to_str().unwrap(), "1000");
    // Synchronous records have no single actor: the tabular inversion is
    // refused with what to use instead.
    let o = marlin()
        .args(["infer", "--reward-model", "tabular"])
        .arg(&traj)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("asynchronous") && err.contains("--reward-model count"),
        "{err}"
    );
    // A feature file of the wrong shape names the shapes allowed.
    let bad = dir.path().join("features.npy");
    ndarray_npy::write_npy(&bad, &ndarray::Array2::<f64>::zeros((3, 4))).unwrap();
    let o = marlin()
        .args(["infer", "--reward-model"])
        .arg(&bad)
        .arg(&traj)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("features.npy") && err.contains("[2, 256, P]"), "{err}");
    // A format version from the future.
    let meta_path = traj.with_file_name("trajectory.json");
    let meta = std::fs::read_to_string(&meta_path).unwrap();
    std::fs::write(
        &meta_path,
        meta.replace("\"format_version\": 1", "\"format_version\": 99"),
    )
    .unwrap();
    let o = marlin().args(["infer"]).arg(&traj).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("format version 99"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Missing metadata.
    std::fs::remove_file(traj.with_file_name("trajectory.json")).unwrap();
    let o = marlin().args(["infer"]).arg(&traj).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("trajectory.json"));
    // Not an archive.
    let junk = dir.path().join("j").join("trajectory.npz");
    std::fs::create_dir_all(junk.parent().unwrap()).unwrap();
    std::fs::write(&junk, b"junk").unwrap();
    std::fs::copy("scenarios/toy8.toml", junk.with_file_name("trajectory.json")).unwrap();
    let o = marlin().args(["infer"]).arg(&junk).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not trajectory metadata"));
    assert!(
        !dir.path()
            .join("j")
            .join("..")
            .join("infer")
            .join("reward.json")
            .exists()
    );
}

#[test]
fn a_reward_the_counts_cannot_express_is_flagged_as_misfit() {
    let dir = tempfile::tempdir().unwrap();
    let pattern = dir.path().join("pattern.toml");
    let text = std::fs::read_to_string("scenarios/toy8.toml").unwrap().replace(
        "kind = \"target_count\"\ntargets = [2, 6]              # rewarded spike count per input value\nvalue = 1.0",
        "kind = \"pattern\"\non = [[0, 1], [2, 3, 4, 5, 6, 7]]\noff = [[2, 3, 4, 5, 6, 7], [0, 1]]\nmode = \"all_or_nothing\"",
    )
    // At λ = 0.5 the optimum for this pattern ignores the input (a fixed
    // pattern, no information, nothing to infer); at 0.1 it codes the input.
    .replace("lambda = 0.5", "lambda = 0.1");
    assert!(text.contains("pattern"), "test bug: the toy's reward lines changed");
    std::fs::write(&pattern, text).unwrap();
    let traj = simulate(dir.path(), pattern.to_str().unwrap(), "100000");
    assert!(
        marlin()
            .args(["-q", "infer"])
            .arg(&traj)
            .args(["--lambda", "0.5"])
            .status()
            .unwrap()
            .success()
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("infer/reward.json")).unwrap()).unwrap();
    let w = s["warnings"].as_array().unwrap();
    assert!(
        w.iter().any(|w| w.as_str().unwrap().contains("does not explain")),
        "{s}"
    );
    // The toy itself, whose reward is a function of the count, is not flagged.
    let toy_dir = tempfile::tempdir().unwrap();
    let traj = simulate(toy_dir.path(), "scenarios/toy8.toml", "100000");
    assert!(
        marlin()
            .args(["-q", "infer"])
            .arg(&traj)
            .args(["--lambda", "0.5"])
            .status()
            .unwrap()
            .success()
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(toy_dir.path().join("infer/reward.json")).unwrap()).unwrap();
    assert!(s["warnings"].as_array().unwrap().is_empty(), "{s}");
    assert!(s["count_model_fit"]["statistic"].as_f64().unwrap() < 1.5 * s["count_model_fit"]["df"].as_f64().unwrap());
}

#[test]
fn numpy_reads_the_trajectory_and_reward_files_with_the_same_numbers() {
    if !cli_common::numpy("cli_infer::numpy_reads_the_trajectory_and_reward_files_with_the_same_numbers") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let traj = simulate(dir.path(), "scenarios/toy8.toml", "30000");
    assert!(
        marlin()
            .args(["-q", "infer"])
            .arg(&traj)
            .args(["--lambda", "0.5"])
            .status()
            .unwrap()
            .success()
    );
    let infer = dir.path().join("infer");
    // numpy alone: the recorded reward is the toy's reward of the recorded
    // state, the actor is the only neuron whose state changes, and the
    // count reward in reward.npz is the one in reward.json.
    let script = format!(
        "import numpy as np, json\n\
         t = np.load(r'{t}'); m = json.load(open(r'{m}'))\n\
         x, s, a, r = t['x'], t['spikes'], t['actor'], t['reward']\n\
         assert s.shape == (m['ticks'], m['n']) and s.dtype == np.uint8 and x.dtype == np.int64\n\
         assert np.array_equal(r, (s.sum(1) == np.array([2, 6])[x]).astype(float))\n\
         d = np.nonzero(s[1:] != s[:-1])\n\
         assert np.all(a[:-1][d[0]] == d[1])\n\
         w = np.load(r'{w}'); j = json.load(open(r'{j}'))\n\
         cr = np.array([[np.nan if v is None else v for v in row] for row in j['count_reward']])\n\
         assert np.allclose(w['count_reward'], cr, equal_nan=True, atol=1e-12)\n\
         assert w['r'].shape == (2, 256) and int(w['visits'].sum()) == m['ticks']\n\
         print('numpy ok')",
        t = traj.display(),
        m = traj.with_extension("json").display(),
        w = infer.join("reward.npz").display(),
        j = infer.join("reward.json").display(),
    );
    let o = cli_common::python().args(["-c", &script]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("numpy ok"));
}

#[test]
fn maximum_likelihood_count_model_and_an_equivalent_feature_file_agree() {
    let dir = tempfile::tempdir().unwrap();
    let traj = simulate(dir.path(), "scenarios/toy8.toml", "100000");
    let run = |model: &str, out: &str| -> serde_json::Value {
        let st = marlin()
            .args(["-q", "infer", "--lambda", "0.5", "--reward-model", model, "--out"])
            .arg(dir.path().join(out))
            .arg(&traj)
            .status()
            .unwrap();
        assert!(st.success(), "{model}");
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(out).join("reward.json")).unwrap()).unwrap()
    };
    let count = run("count", "count");
    assert_eq!(count["argmax_count"], serde_json::json!([2, 6]));
    // Maximum likelihood uses every visit, not only each state's own: from
    // 10⁵ ticks it beats the tabular inversion's ≥ 0.9.
    let corr = count["centred_correlation_with_truth"].as_f64().unwrap();
    assert!(corr >= 0.97, "{corr}");
    let fit = &count["fit"];
    assert!(fit["converged"].as_bool().unwrap(), "{fit}");
    assert!(fit["gradient"].as_str().unwrap().contains("implicit"));
    // A correct model: the deviance is not far above its degrees of freedom.
    assert!(
        fit["deviance"].as_f64().unwrap() < 1.5 * fit["df"].as_f64().unwrap(),
        "{fit}"
    );
    assert_eq!(count["parameters"].as_array().unwrap().len(), 18);
    // The same features from a file: [X, 2^n, P], one-hot of the count.
    let mut phi = ndarray::Array3::<f64>::zeros((2, 256, 18));
    for x in 0..2 {
        for s in 0..256usize {
            phi[[x, s, x * 9 + s.count_ones() as usize]] = 1.0;
        }
    }
    let file = dir.path().join("counts.npy");
    ndarray_npy::write_npy(&file, &phi).unwrap();
    let from_file = run(file.to_str().unwrap(), "file");
    for j in 0..18 {
        let (a, b) = (
            count["parameters"][j]["value"].as_f64().unwrap(),
            from_file["parameters"][j]["value"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-9, "θ_{j}: {a} vs {b}");
    }
    let mut npz =
        ndarray_npy::NpzReader::new(std::fs::File::open(dir.path().join("count/reward.npz")).unwrap()).unwrap();
    let theta: ndarray::Array1<f64> = npz.by_name("theta").unwrap();
    assert_eq!(theta.len(), 18);
}

#[test]
fn a_random_partial_record_is_inferred_by_maximum_likelihood() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("rp4.toml");
    std::fs::write(
        &scenario,
        "name = \"rp4\"\nseed = 3\n[network]\nneurons = 4\nupdate = \"random_partial\"\nq = 0.5\n\
         [input]\nvalues = [-1.0, 1.0]\nswitch_probability = 0.05\n\
         [reward]\nkind = \"target_count\"\ntargets = [1, 3]\nvalue = 1.0\n[cost]\nlambda = 0.5\n",
    )
    .unwrap();
    let traj = simulate(dir.path(), scenario.to_str().unwrap(), "50000");
    let st = marlin()
        .args(["-q", "infer", "--lambda", "0.5"])
        .arg(&traj)
        .status()
        .unwrap();
    assert!(st.success());
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("infer/reward.json")).unwrap()).unwrap();
    // No single actor per tick: the default is the likelihood of every
    // neuron's next state, P(σ' = 1) = q·π + (1 − q)·σ.
    assert_eq!(s["reward_model"], "count");
    assert_eq!(s["update"], "random_partial");
    assert!(s["fit"]["gradient"].as_str().unwrap().contains("finite"));
    assert_eq!(s["argmax_count"], serde_json::json!([1, 3]));
    let corr = s["centred_correlation_with_truth"].as_f64().unwrap();
    assert!(corr > 0.95, "{corr}");
}

/// A record of a network with dead neurons (theory §6): the tabular
/// inversion sums over the living neurons only. (It once summed over all
/// n, reaching the never-visited states where a dead neuron fires: every
/// reward came out NaN and "peaks at [0, 0]", with exit code 0.) Both
/// methods find the toy's counts 2 / 6 among the 6 living neurons.
#[test]
fn a_record_with_dead_neurons_is_inferred_over_the_living_ones() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("scenarios/toy8.toml").unwrap().replace(
        "topology = { kind = \"all_to_all\" }",
        "topology = { kind = \"all_to_all\" }\ndead = [0, 5]",
    );
    let sc = dir.path().join("dead.toml");
    std::fs::write(&sc, text).unwrap();
    let traj = simulate(dir.path(), sc.to_str().unwrap(), "200000");
    for (model, out) in [("tabular", "infer_tabular"), ("count", "infer_count")] {
        let out = dir.path().join(out);
        cli_common::run_ok(
            marlin()
                .args(["-q", "infer", "--lambda", "0.5", "--reward-model", model, "--out"])
                .arg(&out)
                .arg(&traj),
        );
        let r = cli_common::json(&out.join("reward.json"));
        assert_eq!(
            r["argmax_count"],
            serde_json::json!([2, 6]),
            "{model}: {}",
            r["count_reward"]
        );
        let corr = r["centred_correlation_with_truth"].as_f64().unwrap();
        assert!(corr > 0.9, "{model}: correlation {corr}");
    }
}
