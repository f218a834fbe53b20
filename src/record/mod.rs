//! Recording: the observer that keeps a trajectory, and the trajectory file
//! format (`trajectory.npz` + `trajectory.json`) that inverse RL and numpy
//! users read, and its reader.
//!
//! Format version 1. `trajectory.npz` holds `x` `int64[T]` (input index at
//! tick t), `spikes` `uint8[T, m]` (σ_t of the m recorded neurons, 0/1),
//! `actor` `int64[T]` (asynchronous: the neuron drawn at tick t, whose action
//! set σ_{t+1}; −1 when several or all act), `reward` `float64[T]` (r(s_t)),
//! `input_values` `float64[X]` and `neurons` `int64[m]` (the recorded neuron
//! ids, column order of `spikes`). `trajectory.json` holds the metadata.

pub mod demos;
pub mod stream;
pub mod team_demos;

use crate::files::{Npz, canonical_json, open_npz, write_sealed_json};
use crate::runtime::{Observer, TickRecord};
use anyhow::Result;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const FORMAT: &str = "marlin-trajectory";
pub const FORMAT_VERSION: u32 = 1;

/// The state index σ of a full row of spikes (bit k = neuron k; n ≤ 64).
pub fn state_index(row: &[u8]) -> usize {
    row.iter().enumerate().map(|(k, &b)| (b as usize) << k).sum()
}

/// Trajectory metadata (`trajectory.json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrajectoryMeta {
    pub format: String,
    pub format_version: u32,
    pub scenario: String,
    pub scenario_file: String,
    pub n: usize,
    /// Number of input values X.
    pub inputs: usize,
    pub input_values: Vec<f64>,
    /// Row-major X×X input transition matrix.
    pub transition: Vec<Vec<f64>>,
    pub update: String,
    /// random_partial's q (1 for synchronous, 1/n_alive for asynchronous).
    pub act_probability: f64,
    /// λ of the scenario that produced the record; None when unknown
    /// (imported recordings).
    pub lambda: Option<f64>,
    pub seed: u64,
    pub ticks: u64,
    pub recorded_neurons: Vec<usize>,
    pub dead: Vec<usize>,
    pub policy: String,
    pub state_indexing: String,
    /// Set when the network moved its input (a maze walker driven by motor
    /// neurons): what moved it. The input's moves then depend on the spikes,
    /// and inference takes them from the scenario file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controlled_input: Option<String>,
}

/// A trajectory as read back: metadata and the arrays every form has, with
/// `spikes` in the dense form (packed bits unpacked; None for an event
/// record).
#[derive(Clone, Debug)]
pub struct Trajectory {
    pub meta: TrajectoryMeta,
    pub x: Vec<usize>,
    pub actor: Vec<i64>,
    pub reward: Vec<f64>,
    pub spikes: Option<Array2<u8>>,
}

/// The dense spikes [t, m] of a `spikes_bits` array [t, ⌈m/8⌉] (neuron j
/// is bit j % 8 of byte j / 8); its shape is checked, and padding bits must
/// be 0.
fn unpack_spikes(bits: &Array2<u8>, t: usize, m: usize) -> Result<Array2<u8>, String> {
    let width = m.div_ceil(8);
    let dense = (t as u64).saturating_mul(m as u64);
    let budget = crate::files::MemoryBudget::now();
    if !budget.fits(dense) {
        return Err(format!(
            "its packed spikes unpack to {} MiB; {} — read fewer ticks, or the bits with numpy \
             (np.unpackbits(…, axis=1, bitorder=\"little\"))",
            dense >> 20,
            budget.describe()
        ));
    }
    if bits.shape() != [t, width] {
        return Err(format!(
            "`spikes_bits` has shape {:?}; allowed: [{t}, {width}] (ticks × ⌈recorded neurons / 8⌉)",
            bits.shape()
        ));
    }
    if !m.is_multiple_of(8)
        && let Some(tick) = (0..t).find(|&i| bits[[i, width - 1]] >> (m % 8) != 0)
    {
        return Err(format!(
            "`spikes_bits` sets padding bits past neuron {m} at tick {tick}; allowed: 0"
        ));
    }
    Ok(Array2::from_shape_fn((t, m), |(i, j)| bits[[i, j / 8]] >> (j % 8) & 1))
}

/// `Ok` if `path` is a file, else why not — checked before the metadata
/// beside it, so a mistyped record is named rather than its JSON.
pub fn require_file(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err("is a folder; allowed: a record file (.npz)".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("no such file".into()),
        Err(e) => Err(format!("cannot read it ({e})")),
    }
}

/// Read `trajectory.npz` with the `trajectory.json` beside it and validate
/// everything the format promises: the metadata (format, version, update
/// scheme, q, inputs), the seal when marlin wrote the file (a truncated,
/// damaged or mismatched file is an error, never data), the arrays' types
/// and shapes, and every index's range. `fits` sees the metadata before any
/// array is loaded (a caller's size limits). Errors say what is wrong and
/// what is allowed; the caller names the file.
pub fn read(path: &Path, fits: impl Fn(&TrajectoryMeta) -> Result<(), String>) -> Result<Trajectory, String> {
    require_file(path)?;
    let json = path.with_file_name("trajectory.json");
    let text =
        std::fs::read_to_string(&json).map_err(|e| format!("needs its metadata {} beside it ({e})", json.display()))?;
    let meta: TrajectoryMeta =
        serde_json::from_str(&text).map_err(|e| format!("{} is not trajectory metadata ({e})", json.display()))?;
    if meta.format != FORMAT {
        return Err(format!("format {:?}; allowed: {FORMAT:?}", meta.format));
    }
    if meta.format_version == 0 || meta.format_version > FORMAT_VERSION {
        return Err(format!(
            "format version {}; this marlin reads versions 1 to {FORMAT_VERSION} (a newer marlin wrote it?)",
            meta.format_version
        ));
    }
    if !["asynchronous", "synchronous", "random_partial"].contains(&meta.update.as_str()) {
        return Err(format!(
            "update scheme {:?}; allowed: \"asynchronous\", \"synchronous\", \"random_partial\"",
            meta.update
        ));
    }
    if !(meta.act_probability > 0.0 && meta.act_probability <= 1.0) {
        return Err(format!("act_probability {}; allowed: 0 < q ≤ 1", meta.act_probability));
    }
    if meta.inputs == 0 || meta.input_values.len() != meta.inputs {
        return Err(format!(
            "{} input values for inputs = {}; allowed: inputs ≥ 1 values",
            meta.input_values.len(),
            meta.inputs
        ));
    }
    let (n, m) = (meta.n, meta.recorded_neurons.len());
    if let Some(k) = meta.recorded_neurons.iter().find(|&&k| k >= n) {
        return Err(format!("recorded neuron {k}; allowed: 0 to {}", n.saturating_sub(1)));
    }
    fits(&meta)?;
    // Refuse before loading what cannot fit: the arrays, and their
    // converted copies as much again.
    crate::files::check_npz_fits(path, 2)
        .map_err(|e| format!("{e} — record fewer ticks or neurons (--record-neurons), or the events form"))?;
    let mut npz = open_npz(path, &[FORMAT], FORMAT_VERSION, Some(&canonical_json(&meta)))?;
    let x: Array1<i64> = npz.by_name("x").map_err(|e| format!("no int64 array `x` ({e})"))?;
    let actor: Array1<i64> = npz
        .by_name("actor")
        .map_err(|e| format!("no int64 array `actor` ({e})"))?;
    let reward: Option<Array1<f64>> = npz.optional("reward").map_err(|e| e.0)?;
    let t = x.len();
    let names = npz.names();
    let spikes: Option<Array2<u8>> = match npz.by_name("spikes") {
        Ok(s) => Some(s),
        Err(_) if names.iter().any(|k| k.starts_with("spikes_bits")) => {
            let bits: Array2<u8> = npz
                .by_name("spikes_bits")
                .map_err(|e| format!("no uint8 array `spikes_bits` [T, {}] ({e})", m.div_ceil(8)))?;
            Some(unpack_spikes(&bits, t, m)?)
        }
        Err(_) if names.iter().any(|k| k.starts_with("event_")) => None,
        Err(e) => return Err(format!("no uint8 array `spikes` [T, {m}] ({e})")),
    };
    let reward = reward.map(|r| r.to_vec()).unwrap_or_default();
    if actor.len() != t || !(reward.is_empty() || reward.len() == t) {
        return Err(format!(
            "inconsistent lengths: x [{t}], actor [{}], reward [{}]; allowed: all [T]",
            actor.len(),
            reward.len()
        ));
    }
    if let Some(s) = &spikes
        && s.shape() != [t, m]
    {
        return Err(format!(
            "`spikes` has shape {:?}; allowed: [{t}, {m}] (ticks × recorded neurons)",
            s.shape()
        ));
    }
    if let Some(v) = x.iter().find(|&&v| v < 0 || v as usize >= meta.inputs) {
        return Err(format!("`x` holds {v}; allowed: 0 to {}", meta.inputs - 1));
    }
    if let Some(v) = actor.iter().find(|&&v| v < -1 || v >= n as i64) {
        return Err(format!("`actor` holds {v}; allowed: -1 to {}", n as i64 - 1));
    }
    if let Some(v) = spikes.iter().flatten().find(|&&v| v > 1) {
        return Err(format!("`spikes` holds {v}; allowed: 0 or 1"));
    }
    if let Some(v) = reward.iter().find(|v| v.is_infinite()) {
        return Err(format!(
            "`reward` holds {v}; allowed: finite numbers, or NaN where unknown"
        ));
    }
    Ok(Trajectory {
        meta,
        x: x.iter().map(|&v| v as usize).collect(),
        actor: actor.to_vec(),
        reward,
        spikes,
    })
}

/// An observer that keeps every tick of a subset of neurons in memory.
pub struct Recorder {
    neurons: Vec<usize>,
    pub x: Vec<i64>,
    pub spikes: Vec<u8>,
    pub actor: Vec<i64>,
    pub reward: Vec<f64>,
}

impl Recorder {
    pub fn new(neurons: Vec<usize>, ticks: u64) -> Self {
        let t = ticks as usize;
        Recorder {
            spikes: Vec::with_capacity(t * neurons.len()),
            neurons,
            x: Vec::with_capacity(t),
            actor: Vec::with_capacity(t),
            reward: Vec::with_capacity(t),
        }
    }

    pub fn ticks(&self) -> usize {
        self.x.len()
    }

    /// Write `trajectory.npz` and `trajectory.json` into `dir`, atomically.
    pub fn write(&self, dir: &Path, meta: &TrajectoryMeta) -> Result<()> {
        let t = self.ticks();
        let m = self.neurons.len();
        let mut npz = Npz::sealed(FORMAT, FORMAT_VERSION, Some(&canonical_json(meta)));
        npz.add("x", Array1::from(self.x.clone()))
            .add("spikes", Array2::from_shape_vec((t, m), self.spikes.clone())?)
            .add("actor", Array1::from(self.actor.clone()))
            .add("reward", Array1::from(self.reward.clone()))
            .add("input_values", Array1::from(meta.input_values.clone()))
            .add(
                "neurons",
                Array1::from(self.neurons.iter().map(|&k| k as i64).collect::<Vec<_>>()),
            );
        npz.write(&dir.join("trajectory.npz"))?;
        write_sealed_json(&dir.join("trajectory.json"), meta)
    }
}

impl Observer for Recorder {
    fn record(&mut self, rec: &TickRecord) {
        self.x.push(rec.x as i64);
        self.actor.push(rec.actor);
        self.reward.push(rec.reward);
        for &k in &self.neurons {
            self.spikes.push((rec.frame[k / 64] >> (k % 64) & 1) as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unpacking inverts numpy's little-endian `packbits`, and refuses a
    /// wrong shape or set padding bits with a message saying what is allowed.
    #[test]
    fn packed_spikes_unpack_and_bad_ones_are_refused() {
        let (t, m) = (3, 11);
        let dense = Array2::from_shape_fn((t, m), |(i, j)| ((i * 7 + j * 3) % 5 == 0) as u8);
        let packed = Array2::from_shape_fn((t, 2), |(i, b)| {
            (0..8)
                .filter(|&k| 8 * b + k < m)
                .fold(0u8, |acc, k| acc | dense[[i, 8 * b + k]] << k)
        });
        assert_eq!(unpack_spikes(&packed, t, m).unwrap(), dense);
        let e = unpack_spikes(&packed, t, 17).unwrap_err();
        assert!(e.contains("allowed: [3, 3]"), "{e}");
        let mut padded = packed.clone();
        padded[[1, 1]] |= 1 << 5;
        let e = unpack_spikes(&padded, t, m).unwrap_err();
        assert!(e.contains("padding bits past neuron 11 at tick 1"), "{e}");
    }
}
