//! Sealed outputs: every .npz marlin writes carries its format, version and
//! SHA-256 (the archive comment), trajectories also the digest of their JSON
//! metadata. Every single-byte corruption and every truncation of a
//! trajectory (either file) is reported as an error, never read as data; a
//! file made by other tools (no seal) is still accepted; the CLI refuses a
//! damaged or mismatched policy with exit code 2.

mod cli_common;

use cli_common::{marlin, run_bad, run_ok};
use marlin::files::check_seal;
use marlin::record::{self, FORMAT};
use ndarray::{Array1, Array2};
use std::path::Path;

/// A short streamed trajectory of the toy network, written by `simulate`.
fn simulate(dir: &Path, ticks: u64) -> std::path::PathBuf {
    let out = dir.join("sim");
    run_ok(
        marlin()
            .args(["-q", "simulate", "scenarios/toy8.toml", "--untrained", "--ticks"])
            .arg(ticks.to_string())
            .arg("--out")
            .arg(&out),
    );
    out
}

fn read(dir: &Path) -> Result<record::Trajectory, String> {
    record::read(&dir.join("trajectory.npz"), |_| Ok(()))
}

/// Each single-byte change (four masks per byte) of `file`, then restore it:
/// how many were tried, and the ones `read` accepted.
fn flip_every_byte(dir: &Path, file: &str) -> (usize, Vec<(usize, u8)>) {
    let path = dir.join(file);
    let original = std::fs::read(&path).unwrap();
    let mut accepted = Vec::new();
    let mut tried = 0;
    for i in 0..original.len() {
        for mask in [0x01u8, 0x10, 0x80, 0xff] {
            let mut bytes = original.clone();
            bytes[i] ^= mask;
            std::fs::write(&path, &bytes).unwrap();
            tried += 1;
            if read(dir).is_ok() {
                accepted.push((i, mask));
            }
        }
    }
    std::fs::write(&path, &original).unwrap();
    (tried, accepted)
}

/// Every truncation of `file` that `read` accepted, except those that cut
/// only trailing whitespace (the same document).
fn truncate_everywhere(dir: &Path, file: &str) -> Vec<usize> {
    let path = dir.join(file);
    let original = std::fs::read(&path).unwrap();
    let accepted = (0..original.len())
        .filter(|&len| !original[len..].iter().all(u8::is_ascii_whitespace))
        .filter(|&len| {
            std::fs::write(&path, &original[..len]).unwrap();
            read(dir).is_ok()
        })
        .collect();
    std::fs::write(&path, &original).unwrap();
    accepted
}

#[test]
fn every_byte_flip_and_truncation_of_a_trajectory_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let out = simulate(dir.path(), 60);
    let whole = read(&out).expect("the untouched trajectory reads");
    assert_eq!(whole.x.len(), 60);
    let seal = check_seal(&out.join("trajectory.npz"), &[FORMAT], 1, None)
        .unwrap()
        .expect("marlin's trajectory is sealed");
    assert!(seal.metadata_sha256.is_some());

    for file in ["trajectory.npz", "trajectory.json"] {
        let (tried, accepted) = flip_every_byte(&out, file);
        assert!(tried > 1000, "{file}: only {tried} flips");
        assert!(accepted.is_empty(), "{file}: byte flips read as data: {accepted:?}");
        let accepted = truncate_everywhere(&out, file);
        assert!(accepted.is_empty(), "{file}: truncations read as data: {accepted:?}");
        let len = std::fs::metadata(out.join(file)).unwrap().len();
        eprintln!("{file}: {tried} single-byte corruptions and {len} truncations tried, all detected");
    }
    // …and the restored files read as before.
    assert_eq!(read(&out).unwrap().x, whole.x);
}

#[test]
fn a_numpy_made_trajectory_without_a_seal_is_accepted_and_validated() {
    let dir = tempfile::tempdir().unwrap();
    let out = simulate(dir.path(), 40);
    let t = read(&out).unwrap();
    // Rewrite the arrays the way a user's own code would: no seal.
    let rewrite = |spikes: Array2<u8>| {
        let f = std::fs::File::create(out.join("trajectory.npz")).unwrap();
        let mut w = ndarray_npy::NpzWriter::new(f);
        w.add_array("x", &Array1::from(t.x.iter().map(|&v| v as i64).collect::<Vec<_>>()))
            .unwrap();
        w.add_array("actor", &Array1::from(t.actor.clone())).unwrap();
        w.add_array("spikes", &spikes).unwrap();
        w.finish().unwrap();
    };
    let spikes = t.spikes.clone().unwrap();
    rewrite(spikes.clone());
    assert_eq!(
        check_seal(&out.join("trajectory.npz"), &[FORMAT], 1, None).unwrap(),
        None
    );
    let back = read(&out).expect("an unsealed file with valid content is accepted");
    assert_eq!(back.x, t.x);
    assert_eq!(back.spikes.unwrap(), spikes);
    // Validation still applies: a spike value of 2, and a missing row.
    let mut bad = spikes.clone();
    bad[[3, 1]] = 2;
    rewrite(bad);
    let e = read(&out).unwrap_err();
    assert!(e.contains("`spikes` holds 2; allowed: 0 or 1"), "{e}");
    rewrite(spikes.slice(ndarray::s![1.., ..]).to_owned());
    let e = read(&out).unwrap_err();
    assert!(e.contains("`spikes` has shape [39, 8]; allowed: [40, 8]"), "{e}");
}

#[test]
fn edited_metadata_is_refused_as_not_matching_the_sealed_record() {
    let dir = tempfile::tempdir().unwrap();
    let out = simulate(dir.path(), 40);
    let json = out.join("trajectory.json");
    let text = std::fs::read_to_string(&json).unwrap();
    let mut meta: serde_json::Value = serde_json::from_str(&text).unwrap();
    meta["seed"] = serde_json::json!(meta["seed"].as_u64().unwrap() + 1);
    std::fs::write(&json, serde_json::to_string_pretty(&meta).unwrap()).unwrap();
    let e = read(&out).unwrap_err();
    assert!(e.contains("metadata") && e.contains("does not match"), "{e}");
    let e = run_bad(
        marlin()
            .args(["-q", "infer"])
            .arg(out.join("trajectory.npz"))
            .arg("--out")
            .arg(dir.path().join("inf")),
    );
    assert!(e.contains("trajectory.npz") && e.contains("does not match"), "{e}");
}

#[test]
fn a_damaged_or_mismatched_policy_is_refused_by_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let solve = dir.path().join("solve");
    run_ok(
        marlin()
            .args(["-q", "solve", "scenarios/toy8.toml", "--out"])
            .arg(&solve),
    );
    let policy = solve.join("policy.npz");
    let mut bytes = std::fs::read(&policy).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x04;
    let damaged = dir.path().join("damaged.npz");
    std::fs::write(&damaged, &bytes).unwrap();
    let sim = |p: &Path| {
        let mut c = marlin();
        c.args(["-q", "simulate", "scenarios/toy8.toml", "--ticks", "10", "--policy"])
            .arg(p)
            .arg("--out")
            .arg(dir.path().join("never"));
        c
    };
    let e = run_bad(&mut sim(&damaged));
    assert!(e.contains("damaged.npz") && e.contains("corrupted"), "{e}");
    let truncated = dir.path().join("truncated.npz");
    std::fs::write(&truncated, &bytes[..mid]).unwrap();
    let e = run_bad(&mut sim(&truncated));
    assert!(e.contains("truncated.npz") && e.contains("truncated or damaged"), "{e}");
    // A trajectory where a policy belongs: named for what it is.
    let out = simulate(dir.path(), 20);
    let e = run_bad(&mut sim(&out.join("trajectory.npz")));
    assert!(
        e.contains("a marlin-trajectory file; allowed here: marlin-policy"),
        "{e}"
    );
    assert!(!dir.path().join("never").exists(), "a refused run wrote output");
}

#[test]
fn every_summary_carries_a_warnings_list() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_ok(
        marlin()
            .args(["-q", "solve", "scenarios/toy8.toml", "--out"])
            .arg(d.join("solve")),
    );
    run_ok(
        marlin()
            .args(["-q", "solve", "scenarios/toy8.toml", "--sweep-lambda", "0.2,1", "--out"])
            .arg(d.join("sweep")),
    );
    run_ok(
        marlin()
            .args([
                "-q",
                "train",
                "scenarios/toy8.toml",
                "--ticks",
                "20000",
                "--policy",
                "tabular",
                "--out",
            ])
            .arg(d.join("train")),
    );
    let sim = simulate(d, 2000);
    run_ok(
        marlin()
            .args(["-q", "infer"])
            .arg(sim.join("trajectory.npz"))
            .arg("--out")
            .arg(d.join("infer")),
    );
    for file in [
        "solve/summary.json",
        "sweep/summary.json",
        "train/learning.json",
        "infer/reward.json",
    ] {
        let j = cli_common::json(&d.join(file));
        assert!(j["warnings"].is_array(), "{file} has no warnings list: {j}");
    }
}

#[test]
fn python_checks_the_seal_and_a_compressed_numpy_archive_is_read() {
    if !cli_common::numpy("integrity::python_checks_the_seal_and_a_compressed_numpy_archive_is_read") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = simulate(dir.path(), 500);
    let t = read(&out).unwrap();
    // The seal check of docs/formats.md, done independently by Python's zipfile and
    // hashlib; then the same arrays rewritten with np.savez_compressed.
    let script = "import hashlib, json, sys, zipfile\n\
                  import numpy as np\n\
                  p = sys.argv[1]\n\
                  raw = open(p, 'rb').read()\n\
                  comment = zipfile.ZipFile(p).comment\n\
                  seal = json.loads(comment)\n\
                  assert seal['format'] == 'marlin-trajectory', seal\n\
                  assert hashlib.sha256(raw[: len(raw) - len(comment)]).hexdigest() == seal['sha256']\n\
                  d = np.load(p)\n\
                  np.savez_compressed(p + '.c.npz', **{k: d[k] for k in d.keys()})\n";
    let p = out.join("trajectory.npz");
    let status = cli_common::python().args(["-c", script]).arg(&p).status().unwrap();
    assert!(status.success(), "Python's check of the seal failed");
    let sealed_len = std::fs::metadata(&p).unwrap().len();
    std::fs::rename(out.join("trajectory.npz.c.npz"), &p).unwrap();
    let len = std::fs::metadata(&p).unwrap().len();
    assert!(len < sealed_len / 2, "not compressed: {len} bytes against {sealed_len}");
    let back = read(&out).expect("a compressed archive without a seal is read");
    assert_eq!(back.x, t.x);
    assert_eq!(back.spikes, t.spikes);
}
