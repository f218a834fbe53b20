//! Maze scenarios end to end through the binary: bad maps are refused at
//! their file line and column with exit code 2; solve draws the visit
//! density per λ; simulate → infer finds the goal; predict beats the naive
//! prediction when walls move; corrupt records are refused.

mod cli_common;

use cli_common::{json, marlin, run_bad, run_ok};

const HEAD: &str = "name = \"m\"\n[maze]\nmap = \"\"\"\n";
const TAIL: &str = "\"\"\"\n[cost]\nlambda = 0.2\n";

#[test]
fn bad_maps_are_refused_at_their_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    // Line 4 of the file is the map's first row.
    for (map, place, needle) in [
        ("#####\n#S.G#\n####\n", "m.toml:6:", "equal length"),
        ("#####\n#S.X#\n#####\n", "m.toml:5:4", "unknown character 'X'"),
        ("#####\n#S..#\n#####\n", "m.toml", "no goal"),
        ("#####\n#S#G#\n#####\n", "m.toml:5:4", "cannot be reached"),
    ] {
        let path = dir.path().join("m.toml");
        std::fs::write(&path, format!("{HEAD}{map}{TAIL}")).unwrap();
        let err = run_bad(marlin().arg("validate").arg(&path));
        assert!(err.contains(place) && err.contains(needle), "{map:?}: {err}");
    }
    let path = dir.path().join("m.toml");
    std::fs::write(&path, format!("{HEAD}#####\n#S.G#\n#####\n{TAIL}[study]\nsteps = 0\n")).unwrap();
    assert!(run_bad(marlin().arg("validate").arg(&path)).contains("study.steps"));
    std::fs::write(
        &path,
        format!("{HEAD}#####\n#S.G#\n#####\n{TAIL}kind = \"fixed_prior\"\n"),
    )
    .unwrap();
    assert!(run_bad(marlin().arg("validate").arg(&path)).contains("prior"));
    // Walkers learn tabular policies: the network's learning options are refused.
    std::fs::write(&path, format!("{HEAD}#####\n#S.G#\n#####\n{TAIL}")).unwrap();
    let err = run_bad(
        marlin()
            .args(["train", "--policy", "logistic", "--out"])
            .arg(dir.path().join("t"))
            .arg(&path),
    );
    assert!(err.contains("apply to networks"), "{err}");
}

#[test]
fn solve_simulate_infer_predict() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_ok(
        marlin()
            .args([
                "-q",
                "solve",
                "scenarios/maze.toml",
                "--sweep-lambda",
                "0.05,1",
                "--out",
            ])
            .arg(d.join("solve")),
    );
    let info: Vec<f64> = json(&d.join("solve/summary.json"))["sweep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["info_bits"].as_f64().unwrap())
        .collect();
    assert!(info[0] > info[1], "information falls with λ: {info:?}");
    assert!(json(&d.join("solve/summary.json"))["warnings"].is_array());
    for l in ["0.05", "1"] {
        let svg = std::fs::read_to_string(d.join(format!("solve/lambda_{l}/maze.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("visit density"));
    }
    run_ok(
        marlin()
            .args(["-q", "solve", "scenarios/maze.toml", "--lambda", "0.05", "--out"])
            .arg(d.join("s")),
    );
    // A policy runs only in the world it was solved for: the maze at λ = 0.05.
    let err = run_bad(
        marlin()
            .args(["simulate", "scenarios/maze.toml", "--ticks", "5", "--policy"])
            .arg(d.join("s/policy.npz"))
            .arg("--out")
            .arg(d.join("sim")),
    );
    assert!(
        err.contains("λ (lambda): the policy's 0.05, the scenario's 0.2"),
        "{err}"
    );
    let text = std::fs::read_to_string("scenarios/maze.toml").unwrap();
    assert!(text.contains("lambda = 0.2 "), "maze.toml changed");
    std::fs::write(d.join("maze_005.toml"), text.replace("lambda = 0.2 ", "lambda = 0.05")).unwrap();
    std::fs::copy("scenarios/maze_walls.txt", d.join("maze_walls.txt")).unwrap();
    run_ok(
        marlin()
            .args(["-q", "simulate"])
            .arg(d.join("maze_005.toml"))
            .args(["--ticks", "50", "--trajectories", "200", "--policy"])
            .arg(d.join("s/policy.npz"))
            .arg("--out")
            .arg(d.join("sim")),
    );
    run_ok(
        marlin()
            .args(["-q", "infer"])
            .arg(d.join("sim/demonstrations.npz"))
            .args(["--lambda", "0.05", "--out"])
            .arg(d.join("inf")),
    );
    let r = json(&d.join("inf/reward.json"));
    for m in r["summary"]["methods"].as_array().unwrap() {
        assert_eq!(m["argmax_is_goal"], true, "{m}");
        assert!(m["correlation_with_truth"].as_f64().unwrap() > 0.8, "{m}");
    }
    // Predict the moved walls with an estimator (None: the default), into `dir`.
    let predict_walls = |model: Option<&str>, dir: &str| {
        let mut c = marlin();
        c.args([
            "-q",
            "predict",
            "--scenario",
            "scenarios/maze.toml",
            "--perturb",
            "walls:scenarios/maze_walls.txt",
        ])
        .arg("--reward")
        .arg(d.join("inf/reward.npz"));
        if let Some(m) = model {
            c.args(["--reward-model", m]);
        }
        run_ok(c.arg("--out").arg(d.join(dir)));
        json(&d.join(dir).join("prediction.json"))
    };
    let p = predict_walls(Some("direct"), "pred");
    let (pred, naive) = (
        p["tv_pred_truth"].as_f64().unwrap(),
        p["tv_naive_truth"].as_f64().unwrap(),
    );
    assert!(pred < naive / 2.0, "prediction {pred} vs naive {naive}");
    // The default estimator is the sparse map: only the goal stands out.
    let sparse = r["summary"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "sparse")
        .expect("a sparse map");
    assert!(sparse["correlation_with_truth"].as_f64().unwrap() > 0.99, "{sparse}");
    let p = predict_walls(None, "pred_sparse");
    assert_eq!(p["model"], "sparse");
    let (pred, baseline) = (p["tv_pred_truth"].as_f64().unwrap(), p["tv_baseline"].as_f64().unwrap());
    assert!(
        pred < naive / 4.0 && baseline < 0.05,
        "sparse prediction {pred}, baseline {baseline}, naive {naive}"
    );
    // Bad perturbations and models say what is allowed.
    let err = run_bad(
        marlin()
            .args([
                "predict",
                "--scenario",
                "scenarios/maze.toml",
                "--perturb",
                "kill:0",
                "--reward",
            ])
            .arg(d.join("inf/reward.npz")),
    );
    assert!(err.contains("lambda:L") && err.contains("walls:FILE"), "{err}");
    let err = run_bad(
        marlin()
            .args([
                "predict",
                "--scenario",
                "scenarios/maze.toml",
                "--perturb",
                "lambda:1",
                "--reward-model",
                "x",
            ])
            .arg("--reward")
            .arg(d.join("inf/reward.npz")),
    );
    assert!(err.contains("direct, sparse, ml, ml_marginal"), "{err}");
}

#[test]
fn corrupt_or_impossible_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_ok(
        marlin()
            .args([
                "-q",
                "simulate",
                "scenarios/maze.toml",
                "--untrained",
                "--ticks",
                "20",
                "--trajectories",
                "3",
            ])
            .arg("--out")
            .arg(d.join("sim")),
    );
    let npz = d.join("sim/demonstrations.npz");
    // Truncated archive.
    let bytes = std::fs::read(&npz).unwrap();
    std::fs::write(&npz, &bytes[..bytes.len() / 2]).unwrap();
    let err = run_bad(marlin().arg("infer").arg(&npz));
    assert!(err.contains("demonstrations.npz"), "{err}");
    std::fs::write(&npz, &bytes).unwrap();
    // A map that does not allow the recorded steps (the record's map is
    // changed under it).
    let meta = d.join("sim/demonstrations.json");
    let mut m = json(&meta);
    m["map"][1] = serde_json::json!("#S#.#...#");
    std::fs::write(&meta, m.to_string()).unwrap();
    // marlin sealed the record with its metadata: the edit is caught as such…
    let err = run_bad(marlin().arg("infer").arg(&npz));
    assert!(err.contains("does not match"), "{err}");
    // …and a record without a seal (rewritten by the user's own code) is
    // checked step by step against the map.
    let mut arrays = ndarray_npy::NpzReader::new(std::fs::File::open(&npz).unwrap()).unwrap();
    let names = arrays.names().unwrap();
    let mut w = ndarray_npy::NpzWriter::new(std::fs::File::create(d.join("unsealed.npz")).unwrap());
    for name in names {
        let name = name.trim_end_matches(".npy").to_string();
        if name == "reward" {
            let a: ndarray::Array2<f64> = arrays.by_name(&name).unwrap();
            w.add_array(name, &a).unwrap();
        } else {
            let a: ndarray::Array2<i64> = arrays.by_name(&name).unwrap();
            w.add_array(name, &a).unwrap();
        }
    }
    w.finish().unwrap();
    std::fs::rename(d.join("unsealed.npz"), &npz).unwrap();
    let err = run_bad(marlin().arg("infer").arg(&npz));
    assert!(err.contains("cannot lead") || err.contains("allowed"), "{err}");
    m["format_version"] = serde_json::json!(99);
    std::fs::write(&meta, m.to_string()).unwrap();
    assert!(run_bad(marlin().arg("infer").arg(&npz)).contains("format version 99"));
}

#[test]
fn a_team_is_solved_trained_and_studied() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("scenarios/maze_team.toml")
        .unwrap()
        .replace("ticks = 2_000_000", "ticks = 400_000")
        .replace("sweep_agents = [2, 4, 8]", "sweep_agents = [3]");
    let path = dir.path().join("team.toml");
    std::fs::write(&path, &text).unwrap();
    let out = dir.path().join("out");
    run_ok(marlin().arg("-q").arg("run").arg(&path).arg("--out").arg(&out));
    let s = json(&out.join("summary.json"));
    assert!(s["warnings"].is_array(), "{s}");
    let g_star = s["solve"]["g"].as_f64().unwrap();
    assert!(g_star > 0.0 && s["solve"]["converged"] == true, "{}", s["solve"]);
    let joint = &s["train"][0];
    assert_eq!(joint["view"], "joint");
    assert!(joint["g_over_optimum"].as_f64().unwrap() >= 0.9, "{joint}");
    assert_eq!(s["train"][1]["view"], "own");
    assert_eq!(s["scaling"][0]["agents"], 3);
    for f in [
        "solve/walker_0.svg",
        "solve/walker_1.svg",
        "solve/team_policy.npz",
        "train_joint/learning_curve.svg",
        "scaling.svg",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    // The mutual-information optimum uses two moves: the study says the
    // inference is weakly identified, and the prediction warns.
    let inf = &s["inverse"]["infer"];
    assert!(
        inf["notes"][0].as_str().unwrap().contains("never demonstrated"),
        "{inf}"
    );
    let p = &s["inverse"]["predict"][0];
    assert!(p["warnings"][0].as_str().unwrap().contains("weakly identified"), "{p}");
    // Too many walkers for the exact solver: refused with the way out.
    std::fs::write(&path, text.replace("agents = 2", "agents = 9")).unwrap();
    let err = run_bad(marlin().arg("solve").arg(&path).arg("--out").arg(dir.path().join("s9")));
    assert!(err.contains("train them by learning"), "{err}");
    assert!(!dir.path().join("s9").exists());
    std::fs::write(&path, text.replace("goal = \"all_on_goals\"", "goal = \"together\"")).unwrap();
    let err = run_bad(marlin().arg("validate").arg(&path));
    assert!(err.contains("team.goal") && err.contains("\"meet\""), "{err}");
    // Topology views: the topology is required, checked against the team, and only with that view.
    std::fs::write(&path, text.replace("view = \"joint\"", "view = \"topology\"")).unwrap();
    let err = run_bad(marlin().arg("validate").arg(&path));
    assert!(
        err.contains("team.view") && err.contains("needs team.topology"),
        "{err}"
    );
    let ring = |k: usize| format!("view = \"topology\"\ntopology = {{ kind = \"ring\", k = {k} }}");
    std::fs::write(&path, text.replace("view = \"joint\"", &ring(3))).unwrap();
    let err = run_bad(marlin().arg("validate").arg(&path));
    assert!(err.contains("team.topology") && err.contains("for 2 walkers"), "{err}");
    let joint_ring = "view = \"joint\"\ntopology = { kind = \"ring\", k = 1 }";
    std::fs::write(&path, text.replace("view = \"joint\"", joint_ring)).unwrap();
    let err = run_bad(marlin().arg("validate").arg(&path));
    assert!(err.contains("view = \"topology\" only"), "{err}");
    // Walkers that see their topology's partners learn on the runtime.
    let partners = "view = \"topology\"\ntopology = { kind = \"random_in_degree\", k = 1 }";
    std::fs::write(&path, text.replace("view = \"joint\"", partners)).unwrap();
    let out = dir.path().join("ring");
    run_ok(marlin().args(["-q", "train"]).arg(&path).arg("--out").arg(&out));
    let s = json(&out.join("learning.json"));
    assert_eq!(s["view"], "topology");
    assert!(s["mean_reward"].as_f64().unwrap() > 0.0, "{s}");
    // Partners in a line: the middle walker sees two, the ends one each.
    let line = "view = \"topology\"\ntopology = { kind = \"lattice2d\", width = 3, height = 1 }";
    let three = text
        .replace("agents = 2", "agents = 3")
        .replace("view = \"joint\"", line);
    std::fs::write(&path, three).unwrap();
    let out = dir.path().join("line");
    let stdout = run_ok(marlin().arg("train").arg(&path).arg("--out").arg(&out));
    assert!(stdout.contains("3 walkers, view topology"), "{stdout}");
    let mut npz = ndarray_npy::NpzReader::new(std::fs::File::open(out.join("learned_policy.npz")).unwrap()).unwrap();
    let rows: ndarray::Array1<i64> = npz.by_name("rows").unwrap();
    assert_eq!(rows.to_vec(), vec![169, 2197, 169]);
    let logits: ndarray::Array3<f64> = npz.by_name("logits").unwrap();
    assert_eq!(logits.dim(), (3, 2197, 5));
    assert!(logits[[0, 169, 0]].is_nan() && logits[[1, 2196, 4]].is_finite());
    // Thousands of walkers on two threads learn what one thread learns.
    let many = text
        .replace("agents = 2", "agents = 5000")
        .replace("view = \"joint\"", "view = \"own\"")
        .replace("ticks = 400_000", "ticks = 300");
    std::fs::write(&path, many).unwrap();
    let policy = |threads: &str| {
        let out = dir.path().join(format!("many_{threads}"));
        run_ok(
            marlin()
                .args(["-q", "train"])
                .arg(&path)
                .args(["--threads", threads, "--out"])
                .arg(&out),
        );
        std::fs::read(out.join("learned_policy.npz")).unwrap()
    };
    assert!(
        policy("1") == policy("2"),
        "5000 walkers: 1 and 2 threads learned different tables"
    );
}

#[test]
fn a_team_is_recorded_inverted_and_predicted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for f in ["maze_team_soft.toml", "maze_team_walls.txt"] {
        std::fs::copy(format!("scenarios/{f}"), d.join(f)).unwrap();
    }
    let sc = d.join("maze_team_soft.toml");
    run_ok(
        marlin()
            .args(["-q", "solve"])
            .arg(&sc)
            .arg("--out")
            .arg(d.join("solve")),
    );
    let policy = d.join("solve/team_policy.npz");
    let stdout = run_ok(
        marlin()
            .arg("simulate")
            .arg(&sc)
            .arg("--policy")
            .arg(&policy)
            .args(["--ticks", "50", "--trajectories", "1000", "--out"])
            .arg(d.join("sim")),
    );
    assert!(stdout.contains("team_demonstrations.npz"), "{stdout}");
    let record = d.join("sim/team_demonstrations.npz");
    // numpy-facing shapes: [T, L+1, m] states, [T, L, m] moves.
    let mut npz = ndarray_npy::NpzReader::new(std::fs::File::open(&record).unwrap()).unwrap();
    let state: ndarray::Array3<i64> = npz.by_name("state").unwrap();
    let action: ndarray::Array3<i64> = npz.by_name("action").unwrap();
    assert_eq!((state.dim(), action.dim()), ((1000, 51, 2), (1000, 50, 2)));
    run_ok(
        marlin()
            .args(["-q", "infer"])
            .arg(&record)
            .arg("--out")
            .arg(d.join("infer")),
    );
    let inf = json(&d.join("infer/infer.json"));
    assert_eq!(inf["lambda_known"], true, "{inf}");
    assert_eq!(inf["argmax_is_rewarded"], true, "{inf}");
    assert_eq!(inf["top_rewarded"], inf["rewarded_states"], "{inf}");
    assert!(inf["correlation_with_truth"].as_f64().unwrap() > 0.9, "{inf}");
    assert!(d.join("infer/reward_walker_1.svg").exists());
    let reward = d.join("infer/team_reward.npz");
    for spec in ["lambda:0.5", "walls:maze_team_walls.txt"] {
        let out = d.join(format!("predict_{}", &spec[..4]));
        run_ok(
            marlin()
                .current_dir(d)
                .args(["-q", "predict", "--reward"])
                .arg(&reward)
                .arg("--scenario")
                .arg(&sc)
                .args(["--perturb", spec, "--out"])
                .arg(&out),
        );
        let p = json(&out.join("prediction.json"));
        let (pred, naive) = (
            p["tv_pred_truth"].as_f64().unwrap(),
            p["tv_naive_truth"].as_f64().unwrap(),
        );
        assert!(pred < 0.5 * naive, "{spec}: prediction {pred} vs naive {naive}");
        let (rt, rp) = (
            p["team_rate_truth"].as_f64().unwrap(),
            p["team_rate_pred"].as_f64().unwrap(),
        );
        assert!(
            (rp - rt).abs() < 0.2 * rt,
            "{spec}: team reward predicted {rp} vs true {rt}"
        );
    }
    // Bad inputs: a single walker's policy for a team, a truncated record,
    // a team reward for another team.
    run_ok(
        marlin()
            .args(["-q", "solve", "scenarios/maze.toml", "--out"])
            .arg(d.join("single")),
    );
    let err = run_bad(
        marlin()
            .arg("simulate")
            .arg(&sc)
            .arg("--policy")
            .arg(d.join("single/policy.npz"))
            .args(["--ticks", "5", "--out"])
            .arg(d.join("bad")),
    );
    assert!(
        err.contains("policy.npz") && err.contains("marlin-team-policy"),
        "{err}"
    );
    assert!(!d.join("bad").exists());
    // A team policy rewritten by the user's own code (no seal) with a
    // broken visit distribution.
    let mut arrays = ndarray_npy::NpzReader::new(std::fs::File::open(&policy).unwrap()).unwrap();
    let pi: ndarray::Array3<f64> = arrays.by_name("pi").unwrap();
    let mut rho: ndarray::Array1<f64> = arrays.by_name("rho").unwrap();
    rho[3] = -0.5;
    let edited = d.join("edited_policy.npz");
    let mut w = ndarray_npy::NpzWriter::new(std::fs::File::create(&edited).unwrap());
    w.add_array("pi", &pi).unwrap();
    w.add_array("rho", &rho).unwrap();
    w.finish().unwrap();
    let err = run_bad(
        marlin()
            .arg("simulate")
            .arg(&sc)
            .arg("--policy")
            .arg(&edited)
            .args(["--ticks", "5", "--out"])
            .arg(d.join("bad")),
    );
    assert!(err.contains("`rho`[3] = -0.5"), "{err}");
    assert!(!d.join("bad").exists());
    let bytes = std::fs::read(&record).unwrap();
    std::fs::write(&record, &bytes[..bytes.len() / 2]).unwrap();
    let err = run_bad(marlin().arg("infer").arg(&record).arg("--out").arg(d.join("bad")));
    assert!(err.contains("team_demonstrations.npz"), "{err}");
    assert!(!d.join("bad").exists());
    let three = std::fs::read_to_string(&sc)
        .unwrap()
        .replace("agents = 2", "agents = 3");
    std::fs::write(d.join("three.toml"), three).unwrap();
    let err = run_bad(
        marlin()
            .args(["predict", "--reward"])
            .arg(&reward)
            .arg("--scenario")
            .arg(d.join("three.toml"))
            .args(["--perturb", "lambda:0.5", "--out"])
            .arg(d.join("bad")),
    );
    assert!(err.contains("joint states"), "{err}");
    // Untrained walkers need no exact solve: nine of them are recorded.
    let nine = std::fs::read_to_string(&sc)
        .unwrap()
        .replace("agents = 2", "agents = 9");
    std::fs::write(d.join("nine.toml"), nine).unwrap();
    run_ok(
        marlin()
            .args(["-q", "simulate"])
            .arg(d.join("nine.toml"))
            .args(["--untrained", "--ticks", "20", "--trajectories", "3", "--out"])
            .arg(d.join("nine")),
    );
    let mut npz =
        ndarray_npy::NpzReader::new(std::fs::File::open(d.join("nine/team_demonstrations.npz")).unwrap()).unwrap();
    let state: ndarray::Array3<i64> = npz.by_name("state").unwrap();
    assert_eq!(state.dim(), (3, 21, 9));
}

#[test]
fn one_walker_is_trained_against_its_optimum() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("train");
    let stdout = run_ok(
        marlin()
            .args(["train", "scenarios/maze.toml", "--ticks", "300000", "--out"])
            .arg(&out),
    );
    assert!(stdout.contains("·g*"), "{stdout}");
    let s = json(&out.join("learning.json"));
    let q = s["g_over_optimum"].as_f64().unwrap();
    assert!(q > 0.0 && q <= 1.0 + 1e-9, "{q}");
    assert!(out.join("learned_policy.npz").exists());
}
