//! `marlin import`: a real recording (spike times and a stimulus table, as
//! CSV) into marlin's trajectory format, so `marlin infer` can read it.
//!
//! Binning: time from `start` is cut into bins of width `bin`; bin t covers
//! `[start + t·bin, start + (t+1)·bin)`. σ_k(t) = 1 when neuron k spiked at
//! least once in bin t — several spikes in one bin count once (how often
//! that happened is reported: a bin wide enough to hold two spikes of a
//! neuron loses them). The input of bin t is the stimulus in effect at the
//! bin's start. The acting neuron is unknown (`actor` = −1), and so is the
//! reward (`reward` = NaN) and λ. The update scheme says how bins relate:
//! `synchronous` (default: each bin is every neuron's response to the
//! previous bin), `asynchronous` (bins so short that neurons change one at a
//! time, q = 1/n) or `random_partial` with a given q.

use super::BadInput;
use crate::files::write_json;
use crate::record::{FORMAT, FORMAT_VERSION, Recorder, TrajectoryMeta};
use anyhow::Result;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct ImportArgs {
    /// CSV `neuron,time` (seconds), one spike per row; a header row is allowed.
    pub spikes: PathBuf,
    /// CSV `time,input`: from `time` on the input is `input` (a number); a
    /// header row is allowed. None: one input value throughout.
    pub stimulus: Option<PathBuf>,
    /// Bin width in seconds.
    pub bin: f64,
    /// Number of neurons (default: the largest id + 1).
    pub neurons: Option<usize>,
    /// Window start and end in seconds (default: the first and last spike
    /// or stimulus change).
    pub start: Option<f64>,
    pub end: Option<f64>,
    /// "synchronous" (default), "asynchronous" or "random_partial".
    pub update: String,
    /// random_partial's q.
    pub q: Option<f64>,
    pub out: PathBuf,
}

/// What `import` did (`import.json`).
#[derive(Serialize, Debug)]
pub struct ImportSummary {
    /// What the import changed or dropped (merged spikes, spikes outside the window).
    pub warnings: Vec<String>,
    pub spikes_file: String,
    pub stimulus_file: Option<String>,
    pub bin_seconds: f64,
    pub start: f64,
    pub end: f64,
    pub ticks: usize,
    pub neurons: usize,
    pub spikes: usize,
    /// Spikes outside [start, end).
    pub spikes_outside_window: usize,
    /// Spikes lost because their neuron had already spiked in the same bin.
    pub spikes_merged_in_bins: usize,
    /// Fraction of bins each neuron is active.
    pub active_fraction: Vec<f64>,
    pub input_values: Vec<f64>,
    pub ticks_per_input: Vec<usize>,
    pub update: String,
    pub act_probability: f64,
    pub binning: &'static str,
}

/// Largest number of bins × neurons accepted (the dense spike array).
pub const MAX_CELLS: u64 = 4 << 30;

/// Most neurons a recording may have (ids 0 to 999 999): ids are checked
/// row by row as the spikes are read, before anything is sized by them.
pub const MAX_NEURONS: usize = 1_000_000;

/// Rows of a two-column numeric CSV: (line, a, b). A first row that does
/// not parse as numbers is taken as a header.
fn read_pairs(path: &Path, what: &str) -> Result<Vec<(usize, f64, f64)>, BadInput> {
    let bad = |line: usize, m: String| BadInput(format!("{}:{line}: {m}", path.display()));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_path(path)
        .map_err(|e| BadInput(format!("{}: cannot read: {e}", path.display())))?;
    let mut rows = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(i + 1, |p| p.line() as usize);
            bad(line, format!("not CSV ({e})"))
        })?;
        let line = rec.position().map_or(i + 1, |p| p.line() as usize);
        if rec.len() != 2 {
            return Err(bad(line, format!("{} fields; allowed: exactly 2 ({what})", rec.len())));
        }
        match (rec[0].parse::<f64>(), rec[1].parse::<f64>()) {
            (Ok(a), Ok(b)) => rows.push((line, a, b)),
            _ if rows.is_empty() && i == 0 => continue, // header
            _ => {
                return Err(bad(
                    line,
                    format!("{:?},{:?} are not two numbers; allowed: {what}", &rec[0], &rec[1]),
                ));
            }
        }
    }
    Ok(rows)
}

pub fn run_import(args: &ImportArgs) -> Result<ImportSummary> {
    if !(args.bin.is_finite() && args.bin > 0.0) {
        return Err(BadInput(format!("--bin {}: allowed: a positive number of seconds", args.bin)).into());
    }
    let (update, q) = match args.update.as_str() {
        "synchronous" => ("synchronous", 1.0),
        "asynchronous" => ("asynchronous", f64::NAN),
        "random_partial" => match args.q {
            Some(q) if q > 0.0 && q <= 1.0 => ("random_partial", q),
            other => {
                return Err(BadInput(format!("--update random_partial needs --q in (0, 1], got {other:?}")).into());
            }
        },
        other => {
            return Err(BadInput(format!(
                "--update {other:?}; allowed: synchronous, asynchronous, random_partial"
            ))
            .into());
        }
    };
    if let Some(n) = args.neurons
        && n > MAX_NEURONS
    {
        return Err(BadInput(format!("--neurons {n}; allowed: at most {MAX_NEURONS}")).into());
    }
    let spikes = read_pairs(&args.spikes, "neuron,time (seconds)")?;
    let bad = |line: usize, m: String| BadInput(format!("{}:{line}: {m}", args.spikes.display()));
    let mut parsed = Vec::with_capacity(spikes.len());
    for &(line, k, t) in &spikes {
        if !(k >= 0.0 && k.fract() == 0.0 && k < MAX_NEURONS as f64) {
            return Err(bad(
                line,
                format!(
                    "neuron {k}; allowed: an integer id from 0 to {} (at most {MAX_NEURONS} neurons)",
                    MAX_NEURONS - 1
                ),
            )
            .into());
        }
        if !t.is_finite() {
            return Err(bad(line, format!("time {t}; allowed: a finite number of seconds")).into());
        }
        if let Some(n) = args.neurons
            && k as usize >= n
        {
            return Err(bad(line, format!("neuron {k}; allowed: 0 to {} (--neurons {n})", n - 1)).into());
        }
        parsed.push((k as usize, t));
    }
    let n = args
        .neurons
        .unwrap_or_else(|| parsed.iter().map(|p| p.0 + 1).max().unwrap_or(0));
    if n == 0 {
        return Err(BadInput(format!("{}: no spikes and no --neurons", args.spikes.display())).into());
    }
    // Asynchronous: one neuron in n acts per tick.
    let q = if q.is_nan() { 1.0 / n as f64 } else { q };
    // The stimulus table: sorted change points.
    let stimulus: Vec<(f64, f64)> = match &args.stimulus {
        None => Vec::new(),
        Some(path) => {
            let rows = read_pairs(path, "time (seconds),input value")?;
            let mut last = f64::NEG_INFINITY;
            for &(line, t, v) in &rows {
                if !(t.is_finite() && v.is_finite()) {
                    return Err(BadInput(format!("{}:{line}: allowed: finite numbers", path.display())).into());
                }
                if t <= last {
                    return Err(BadInput(format!(
                        "{}:{line}: time {t} is not after the previous row's {last}; allowed: increasing times",
                        path.display()
                    ))
                    .into());
                }
                last = t;
            }
            if rows.is_empty() {
                return Err(BadInput(format!("{}: no stimulus rows", path.display())).into());
            }
            rows.iter().map(|&(_, t, v)| (t, v)).collect()
        }
    };
    let first = parsed
        .iter()
        .map(|p| p.1)
        .chain(stimulus.first().map(|s| s.0))
        .fold(f64::INFINITY, f64::min);
    let last = parsed
        .iter()
        .map(|p| p.1)
        .chain(stimulus.last().map(|s| s.0))
        .fold(f64::NEG_INFINITY, f64::max);
    let start = args.start.unwrap_or(first);
    let end = args.end.unwrap_or(last + args.bin);
    if !(start.is_finite() && end.is_finite() && end > start) {
        return Err(BadInput(format!("window [{start}, {end}): allowed: --start < --end")).into());
    }
    if let Some(&(t0, _)) = stimulus.first()
        && t0 > start
    {
        return Err(BadInput(format!(
            "{}: the first stimulus row is at {t0} s, after the window starts ({start} s); every bin needs an input",
            args.stimulus.as_ref().expect("stimulus").display()
        ))
        .into());
    }
    let ticks = ((end - start) / args.bin).ceil() as u64;
    if ticks < 2 || ticks.saturating_mul(n as u64) > MAX_CELLS {
        return Err(BadInput(format!(
            "{ticks} bins × {n} neurons; allowed: at least 2 bins and at most {MAX_CELLS} cells (a wider --bin or a \
             shorter window)"
        ))
        .into());
    }
    // The spikes and their copy as written, with x, actor and reward.
    let need = 2 * ticks * (n as u64 + 24);
    let budget = crate::files::array_budget();
    if need > budget {
        return Err(BadInput(format!(
            "{ticks} bins × {n} neurons need about {} MiB; this machine has {} MiB to spare (a wider --bin or a \
             shorter window)",
            need >> 20,
            budget >> 20
        ))
        .into());
    }
    let ticks = ticks as usize;
    // Inputs: the distinct stimulus values, sorted, indexed in that order.
    let mut values: Vec<f64> = stimulus.iter().map(|s| s.1).collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    if values.is_empty() {
        values.push(0.0);
    }
    let index = |v: f64| values.iter().position(|&u| u == v).expect("a listed value");
    let mut rec = Recorder::new((0..n).collect(), ticks as u64);
    let mut next = 0usize;
    let mut current = stimulus.first().map_or(0, |s| index(s.1));
    for t in 0..ticks {
        let at = start + t as f64 * args.bin;
        while next < stimulus.len() && stimulus[next].0 <= at {
            current = index(stimulus[next].1);
            next += 1;
        }
        rec.x.push(current as i64);
    }
    rec.actor = vec![-1; ticks];
    rec.reward = vec![f64::NAN; ticks];
    rec.spikes = vec![0u8; ticks * n];
    let (mut outside, mut merged) = (0, 0);
    for &(k, time) in &parsed {
        if time < start || time >= end {
            outside += 1;
            continue;
        }
        let t = (((time - start) / args.bin) as usize).min(ticks - 1);
        let cell = &mut rec.spikes[t * n + k];
        if *cell == 1 {
            merged += 1;
        }
        *cell = 1;
    }
    let xs = values.len();
    let mut trans = vec![vec![0.0; xs]; xs];
    for w in rec.x.windows(2) {
        trans[w[0] as usize][w[1] as usize] += 1.0;
    }
    for (a, row) in trans.iter_mut().enumerate() {
        let z: f64 = row.iter().sum();
        if z > 0.0 {
            row.iter_mut().for_each(|v| *v /= z);
        } else {
            row[a] = 1.0;
        }
    }
    let meta = TrajectoryMeta {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        scenario: "imported".into(),
        scenario_file: String::new(),
        n,
        inputs: xs,
        input_values: values.clone(),
        transition: trans,
        update: update.into(),
        act_probability: q,
        lambda: None,
        seed: 0,
        ticks: ticks as u64,
        recorded_neurons: (0..n).collect(),
        dead: Vec::new(),
        policy: format!("recorded: {}", args.spikes.display()),
        state_indexing: "s = x·2^n + σ; bit k of σ is neuron k".into(),
        controlled_input: None,
    };
    let summary = ImportSummary {
        spikes_file: args.spikes.display().to_string(),
        stimulus_file: args.stimulus.as_ref().map(|p| p.display().to_string()),
        bin_seconds: args.bin,
        start,
        end,
        ticks,
        neurons: n,
        spikes: parsed.len(),
        spikes_outside_window: outside,
        spikes_merged_in_bins: merged,
        active_fraction: (0..n)
            .map(|k| (0..ticks).filter(|&t| rec.spikes[t * n + k] == 1).count() as f64 / ticks as f64)
            .collect(),
        input_values: values,
        ticks_per_input: (0..xs)
            .map(|x| rec.x.iter().filter(|&&v| v as usize == x).count())
            .collect(),
        update: update.into(),
        act_probability: q,
        binning: "bin t = [start + t·bin, start + (t+1)·bin); σ_k(t) = 1 if neuron k spiked in the bin (several \
                  spikes count once); x(t) = the stimulus in effect at the bin's start; actor unknown (−1); reward \
                  unknown (NaN)",
        warnings: Vec::new(),
    };
    let mut summary = summary;
    if merged > 0 {
        summary.warnings.push(match merged {
            1 => "1 spike fell in a bin where its neuron had already spiked and was merged; a narrower --bin keeps it"
                .to_string(),
            _ => format!(
                "{merged} spikes fell in a bin where their neuron had already spiked and were merged; a narrower \
                 --bin keeps them"
            ),
        });
    }
    if outside > 0 {
        summary.warnings.push(match outside {
            1 => "1 spike lay outside [start, end) and was dropped".to_string(),
            _ => format!("{outside} spikes lay outside [start, end) and were dropped"),
        });
    }
    for w in &summary.warnings {
        tracing::warn!("{w}");
    }
    rec.write(&args.out, &meta)?;
    write_json(&args.out.join("import.json"), &summary)?;
    Ok(summary)
}
