//! File plumbing shared by every command: atomic writes (temporary file in the
//! destination folder, then rename, so no reader ever sees half a file), .npz
//! archives for numpy users, and reading user-supplied numeric tables.
//!
//! A leaf module: it knows nothing of networks or solvers.

use anyhow::{Context, Result};
use ndarray::{Array, Dimension};
use ndarray_npy::{NpzWriter, WritableElement};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Write `path` atomically: `write` fills a temporary file beside it, which is
/// synced and renamed into place only if everything succeeded.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut std::fs::File) -> Result<()>) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp: PathBuf = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        write(&mut f)?;
        f.flush()?;
        f.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Write text (e.g. JSON or SVG) atomically.
/// Memory this process may still allocate (`MemAvailable`), or 8 GiB where
/// the system does not say.
pub fn available_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kib| kib * 1024)
        .unwrap_or(8 << 30)
}

pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, |f| Ok(f.write_all(text.as_bytes())?))
}

/// Write a value as pretty JSON, atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    write_text(path, &(text + "\n"))
}

/// Adds one array to an open archive.
type AddArray = Box<dyn FnOnce(&mut NpzWriter<&mut std::fs::File>) -> Result<()>>;

/// Builder for an .npz archive that is written atomically on [`Npz::write`].
#[derive(Default)]
pub struct Npz {
    entries: Vec<AddArray>,
}

impl Npz {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add an array under `name` (numpy sees `name` as the key).
    pub fn add<A, D>(&mut self, name: &str, array: Array<A, D>) -> &mut Self
    where
        A: WritableElement + 'static,
        D: Dimension + 'static,
    {
        let key = name.to_string();
        self.entries.push(Box::new(move |w| {
            w.add_array(key.as_str(), &array)
                .map_err(|e| anyhow::anyhow!("writing array {key}: {e}"))
        }));
        self
    }

    pub fn write(self, path: &Path) -> Result<()> {
        write_atomic(path, |f| {
            let mut w = NpzWriter::new(f);
            for add in self.entries {
                add(&mut w)?;
            }
            w.finish()
                .map_err(|e| anyhow::anyhow!("finishing {}: {e}", path.display()))?;
            Ok(())
        })
    }
}

/// Read a reward table of shape `[X, 2ⁿ]` from `.npy` (float64) or `.csv`
/// (X rows of 2ⁿ numbers; `#` starts a comment). Errors say what is wrong and
/// what is allowed.
pub fn read_reward_table(path: &Path, inputs: usize, n: usize) -> std::result::Result<Vec<f64>, String> {
    let c = 1usize << n;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let table: Vec<f64> = match ext.as_str() {
        "npy" => {
            use ndarray_npy::ReadNpyExt;
            let f = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            let a = ndarray::Array2::<f64>::read_npy(f).map_err(|e| {
                format!(
                    "{} is not a 2-d float64 .npy array ({e}); allowed: float64 of shape [{inputs}, {c}]",
                    path.display()
                )
            })?;
            if a.shape() != [inputs, c] {
                return Err(format!(
                    "{} has shape {:?}; allowed: [{inputs}, {c}] (input values × 2^{n} network states)",
                    path.display(),
                    a.shape()
                ));
            }
            a.iter().copied().collect()
        }
        "csv" => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let mut rows = Vec::new();
            for (i, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or("").trim();
                if line.is_empty() {
                    continue;
                }
                let row: std::result::Result<Vec<f64>, _> = line.split(',').map(|v| v.trim().parse::<f64>()).collect();
                let row =
                    row.map_err(|e| format!("{}:{}: {e}; allowed: comma-separated numbers", path.display(), i + 1))?;
                if row.len() != c {
                    return Err(format!(
                        "{}:{}: {} columns; allowed: {c} (one per network state, bit k of the column index is neuron k)",
                        path.display(),
                        i + 1,
                        row.len()
                    ));
                }
                rows.push(row);
            }
            if rows.len() != inputs {
                return Err(format!(
                    "{}: {} rows; allowed: {inputs} (one per input value)",
                    path.display(),
                    rows.len()
                ));
            }
            rows.into_iter().flatten().collect()
        }
        _ => {
            return Err(format!(
                "{}: unknown table format; allowed: .npy or .csv",
                path.display()
            ));
        }
    };
    if let Some(v) = table.iter().find(|v| !v.is_finite()) {
        return Err(format!("{} contains {v}; allowed: finite numbers", path.display()));
    }
    Ok(table)
}
