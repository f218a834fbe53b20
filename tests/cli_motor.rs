//! Neurons driving a maze walker (theory §7, motor control) end to end
//! through the binary: bad files are refused at their place; the recorded
//! walker moves exactly by the motor rule; both runtime engines give the
//! same record; the simulated goal rate matches the exact solver's; the goal
//! is recovered from the spikes and positions alone, and not from a
//! state-blind network's.

use ndarray::{Array1, Array2};
use ndarray_npy::NpzReader;
use std::path::Path;

mod cli_common;

use cli_common::{json, marlin, run_bad, run_ok};

/// Four motor neurons (one per direction) in a two-row maze; the goal is
/// two moves from the start (east, then north).
const GOOD: &str = "name = \"m\"\nseed = 3\n[network]\nneurons = 4\nupdate = \"asynchronous\"\n\
                    [input]\nmaze = \"\"\"\n#####\n#S#G#\n#...#\n#####\n\"\"\"\nmotor_neurons = 1\n\
                    [reward]\nkind = \"goal\"\n[cost]\nlambda = 0.1\n";

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("m.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bad_motor_scenarios_are_refused_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    for (edit, needles) in [
        (
            ("motor_neurons = 1", "motor_neurons = 2"),
            vec!["input.motor_neurons", "≤ 1"],
        ),
        (
            ("kind = \"goal\"", "kind = \"table\""),
            vec!["reward.kind", "allowed: \"goal\""],
        ),
        (
            ("motor_neurons = 1", "motor_neurons = 1\nvalues = [0.0, 1.0]"),
            vec!["input.values", "not both"],
        ),
        (
            ("motor_neurons = 1", "motor_neurons = 1\nswitch_probability = 0.1"),
            vec!["no `switch_probability`"],
        ),
        // An unknown map character is placed at its own line and column.
        (("#S#G#", "#S#Gx"), vec!["m.toml:9:5", "input.maze"]),
        (("#S#G#", "#S###"), vec!["input.maze", "goal"]),
    ] {
        let path = write(dir.path(), &GOOD.replace(edit.0, edit.1));
        let err = run_bad(marlin().arg("validate").arg(&path));
        for needle in needles {
            assert!(err.contains(needle), "{edit:?}: {needle:?} not in {err}");
        }
    }
    // "goal" needs a maze input.
    let path = write(
        dir.path(),
        "[network]\nneurons = 2\n[input]\nvalues = [0.0]\nswitch_probability = 0.0\n[reward]\nkind = \"goal\"\n\
         [cost]\nlambda = 1.0\n",
    );
    let err = run_bad(marlin().arg("validate").arg(&path));
    assert!(err.contains("reward.kind") && err.contains("maze input"), "{err}");
}

struct Record {
    x: Vec<usize>,
    sigma: Vec<usize>,
}

fn read_record(path: &Path) -> Record {
    let mut npz = NpzReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let x: Array1<i64> = npz.by_name("x").unwrap();
    let spikes: Array2<u8> = npz.by_name("spikes").unwrap();
    Record {
        x: x.iter().map(|&v| v as usize).collect(),
        sigma: spikes
            .rows()
            .into_iter()
            .map(|r| r.iter().enumerate().map(|(k, &b)| (b as usize) << k).sum())
            .collect(),
    }
}

/// (row, col) of each maze state of this test's map: 0 = S, 1 = G, 2–4 =
/// the bottom row.
const CELLS: [(usize, usize); 5] = [(1, 1), (1, 3), (2, 1), (2, 2), (2, 3)];

/// The cell the motor rule takes the walker to from maze state `x` after
/// the neurons reached σ'.
fn rule(x: usize, sigma: usize) -> usize {
    if x == 1 {
        return 0; // the goal restarts the walker at S
    }
    let on: Vec<usize> = (0..4).filter(|&k| sigma >> k & 1 == 1).collect();
    let command = if on.len() == 1 { on[0] } else { 4 }; // one neuron per group: a tie unless alone
    let (r, c) = CELLS[x];
    let (r2, c2) = match command {
        0 => (r - 1, c),
        1 => (r, c + 1),
        2 => (r + 1, c),
        3 => (r, c - 1),
        _ => (r, c),
    };
    CELLS.iter().position(|&p| p == (r2, c2)).unwrap_or(x) // into a wall: stay
}

#[test]
fn the_network_drives_the_walker_and_its_goal_is_recovered_from_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &format!("{GOOD}[study]\nbootstrap = 0\n"));
    let out = dir.path().join("out");
    run_ok(
        marlin()
            .args(["--quiet", "solve"])
            .arg(&path)
            .arg("--out")
            .arg(out.join("solve")),
    );
    assert!(out.join("solve/maze.svg").exists());
    let solved = json(&out.join("solve/summary.json"));
    let exact_reward = solved["mean_reward"].as_f64().unwrap();
    assert!(
        exact_reward > 0.02,
        "the optimal network reaches the goal: ⟨r⟩ = {exact_reward}"
    );

    let ticks = 300_000usize;
    let sim = |name: &str, extra: &[&str]| {
        let dir = out.join(name);
        run_ok(
            marlin()
                .args(["--quiet", "simulate"])
                .arg(&path)
                .arg("--policy")
                .arg(out.join("solve/policy.npz"))
                .args(["--ticks", &ticks.to_string()])
                .args(extra)
                .arg("--out")
                .arg(&dir),
        );
        dir
    };
    let barrier = sim("simulate", &[]);
    let meta = json(&barrier.join("trajectory.json"));
    assert!(
        meta["controlled_input"]
            .as_str()
            .unwrap()
            .contains("4 groups of 1 motor neuron ("),
        "{meta}"
    );
    let rec = read_record(&barrier.join("trajectory.npz"));
    // Every recorded move is the motor rule's (the maze has no slip).
    for t in 0..rec.x.len() - 1 {
        assert_eq!(rec.x[t + 1], rule(rec.x[t], rec.sigma[t + 1]), "tick {t}");
    }
    // The walker starts at S, and the goal rate is the exact ⟨r⟩ (goal
    // visits are separated by at least 3 ticks and come in a renewal
    // process; 300 000 ticks give ≈ 10⁴ visits, so 5 % is many SEs).
    assert_eq!(rec.x[0], 0);
    let rate = rec.x.iter().filter(|&&x| x == 1).count() as f64 / ticks as f64;
    assert!(
        (rate - exact_reward).abs() < 0.05 * exact_reward,
        "simulated goal rate {rate} vs exact {exact_reward}"
    );
    // The actor engine moves the walker identically.
    let actors = sim("simulate_actors", &["--actors", "1"]);
    assert_eq!(
        std::fs::read(barrier.join("trajectory.npz")).unwrap(),
        std::fs::read(actors.join("trajectory.npz")).unwrap()
    );

    // Inverse RL: one reward per cell by maximum likelihood; the goal stands out.
    let infer = |trajectory: &Path, dir: &str| {
        run_ok(
            marlin()
                .args(["--quiet", "infer"])
                .arg(trajectory)
                .arg("--out")
                .arg(out.join(dir)),
        );
        json(&out.join(dir).join("reward.json"))
    };
    let inferred = infer(&barrier.join("trajectory.npz"), "infer");
    let m = &inferred["motor"];
    assert_eq!(inferred["reward_model"], "input");
    assert_eq!(m["goal_recovered"], true, "{m}");
    assert_eq!(m["best_cell"], serde_json::json!([1, 3]));
    assert!(m["correlation_with_truth"].as_f64().unwrap() > 0.99, "{m}");
    let z_optimal = m["best_z"].as_f64().unwrap();
    assert!(out.join("infer/reward_map.svg").exists());

    // The tabular inversion cannot invert the walker's moves: refused.
    let err = run_bad(
        marlin()
            .arg("infer")
            .arg(barrier.join("trajectory.npz"))
            .args(["--reward-model", "tabular", "--out"])
            .arg(out.join("infer_tabular")),
    );
    assert!(err.contains("--reward-model input"), "{err}");

    // Null: a state-blind network (every neuron at p = ½) random-walks; its
    // record carries no goal, and no cell stands out as the goal does.
    let blind = out.join("untrained");
    run_ok(
        marlin()
            .args(["--quiet", "simulate"])
            .arg(&path)
            .args(["--untrained", "--ticks", &ticks.to_string()])
            .arg("--out")
            .arg(&blind),
    );
    let null = infer(&blind.join("trajectory.npz"), "infer_null");
    let z_null = null["motor"]["best_z"].as_f64().unwrap();
    eprintln!("best cell's robust z: optimum {z_optimal:.1}, state-blind {z_null:.1}");
    assert!(
        z_null < 0.1 * z_optimal,
        "state-blind record: best cell {} robust SDs out vs {z_optimal} for the optimum",
        z_null
    );

    // Replacing the input chain makes no sense for a walker: refused.
    let err = run_bad(
        marlin()
            .arg("predict")
            .arg("--scenario")
            .arg(&path)
            .arg("--reward")
            .arg(out.join("infer/reward.npz"))
            .args(["--perturb", "input:0.1"]),
    );
    assert!(err.contains("maze walker"), "{err}");

    // Moved walls: a wall between S and G opens, so the goal is two moves
    // east. Predicted from the inferred reward, the network takes the new
    // short way as the truth does; the naive network keeps its old detour.
    let moved = dir.path().join("moved.txt");
    std::fs::write(&moved, "#####\n#S.G#\n#...#\n#####\n").unwrap();
    let predict = out.join("predict_walls");
    run_ok(
        marlin()
            .args(["--quiet", "predict", "--scenario"])
            .arg(&path)
            .arg("--reward")
            .arg(out.join("infer/reward.npz"))
            .arg("--perturb")
            .arg(format!("walls:{}", moved.display()))
            .arg("--out")
            .arg(&predict),
    );
    let p = json(&predict.join("prediction.json"));
    let m = &p["motor"];
    let f = |k: &str| m[k].as_f64().unwrap();
    eprintln!("moved walls: {m}");
    assert!(
        f("mean_reward_truth") > 1.2 * exact_reward,
        "the shorter way pays more: {} vs {exact_reward}",
        f("mean_reward_truth")
    );
    assert!(
        (f("mean_reward_predicted") - f("mean_reward_truth")).abs()
            < 0.5 * (f("mean_reward_naive") - f("mean_reward_truth")).abs(),
        "{m}"
    );
    assert!(f("tv_visits_predicted") < 0.5 * f("tv_visits_naive"), "{m}");
    assert_eq!(m["visits_truth"].as_array().unwrap().len(), 6, "six free cells now");
    assert!(
        p["notes"]
            .to_string()
            .contains("1 cell of the moved-walls maze was a wall before"),
        "{p}"
    );
    // A map of another size is refused, naming both sizes.
    std::fs::write(&moved, "####\n#SG#\n####\n").unwrap();
    let err = run_bad(
        marlin()
            .args(["predict", "--scenario"])
            .arg(&path)
            .arg("--reward")
            .arg(out.join("infer/reward.npz"))
            .arg("--perturb")
            .arg(format!("walls:{}", moved.display())),
    );
    assert!(err.contains("3×4") && err.contains("4×5"), "{err}");
}

#[test]
fn a_record_whose_maze_scenario_is_gone_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), GOOD);
    let out = dir.path().join("sim");
    run_ok(
        marlin()
            .args(["--quiet", "simulate"])
            .arg(&path)
            .args(["--untrained", "--ticks", "1000", "--out"])
            .arg(&out),
    );
    std::fs::remove_file(&path).unwrap();
    let err = run_bad(marlin().arg("infer").arg(out.join("trajectory.npz")));
    assert!(err.contains("moved its input") && err.contains("--scenario"), "{err}");
}

#[test]
fn decentralised_learners_learn_to_drive_the_walker() {
    let dir = tempfile::tempdir().unwrap();
    let learning = "[learning]\npolicy = \"tabular\"\nticks = 2_000_000\nrate_decay_ticks = 1e7\n";
    // Small enough for the exact optimum: the learners' exact g against g*.
    let path = write(dir.path(), &format!("{GOOD}{learning}"));
    let out = dir.path().join("small");
    run_ok(marlin().args(["--quiet", "train"]).arg(&path).arg("--out").arg(&out));
    let s = json(&out.join("learning.json"));
    let ratio = s["runs"][0]["checkpoints"].as_array().unwrap().last().unwrap()["exact"]["ratio"]
        .as_f64()
        .unwrap();
    let untrained = s["untrained"]["exact"]["ratio"].as_f64().unwrap();
    assert!(
        ratio > 0.6 && ratio > 3.0 * untrained,
        "learned {ratio}·g*, untrained {untrained}·g*"
    );
    // 32 neurons (8 per direction, each seeing its ring neighbours): beyond
    // exact solving; learning multiplies the goal rate of the untrained network.
    let big = GOOD
        .replace("neurons = 4\n", "neurons = 32\ntopology = { kind = \"ring\", k = 2 }\n")
        .replace("motor_neurons = 1", "motor_neurons = 8");
    let path = write(dir.path(), &format!("{big}{learning}"));
    let out = dir.path().join("big");
    run_ok(marlin().args(["--quiet", "train"]).arg(&path).arg("--out").arg(&out));
    let s = json(&out.join("learning.json"));
    assert!(s["optimum_g"].is_null());
    let learned = s["runs"][0]["checkpoints"].as_array().unwrap().last().unwrap()["running_reward"]
        .as_f64()
        .unwrap();
    let untrained = s["untrained"]["running_reward"].as_f64().unwrap();
    assert!(
        learned > 3.0 * untrained,
        "goal rate learned {learned} vs untrained {untrained}"
    );
}
