//! What each subcommand does, as library functions the CLI calls: load and
//! validate inputs first, compute, then write every output atomically.
//!
//! Errors that are the user's input (a bad scenario, a network too large)
//! are [`BadInput`] so the binary can exit with code 2; anything else is a
//! failed run (exit 1).

pub mod coding;
pub mod import;
pub mod infer;
pub mod maze;
pub mod params;
pub mod predict;
pub mod simulate;
pub mod solve;
pub mod study;
pub mod team;
pub mod team_irl;
pub mod train;

use std::fmt;

/// An error caused by what the user gave us (exit code 2).
#[derive(Debug)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

impl From<crate::scenario::ScenarioError> for BadInput {
    fn from(e: crate::scenario::ScenarioError) -> Self {
        BadInput(e.to_string())
    }
}

/// Exit code for an error: 2 for bad input, 130 for a run stopped by Ctrl-C
/// after saving its checkpoint, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.chain().any(|e| e.is::<crate::checkpoint::Interrupted>()) {
        130
    } else if err
        .chain()
        .any(|e| e.is::<BadInput>() || e.is::<crate::scenario::ScenarioError>())
    {
        2
    } else {
        1
    }
}

/// Shipped scenarios: (file name, description), read from `dir`; a folder
/// that cannot be read is bad input naming it.
pub fn shipped_scenarios(dir: &std::path::Path) -> Result<Vec<(String, String)>, BadInput> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| BadInput(format!("--dir {}: cannot list the folder ({e})", dir.display())))?;
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) == Some("toml") {
            let desc = crate::scenario::World::load(&p)
                .map(|w| w.description().to_string())
                .unwrap_or_else(|e| format!("(invalid: {e})"));
            out.push((p.file_name().unwrap().to_string_lossy().into_owned(), desc));
        }
    }
    out.sort();
    Ok(out)
}

/// Write a figure: the SVG text a `report` function drew, or its error
/// naming the file.
pub(crate) fn draw(path: &std::path::Path, svg: Result<String, Box<dyn std::error::Error>>) -> anyhow::Result<()> {
    let svg = svg.map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))?;
    crate::files::write_text(path, &svg)
}

/// A figure file of a finished stage, for `report.html`.
pub(crate) fn figure(path: &std::path::Path, caption: &str) -> anyhow::Result<crate::report::html::Figure> {
    use anyhow::Context;
    let svg = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(crate::report::html::Figure {
        svg,
        caption: caption.to_string(),
    })
}

/// Whether to save a checkpoint now and whether to stop after it: `due`
/// (rank 0's clock says a checkpoint is due; the other ranks pass false) or
/// a stop requested on any rank. Under MPI every rank takes the same
/// decision (one sum over the ranks per block).
pub(crate) fn agree(ranks: Option<&crate::runtime::transport::Ranks>, due: bool) -> (bool, bool) {
    let stop = crate::checkpoint::stop_requested();
    match ranks {
        None => (due || stop, stop),
        Some(r) => {
            let [due, stop] = r.all_sum([due as i64, stop as i64]);
            (due > 0 || stop > 0, stop > 0)
        }
    }
}

/// Every rank's `mine`, in rank order (one process: `[mine]`). Two
/// all-gathers: the lengths, then the bytes packed in words.
pub(crate) fn gather_bytes(ranks: Option<&crate::runtime::transport::Ranks>, mine: Vec<u8>) -> Vec<Vec<u8>> {
    let Some(r) = ranks else {
        return vec![mine];
    };
    let mut lens = vec![0u64; r.size()];
    r.all_gather_words(&[mine.len() as u64], &mut lens, &vec![1; r.size()]);
    let counts: Vec<usize> = lens.iter().map(|&l| (l as usize).div_ceil(8)).collect();
    let words: Vec<u64> = mine
        .chunks(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .collect();
    let mut all = vec![0u64; counts.iter().sum()];
    r.all_gather_words(&words, &mut all, &counts);
    let mut at = 0;
    lens.iter()
        .zip(&counts)
        .map(|(&len, &c)| {
            let bytes: Vec<u8> = all[at..at + c].iter().flat_map(|w| w.to_le_bytes()).collect();
            at += c;
            bytes[..len as usize].to_vec()
        })
        .collect()
}
