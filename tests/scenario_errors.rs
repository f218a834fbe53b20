//! Every class of scenario mistake gets an error naming the file, the line
//! and column, the key, what was wrong and what is allowed.

use marlin::scenario::{Scenario, ScenarioError};
use std::path::Path;

const GOOD: &str = r#"
name = "t"
[network]
neurons = 4
[input]
values = [-1.0, 1.0]
switch_probability = 0.1
[reward]
kind = "target_count"
targets = [1, 3]
[cost]
lambda = 0.5
"#;

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(text, Path::new("bad.toml"))
}

/// Replace `from` by `to` in the good scenario and expect an error at `line`
/// mentioning every string in `needles`.
fn expect_err(from: &str, to: &str, line: usize, key: Option<&str>, needles: &[&str]) {
    assert!(GOOD.contains(from), "test bug: {from:?} not in the good scenario");
    let text = GOOD.replacen(from, to, 1);
    let err = parse(&text).expect_err(&format!("accepted:\n{text}"));
    let shown = err.to_string();
    assert_eq!(err.file, Path::new("bad.toml"));
    assert!(shown.starts_with("bad.toml:"), "{shown}");
    assert_eq!(err.line, Some(line), "wrong line in: {shown}");
    assert!(err.column.is_some());
    if let Some(k) = key {
        assert_eq!(err.key.as_deref(), Some(k), "{shown}");
    }
    for n in needles {
        assert!(shown.contains(n), "{shown:?} should mention {n:?}");
    }
}

#[test]
fn the_good_scenario_parses() {
    let s = parse(GOOD).unwrap();
    assert_eq!(s.neurons, 4);
    assert_eq!(s.seed, 0);
    assert_eq!(s.output, Path::new("out/t"));
}

#[test]
fn toml_syntax_error() {
    expect_err("neurons = 4", "neurons = = 4", 4, None, &["bad.toml:4:"]);
}

#[test]
fn unknown_key_is_an_error_listing_the_allowed_keys() {
    expect_err(
        "neurons = 4",
        "neurons = 4\nneuronz = 5",
        5,
        None,
        &["neuronz", "neurons"],
    );
}

#[test]
fn unknown_section_is_an_error() {
    expect_err("[cost]", "[costs]\nx = 1\n[cost]", 11, None, &["costs"]);
}

#[test]
fn wrong_type() {
    expect_err("neurons = 4", "neurons = \"four\"", 4, None, &["string"]);
}

#[test]
fn missing_section() {
    let text = GOOD.replace("[cost]\nlambda = 0.5\n", "");
    let err = parse(&text).unwrap_err();
    assert!(err.to_string().contains("cost"), "{err}");
}

#[test]
fn neurons_out_of_range() {
    expect_err(
        "neurons = 4",
        "neurons = 0",
        4,
        Some("network.neurons"),
        &["got 0", "allowed"],
    );
}

#[test]
fn unknown_update_scheme_lists_the_allowed_ones() {
    expect_err(
        "neurons = 4",
        "neurons = 4\nupdate = \"glauber\"",
        5,
        None,
        &["glauber", "asynchronous", "random_partial"],
    );
}

#[test]
fn random_partial_needs_q_and_q_needs_random_partial() {
    expect_err(
        "neurons = 4",
        "neurons = 4\nupdate = \"random_partial\"",
        5,
        Some("network.q"),
        &["q"],
    );
    expect_err(
        "neurons = 4",
        "neurons = 4\nq = 0.5",
        5,
        Some("network.q"),
        &["random_partial"],
    );
    expect_err(
        "neurons = 4",
        "neurons = 4\nupdate = \"random_partial\"\nq = 1.5",
        6,
        Some("network.q"),
        &["1.5", "(0, 1]"],
    );
}

#[test]
fn dead_neurons_out_of_range_or_all() {
    expect_err(
        "neurons = 4",
        "neurons = 4\ndead = [4]",
        5,
        Some("network.dead"),
        &["4", "0 to 3"],
    );
    expect_err(
        "neurons = 4",
        "neurons = 4\ndead = [0, 1, 2, 3]",
        5,
        Some("network.dead"),
        &["living"],
    );
}

#[test]
fn transition_rows_must_sum_to_one_and_be_square() {
    expect_err(
        "switch_probability = 0.1",
        "transition = [[0.9, 0.2], [0.5, 0.5]]",
        7,
        Some("input.transition"),
        &["row 0", "sums to", "1"],
    );
    expect_err(
        "switch_probability = 0.1",
        "transition = [[1.0], [1.0]]",
        7,
        Some("input.transition"),
        &["2×2"],
    );
}

#[test]
fn input_dynamics_exactly_once() {
    expect_err(
        "switch_probability = 0.1",
        "switch_probability = 0.1\ntransition = [[1.0, 0.0], [0.0, 1.0]]",
        8,
        Some("input.transition"),
        &["not both"],
    );
    expect_err(
        "switch_probability = 0.1",
        "",
        5,
        Some("input"),
        &["switch_probability", "transition"],
    );
    expect_err(
        "switch_probability = 0.1",
        "switch_probability = -0.1",
        7,
        Some("input.switch_probability"),
        &["[0, 1]"],
    );
}

#[test]
fn target_counts_must_match_inputs_and_be_possible() {
    expect_err(
        "targets = [1, 3]",
        "targets = [1]",
        10,
        Some("reward.targets"),
        &["1 targets for 2 input values"],
    );
    expect_err(
        "targets = [1, 3]",
        "targets = [1, 5]",
        10,
        Some("reward.targets"),
        &["5", "0 to 4"],
    );
}

#[test]
fn reward_keys_must_fit_the_kind() {
    expect_err(
        "targets = [1, 3]",
        "targets = [1, 3]\nfile = \"r.csv\"",
        11,
        Some("reward.file"),
        &["does not apply", "targets"],
    );
    expect_err(
        "kind = \"target_count\"",
        "kind = \"hebbian\"",
        9,
        None,
        &["hebbian", "target_count", "pattern", "table"],
    );
    expect_err("targets = [1, 3]", "", 8, Some("reward.targets"), &["missing"]);
}

#[test]
fn pattern_neurons_in_range_and_disjoint() {
    let pat = "kind = \"pattern\"\non = [[0], [1]]\noff = [[1], [9]]";
    expect_err(
        "kind = \"target_count\"\ntargets = [1, 3]",
        pat,
        11,
        Some("reward.off"),
        &["9", "0 to 3"],
    );
    let pat = "kind = \"pattern\"\non = [[0], [1]]\noff = [[0], [2]]";
    expect_err(
        "kind = \"target_count\"\ntargets = [1, 3]",
        pat,
        10,
        Some("reward.on"),
        &["both on and off"],
    );
}

#[test]
fn reward_table_file_problems() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    let write = |table: &str, body: &str| {
        std::fs::write(dir.path().join("r.csv"), table).unwrap();
        let text = GOOD.replace("kind = \"target_count\"\ntargets = [1, 3]", body);
        std::fs::write(&path, text).unwrap();
        Scenario::load(&path)
    };
    let row = vec!["0.5"; 16].join(",");
    let ok = write(&format!("{row}\n{row}\n"), "kind = \"table\"\nfile = \"r.csv\"");
    assert!(ok.is_ok(), "{:?}", ok.err());
    let err = write(&format!("{row}\n"), "kind = \"table\"\nfile = \"r.csv\"").unwrap_err();
    assert!(err.to_string().contains("1 rows; allowed: 2"), "{err}");
    assert_eq!(err.line, Some(10));
    let err = write("1,2\n1,2\n", "kind = \"table\"\nfile = \"r.csv\"").unwrap_err();
    assert!(err.to_string().contains("r.csv:1: 2 columns; allowed: 16"), "{err}");
    let err = write(
        &format!("{row}\n{}\n", row.replacen("0.5", "nan", 1)),
        "kind = \"table\"\nfile = \"r.csv\"",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("NaN") || err.to_string().contains("finite"),
        "{err}"
    );
    let err = write("", "kind = \"table\"\nfile = \"missing.csv\"").unwrap_err();
    assert!(err.to_string().contains("missing.csv"), "{err}");
    let err = write("", "kind = \"table\"\nfile = \"r.txt\"").unwrap_err();
    assert!(err.to_string().contains(".npy or .csv"), "{err}");
}

#[test]
fn lambda_must_be_positive() {
    expect_err("lambda = 0.5", "lambda = 0.0", 12, Some("cost.lambda"), &["positive"]);
    expect_err("lambda = 0.5", "lambda = -1.0", 12, Some("cost.lambda"), &["positive"]);
}

#[test]
fn prior_rules() {
    expect_err(
        "lambda = 0.5",
        "lambda = 0.5\nkind = \"fixed_prior\"",
        11,
        Some("cost.prior"),
        &["needs `prior`"],
    );
    expect_err(
        "lambda = 0.5",
        "lambda = 0.5\nkind = \"fixed_prior\"\nprior = 1.0",
        14,
        Some("cost.prior"),
        &["(0, 1)"],
    );
    expect_err(
        "lambda = 0.5",
        "lambda = 0.5\nkind = \"fixed_prior\"\nprior = [0.1, 0.2]",
        14,
        Some("cost.prior"),
        &["2 priors for 4 neurons"],
    );
    expect_err(
        "lambda = 0.5",
        "lambda = 0.5\nprior = 0.1",
        13,
        Some("cost.prior"),
        &["fixed_prior"],
    );
    let ok = parse(&GOOD.replace(
        "lambda = 0.5",
        "lambda = 0.5\nkind = \"fixed_prior\"\nprior = [0.1, 0.2, 0.3, 0.4]",
    ));
    assert!(ok.is_ok());
}

#[test]
fn unknown_solver_knob_and_bad_values() {
    expect_err(
        "lambda = 0.5",
        "lambda = 0.5\n[solver]\nvalue_tolerance = 1e-9",
        14,
        None,
        &["value_tolerance", "value_tol"],
    );
    expect_err(
        "lambda = 0.5",
        "lambda = 0.5\n[solver]\ndamping = 0.0",
        14,
        Some("solver.damping"),
        &["(0, 1]"],
    );
}

#[test]
fn bad_name_is_refused() {
    let err = parse(&GOOD.replace("name = \"t\"", "name = \"../etc\"")).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("name"));
}

#[test]
fn too_many_neurons_to_tabulate_is_refused_by_network() {
    let s = parse(
        &GOOD
            .replace("neurons = 4", "neurons = 40")
            .replace("[1, 3]", "[10, 30]"),
    )
    .unwrap();
    let err = s.network().unwrap_err();
    assert!(err.to_string().contains("at most 30"), "{err}");
}

#[test]
fn topology_parameters_are_checked() {
    expect_err(
        "neurons = 4",
        "neurons = 4\ntopology = { kind = \"ring\", k = 2 }",
        5,
        Some("network.topology"),
        &["k = 2", "1 to 1"],
    );
    expect_err(
        "neurons = 4",
        "neurons = 4\ntopology = { kind = \"lattice2d\", width = 3, height = 2 }",
        5,
        Some("network.topology"),
        &["6 sites", "= 4"],
    );
    expect_err(
        "neurons = 4",
        "neurons = 4\ntopology = { kind = \"erdos_renyi\", p = 1.5 }",
        5,
        Some("network.topology"),
        &["[0, 1]"],
    );
    expect_err(
        "neurons = 4",
        "neurons = 4\ntopology = { kind = \"ring\", q = 1 }",
        5,
        None,
        &["unknown field `q`"],
    );
    expect_err(
        "neurons = 4",
        "neurons = 4\ninputs = [0, 7]",
        5,
        Some("network.inputs"),
        &["7", "0 to 3"],
    );
    expect_err(
        "neurons = 4",
        "neurons = 4\ninputs = \"some\"",
        5,
        Some("network.inputs"),
        &["\"all\""],
    );
    let s = parse(&GOOD.replace(
        "neurons = 4",
        "neurons = 4\ntopology = { kind = \"random_in_degree\", k = 2 }\ninputs = [0]",
    ))
    .unwrap();
    assert_eq!(s.receives_input, vec![true, false, false, false]);
    // Asynchronous: solved with partially observed best responses.
    let net = s.network().unwrap();
    let obs = net.observes.as_ref().expect("partially observed");
    for (k, o) in obs.iter().enumerate() {
        assert_eq!(o.input, k == 0);
        assert_eq!(o.mask.count_ones(), 3, "itself and its two partners");
        assert_ne!(o.mask & 1 << k, 0, "a neuron sees its own state");
    }
    // Synchronous: refused, naming what is allowed.
    let s = parse(&GOOD.replace(
        "neurons = 4",
        "neurons = 4\nupdate = \"synchronous\"\ntopology = { kind = \"none\" }",
    ))
    .unwrap();
    let err = s.network().unwrap_err().to_string();
    assert!(
        err.contains("asynchronous") && err.contains("network.topology"),
        "{err}"
    );
}

#[test]
fn edge_list_errors_name_the_edge_file_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("edges.csv"),
        "pre,post,weight\n0,1,0.5\n1,2,0.5\n2,9,1.0\n",
    )
    .unwrap();
    let text = GOOD.replace(
        "neurons = 4",
        "neurons = 4\ntopology = { kind = \"edge_list\", file = \"edges.csv\" }",
    );
    let path = dir.path().join("s.toml");
    std::fs::write(&path, &text).unwrap();
    let err = Scenario::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("edges.csv:4") && err.contains("out of range") && err.contains("0 to 3"),
        "{err}"
    );
    std::fs::write(dir.path().join("edges.csv"), "0,1\n1,1\n").unwrap();
    let err = Scenario::load(&path).unwrap_err().to_string();
    assert!(err.contains("edges.csv:2") && err.contains("self-loop"), "{err}");
    std::fs::write(dir.path().join("edges.csv"), "0,1\n1,2\n0,1\n").unwrap();
    let err = Scenario::load(&path).unwrap_err().to_string();
    assert!(err.contains("edges.csv:3") && err.contains("duplicate"), "{err}");
    std::fs::write(dir.path().join("edges.csv"), "0,1\n1,2\n").unwrap();
    let s = Scenario::load(&path).unwrap();
    let net = s.runtime_network();
    assert_eq!(net.topology.partners(1), &[0]);
}

/// `[learning]` holding the one line `line` after the good scenario.
fn with_learning(line: &str) -> String {
    format!("{GOOD}[learning]\n{line}\n")
}

/// That one line is refused at its line, under `key`, mentioning `needles`.
fn check_learning_line(line: &str, key: &str, needles: &[&str]) {
    let err = parse(&with_learning(line)).expect_err(line);
    let shown = err.to_string();
    assert_eq!(err.line, Some(GOOD.lines().count() + 2), "{shown}");
    assert_eq!(err.key.as_deref(), Some(key), "{shown}");
    for n in needles {
        assert!(shown.contains(n), "{shown:?} should mention {n:?}");
    }
}

#[test]
fn learning_section_errors_name_the_key_and_the_allowed_values() {
    let with = with_learning;
    let check = check_learning_line;
    check(
        r#"rule = ["actor_critic", "sarsa"]"#,
        "learning.rule",
        &["\"sarsa\"", "\"reinforce\""],
    );
    check(r#"policy = []"#, "learning.policy", &["empty", "\"logistic\""]);
    check("tabular_rate = -0.1", "learning.tabular_rate", &["positive"]);
    check("trace_decay = 1.0", "learning.trace_decay", &["[0, 1)"]);
    check("ticks = 0", "learning.ticks", &["from 1"]);
    // A tabular critic over 40 neurons cannot fit.
    let big = with(r#"critic = "tabular""#)
        .replace("neurons = 4", "neurons = 40")
        .replace("[1, 3]", "[10, 30]");
    let err = parse(&big).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("learning.critic"));
    assert!(err.to_string().contains("counts"), "{err}");
    // And a good section round-trips its values.
    let s = parse(&with(
        "rule = \"reinforce\"\npolicy = [\"logistic\", \"logistic\"]\ncost = \"own\"\nticks = 1000",
    ))
    .unwrap();
    assert_eq!(s.learning.rules, vec![marlin::learn::Rule::Reinforce]);
    assert_eq!(s.learning.policies, vec![marlin::learn::PolicyKind::Logistic]);
    assert!(s.learning.own_cost);
    assert_eq!(s.learning.ticks, 1000);
    assert_eq!(s.learning.decoder, None);
}

#[test]
fn decoder_errors_name_the_key_and_what_is_allowed() {
    let with = |d: &str| with_learning(&format!("decoder = {d}"));
    let check = |d: &str, key: &str, needles: &[&str]| check_learning_line(&format!("decoder = {d}"), key, needles);
    // The good scenario has 2 input values.
    check(
        "{ feature = [0, 1, 1] }",
        "learning.decoder.feature",
        &["3 entries", "(2)"],
    );
    check(
        "{ feature = [0, 2] }",
        "learning.decoder.feature[1]",
        &["got 2", "from 0 to 1"],
    );
    check("{ feature = [1, 1] }", "learning.decoder.feature", &["never changes"]);
    check("{ feature = [0, 1], rate = 0 }", "learning.decoder.rate", &["(0, 1]"]);
    check(
        "{ feature = [0, 1], reliability = 0.3 }",
        "learning.decoder.reliability",
        &["[0.5, 1)"],
    );
    let big = with("{ feature = [0, 1] }")
        .replace("neurons = 4", "neurons = 24")
        .replace("[1, 3]", "[10, 20]");
    let err = parse(&big).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("learning.decoder"), "{err}");
    assert!(err.to_string().contains("at most 20 neurons"), "{err}");
    let err = parse(&with("{ feature = [0, 1], colour = 1 }")).unwrap_err();
    assert!(err.to_string().contains("unknown field `colour`"), "{err}");
    // A good decoder round-trips, with the defaults filled in.
    let s = parse(&with("{ feature = [0, 1], rate = 0.01 }")).unwrap();
    let d = s.learning.decoder.unwrap();
    assert_eq!(d.feature, vec![false, true]);
    assert_eq!(d.rate, 0.01);
    assert_eq!(
        d.reliability,
        marlin::coding::CodingOptions::default().initial_reliability
    );
}

#[test]
fn neurons_section_errors_name_the_key_and_what_applies() {
    let ring = "neurons = 4\ntopology = { kind = \"ring\", k = 1 }";
    let with = |neurons: &str| GOOD.replace("neurons = 4", ring) + "[neurons]\n" + neurons;
    let err = |neurons: &str| parse(&with(neurons)).unwrap_err();
    // The good cases: Dale weights per presynaptic population, uniform weights.
    let s = parse(&with(
        "bias = -0.6\nweights = \"dale\"\nexcitatory_fraction = 0.5\nexcitatory_weight = 0.2\ninhibitory_weight = -1.0\n",
    ))
    .unwrap();
    let ln = s.logistic_neurons(&s.runtime_network()).unwrap();
    assert_eq!(
        ln.weights,
        marlin::runtime::sparse::Weights::PerSource(vec![0.2, 0.2, -1.0, -1.0])
    );
    assert_eq!(ln.bias, vec![-0.6; 4]);
    assert_eq!(ln.prior, vec![0.5; 4], "mutual-information cost: the untrained prior");
    assert!(parse(&with("bias = 0\nweights = \"uniform\"\nweight = 0.1\n")).is_ok());
    // A missing key of the chosen rule, a key of another rule, a bad value.
    let e = err("bias = 0\nweights = \"dale\"\nexcitatory_weight = 0.2\ninhibitory_weight = -1\n");
    assert_eq!(e.key.as_deref(), Some("neurons.weights"));
    assert!(e.to_string().contains("needs neurons.excitatory_fraction"), "{e}");
    // Line 18: the fifth line of [neurons], which starts on line 14 (GOOD opens with a blank line).
    let e = err("bias = 0\nweights = \"uniform\"\nweight = 0.1\nexcitatory_weight = 0.2\n");
    assert_eq!(
        (e.key.as_deref(), e.line),
        (Some("neurons.excitatory_weight"), Some(18))
    );
    assert!(e.to_string().contains("does not apply to weights = \"uniform\"") && e.to_string().contains("weight"));
    let e = err(
        "bias = 0\nweights = \"dale\"\nexcitatory_fraction = 1.5\nexcitatory_weight = 0.2\ninhibitory_weight = -1\n",
    );
    assert!(e.to_string().contains("[0, 1]"), "{e}");
    let e = err("bias = nan\nweights = \"uniform\"\nweight = 0.1\n");
    assert_eq!(e.key.as_deref(), Some("neurons.bias"));
    let e = err("bias = 0\nweights = \"hebbian\"\n");
    assert!(
        e.to_string().contains("dale") && e.to_string().contains("edge_list"),
        "{e}"
    );
    // Edge-list weights need an edge list with a weight column.
    let e = err("bias = 0\nweights = \"edge_list\"\n");
    assert!(e.to_string().contains("third column"), "{e}");
    // All-to-all networks are not for the sparse engine.
    let text = GOOD.to_string() + "[neurons]\nbias = 0\nweights = \"uniform\"\nweight = 0.1\n";
    let e = parse(&text).unwrap_err();
    assert!(e.to_string().contains("all_to_all"), "{e}");
}

#[test]
fn neurons_take_edge_list_weights_aligned_with_the_partners() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("edges.csv"),
        "pre,post,weight\n2,0,0.5\n1,0,-1.5\n0,2,2\n",
    )
    .unwrap();
    let text = GOOD.replace(
        "neurons = 4",
        "neurons = 4\ntopology = { kind = \"edge_list\", file = \"edges.csv\" }",
    ) + "[neurons]\nbias = 0\nweights = \"edge_list\"\n";
    let path = dir.path().join("s.toml");
    std::fs::write(&path, &text).unwrap();
    let s = Scenario::load(&path).unwrap();
    let net = s.runtime_network();
    let ln = s.logistic_neurons(&net).unwrap();
    // Neuron 0's partners in ascending order (1, 2), then neuron 2's (0).
    assert_eq!(net.topology.partners(0), &[1, 2]);
    assert_eq!(
        ln.weights,
        marlin::runtime::sparse::Weights::PerSynapse(vec![-1.5, 0.5, 2.0])
    );
}

#[test]
fn a_duplicate_key_is_named_with_its_table_and_first_line() {
    // GOOD: line 4 `neurons = 4` in [network]; the copy lands on line 5.
    expect_err(
        "neurons = 4",
        "neurons = 4\nneurons = 5",
        5,
        Some("network.neurons"),
        &["bad.toml:5:1", "`neurons` is set twice", "line 4", "allowed"],
    );
    // A key of the top-level table, quoted the second time.
    expect_err(
        "name = \"t\"",
        "name = \"t\"\n\"name\" = \"u\"",
        3,
        Some("name"),
        &["`name` is set twice", "line 2"],
    );
}

#[test]
fn a_duplicate_table_is_named_with_its_first_line() {
    // GOOD: `[cost]` is on line 11; a second one follows its `lambda`.
    expect_err(
        "lambda = 0.5",
        "lambda = 0.5\n[cost]\nkind = \"mutual_information\"",
        13,
        Some("cost"),
        &["bad.toml:13:", "`cost` is set twice", "line 11"],
    );
}

#[test]
fn input_values_must_be_distinct() {
    expect_err(
        "values = [-1.0, 1.0]",
        "values = [1.0, 1.0]",
        6,
        Some("input.values"),
        &["got 1 twice", "values 1 and 2", "allowed: distinct values"],
    );
    expect_err(
        "values = [-1.0, 1.0]",
        "values = [-1.0, 0.5, 2.0, 0.5]",
        6,
        Some("input.values"),
        &["got 0.5 twice", "values 2 and 4"],
    );
    // -0.0 and 0.0 are the same input.
    expect_err(
        "values = [-1.0, 1.0]",
        "values = [0.0, -0.0]",
        6,
        Some("input.values"),
        &["twice"],
    );
}
