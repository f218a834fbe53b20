//! The scenario reference (docs/scenarios.md) and the parser cannot disagree: every key
//! the reference shows (commented alternatives included) is accepted by the
//! parser in that table, and every key the parser accepts is shown.

use marlin::scenario::Scenario;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const GOOD: &str = "[network]\nneurons = 4\n[input]\nvalues = [-1.0, 1.0]\nswitch_probability = 0.1\n\
[reward]\nkind = \"target_count\"\ntargets = [1, 3]\n[cost]\nlambda = 0.5\n";

/// The first ```toml block of docs/scenarios.md.
fn reference() -> String {
    let section = std::fs::read_to_string("docs/scenarios.md").unwrap();
    let start = section.find("```toml").expect("a toml block") + "```toml".len();
    let end = start + section[start..].find("```").expect("the block ends");
    section[start..end].to_string()
}

/// Keys per table ("" is the top level) written in the reference.
fn reference_keys(block: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut table = String::new();
    for line in block.lines() {
        let code = line.split('#').next().unwrap_or("").trim();
        if code.starts_with('[') && code.ends_with(']') {
            table = code.trim_matches(['[', ']']).to_string();
            keys.entry(table.clone()).or_default();
            continue;
        }
        // A key, or a commented alternative "# key = …".
        let candidate = line.trim().trim_start_matches('#').trim();
        if let Some((k, _)) = candidate.split_once('=') {
            let k = k.trim();
            if !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                keys.entry(table.clone()).or_default().insert(k.to_string());
            }
        }
    }
    for t in keys.keys().filter(|t| !t.is_empty()).cloned().collect::<Vec<_>>() {
        keys.entry(String::new()).or_default().insert(t);
    }
    keys
}

/// The keys the parser accepts in `table`, read from its unknown-key error.
fn parser_keys(table: &str) -> BTreeSet<String> {
    let text = if table.is_empty() {
        format!("zzz_unknown = 1\n{GOOD}")
    } else if GOOD.contains(&format!("[{table}]")) {
        GOOD.replace(&format!("[{table}]\n"), &format!("[{table}]\nzzz_unknown = 1\n"))
    } else {
        format!("{GOOD}[{table}]\nzzz_unknown = 1\n")
    };
    let err = Scenario::parse(&text, Path::new("ref.toml"))
        .expect_err(table)
        .to_string();
    let list = &err[err
        .find("expected one of")
        .unwrap_or_else(|| panic!("[{table}]: {err}"))..];
    list.split('`').skip(1).step_by(2).map(String::from).collect()
}

/// The network scenario's tables.
const TABLES: [&str; 9] = [
    "", "network", "input", "reward", "cost", "solver", "learning", "study", "neurons",
];

#[test]
fn the_readme_reference_shows_exactly_the_keys_the_parser_accepts() {
    let shown = reference_keys(&reference());
    for table in TABLES {
        let accepted = parser_keys(table);
        let written = shown.get(table).cloned().unwrap_or_default();
        let missing: Vec<_> = accepted.difference(&written).collect();
        let unknown: Vec<_> = written.difference(&accepted).collect();
        assert!(
            missing.is_empty(),
            "[{table}] keys docs/scenarios.md does not show: {missing:?}"
        );
        assert!(
            unknown.is_empty(),
            "[{table}] keys docs/scenarios.md shows but the parser refuses: {unknown:?}"
        );
    }
    // Every table the reference shows is one checked above.
    for table in shown.keys() {
        assert!(TABLES.contains(&table.as_str()), "unchecked table [{table}]");
    }
}
