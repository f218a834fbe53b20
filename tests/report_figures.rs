//! The report shows what a reader needs: the run's warnings in a box at the
//! top, and a colour bar with values on every heat map.

mod cli_common;

use marlin::report::html::{Section, page, summary_warnings};

#[test]
fn the_page_shows_the_summary_warnings_in_a_box_above_the_results() {
    let summary = serde_json::json!({
        "warnings": ["infer: 3 states visited fewer than 20 times are reported unidentified (NaN)", "solve: λ < 1 & more"]
    });
    let warnings = summary_warnings(&summary);
    assert_eq!(warnings.len(), 2);
    let sections = [Section {
        id: "solve".into(),
        title: "Exact optimum".into(),
        intro: String::new(),
        figures: Vec::new(),
    }];
    let html = page("t", "sub", &warnings, &[("g*".into(), "0.5".into())], &sections);
    let open = html.find("<div class=\"warnings\"").expect("a warnings box");
    let close = open + html[open..].find("</div>").expect("the box closes");
    let and_the_rest = html.find("Headline results").unwrap();
    assert!(close < and_the_rest, "the box comes before the headline table");
    assert!(open < html.find("<nav>").unwrap(), "and before the navigation");
    let boxed = &html[open..close];
    assert!(boxed.contains("2 warnings"), "{boxed}");
    assert!(
        boxed.contains("<li>infer: 3 states visited fewer than 20 times"),
        "{boxed}"
    );
    assert!(
        boxed.contains("<li>solve: λ &lt; 1 &amp; more</li>"),
        "escaped: {boxed}"
    );
    // The box is styled to stand out.
    assert!(html.contains(".warnings{border:"), "styled");
    // None without warnings.
    let quiet = page("t", "sub", &summary_warnings(&serde_json::json!({})), &[], &sections);
    assert!(!quiet.contains("class=\"warnings\""));
}

#[test]
fn a_study_report_shows_the_warnings_of_its_summary() {
    // A short recording leaves states rarely visited: inference warns.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("scenarios/toy8.toml")
        .unwrap()
        .replace("bootstrap = 100", "bootstrap = 0")
        .replace("train = true", "train = false")
        .replace(
            r#"perturbations = ["lambda:1.0", "kill:1", "input:0.97,0.03;0.01,0.99"]"#,
            r#"perturbations = ["lambda:1.0"]"#,
        );
    assert!(
        text.contains("train = false") && text.contains(r#"["lambda:1.0"]"#),
        "toy8.toml changed"
    );
    let scenario = dir.path().join("toy8.toml");
    std::fs::write(&scenario, text).unwrap();
    let out = dir.path().join("study");
    cli_common::run_ok(
        cli_common::marlin()
            .args(["-q", "run"])
            .arg(&scenario)
            .args(["--ticks", "3000", "--out"])
            .arg(&out),
    );
    let summary = cli_common::json(&out.join("summary.json"));
    let warnings = summary_warnings(&summary);
    assert!(!warnings.is_empty(), "the short recording warns: {summary}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let open = html.find("<div class=\"warnings\"").expect("a warnings box");
    assert!(open < html.find("Headline results").unwrap());
    for w in &warnings {
        let shown = marlin::report::html::escape(w);
        assert!(
            html[open..].contains(&format!("<li>{shown}</li>")),
            "{w} not in the box"
        );
    }
}

/// The text of every `<text>` element of an SVG.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .map(|t| {
            t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()]
                .trim()
                .to_string()
        })
        .collect()
}

#[test]
fn the_heat_map_has_a_colour_bar_with_its_values() {
    let svg = marlin::report::matrix("W", "pre", "post", &[vec![2.5, -1.0], vec![0.0, f64::NAN]]).unwrap();
    // Ticks at ±scale, ±scale/2 and 0, the scale being the largest magnitude.
    for label in ["2.5", "1.25", "0", "-1.25", "-2.5"] {
        assert!(
            texts(&svg).iter().any(|t| t == label),
            "colour-bar label {label} missing"
        );
    }
    // The gradient: many shades besides the four cells' colours and the
    // white background.
    let mut fills: Vec<&str> = svg.split("fill=\"#").skip(1).map(|s| &s[..6]).collect();
    fills.sort();
    fills.dedup();
    assert!(fills.len() >= 20, "a gradient of shades, not only the cells: {fills:?}");
    // Another scale, other labels.
    let svg = marlin::report::matrix("W", "pre", "post", &[vec![0.2, -0.1]]).unwrap();
    for label in ["0.2", "0.1", "-0.1", "-0.2"] {
        assert!(
            texts(&svg).iter().any(|t| t == label),
            "colour-bar label {label} missing"
        );
    }
}
