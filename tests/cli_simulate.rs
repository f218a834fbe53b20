//! `marlin simulate` end to end: the streamed trajectory equals an in-memory
//! recording of the same run, the sparse event form reconstructs the dense
//! one, subsets record the right columns, bad inputs write nothing.

use cli_common::marlin;
use marlin::agents::{FullStatePolicy, Neuron};
use marlin::commands::simulate::load_policy;
use marlin::record::Recorder;
use marlin::runtime::{Layout, RunState, run};
use marlin::scenario::Scenario;
use ndarray::{Array1, Array2};
use ndarray_npy::NpzReader;
use std::path::Path;

mod cli_common;

fn solve_toy(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("solve");
    assert!(
        marlin()
            .args(["-q", "solve", "scenarios/toy8.toml", "--out"])
            .arg(&out)
            .status()
            .unwrap()
            .success()
    );
    out.join("policy.npz")
}

#[test]
fn streamed_trajectory_equals_an_in_memory_recording() {
    let dir = tempfile::tempdir().unwrap();
    let policy = solve_toy(dir.path());
    let out = dir.path().join("sim");
    let ticks = 150_000u64; // more than two chunks of 65 536
    let st = marlin()
        .args([
            "-q",
            "simulate",
            "scenarios/toy8.toml",
            "--ticks",
            &ticks.to_string(),
            "--shards",
            "3",
            "--threads",
            "2",
            "--policy",
        ])
        .arg(&policy)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    // The same run through the library, recorded in memory.
    let sc = Scenario::load(Path::new("scenarios/toy8.toml")).unwrap();
    let net = sc.runtime_network();
    let (pols, prior) = load_policy(&policy, 8, 2).unwrap();
    let mut agents: Vec<Neuron<FullStatePolicy>> = Neuron::team(pols, &prior, sc.seed);
    let mut rec = Recorder::new((0..8).collect(), ticks);
    run(
        &net,
        &mut agents,
        Layout::single(),
        RunState::initial(&net, sc.seed),
        ticks,
        &mut rec,
    );

    let mut npz = NpzReader::new(std::fs::File::open(out.join("trajectory.npz")).unwrap()).unwrap();
    let x: Array1<i64> = npz.by_name("x").unwrap();
    let spikes: Array2<u8> = npz.by_name("spikes").unwrap();
    let actor: Array1<i64> = npz.by_name("actor").unwrap();
    let reward: Array1<f64> = npz.by_name("reward").unwrap();
    assert_eq!(x.to_vec(), rec.x);
    assert_eq!(spikes.shape(), &[ticks as usize, 8]);
    assert_eq!(spikes.iter().copied().collect::<Vec<_>>(), rec.spikes);
    assert_eq!(actor.to_vec(), rec.actor);
    assert_eq!(reward.to_vec(), rec.reward);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("trajectory.json")).unwrap()).unwrap();
    assert_eq!(meta["format"], "marlin-trajectory");
    assert_eq!(meta["ticks"], ticks);
    assert_eq!(meta["n"], 8);
    assert_eq!(meta["update"], "asynchronous");
    // No temporary column files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn event_form_reconstructs_the_dense_record_of_a_subset() {
    let dir = tempfile::tempdir().unwrap();
    let policy = solve_toy(dir.path());
    let run_sim = |form: &str, out: &Path| {
        let st = marlin()
            .args([
                "-q",
                "simulate",
                "scenarios/toy8.toml",
                "--ticks",
                "20000",
                "--record-neurons",
                "6,1,3",
                "--record-format",
                form,
                "--policy",
            ])
            .arg(&policy)
            .arg("--out")
            .arg(out)
            .status()
            .unwrap();
        assert!(st.success());
        NpzReader::new(std::fs::File::open(out.join("trajectory.npz")).unwrap()).unwrap()
    };
    let mut dense = run_sim("dense", &dir.path().join("d"));
    let mut events = run_sim("events", &dir.path().join("e"));
    let spikes: Array2<u8> = dense.by_name("spikes").unwrap();
    assert_eq!(spikes.shape(), &[20000, 3]);
    let neurons: Array1<i64> = events.by_name("neurons").unwrap();
    assert_eq!(neurons.to_vec(), vec![6, 1, 3]);
    let ticks: Array1<i64> = events.by_name("event_ticks").unwrap();
    let ids: Array1<i64> = events.by_name("event_ids").unwrap();
    let states: Array1<u8> = events.by_name("event_states").unwrap();
    let initial: Array1<u8> = events.by_name("initial_spikes").unwrap();
    let mut cur: Vec<u8> = initial.to_vec();
    let mut e = 0;
    for t in 0..20000 {
        while e < ticks.len() && ticks[e] == t as i64 {
            let col = neurons.iter().position(|&k| k == ids[e]).unwrap();
            assert_ne!(cur[col], states[e], "an event is a change of state");
            cur[col] = states[e];
            e += 1;
        }
        assert_eq!(cur, spikes.row(t).to_vec(), "tick {t}");
    }
    assert_eq!(e, ticks.len());
}

#[test]
fn bad_policy_or_neuron_list_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.npz");
    std::fs::write(&junk, b"not a zip").unwrap();
    let out = dir.path().join("never");
    let o = marlin()
        .args(["simulate", "scenarios/toy8.toml", "--ticks", "10", "--policy"])
        .arg(&junk)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("junk.npz"));
    assert!(!out.exists());
    // A policy of the wrong size (from a 20-neuron solve would be slow; use a
    // 4-neuron scenario's policy against the 8-neuron toy).
    let small = dir.path().join("small.toml");
    std::fs::write(
        &small,
        std::fs::read_to_string("scenarios/toy8.toml")
            .unwrap()
            .replace("neurons = 8", "neurons = 4")
            .replace("[2, 6]", "[1, 3]"),
    )
    .unwrap();
    let sol = dir.path().join("s4");
    assert!(
        marlin()
            .args(["-q", "solve"])
            .arg(&small)
            .arg("--out")
            .arg(&sol)
            .status()
            .unwrap()
            .success()
    );
    let o = marlin()
        .args(["simulate", "scenarios/toy8.toml", "--ticks", "10", "--policy"])
        .arg(sol.join("policy.npz"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    // Refused by what it was solved for (before its arrays are read).
    assert!(
        err.contains("network size (neurons): the policy's 4, the scenario's 8"),
        "{err}"
    );
    assert!(!out.exists());
    let o = marlin()
        .args([
            "simulate",
            "scenarios/toy8.toml",
            "--untrained",
            "--ticks",
            "10",
            "--record-neurons",
            "3,8",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("neuron 8 is out of range"));
    assert!(!out.exists());
}

#[test]
fn the_actor_engine_writes_the_same_trajectory() {
    let dir = tempfile::tempdir().unwrap();
    let policy = solve_toy(dir.path());
    let sim = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let st = marlin()
            .args(["-q", "simulate", "scenarios/toy8.toml", "--ticks", "70000", "--policy"])
            .arg(&policy)
            .args(extra)
            .arg("--out")
            .arg(&out)
            .status()
            .unwrap();
        assert!(st.success());
        let mut npz = NpzReader::new(std::fs::File::open(out.join("trajectory.npz")).unwrap()).unwrap();
        let spikes: Array2<u8> = npz.by_name("spikes").unwrap();
        let x: Array1<i64> = npz.by_name("x").unwrap();
        let reward: Array1<f64> = npz.by_name("reward").unwrap();
        (spikes, x, reward)
    };
    let barrier = sim("barrier", &[]);
    assert_eq!(
        barrier,
        sim("one_actor_per_neuron", &["--actors", "1", "--threads", "2"])
    );
    assert_eq!(barrier, sim("three_per_actor", &["--actors", "3"]));
}

/// The packed form holds the dense record bit for bit — every neuron (the
/// frame's words copied), a prefix ending mid-byte, and a scattered subset
/// (packed neuron by neuron) — as marlin's reader and numpy's `unpackbits`
/// read it, and is 8× smaller.
#[test]
fn bits_form_packs_the_dense_record() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = cli_common::sparse_scenario(dir.path());
    let run_sim = |form: &str, neurons: Option<&str>, out: &Path| {
        let mut c = marlin();
        c.args(["-q", "simulate"])
            .arg(&scenario)
            .args(["--ticks", "500", "--record-format", form]);
        if let Some(list) = neurons {
            c.args(["--record-neurons", list]);
        }
        assert!(c.arg("--out").arg(out).status().unwrap().success());
        out.join("trajectory.npz")
    };
    let dense = run_sim("dense", None, &dir.path().join("dense"));
    let all: Array2<u8> = NpzReader::new(std::fs::File::open(&dense).unwrap())
        .unwrap()
        .by_name("spikes")
        .unwrap();
    assert_eq!(all.shape(), &[500, 300]);
    let activity = all.iter().map(|&s| s as f64).sum::<f64>() / all.len() as f64;
    assert!(
        activity > 0.1 && activity < 0.6,
        "activity {activity}: a record worth comparing"
    );
    let subsets: [(Option<&str>, Vec<usize>); 3] = [
        (None, (0..300).collect()),
        (Some("0,1,2,3,4,5,6,7,8,9,10,11,12"), (0..13).collect()),
        (
            Some("299,5,17,64,63,0,150,151,200,8,9"),
            vec![299, 5, 17, 64, 63, 0, 150, 151, 200, 8, 9],
        ),
    ];
    for (c, (list, ids)) in subsets.iter().enumerate() {
        let m = ids.len();
        let path = run_sim("bits", *list, &dir.path().join(format!("bits{c}")));
        let mut npz = NpzReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let packed: Array2<u8> = npz.by_name("spikes_bits").unwrap();
        assert_eq!(packed.shape(), &[500, m.div_ceil(8)], "subset {c}");
        let want = all.select(ndarray::Axis(1), ids);
        for t in 0..500 {
            for (j, _) in ids.iter().enumerate() {
                assert_eq!(
                    packed[[t, j / 8]] >> (j % 8) & 1,
                    want[[t, j]],
                    "subset {c}, tick {t}, column {j}"
                );
            }
            if m % 8 != 0 {
                assert_eq!(packed[[t, m / 8]] >> (m % 8), 0, "padding bits are 0");
            }
        }
        let read = marlin::record::read(&path, |_| Ok(())).unwrap();
        assert_eq!(read.spikes.as_ref(), Some(&want), "marlin's reader unpacks subset {c}");
        if c == 0 {
            let bytes = |p: &Path| std::fs::metadata(p).unwrap().len() as f64;
            assert!(bytes(&path) < bytes(&dense) / 4.0, "packed is smaller");
        }
        if !cli_common::numpy("cli_simulate::bits_form_packs_the_dense_record (its numpy part)") {
            continue;
        }
        let script = format!(
            "import numpy as np\nd = np.load({:?})\nb = np.unpackbits(d['spikes_bits'], axis=1, bitorder='little')[:, :{m}]\n\
             want = np.load({:?})['spikes'][:, {ids:?}]\nprint(b.shape, np.array_equal(b, want), int(b.sum()))",
            path.to_str().unwrap(),
            dense.to_str().unwrap()
        );
        let out = cli_common::python().args(["-c", &script]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let sum: u64 = want.iter().map(|&s| s as u64).sum();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("(500, {m}) True {sum}"),
            "numpy, subset {c}"
        );
    }
}
