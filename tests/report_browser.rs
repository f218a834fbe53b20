//! The study report in a real browser: headless Chromium renders
//! report.html without console errors and every figure is drawn. Skipped,
//! with a message, where Chromium is not installed (`.ci/run` installs it).

use std::process::Command;

mod cli_common;

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(String::from)
}

#[test]
fn headless_chromium_renders_every_figure_without_console_errors() {
    let browser = chromium();
    if !cli_common::tool_or_skip(
        browser.is_some(),
        "report_browser",
        "chromium",
        "apt-get install chromium",
    ) {
        return;
    }
    let browser = browser.expect("checked");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("toy");
    let st = Command::new(env!("CARGO_BIN_EXE_marlin"))
        .args(["-q", "run", "scenarios/toy8.toml", "--ticks", "50000", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let url = format!("file://{}", out.join("report.html").display());
    let run = |extra: &[&str]| {
        Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .args(extra)
            .arg(&url)
            .output()
            .unwrap()
    };
    let dom = run(&["--dump-dom"]);
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let html = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    // Console messages are logged as "CONSOLE"; nothing may be reported.
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    // Every figure survived parsing and has drawn content.
    let figures: Vec<&str> = html.split("<figure>").skip(1).collect();
    assert_eq!(figures.len(), 10, "figures in the rendered DOM");
    for (i, f) in figures.iter().enumerate() {
        let svg = &f[..f
            .find("</svg>")
            .unwrap_or_else(|| panic!("figure {i} has no closed <svg>"))];
        let marks = ["<polyline", "<rect", "<circle", "<line", "<path"]
            .iter()
            .map(|m| svg.matches(m).count())
            .sum::<usize>();
        assert!(marks > 10, "figure {i} draws only {marks} marks");
        assert!(f.contains("<figcaption>"), "figure {i} has a caption");
    }
    // And it paints: a screenshot of the page is produced.
    let shot = dir.path().join("report.png");
    let o = run(&["--window-size=1200,2400", &format!("--screenshot={}", shot.display())]);
    assert!(o.status.success());
    assert!(
        std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false),
        "screenshot written"
    );
}
