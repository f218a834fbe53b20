//! Property tests over generated malformed inputs: every reader marlin has
//! for user files — scenarios, edge lists, reward tables, trajectories,
//! checkpoints — answers arbitrary or damaged content with an error (or, for
//! edits that leave a valid file, a result), never a panic or a hang; and a
//! damaged sealed trajectory is always refused. The number of cases is set
//! here and reported in docs/reliability.md (`cargo test --release --test malformed
//! -- --nocapture` prints how many edited scenarios loaded and how many were
//! refused).

use marlin::scenario::{ScenarioError, World};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

const CASES: u32 = 2000;

/// A fixed seed, so the suite explores the same cases on every run;
/// `MARLIN_PROPTEST_RANDOM=1` draws fresh ones (to hunt for new failures).
fn config() -> ProptestConfig {
    use proptest::test_runner::RngSeed;
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        rng_seed: if std::env::var_os("MARLIN_PROPTEST_RANDOM").is_some() {
            RngSeed::Random
        } else {
            RngSeed::Fixed(0x6d61_726c_696e)
        },
        ..ProptestConfig::default()
    }
}

/// One edit of a text: replace, insert or delete a span, or swap in a
/// hostile token.
#[derive(Clone, Debug)]
enum Edit {
    Replace(usize, String),
    Insert(usize, String),
    Delete(usize, usize),
    Line(usize),
}

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-1".to_string()),
        Just("1e308".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("18446744073709551616".to_string()),
        Just("999999999999".to_string()),
        Just("\"\"".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("[[x]]".to_string()),
        Just("=".to_string()),
        Just("\u{0}".to_string()),
        Just("λ".to_string()),
        "[ -~]{0,12}",
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), hostile()).prop_map(|(i, s)| Edit::Replace(i, s)),
        (any::<usize>(), hostile()).prop_map(|(i, s)| Edit::Insert(i, s)),
        (any::<usize>(), 1usize..40).prop_map(|(i, k)| Edit::Delete(i, k)),
        any::<usize>().prop_map(Edit::Line),
    ]
}

/// Apply edits at character boundaries of `text`.
fn apply(text: &str, edits: &[Edit]) -> String {
    let mut t: Vec<char> = text.chars().collect();
    for e in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
        match e {
            Edit::Replace(i, s) => {
                let p = at(*i, t.len());
                // Replace the value-like token at p (up to the next space or newline).
                let end = (p..t.len()).find(|&j| t[j] == ' ' || t[j] == '\n').unwrap_or(t.len());
                t.splice(p..end, s.chars());
            }
            Edit::Insert(i, s) => {
                let p = at(*i, t.len() + 1);
                t.splice(p..p, s.chars());
            }
            Edit::Delete(i, k) => {
                let p = at(*i, t.len());
                let end = (p + k).min(t.len());
                t.drain(p..end);
            }
            Edit::Line(i) => {
                let lines: Vec<String> = t.iter().collect::<String>().lines().map(String::from).collect();
                if !lines.is_empty() {
                    let drop = i % lines.len();
                    let kept: Vec<&str> = lines
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != drop)
                        .map(|(_, l)| l.as_str())
                        .collect();
                    t = kept.join("\n").chars().collect();
                }
            }
        }
    }
    t.into_iter().collect()
}

fn shipped(name: &str) -> String {
    std::fs::read_to_string(Path::new("scenarios").join(name)).unwrap()
}

/// What a refusal of the scenario `text`, read from `path`, must say: the
/// file; where, as a line and column inside the text or as the key at fault
/// (or both); and, when it reports the value it got or a name it does not
/// know, what is allowed or expected instead. None if it says all that.
fn unclear(e: &ScenarioError, path: &Path, text: &str) -> Option<String> {
    let shown = e.to_string();
    let file = path.display().to_string();
    if e.file != path || !shown.starts_with(&format!("{file}:")) {
        return Some(format!("does not name {file}"));
    }
    if e.line.is_none() && e.key.is_none() {
        return Some("says neither where nor which key".into());
    }
    if let Some(line) = e.line {
        let Some(col) = e.column else {
            return Some("a line without a column".into());
        };
        if !shown.starts_with(&format!("{file}:{line}:{col}: ")) {
            return Some("does not show the line and column after the file".into());
        }
        // The position is inside the text (or just past its end).
        let lines: Vec<&str> = text.split('\n').collect();
        if line == 0 || line > lines.len() || col == 0 || col > lines[line - 1].chars().count() + 1 {
            return Some(format!("{line}:{col} is not a position in the text"));
        }
    }
    if let Some(key) = &e.key
        && !shown.contains(&format!("`{key}`: "))
    {
        return Some(format!("does not show the key {key}"));
    }
    let message = e.message.trim();
    if message.is_empty() {
        return Some("says nothing of what is wrong".into());
    }
    let reports = message.starts_with("got ") || message.starts_with("unknown ");
    if reports && !(message.contains("allowed") || message.contains("expected")) {
        return Some("reports what it got but not what is allowed".into());
    }
    None
}

/// Edited scenarios of every world either load or are refused with an error
/// that names the file, where and what is allowed ([`unclear`]); and the
/// edits exercise both outcomes for every world, reaching marlin's own
/// checks (errors with a key), not only the TOML parser.
#[test]
fn edited_scenarios_load_or_are_refused_with_the_file_named() {
    const WORLDS: [&str; 5] = [
        "toy8.toml",
        "maze.toml",
        "neural_maze.toml",
        "efficient_coding.toml",
        "ei_network.toml",
    ];
    let loaded: [AtomicUsize; 5] = [const { AtomicUsize::new(0) }; 5];
    let refused: [AtomicUsize; 5] = [const { AtomicUsize::new(0) }; 5];
    let keyed = AtomicUsize::new(0);
    let mut runner = TestRunner::new(config());
    let cases = (0usize..WORLDS.len(), prop::collection::vec(edit(), 1..4));
    let outcome = runner.run(&cases, |(which, edits)| {
        let name = WORLDS[which];
        let text = apply(&shipped(name), &edits);
        let path = Path::new("scenarios").join(name);
        match World::parse(&text, &path) {
            Ok(_) => {
                loaded[which].fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                refused[which].fetch_add(1, Ordering::Relaxed);
                if e.key.is_some() {
                    keyed.fetch_add(1, Ordering::Relaxed);
                }
                let problem = unclear(&e, &path, &text);
                prop_assert!(problem.is_none(), "{}: {e}", problem.unwrap_or_default());
            }
        }
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    let count = |a: &[AtomicUsize; 5], w: usize| a[w].load(Ordering::Relaxed);
    let total: usize = (0..5).map(|w| count(&loaded, w) + count(&refused, w)).sum();
    assert_eq!(total, CASES as usize);
    for (w, name) in WORLDS.iter().enumerate() {
        let (l, r) = (count(&loaded, w), count(&refused, w));
        eprintln!("{name}: {l} edited scenarios loaded, {r} refused");
        // Both outcomes, each at least a tenth of the world's cases.
        assert!(l * 10 >= l + r && r * 10 >= l + r, "{name}: {l} loaded, {r} refused");
    }
    let keyed = keyed.load(Ordering::Relaxed);
    assert!(
        keyed * 100 >= total,
        "only {keyed} refusals came from marlin's own checks"
    );
    let refused: usize = (0..5).map(|w| count(&refused, w)).sum();
    eprintln!("edited scenarios refused: {refused} of {total}, {keyed} by marlin's checks (with a key)");
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary text as a scenario: refused (no arbitrary text holds a
    /// network, an input, a reward and a cost), with an error that names
    /// the file and where, never a panic.
    #[test]
    fn arbitrary_text_as_a_scenario_is_an_error(text in "\\PC{0,400}") {
        let path = Path::new("fuzz.toml");
        match World::parse(&text, path) {
            Ok(_) => prop_assert!(false, "loaded as a scenario: {text:?}"),
            Err(e) => {
                let problem = unclear(&e, path, &text);
                prop_assert!(problem.is_none(), "{}: {e}", problem.unwrap_or_default());
            }
        }
    }

    /// Edge lists with arbitrary lines: parsed or refused with the line.
    #[test]
    fn arbitrary_edge_lists_are_parsed_or_refused_with_a_line(
        lines in prop::collection::vec("[0-9 ,.#a-z-]{0,20}", 0..30),
        n in 1usize..50,
    ) {
        let text = lines.join("\n");
        match marlin::topology::parse_edge_list(&text, n, false) {
            Ok(edges) => prop_assert!(edges
                .iter()
                .all(|&(pre, post, w)| (pre as usize) < n && (post as usize) < n && pre != post && w.is_none_or(f32::is_finite))),
            Err((line, _)) => prop_assert!(line <= lines.len()),
        }
    }

    /// Reward tables (.csv) with arbitrary rows: read with the right shape
    /// and finite values, or refused.
    #[test]
    fn arbitrary_reward_tables_are_read_with_their_shape_or_refused(
        rows in prop::collection::vec(prop::collection::vec(prop_oneof![
            any::<f64>().prop_map(|v| v.to_string()),
            "[a-z ]{0,4}",
        ], 0..6), 0..5),
        inputs in 1usize..4,
        n in 0usize..3,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv");
        let text: Vec<String> = rows.iter().map(|r| r.join(",")).collect();
        std::fs::write(&p, text.join("\n")).unwrap();
        if let Ok(t) = marlin::files::read_reward_table(&p, inputs, n) {
            prop_assert_eq!(t.len(), inputs << n);
            prop_assert!(t.iter().all(|v| v.is_finite()));
        }
    }

    /// Arbitrary bytes as a checkpoint: refused, never decoded.
    #[test]
    fn arbitrary_bytes_are_not_a_checkpoint(bytes in prop::collection::vec(any::<u8>(), 0..200), magic in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.ckpt");
        let mut b = if magic { [&b"MARLINCK"[..], &marlin::checkpoint::VERSION.to_le_bytes()].concat() } else { Vec::new() };
        b.extend(bytes);
        std::fs::write(&p, &b).unwrap();
        prop_assert!(marlin::checkpoint::load::<(u64, Vec<f64>)>(&p).is_err());
    }
}

/// A trajectory to damage, written once by the library's recorder.
fn trajectory(dir: &Path) {
    use marlin::record::{FORMAT, FORMAT_VERSION, Recorder, TrajectoryMeta};
    use marlin::runtime::{Layout, RunState, run};
    let sc = marlin::scenario::Scenario::load(Path::new("scenarios/toy8.toml")).unwrap();
    let net = sc.runtime_network();
    let mut agents = marlin::agents::Neuron::team(vec![marlin::agents::ConstantPolicy(0.3); 8], &[0.3; 8], 1);
    let mut rec = Recorder::new((0..8).collect(), 50);
    run(
        &net,
        &mut agents,
        Layout::single(),
        RunState::initial(&net, 1),
        50,
        &mut rec,
    );
    let meta = TrajectoryMeta {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        scenario: "toy8".into(),
        scenario_file: "scenarios/toy8.toml".into(),
        n: 8,
        inputs: 2,
        input_values: net.input.values.clone(),
        transition: net.input.transition.chunks(2).map(|r| r.to_vec()).collect(),
        update: "asynchronous".into(),
        act_probability: 0.125,
        lambda: Some(0.5),
        seed: 1,
        ticks: 50,
        recorded_neurons: (0..8).collect(),
        dead: vec![],
        policy: "constant".into(),
        state_indexing: "bit k = neuron k".into(),
        controlled_input: None,
    };
    rec.write(dir, &meta).unwrap();
}

proptest! {
    #![proptest_config(config())]

    /// Several bytes of a sealed trajectory changed, or its tail cut: always
    /// refused (the single-byte and single-cut cases are exhaustive in
    /// tests/integrity.rs).
    #[test]
    fn damaged_sealed_trajectories_are_always_refused(
        changes in prop::collection::vec((any::<usize>(), 1u8..=255), 1..8),
        cut in prop::option::of(any::<usize>()),
        in_json in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        trajectory(dir.path());
        let file = dir.path().join(if in_json { "trajectory.json" } else { "trajectory.npz" });
        let mut b = std::fs::read(&file).unwrap();
        let original = b.clone();
        for (i, x) in &changes {
            let at = i % b.len();
            b[at] ^= x;
        }
        if let Some(c) = cut {
            b.truncate(c % b.len());
        }
        // Changes that cancel out, or that only turn JSON whitespace into
        // other whitespace or cut it, leave the same document: not damage.
        let same_json = || {
            let parse = |x: &[u8]| serde_json::from_slice::<serde_json::Value>(x).ok();
            in_json && parse(&b).is_some() && parse(&b) == parse(&original)
        };
        let intact = b == original || same_json();
        std::fs::write(&file, &b).unwrap();
        let read = marlin::record::read(&dir.path().join("trajectory.npz"), |_| Ok(()));
        prop_assert!(intact || read.is_err(), "damage read as data: {changes:?} cut {cut:?} in_json {in_json}");
    }
}
