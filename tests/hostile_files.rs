//! Files whose .npy headers lie: every reader checks an array's header
//! (shape × element size) against the bytes its entry holds and against the
//! memory this process may use before it allocates, so a header claiming
//! 2·2⁴⁰·8 doubles with a few bytes of data is an error (exit 2) naming the
//! file and the array — under a 4 GB address-space limit too — never an
//! abort.

mod cli_common;

use cli_common::{marlin, run_ok};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// An .npy array whose header says `shape` of `descr` but which holds only
/// `data`.
fn lying_npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    v.extend_from_slice(dict.as_bytes());
    v.extend_from_slice(data);
    v
}

/// The `descr` of an .npy entry (e.g. `<f8`), from its header text.
fn descr_of(npy: &[u8]) -> String {
    let text = String::from_utf8_lossy(&npy[10..npy.len().min(200)]).into_owned();
    let at = text.find("'descr': '").expect("an npy header") + "'descr': '".len();
    text[at..].split('\'').next().unwrap().to_string()
}

/// Copy the archive `from` to `to` (unsealed, as a user's numpy would write
/// it) with the entry `array` replaced by one whose header lies.
fn with_lying_array(from: &Path, to: &Path, array: &str) {
    let mut zin = zip::ZipArchive::new(std::fs::File::open(from).unwrap()).unwrap();
    let mut zout = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut found = false;
    for i in 0..zin.len() {
        let mut e = zin.by_index(i).unwrap();
        let name = e.name().to_string();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        if name == format!("{array}.npy") {
            bytes = lying_npy(
                &descr_of(&bytes),
                "(2, 1099511627776, 8)",
                &bytes[bytes.len().saturating_sub(16)..],
            );
            found = true;
        }
        zout.start_file(&name, opts).unwrap();
        zout.write_all(&bytes).unwrap();
    }
    zout.finish().unwrap();
    assert!(found, "{} has no array {array}", from.display());
}

/// `marlin args…` under a 4 GB address-space limit: exit code and stderr.
fn limited(args: &[&str], paths: &[&Path]) -> (Option<i32>, String) {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("ulimit -v 4000000 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_marlin"))
        .args(args)
        .args(paths);
    let out = c.output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn refused(what: &str, (code, err): (Option<i32>, String), file: &Path, array: &str) {
    assert_eq!(code, Some(2), "{what}: {err}");
    assert!(
        err.contains(&file.display().to_string())
            && err.contains(&format!("array `{array}`"))
            && err.contains("header"),
        "{what}: the message must name the file, the array and its header: {err}"
    );
    assert!(!err.contains("memory allocation"), "{what}: {err}");
}

fn copy_beside(from: &Path, to: &Path, json: &str) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from.with_file_name(json), to.with_file_name(json)).unwrap();
}

#[test]
fn lying_headers_in_policies_trajectories_and_rewards_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let solve = d.join("solve");
    run_ok(
        marlin()
            .args(["-q", "solve", "scenarios/toy8.toml", "--out"])
            .arg(&solve),
    );
    let sim = d.join("sim");
    run_ok(
        marlin()
            .args(["-q", "simulate", "scenarios/toy8.toml", "--ticks", "20000", "--policy"])
            .arg(solve.join("policy.npz"))
            .arg("--out")
            .arg(&sim),
    );
    let inf = d.join("infer");
    run_ok(
        marlin()
            .args(["-q", "infer", "--lambda", "0.5", "--out"])
            .arg(&inf)
            .arg(sim.join("trajectory.npz")),
    );
    let mut tried = 0;

    // A policy given to simulate.
    for array in ["p_fire", "prior"] {
        let bad = d.join(format!("bad_policy_{array}.npz"));
        with_lying_array(&solve.join("policy.npz"), &bad, array);
        let r = limited(
            &["-q", "simulate", "scenarios/toy8.toml", "--ticks", "10", "--out"],
            &[&d.join("o1"), Path::new("--policy"), &bad],
        );
        refused("simulate --policy", r, &bad, array);
        tried += 1;
    }
    // A trajectory given to infer.
    for array in ["x", "actor", "spikes", "reward"] {
        let bad = d.join(format!("rec_{array}/trajectory.npz"));
        copy_beside(&sim.join("trajectory.npz"), &bad, "trajectory.json");
        with_lying_array(&sim.join("trajectory.npz"), &bad, array);
        let r = limited(&["-q", "infer", "--lambda", "0.5", "--out"], &[&d.join("o2"), &bad]);
        refused("infer", r, &bad, array);
        tried += 1;
    }
    // A reward given to predict.
    let names: Vec<String> = zip::ZipArchive::new(std::fs::File::open(inf.join("reward.npz")).unwrap())
        .unwrap()
        .file_names()
        .map(|n| n.trim_end_matches(".npy").to_string())
        .collect();
    for array in names
        .iter()
        .filter(|n| ["r", "count_reward", "p_fire", "policy"].contains(&n.as_str()))
    {
        let bad = d.join(format!("rew_{array}/reward.npz"));
        copy_beside(&inf.join("reward.npz"), &bad, "reward.json");
        with_lying_array(&inf.join("reward.npz"), &bad, array);
        let model = if array == "r" { "tabular" } else { "count" };
        let r = limited(
            &[
                "-q",
                "predict",
                "--scenario",
                "scenarios/toy8.toml",
                "--perturb",
                "lambda:1.0",
                "--reward-model",
                model,
                "--out",
            ],
            &[&d.join("o3"), Path::new("--reward"), &bad],
        );
        refused("predict --reward", r, &bad, array);
        tried += 1;
    }
    assert!(tried >= 8, "only {tried} cases");
}

#[test]
fn lying_headers_in_maze_files_and_feature_tables_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let solve = d.join("solve");
    run_ok(
        marlin()
            .args(["-q", "solve", "scenarios/maze.toml", "--out"])
            .arg(&solve),
    );
    let bad = d.join("maze_policy.npz");
    with_lying_array(&solve.join("policy.npz"), &bad, "pi");
    let r = limited(
        &[
            "-q",
            "simulate",
            "scenarios/maze.toml",
            "--ticks",
            "5",
            "--trajectories",
            "2",
            "--out",
        ],
        &[&d.join("o1"), Path::new("--policy"), &bad],
    );
    refused("maze simulate --policy", r, &bad, "pi");

    let sim = d.join("sim");
    run_ok(
        marlin()
            .args([
                "-q",
                "simulate",
                "scenarios/maze.toml",
                "--untrained",
                "--ticks",
                "10",
                "--trajectories",
                "3",
                "--out",
            ])
            .arg(&sim),
    );
    for array in ["state", "action"] {
        let bad = d.join(format!("demo_{array}/demonstrations.npz"));
        copy_beside(&sim.join("demonstrations.npz"), &bad, "demonstrations.json");
        with_lying_array(&sim.join("demonstrations.npz"), &bad, array);
        let r = limited(&["-q", "infer", "--lambda", "0.2", "--out"], &[&d.join("o2"), &bad]);
        refused("maze infer", r, &bad, array);
    }

    // A feature table for `infer --reward-model FILE.npy` (a plain .npy).
    let toy = d.join("toy");
    run_ok(
        marlin()
            .args([
                "-q",
                "simulate",
                "scenarios/toy8.toml",
                "--untrained",
                "--ticks",
                "2000",
                "--out",
            ])
            .arg(&toy),
    );
    let features = d.join("features.npy");
    std::fs::write(&features, lying_npy("<f8", "(2, 256, 1099511627776)", &[0; 64])).unwrap();
    let (code, err) = limited(
        &["-q", "infer", "--reward-model", features.to_str().unwrap(), "--out"],
        &[&d.join("o3"), &toy.join("trajectory.npz")],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("features.npy") && err.contains("header"), "{err}");
}

#[test]
fn a_header_that_tells_the_truth_about_too_much_data_is_refused_for_memory() {
    // A .npy whose header matches its bytes is read; one that would take
    // more than the address-space limit allows is refused before reading.
    let t = tempfile::tempdir().unwrap();
    let d: PathBuf = t.path().to_path_buf();
    let toy = d.join("toy");
    run_ok(
        marlin()
            .args([
                "-q",
                "simulate",
                "scenarios/toy8.toml",
                "--untrained",
                "--ticks",
                "2000",
                "--out",
            ])
            .arg(&toy),
    );
    let features = d.join("big.npy");
    // 2·256·P doubles with P chosen so the array is 6 GB: a sparse file.
    let p = 6_000_000_000u64 / (2 * 256 * 8);
    let head = lying_npy("<f8", &format!("(2, 256, {p})"), &[]);
    let f = std::fs::File::create(&features).unwrap();
    (&f).write_all(&head).unwrap();
    f.set_len(head.len() as u64 + 2 * 256 * p * 8).unwrap();
    let (code, err) = limited(
        &["-q", "infer", "--reward-model", features.to_str().unwrap(), "--out"],
        &[&d.join("o"), &toy.join("trajectory.npz")],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("big.npy") && err.contains("MiB"), "{err}");
}
