//! The architecture invariants that can be checked by reading the source
//! (ARCHITECTURE.md): the library never talks to the terminal or ends the
//! process, knows nothing of argument parsing or progress bars, and reads
//! archives only through the sealed reader.

use std::path::{Path, PathBuf};

/// Every .rs file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(sources(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The code of a source file: comments and the `#[cfg(test)]` module at
/// its end left out (tests may print).
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.trim_start().starts_with("//") {
            true => "",
            false => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// (file:line, the line) of every line of the library's code containing
/// one of `needles`, outside the files `allowed` (path prefixes).
fn find(needles: &[&str], allowed: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    for file in sources(Path::new("src")) {
        let name = file.display().to_string();
        if allowed.iter().any(|a| name.starts_with(a)) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in code(&text).lines().enumerate() {
            if needles.iter().any(|n| line.contains(n)) {
                hits.push(format!("{name}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    hits
}

#[test]
fn the_library_never_writes_to_the_terminal_or_ends_the_process() {
    let hits = find(
        &[
            "println!",
            "eprintln!",
            "print!(",
            "eprint!(",
            "std::process::exit",
            "dbg!(",
        ],
        &[],
    );
    assert!(
        hits.is_empty(),
        "terminal output or exit in the library (report through marlin::progress, log through tracing, return errors):\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_library_knows_nothing_of_arguments_or_progress_bars() {
    let hits = find(&["clap::", "indicatif::", "ctrlc::", "tracing_subscriber::"], &[]);
    assert!(
        hits.is_empty(),
        "the command's crates in the library:\n{}",
        hits.join("\n")
    );
    let manifest = std::fs::read_to_string("Cargo.toml").unwrap();
    let deps = &manifest[manifest.find("[dependencies]").unwrap()..];
    let deps = &deps[..deps.find("\n[").unwrap_or(deps.len())];
    for krate in ["clap", "indicatif", "ctrlc", "tracing-subscriber"] {
        assert!(
            !deps
                .lines()
                .any(|l| l.starts_with(&format!("{krate} ")) || l.starts_with(&format!("{krate}="))),
            "the library depends on {krate}"
        );
    }
}

#[test]
fn archives_are_read_only_through_the_sealed_reader() {
    let hits = find(
        &["NpzReader", "NpyFile", "ZipArchive", "ReadNpyExt", "ReadNpzError"],
        &["src/files/"],
    );
    assert!(
        hits.is_empty(),
        "an archive opened outside files:: (use files::open_npz, which checks the seal and the sizes):\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_checks_find_what_they_look_for() {
    let text = "fn a() {\n    // println!(\"a comment\")\n    eprintln!(\"x\");\n}\n#[cfg(test)]\nmod tests {\n    fn t() { println!(); }\n}\n";
    let code = code(text);
    assert!(code.contains("eprintln!") && !code.contains("println!(\"a comment\")") && !code.contains("fn t()"));
}
