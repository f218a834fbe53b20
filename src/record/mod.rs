//! Recording: the observer that keeps a trajectory, and the trajectory file
//! format (`trajectory.npz` + `trajectory.json`) that inverse RL and numpy
//! users read.
//!
//! Format version 1. `trajectory.npz` holds `x` `int64[T]` (input index at
//! tick t), `spikes` `uint8[T, m]` (σ_t of the m recorded neurons, 0/1),
//! `actor` `int64[T]` (asynchronous: the neuron drawn at tick t, whose action
//! set σ_{t+1}; −1 when several or all act), `reward` `float64[T]` (r(s_t)),
//! `input_values` `float64[X]` and `neurons` `int64[m]` (the recorded neuron
//! ids, column order of `spikes`). `trajectory.json` holds the metadata.

pub mod demos;
pub mod stream;

use crate::files::{Npz, write_json};
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
        let mut npz = Npz::new();
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
        write_json(&dir.join("trajectory.json"), meta)
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
