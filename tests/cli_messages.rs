//! What a new user reads: no colour codes when stderr is not a terminal,
//! rates in three significant figures, "1 neuron" not "1 neurons", the
//! missing file named, negative numbers reaching validation, a missing
//! folder refused, `validate` refusing the perturbations `run` refuses, and
//! `import` naming its neuron-id limit.

mod cli_common;
use cli_common::{marlin, run_bad, run_ok};
use std::path::Path;

#[test]
fn log_lines_carry_no_colour_codes_when_stderr_is_piped() {
    let dir = tempfile::tempdir().unwrap();
    // -v logs the topology at info level, then --ticks 0 is refused.
    let err = run_bad(
        marlin()
            .env_remove("NO_COLOR")
            .env_remove("RUST_LOG")
            .args([
                "-v",
                "simulate",
                "scenarios/toy8.toml",
                "--untrained",
                "--ticks",
                "0",
                "--out",
            ])
            .arg(dir.path().join("s")),
    );
    assert!(
        err.contains("INFO") && err.contains("topology"),
        "the log line is there: {err:?}"
    );
    assert!(err.contains("--ticks must be at least 1"), "{err:?}");
    assert!(!err.contains("\x1b["), "ANSI escape codes in piped stderr: {err:?}");
}

#[test]
fn rates_are_three_significant_figures_with_an_si_prefix() {
    use marlin::text::si;
    for (x, want) in [
        (7_587_928.640_9, "7.59M"),
        (999.96, "1.00k"),
        (999.4, "999"),
        (1000.0, "1.00k"),
        (12_345.0, "12.3k"),
        (123_456.0, "123k"),
        (2.5e9, "2.50G"),
        (12.345, "12.3"),
        (1.0, "1.00"),
        (0.5, "0.500"),
        (0.01234, "0.0123"),
        (-4_200.0, "-4.20k"),
        (0.0, "0"),
    ] {
        assert_eq!(si(x), want, "si({x})");
    }
}

#[test]
fn counts_of_one_are_singular() {
    use marlin::text::count;
    assert_eq!(count(1, "cell"), "1 cell");
    assert_eq!(count(0, "cell"), "0 cells");
    assert_eq!(count(2, "input value"), "2 input values");
    // ei_network has one input value.
    let out = run_ok(marlin().args(["validate", "scenarios/ei_network.toml"]));
    assert!(out.contains("1 input value,"), "{out}");
    assert!(!out.contains("1 input values"), "{out}");
    // One neuron, one spike in the window and one outside it.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("spikes.csv"), "neuron,time\n0,0.05\n0,0.35\n").unwrap();
    let out = marlin()
        .args(["import"])
        .arg(d.join("spikes.csv"))
        .args(["--bin", "0.1", "--start", "0", "--end", "0.3", "--out"])
        .arg(d.join("rec"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("3 bins of 0.1 s × 1 neuron, 2 spikes (1 outside"),
        "{stdout}"
    );
    assert!(!stdout.contains("1 neurons"), "{stdout}");
    assert!(!stdout.contains("  "), "no run of spaces: {stdout:?}");
    let summary = cli_common::json(&d.join("rec/import.json"));
    let warnings = summary["warnings"].to_string();
    assert!(
        warnings.contains("1 spike lay outside [start, end) and was dropped"),
        "{warnings}"
    );
}

#[test]
fn infer_on_a_missing_record_names_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("sim/trajectory.npz");
    let err = run_bad(marlin().arg("infer").arg(&npz).arg("--out").arg(dir.path().join("inf")));
    assert!(err.contains(&format!("{}: no such file", npz.display())), "{err}");
    assert!(
        !err.contains("trajectory.json"),
        "the record is missing, not its metadata: {err}"
    );
    // Beside existing metadata, the missing archive is still what is named.
    std::fs::create_dir_all(dir.path().join("sim")).unwrap();
    std::fs::write(dir.path().join("sim/trajectory.json"), "{}").unwrap();
    let err = run_bad(marlin().arg("infer").arg(&npz).arg("--out").arg(dir.path().join("inf")));
    assert!(err.contains(&format!("{}: no such file", npz.display())), "{err}");
    // So for maze and team records, whose metadata says what they are.
    for format in [marlin::record::demos::FORMAT, marlin::record::team_demos::FORMAT] {
        let npz = dir.path().join("sim/demonstrations.npz");
        let meta = serde_json::json!({ "format": format, "format_version": 1 });
        std::fs::write(npz.with_extension("json"), meta.to_string()).unwrap();
        let err = run_bad(marlin().arg("infer").arg(&npz).arg("--out").arg(dir.path().join("inf")));
        assert!(
            err.contains(&format!("{}: no such file", npz.display())),
            "{format}: {err}"
        );
    }
}

#[test]
fn negative_numbers_reach_validation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for args in [
        &["--lambda", "-1"][..],
        &["--sweep-lambda", "0.5,-1"][..],
        &["--lambda=-1"][..],
    ] {
        let err = run_bad(
            marlin()
                .args(["solve", "scenarios/toy8.toml"])
                .args(args)
                .arg("--out")
                .arg(d.join("solve")),
        );
        assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
        assert!(
            err.contains("λ = -1 is not allowed; allowed: positive"),
            "{args:?}: {err}"
        );
    }
    let err = run_bad(
        marlin()
            .args(["infer", "missing.npz", "--lambda", "-0.5", "--out"])
            .arg(d.join("inf")),
    );
    assert!(err.contains("--lambda -0.5: allowed: a positive"), "{err}");
    std::fs::write(d.join("spikes.csv"), "0,0.05\n0,0.25\n").unwrap();
    let err = run_bad(
        marlin()
            .arg("import")
            .arg(d.join("spikes.csv"))
            .args(["--bin", "-0.1", "--out"])
            .arg(d.join("rec")),
    );
    assert!(err.contains("--bin -0.1: allowed: a positive"), "{err}");
    // A window starting before time 0 is allowed.
    run_ok(
        marlin()
            .arg("import")
            .arg(d.join("spikes.csv"))
            .args(["--bin", "0.1", "--start", "-0.1", "--out"])
            .arg(d.join("rec")),
    );
    let meta = cli_common::json(&d.join("rec/import.json"));
    assert_eq!(meta["start"], -0.1);
    assert_eq!(meta["ticks"], 5, "[-0.1, 0.35) in bins of 0.1");
}

#[test]
fn listing_a_missing_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no_such_folder");
    let out = marlin().args(["scenarios", "--dir"]).arg(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&missing.display().to_string()), "{err}");
    // The shipped folder still lists.
    let out = run_ok(marlin().args(["scenarios"]));
    assert!(out.contains("toy8.toml"), "{out}");
}

/// `scenario` with its `perturbations = [...]` line replaced, written to `dir`.
fn with_perturbations(scenario: &str, dir: &Path, list: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(scenario).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("perturbations = "))
        .expect("the scenario lists perturbations");
    let p = dir.join(Path::new(scenario).file_name().unwrap());
    std::fs::write(&p, text.replace(line, &format!("perturbations = {list}"))).unwrap();
    p
}

#[test]
fn validate_refuses_the_perturbations_run_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A network: neuron 99 of 8.
    let toy = with_perturbations("scenarios/toy8.toml", d, r#"["lambda:1.0", "kill:99"]"#);
    let validated = run_bad(marlin().arg("validate").arg(&toy));
    let ran = run_bad(marlin().arg("run").arg(&toy).arg("--out").arg(d.join("study")));
    for err in [&validated, &ran] {
        assert!(err.contains("toy8.toml:29:"), "file and line: {err}");
        assert!(err.contains("study.perturbations"), "{err}");
        assert!(err.contains("neuron 99 is out of range; allowed: 0 to 7"), "{err}");
    }
    assert_eq!(validated, ran, "one check, one message");
    // A maze: an unknown kind, and a walls map that is not there.
    let maze = with_perturbations("scenarios/maze.toml", d, r#"["lambda:1.0", "melt:1"]"#);
    let err = run_bad(marlin().arg("validate").arg(&maze));
    assert!(
        err.contains("maze.toml:30:") && err.contains("study.perturbations"),
        "{err}"
    );
    assert!(err.contains("melt"), "{err}");
    let maze = with_perturbations("scenarios/maze.toml", d, r#"["walls:no_such_map.txt"]"#);
    let err = run_bad(marlin().arg("validate").arg(&maze));
    assert!(err.contains("no_such_map.txt: cannot read the map"), "{err}");
    // A sensory-coding task: a probability out of range.
    let coding = with_perturbations("scenarios/efficient_coding.toml", d, r#"["pixel_probability:1.5"]"#);
    let err = run_bad(marlin().arg("validate").arg(&coding));
    assert!(err.contains("study.perturbations") && err.contains("1.5"), "{err}");
    // The shipped scenarios still validate.
    for s in ["toy8", "maze", "efficient_coding", "neural_maze"] {
        run_ok(marlin().arg("validate").arg(format!("scenarios/{s}.toml")));
    }
}

#[test]
fn import_names_its_neuron_id_limit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("spikes.csv"), "neuron,time\n0,0.05\n5000000,0.15\n").unwrap();
    let err = run_bad(
        marlin()
            .arg("import")
            .arg(d.join("spikes.csv"))
            .args(["--bin", "0.1", "--out"])
            .arg(d.join("rec")),
    );
    assert!(err.contains("spikes.csv:3: neuron 5000000"), "file, line and id: {err}");
    assert!(
        err.contains("0 to 999999 (at most 1000000 neurons)"),
        "the limit: {err}"
    );
    let err = run_bad(
        marlin()
            .arg("import")
            .arg(d.join("spikes.csv"))
            .args(["--bin", "0.1", "--neurons", "2000000", "--out"])
            .arg(d.join("rec")),
    );
    assert!(err.contains("--neurons 2000000; allowed: at most 1000000"), "{err}");
    // The largest id is read; under a memory limit (1 GB) far below what
    // 2001 bins × 10⁶ neurons take (2·10⁹ cells, within MAX_CELLS), the
    // recording is refused with its size, not by a failed allocation.
    std::fs::write(d.join("spikes.csv"), "999999,0.05\n0,200.0\n").unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 1000000; exec {} import {} --bin 0.1 --out {}",
            env!("CARGO_BIN_EXE_marlin"),
            d.join("spikes.csv").display(),
            d.join("rec").display()
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("2001 bins × 1000000 neurons need about"), "{err}");
    assert!(err.contains("MiB to spare"), "{err}");
}
