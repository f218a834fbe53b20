//! Docs that run: every ```sh block of README.md and of docs/*.md is run,
//! line by line and in order, in a temporary copy of the repository's
//! scenarios and example data, with `marlin` on PATH (the binary under
//! test; `cargo run --release --` in the README means the same). A line
//! that fails fails the test, naming the file and line.
//!
//! What a line promises is checked too: a comment `… → PATH` says where the
//! command writes, and PATH must exist afterwards (`<λ>` stands for any
//! text). After all blocks ran, the documented numbers that follow from
//! the commands are compared with what they wrote: the toy's trade-off
//! table (the sweep), the maze demonstrators' information (its sweep), the
//! maze inference finding the goal, and the toy inference's peak.
//!
//! Tick counts: `MARLIN_DOCS_TICK_SCALE` (default 0.1; `1` runs the blocks
//! exactly as written) multiplies every tick count above 10⁵ — `--ticks N`
//! on a line and `ticks`/`*_ticks` keys of the copied scenarios — but never
//! below 10⁵, so the short runs the documented numbers come from are run
//! as written.
//!
//! A block is skipped only by a marker on the line just above its fence,
//! with the reason: `<!-- docs-test: skip: REASON -->`, or
//! `<!-- docs-test: skip lines starting with `PREFIX`, …: REASON -->`.
//! Any other `docs-test` marker is an error, so markers cannot rot.

mod cli_common;

use std::path::{Path, PathBuf};
use std::process::Command;

const FLOOR: u64 = 100_000;

/// One runnable line of a shell block.
#[derive(Debug)]
struct Line {
    file: String,
    line: usize,
    text: String,
}

/// The shell blocks of one markdown file, with their skip markers applied.
fn runnable_lines(file: &str, text: &str, skipped: &mut Vec<String>) -> Vec<Line> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_start().starts_with("```sh") {
            let marker = (i > 0).then(|| lines[i - 1].trim()).filter(|l| l.contains("docs-test"));
            let (skip_all, prefixes) = match marker {
                None => (false, Vec::new()),
                Some(m) => parse_marker(m).unwrap_or_else(|e| panic!("{file}:{i}: {e}: {m}")),
            };
            let start = i + 1;
            let mut j = start;
            let mut pending = String::new();
            let mut pending_line = 0;
            while j < lines.len() && !lines[j].trim_start().starts_with("```") {
                let l = lines[j];
                if pending.is_empty() {
                    pending_line = j + 1;
                }
                if let Some(head) = l.strip_suffix('\\') {
                    pending.push_str(head);
                    j += 1;
                    continue;
                }
                pending.push_str(l);
                let cmd = std::mem::take(&mut pending);
                let trimmed = cmd.trim();
                if !trimmed.is_empty() && !trimmed.starts_with('#') {
                    if skip_all || prefixes.iter().any(|p| trimmed.starts_with(p.as_str())) {
                        skipped.push(format!("{file}:{pending_line}: {trimmed}"));
                    } else {
                        out.push(Line {
                            file: file.into(),
                            line: pending_line,
                            text: trimmed.into(),
                        });
                    }
                }
                j += 1;
            }
            assert!(j < lines.len(), "{file}:{i}: a ```sh block that never closes");
            i = j + 1;
        } else {
            i += 1;
        }
    }
    out
}

/// `skip: REASON` → skip the block; `skip lines starting with `A`, `B`: REASON`
/// → skip those lines. A reason is required.
fn parse_marker(m: &str) -> Result<(bool, Vec<String>), String> {
    let body = m
        .strip_prefix("<!--")
        .and_then(|s| s.strip_suffix("-->"))
        .map(str::trim)
        .and_then(|s| s.strip_prefix("docs-test:"))
        .map(str::trim)
        .ok_or("a docs-test marker is `<!-- docs-test: … -->`")?;
    if let Some(reason) = body.strip_prefix("skip:") {
        if reason.trim().len() < 10 {
            return Err("a skipped block needs its reason".into());
        }
        return Ok((true, Vec::new()));
    }
    if let Some(rest) = body.strip_prefix("skip lines starting with") {
        let (list, reason) = rest.split_once(':').ok_or("`skip lines starting with …: REASON`")?;
        if reason.trim().len() < 10 {
            return Err("skipped lines need their reason".into());
        }
        let prefixes: Vec<String> = list
            .split(',')
            .map(|p| p.trim().trim_matches('`').to_string())
            .filter(|p| !p.is_empty())
            .collect();
        if prefixes.is_empty() {
            return Err("no prefix given".into());
        }
        return Ok((false, prefixes));
    }
    Err("unknown docs-test marker (allowed: `skip: REASON`, `skip lines starting with `P`: REASON`)".into())
}

fn scale() -> f64 {
    match std::env::var("MARLIN_DOCS_TICK_SCALE") {
        Err(_) => 0.1,
        Ok(v) => v
            .parse::<f64>()
            .ok()
            .filter(|s| *s > 0.0 && *s <= 1.0)
            .unwrap_or_else(|| panic!("MARLIN_DOCS_TICK_SCALE={v}: a number in (0, 1] is allowed")),
    }
}

fn scaled(n: u64, scale: f64) -> u64 {
    if n <= FLOOR {
        n
    } else {
        ((n as f64 * scale).round() as u64).max(FLOOR)
    }
}

/// `--ticks N` scaled; `cargo run --release --` is `marlin`.
fn rewrite(cmd: &str, scale: f64) -> String {
    let cmd = cmd.replace("cargo run --release --", "marlin");
    let words: Vec<&str> = cmd.split(' ').collect();
    let mut out: Vec<String> = Vec::new();
    for (k, w) in words.iter().enumerate() {
        let after_ticks = k > 0 && words[k - 1] == "--ticks";
        match w.replace('_', "").parse::<u64>() {
            Ok(n) if after_ticks => out.push(scaled(n, scale).to_string()),
            _ => out.push(w.to_string()),
        }
    }
    out.join(" ")
}

/// A scenario file with its `ticks` and `*_ticks` keys scaled.
fn scale_scenario(text: &str, scale: f64) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut new = line.to_string();
        if let Some((key, rest)) = line.split_once('=') {
            let k = key.trim();
            if k == "ticks" || k.ends_with("_ticks") {
                let (value, comment) = match rest.split_once('#') {
                    Some((v, c)) => (v, format!(" #{c}")),
                    None => (rest, String::new()),
                };
                if let Ok(n) = value.trim().replace('_', "").parse::<u64>() {
                    new = format!("{key}= {}{comment}", scaled(n, scale));
                }
            }
        }
        out.push_str(&new);
        out.push('\n');
    }
    out
}

fn copy_tree(from: &Path, to: &Path, scale: f64) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target, scale);
        } else if e.path().extension().is_some_and(|x| x == "toml") {
            let text = std::fs::read_to_string(e.path()).unwrap();
            std::fs::write(target, scale_scenario(&text, scale)).unwrap();
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The path promised by `… → PATH` in the line's comment, if any.
fn promised(cmd: &str) -> Option<String> {
    let comment = cmd.split_once(" #")?.1;
    let after = comment.rsplit_once('→')?.1.trim();
    let path = after.split_whitespace().next()?;
    let path = path.trim_end_matches([',', ';', ':', ')', '.']);
    path.contains('/').then(|| path.to_string())
}

/// Does `pattern` (components may hold `<…>` for any text) name something
/// that exists under `root`?
fn exists(root: &Path, pattern: &str) -> bool {
    let mut candidates = vec![root.to_path_buf()];
    for comp in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for dir in &candidates {
            match comp.split_once('<') {
                None => {
                    let p = dir.join(comp);
                    if p.exists() {
                        next.push(p);
                    }
                }
                Some((head, rest)) => {
                    let tail = rest.split_once('>').map_or("", |(_, t)| t);
                    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if name.len() > head.len() + tail.len() && name.starts_with(head) && name.ends_with(tail) {
                            next.push(e.path());
                        }
                    }
                }
            }
        }
        candidates = next;
    }
    !candidates.is_empty()
}

fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    let mut files = vec![root.join("README.md")];
    files.extend(docs);
    files
}

/// The rows of the first markdown table after the line starting with `intro`
/// (in README.md and docs/*.md, read as one text).
fn table_after(text: &str, intro: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(intro));
    assert!(
        lines.next().is_some(),
        "README.md and docs/*.md: no paragraph starting {intro:?}"
    );
    lines
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and rule
        .map(|l| l.trim_matches('|').split('|').map(|c| c.trim().to_string()).collect())
        .collect()
}

fn number(cell: &str) -> f64 {
    cell.parse()
        .unwrap_or_else(|_| panic!("a table in the docs: {cell:?} is not a number"))
}

/// The documented numbers that follow from the blocks' commands.
fn check_documented_results(docs: &str, dir: &Path) {
    // The toy's trade-off table is the tour's sweep (exact solves).
    let rows = table_after(docs, "On the toy, the trade-off as λ grows");
    let sweep = cli_common::json(&dir.join("out/toy8/sweep/summary.json"));
    let sweep = sweep["sweep"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        sweep.len(),
        "the docs' toy trade-off table against the sweep's λ"
    );
    for row in &rows {
        let lambda = number(&row[0]);
        let got = sweep
            .iter()
            .find(|s| (s["lambda"].as_f64().unwrap() - lambda).abs() < 1e-12)
            .unwrap_or_else(|| panic!("the docs' toy table has λ = {lambda}, the tour's sweep has not"));
        for (col, key) in [(1, "g"), (2, "mean_reward"), (3, "info_nats")] {
            let (doc, v) = (number(&row[col]), got[key].as_f64().unwrap());
            assert!(
                (doc - v).abs() <= 5e-5,
                "the docs' toy table, λ = {lambda}, {key}: documented {doc}, the solve gives {v}"
            );
        }
    }
    // The maze demonstrators' information per λ is the Mazes block's sweep.
    let rows = table_after(docs, "Measured on `scenarios/maze.toml`");
    let sweep = cli_common::json(&dir.join("out/maze/sweep/summary.json"));
    let sweep = sweep["sweep"].as_array().unwrap();
    let mut checked = 0;
    for row in &rows {
        let (lambda, bits) = (number(&row[0]), number(&row[1]));
        let got = sweep
            .iter()
            .find(|s| (s["lambda"].as_f64().unwrap() - lambda).abs() < 1e-12)
            .unwrap_or_else(|| panic!("the docs' maze table has λ = {lambda}, the Mazes block's sweep has not"));
        let v = got["info_bits"].as_f64().unwrap();
        assert!(
            (bits - v).abs() <= 5e-4,
            "the docs' maze table, λ = {lambda}: I(S;A) documented {bits} bits, the solve gives {v}"
        );
        checked += 1;
    }
    assert!(checked >= 3);
    // "the goal comes out on top every time from 10 trajectories at λ ≤ 0.2":
    // the Mazes block records 100 at λ = 0.2.
    let maze = cli_common::json(&dir.join("out/maze/infer/reward.json"));
    let methods = maze["summary"]["methods"].as_array().unwrap();
    assert_eq!(methods.len(), 4, "the docs name four estimators");
    for m in methods {
        assert_eq!(
            m["argmax_is_goal"], true,
            "maze inference, {}: the goal is not on top",
            m["model"]
        );
    }
    // The toy inferences from the optimum's 10⁵ ticks peak at counts 2 / 6,
    // and the tabular bootstrap intervals separate them.
    for (folder, model) in [("out/toy8/infer", "tabular"), ("out/toy8/infer_count", "count")] {
        let r = cli_common::json(&dir.join(folder).join("reward.json"));
        assert_eq!(r["reward_model"], model, "{folder}");
        assert_eq!(
            r["argmax_count"],
            serde_json::json!([2, 6]),
            "{folder}: {}",
            r["headline"]
        );
    }
    let r = cli_common::json(&dir.join("out/toy8/infer/reward.json"));
    assert_eq!(
        r["argmax_separated"],
        serde_json::json!([true, true]),
        "out/toy8/infer: {}",
        r["count_reward_interval"]
    );
}

#[test]
fn every_shell_block_of_the_docs_runs_as_written() {
    let root = &cli_common::repo();
    let scale = scale();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_tree(&root.join("scenarios"), &dir.join("scenarios"), scale);
    copy_tree(&root.join("docs/examples"), &dir.join("docs/examples"), scale);
    let bin = dir.join(".bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_marlin"), bin.join("marlin")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());

    let mut skipped = Vec::new();
    let mut lines = Vec::new();
    let mut docs = String::new();
    for file in markdown_files(root) {
        let name = file.strip_prefix(root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        lines.extend(runnable_lines(&name, &text, &mut skipped));
        docs.push_str(&text);
        docs.push('\n');
    }
    assert!(
        lines.len() >= 30,
        "only {} runnable lines found: is the block syntax still ```sh?",
        lines.len()
    );
    for s in &skipped {
        println!("SKIPPED (marked in the docs): {s}");
    }
    for l in &lines {
        let cmd = rewrite(&l.text, scale);
        println!("{}:{}: {cmd}", l.file, l.line);
        let started = std::time::Instant::now();
        let out = Command::new("bash")
            .args(["-c", &cmd])
            .current_dir(dir)
            .env("PATH", &path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{}:{}: `{cmd}` failed ({}):\n{}",
            l.file,
            l.line,
            out.status,
            stderr
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
        println!("    ok in {:.1} s", started.elapsed().as_secs_f64());
        if let Some(p) = promised(&l.text) {
            assert!(
                exists(dir, &p),
                "{}:{}: `{cmd}` promises {p}, which it did not write",
                l.file,
                l.line
            );
        }
    }
    check_documented_results(&docs, dir);
}

#[test]
fn the_line_reader_joins_continuations_skips_marked_lines_and_refuses_unknown_markers() {
    let md = "x\n<!-- docs-test: skip lines starting with `mpirun`: needs an MPI build -->\n```sh\nmarlin a \\\n  --b 1   # → out/x/\n\n# comment\nmpirun -np 2 marlin c\n```\n```sh\nmarlin d\n```\n";
    let mut skipped = Vec::new();
    let lines = runnable_lines("t.md", md, &mut skipped);
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["marlin a   --b 1   # → out/x/", "marlin d"]);
    assert_eq!(lines[0].line, 4);
    assert_eq!(skipped, ["t.md:8: mpirun -np 2 marlin c"]);
    assert_eq!(promised(&lines[0].text).as_deref(), Some("out/x/"));
    for bad in [
        "<!-- docs-test: skip -->",
        "<!-- docs-test: skip: -->",
        "<!-- docs-test: ignore: because it is slow -->",
        "<!-- docs-test: skip lines starting with: a reason long enough -->",
    ] {
        assert!(parse_marker(bad).is_err(), "{bad}");
    }
    let md = "<!-- docs-test: skip: needs a nightly toolchain -->\n```sh\nmarlin x\n```\n";
    let mut skipped = Vec::new();
    assert!(runnable_lines("t.md", md, &mut skipped).is_empty());
    assert_eq!(skipped.len(), 1);
}

#[test]
fn tick_counts_above_the_floor_are_scaled_and_nothing_else() {
    assert_eq!(
        rewrite("marlin simulate a.toml --ticks 1000000 --out x", 0.1),
        "marlin simulate a.toml --ticks 100000 --out x"
    );
    assert_eq!(
        rewrite("marlin simulate a.toml --ticks 100000", 0.1),
        "marlin simulate a.toml --ticks 100000"
    );
    assert_eq!(
        rewrite("marlin simulate a.toml --ticks 300000", 0.1),
        "marlin simulate a.toml --ticks 100000"
    );
    assert_eq!(rewrite("marlin x --seed 5000000", 0.1), "marlin x --seed 5000000");
    assert_eq!(rewrite("cargo run --release -- run s.toml", 1.0), "marlin run s.toml");
    let toml = "[learning]\nticks = 5_000_000   # five million\ntrain_ticks=2000000\nseed = 9000000\nticks = 50\n";
    assert_eq!(
        scale_scenario(toml, 0.1),
        "[learning]\nticks = 500000 # five million\ntrain_ticks= 200000\nseed = 9000000\nticks = 50\n"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("out/sweep/lambda_0.5")).unwrap();
    assert!(exists(dir.path(), "out/sweep/lambda_<λ>/"));
    assert!(!exists(dir.path(), "out/sweep/mu_<λ>/"));
    assert!(!exists(dir.path(), "out/solve/"));
}
