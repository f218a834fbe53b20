//! The `marlin` binary end to end: outputs, formats, exit codes, and that a
//! bad input writes nothing.

use ndarray::{Array, Array1, Array2, Array3, Ix0};
use ndarray_npy::NpzReader;
use std::process::Command;

mod cli_common;

fn marlin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_marlin"))
}

#[test]
fn solve_toy_writes_summary_policy_and_figure() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("toy");
    let st = marlin()
        .args(["-q", "solve", "scenarios/toy8.toml", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let g = summary["g"].as_f64().unwrap();
    let r = summary["mean_reward"].as_f64().unwrap();
    let info = summary["info_nats"].as_f64().unwrap();
    assert!((g - (r - 0.5 * info)).abs() < 1e-12, "g = ⟨r⟩ − λ·info");
    assert_eq!(summary["p_fire"].as_array().unwrap().len(), 8);
    assert_eq!(summary["converged"], true);
    assert!(summary["iterations"].as_u64().unwrap() >= 1);
    let counts = summary["count_distribution"].as_array().unwrap();
    assert_eq!(counts.len(), 2);
    for d in counts {
        let d: Vec<f64> = d.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(d.len(), 9);
        assert!((d.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
    let svg = std::fs::read_to_string(out.join("count_distribution.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));

    let mut npz = NpzReader::new(std::fs::File::open(out.join("policy.npz")).unwrap()).unwrap();
    let p: Array3<f64> = npz.by_name("p_fire").unwrap();
    assert_eq!(p.shape(), &[2, 256, 8]);
    assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
    let rho: Array2<f64> = npz.by_name("rho").unwrap();
    assert!((rho.sum() - 1.0).abs() < 1e-12);
    let h: Array2<f64> = npz.by_name("h").unwrap();
    assert_eq!(h[[0, 0]], 0.0, "h is relative to s_ref = (x=0, σ=0)");
    let reward: Array2<f64> = npz.by_name("reward").unwrap();
    // bit k of σ is neuron k: σ = 0b11 has two active neurons, rewarded for x = −1.
    assert_eq!(reward[[0, 0b11]], 1.0);
    assert_eq!(reward[[1, 0b11]], 0.0);
    assert_eq!(reward[[1, 0b111111]], 1.0);
    let prior: Array1<f64> = npz.by_name("prior").unwrap();
    assert_eq!(prior.len(), 8);
    let lambda: Array<f64, Ix0> = npz.by_name("lambda").unwrap();
    assert_eq!(lambda.into_scalar(), 0.5);
}

#[test]
fn sweep_writes_one_record_per_lambda_and_the_tradeoff() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sw");
    let st = marlin()
        .args([
            "-q",
            "solve",
            "scenarios/toy8.toml",
            "--sweep-lambda",
            "0.2,1,3",
            "--out",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let sweep = summary["sweep"].as_array().unwrap();
    assert_eq!(sweep.len(), 3);
    let lambdas: Vec<f64> = sweep.iter().map(|r| r["lambda"].as_f64().unwrap()).collect();
    assert_eq!(lambdas, vec![0.2, 1.0, 3.0]);
    assert!(out.join("tradeoff.svg").exists());
    for l in ["0.2", "1", "3"] {
        assert!(out.join(format!("lambda_{l}/policy.npz")).exists());
    }
}

#[test]
fn bad_scenario_exits_2_names_the_place_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string("scenarios/toy8.toml")
            .unwrap()
            .replace("neurons = 8", "neurons = 8\nneuronz = 3"),
    )
    .unwrap();
    let out = dir.path().join("never");
    let o = marlin()
        .args(["solve"])
        .arg(&bad)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.toml:9:1") && err.contains("neuronz"), "{err}");
    assert!(!out.exists(), "nothing may be written for a bad scenario");
    let o = marlin().args(["validate"]).arg(&bad).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn too_large_network_exits_2_with_the_estimate_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.toml");
    let text = std::fs::read_to_string("scenarios/toy8.toml")
        .unwrap()
        .replace("neurons = 8", "neurons = 16")
        .replace("update = \"asynchronous\"", "update = \"synchronous\"");
    std::fs::write(&big, text).unwrap();
    let out = dir.path().join("never");
    let o = marlin()
        .args(["solve"])
        .arg(&big)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("big.toml") && err.contains("4ⁿ") && err.contains("asynchronous"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn validate_accepts_every_shipped_scenario() {
    for e in std::fs::read_dir("scenarios").unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) == Some("toml") {
            let o = marlin().arg("validate").arg(&p).output().unwrap();
            assert!(
                o.status.success(),
                "{}: {}",
                p.display(),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

#[test]
fn numpy_reads_the_policy_file() {
    if !cli_common::numpy("cli_solve::numpy_reads_the_policy_file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("toy");
    assert!(
        marlin()
            .args(["-q", "solve", "scenarios/toy8.toml", "--out"])
            .arg(&out)
            .status()
            .unwrap()
            .success()
    );
    let script = format!(
        "import numpy as np, json\nd = np.load(r'{p}')\ns = json.load(open(r'{j}'))\n\
         rho = d['rho']; p = d['p_fire']\n\
         assert p.shape == (2, 256, 8) and rho.shape == (2, 256)\n\
         counts = np.array([bin(i).count('1') for i in range(256)])\n\
         dist = [[rho[x][counts == c].sum() / rho[x].sum() for c in range(9)] for x in range(2)]\n\
         assert np.allclose(dist, s['count_distribution'], atol=1e-12)\n\
         marg = [(rho[..., None] * p).sum(axis=(0, 1))[k] for k in range(8)]\n\
         assert np.allclose(marg, s['p_fire'], atol=1e-12)\n\
         assert np.isclose((rho * d['reward']).sum(), s['mean_reward'], atol=1e-12)\n\
         print('numpy ok')",
        p = out.join("policy.npz").display(),
        j = out.join("summary.json").display()
    );
    let o = cli_common::python().args(["-c", &script]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn scenarios_lists_the_shipped_files_with_descriptions() {
    let o = marlin().arg("scenarios").output().unwrap();
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("toy8.toml") && text.contains("2 active for x = -1"),
        "{text}"
    );
    assert!(text.contains("toy20.toml"), "{text}");
}

/// Every subcommand `marlin --help` lists shows, under "Example:" or
/// "Examples:" in its own help, a line that runs that very subcommand
/// (`marlin <cmd> …`). (Not `help`, and not `scenarios`, which takes no
/// input and has no example.)
#[test]
fn every_subcommand_has_help_with_an_example() {
    let o = marlin().arg("--help").output().unwrap();
    assert!(o.status.success());
    let top = String::from_utf8_lossy(&o.stdout);
    // The "Commands:" section: one "  name  what it does" line each, up to a blank line.
    let cmds: Vec<&str> = top
        .lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for known in [
        "run", "validate", "solve", "train", "simulate", "infer", "predict", "import",
    ] {
        assert!(cmds.contains(&known), "`marlin --help` does not list {known}:\n{top}");
    }
    for cmd in cmds.into_iter().filter(|c| !["help", "scenarios"].contains(c)) {
        let o = marlin().args([cmd, "--help"]).output().unwrap();
        assert!(o.status.success(), "{cmd}");
        let text = String::from_utf8_lossy(&o.stdout);
        let runs = format!("marlin {cmd} ");
        let example = text
            .lines()
            .skip_while(|l| !matches!(l.trim(), "Example:" | "Examples:"))
            .skip(1)
            .any(|l| l.trim_start().starts_with(&runs));
        assert!(example, "{cmd} --help has no example line starting `{runs}`:\n{text}");
    }
}

#[test]
fn run_does_the_whole_toy_study() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("toy");
    let st = marlin()
        .args(["-q", "run", "scenarios/toy8.toml", "--ticks", "100000", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    for f in [
        "solve/policy.npz",
        "simulate/trajectory.npz",
        "infer/reward.npz",
        "summary.json",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["solve"]["converged"], true);
    assert_eq!(s["infer"]["argmax_count"], serde_json::json!([2, 6]));
    let preds = s["predict"].as_array().unwrap();
    assert_eq!(preds.len(), 3, "the toy's [study] perturbations");
    for p in preds {
        assert!(p["tv_pred_truth"].as_f64().unwrap() <= p["tv_naive_truth"].as_f64().unwrap());
    }
    // Training ran, scored against the optimum.
    let train = s["train"].as_array().unwrap();
    assert_eq!(train.len(), 2);
    assert!(
        train.iter().all(|r| r["g_over_optimum"].as_f64().unwrap() > 0.9),
        "{train:?}"
    );
    // The report: self-contained, every stage's section, every figure inline
    // with a caption.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for id in ["headline", "solve", "train", "simulate", "infer", "predict"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "section {id}");
    }
    // count distribution, learning curve, weights, raster, 3 inference
    // figures, 3 predictions
    assert_eq!(html.matches("<svg").count(), 10);
    assert_eq!(html.matches("<figcaption>").count(), 10);
    assert!(!html.contains("<script") && !html.contains("src=\"http") && !html.contains("href=\"http"));
    assert!(html.contains("recorded spikes") && html.contains("g / g*"));
}

#[test]
fn a_bad_study_perturbation_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let text = std::fs::read_to_string("scenarios/toy8.toml")
        .unwrap()
        .replace("\"kill:1\"", "\"kill:12\"");
    assert!(text.contains("kill:12"), "test bug: the toy's [study] changed");
    std::fs::write(&bad, text).unwrap();
    let out = dir.path().join("out");
    let o = marlin()
        .args(["run", bad.to_str().unwrap(), "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.toml:") && err.contains("study.perturbations") && err.contains("12"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written");
    // And a study without training skips the stage and its report section.
    let lean = dir.path().join("lean.toml");
    let text = std::fs::read_to_string("scenarios/toy8.toml")
        .unwrap()
        .replace("train = true", "train = false")
        .replace("ticks = 200_000 ", "ticks = 20_000 ");
    std::fs::write(&lean, text).unwrap();
    let st = marlin()
        .args(["-q", "run", lean.to_str().unwrap(), "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    assert!(!out.join("train").exists());
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!html.contains("id=\"train\"") && html.contains("id=\"predict\""));
}
