//! Policies carry what they were solved for (policy.json beside policy.npz,
//! sealed with it), `simulate --policy` refuses a policy solved for another
//! world than the scenario's, and `solve --lambda L` writes its own folder so
//! the README's tour runs the policy it names.

mod cli_common;

use cli_common::{json, marlin, run_bad, run_ok};
use ndarray::{Array1, Array3};
use ndarray_npy::NpzReader;
use std::path::{Path, PathBuf};

/// A working folder holding `scenarios/toy8.toml` (the shipped file), so
/// the scenario's default output `out/toy8` lands inside it.
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("scenarios")).unwrap();
    let sc = dir.path().join("scenarios/toy8.toml");
    std::fs::copy("scenarios/toy8.toml", &sc).unwrap();
    (dir, sc)
}

fn p_fire(policy: &Path) -> Array3<f64> {
    NpzReader::new(std::fs::File::open(policy).unwrap())
        .unwrap()
        .by_name("p_fire")
        .unwrap()
}

/// The toy with some of its text replaced (each replacement must apply).
fn variant(dir: &Path, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string("scenarios/toy8.toml").unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "toy8.toml changed: no {from:?}");
        text = text.replace(from, to);
    }
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn the_readme_tour_simulates_the_policy_it_names() {
    let (dir, _) = workspace();
    let d = dir.path();
    let here = |c: &mut std::process::Command| {
        c.current_dir(d);
    };
    // The tour's commands, as written, from the working folder.
    for args in [
        &["-q", "solve", "scenarios/toy8.toml"][..],
        &["-q", "solve", "scenarios/toy8.toml", "--lambda", "1.0"][..],
        &[
            "-q",
            "simulate",
            "scenarios/toy8.toml",
            "--policy",
            "out/toy8/solve/policy.npz",
            "--ticks",
            "2000",
        ][..],
    ] {
        let mut c = marlin();
        here(&mut c);
        run_ok(c.args(args));
    }
    // `--lambda 1.0` wrote its own folder and left the scenario's alone.
    let at_1 = d.join("out/toy8/solve_lambda_1");
    assert_eq!(json(&at_1.join("summary.json"))["lambda"], 1.0);
    assert_eq!(json(&at_1.join("policy.json"))["solved_for"]["lambda"], 1.0);
    let solve = d.join("out/toy8/solve");
    assert_eq!(json(&solve.join("summary.json"))["lambda"], 0.5);
    assert_eq!(json(&solve.join("policy.json"))["solved_for"]["lambda"], 0.5);
    // The simulated policy is the λ = 0.5 one (solved again here on its own),
    // not the λ = 1 one, and the record says λ = 0.5.
    let reference = d.join("reference");
    run_ok(
        marlin()
            .args(["-q", "solve", "scenarios/toy8.toml", "--lambda", "0.5", "--out"])
            .arg(&reference)
            .current_dir(d),
    );
    let simulated = p_fire(&solve.join("policy.npz"));
    assert_eq!(simulated, p_fire(&reference.join("policy.npz")));
    assert_ne!(
        simulated,
        p_fire(&at_1.join("policy.npz")),
        "λ = 1 solves to another policy"
    );
    let meta = json(&d.join("out/toy8/simulate/trajectory.json"));
    assert_eq!(meta["lambda"], 0.5, "{meta}");
    assert_eq!(meta["policy"], "out/toy8/solve/policy.npz", "{meta}");
    // A sweep writes out/toy8/sweep/lambda_<λ>/, as `solve --help` says.
    let mut c = marlin();
    here(&mut c);
    run_ok(c.args(["-q", "solve", "scenarios/toy8.toml", "--sweep-lambda", "0.5,1"]));
    for (l, value) in [("0.5", 0.5), ("1", 1.0)] {
        let p = d.join(format!("out/toy8/sweep/lambda_{l}/policy.json"));
        assert_eq!(json(&p)["solved_for"]["lambda"], value, "{}", p.display());
    }
    assert_eq!(
        json(&solve.join("summary.json"))["lambda"],
        0.5,
        "the sweep left solve/ alone"
    );
}

#[test]
fn a_policy_solved_at_another_lambda_is_refused_naming_both_values() {
    let (dir, sc) = workspace();
    let d = dir.path();
    let at_1 = d.join("at_1");
    run_ok(
        marlin()
            .args(["-q", "solve"])
            .arg(&sc)
            .args(["--lambda", "1.0", "--out"])
            .arg(&at_1),
    );
    let out = d.join("sim");
    let err = run_bad(
        marlin()
            .arg("simulate")
            .arg(&sc)
            .arg("--policy")
            .arg(at_1.join("policy.npz"))
            .args(["--ticks", "100", "--out"])
            .arg(&out),
    );
    assert!(err.contains("at_1/policy.npz"), "{err}");
    assert!(
        err.contains("λ (lambda): the policy's 1.0, the scenario's 0.5"),
        "names λ and both values: {err}"
    );
    assert!(!err.contains("transition"), "only what differs is named: {err}");
    assert!(!out.exists(), "a refused run writes nothing");
}

#[test]
fn a_policy_solved_for_another_input_chain_is_refused_naming_both_matrices() {
    let (dir, sc) = workspace();
    let d = dir.path();
    let solved = d.join("solved");
    run_ok(marlin().args(["-q", "solve"]).arg(&sc).arg("--out").arg(&solved));
    let policy = solved.join("policy.npz");
    // The brief's case: λ 2.0 and switch 0.3, against a policy solved at λ
    // 0.5 and switch 0.02.
    let other = variant(
        d,
        "other.toml",
        &[
            ("switch_probability = 0.02", "switch_probability = 0.3"),
            ("lambda = 0.5", "lambda = 2.0"),
        ],
    );
    let out = d.join("sim");
    let err = run_bad(
        marlin()
            .arg("simulate")
            .arg(&other)
            .arg("--policy")
            .arg(&policy)
            .args(["--ticks", "100", "--out"])
            .arg(&out),
    );
    assert!(
        err.contains(
            "input transition matrix (transition): the policy's [[0.98,0.02],[0.02,0.98]], the scenario's \
             [[0.7,0.3],[0.3,0.7]]"
        ),
        "{err}"
    );
    assert!(
        err.contains("λ (lambda): the policy's 0.5, the scenario's 2.0"),
        "{err}"
    );
    assert!(!out.exists());
    // The input chain alone.
    let chain = variant(
        d,
        "chain.toml",
        &[("switch_probability = 0.02", "switch_probability = 0.3")],
    );
    let err = run_bad(
        marlin()
            .arg("simulate")
            .arg(&chain)
            .arg("--policy")
            .arg(&policy)
            .args(["--ticks", "100", "--out"])
            .arg(&out),
    );
    assert!(err.contains("(transition)") && !err.contains("(lambda)"), "{err}");
    // Another reward with everything else equal: named by its table's digest.
    let reward = variant(d, "reward.toml", &[("targets = [2, 6]", "targets = [3, 5]")]);
    let err = run_bad(
        marlin()
            .arg("simulate")
            .arg(&reward)
            .arg("--policy")
            .arg(&policy)
            .args(["--ticks", "100", "--out"])
            .arg(&out),
    );
    assert!(
        err.contains("(reward_sha256)") && !err.contains("(transition)"),
        "{err}"
    );
    assert!(!out.exists());
    // The same world under another file name is accepted.
    let same = variant(d, "same.toml", &[("name = \"toy8\"", "name = \"toy8_copy\"")]);
    run_ok(
        marlin()
            .args(["-q", "simulate"])
            .arg(&same)
            .arg("--policy")
            .arg(&policy)
            .args(["--ticks", "100", "--out"])
            .arg(&out),
    );
}

#[test]
fn a_policy_without_its_parameters_is_refused() {
    let (dir, sc) = workspace();
    let d = dir.path();
    let solved = d.join("solved");
    run_ok(marlin().args(["-q", "solve"]).arg(&sc).arg("--out").arg(&solved));
    // What an older marlin wrote: the same arrays, sealed as policy format
    // version 1, and no policy.json.
    let old = d.join("old");
    std::fs::create_dir(&old).unwrap();
    let mut r = NpzReader::new(std::fs::File::open(solved.join("policy.npz")).unwrap()).unwrap();
    let fire: Array3<f64> = r.by_name("p_fire").unwrap();
    let prior: Array1<f64> = r.by_name("prior").unwrap();
    let mut npz = marlin::files::Npz::new(marlin::files::formats::POLICY);
    npz.add("p_fire", fire).add("prior", prior);
    npz.write(&old.join("policy.npz")).unwrap();
    let out = d.join("sim");
    let err = run_bad(
        marlin()
            .arg("simulate")
            .arg(&sc)
            .arg("--policy")
            .arg(old.join("policy.npz"))
            .args(["--ticks", "100", "--out"])
            .arg(&out),
    );
    assert!(
        err.contains("format version 1") && err.contains("solve it again") && err.contains("marlin solve"),
        "{err}"
    );
    assert!(!out.exists());
    // A current policy whose parameters file was lost or edited.
    std::fs::copy(solved.join("policy.npz"), old.join("policy.npz")).unwrap();
    let err = run_bad(
        marlin()
            .arg("simulate")
            .arg(&sc)
            .arg("--policy")
            .arg(old.join("policy.npz"))
            .args(["--ticks", "100", "--out"])
            .arg(&out),
    );
    assert!(
        err.contains("needs its parameters") && err.contains("policy.json"),
        "{err}"
    );
    let edited = std::fs::read_to_string(solved.join("policy.json"))
        .unwrap()
        .replace("\"lambda\": 0.5", "\"lambda\": 1.0");
    std::fs::write(old.join("policy.json"), edited).unwrap();
    let err = run_bad(
        marlin()
            .arg("simulate")
            .arg(&sc)
            .arg("--policy")
            .arg(old.join("policy.npz"))
            .args(["--ticks", "100", "--out"])
            .arg(&out),
    );
    assert!(err.contains("does not match"), "{err}");
    assert!(!out.exists());
}
