//! Maze demonstrations: the file format that `simulate` writes for a maze
//! and `infer` reads (`demonstrations.npz` + `demonstrations.json`).
//!
//! Format version 1. The archive holds, for T trajectories of L steps,
//! `state` `int64[T, L+1]` (state index: free cells in reading order),
//! `row`, `col` `int64[T, L+1]` (the cell), `action` `int64[T, L]` (0..4 =
//! N, E, S, W, stay: the move chosen at step t, from `state[:, t]`) and
//! `reward` `float64[T, L+1]`. The JSON carries the map itself (so a record
//! can be read without its scenario), goal letters and rewards, slip, λ and
//! the cost. Readers check every shape, range and move against the map.

use crate::files::{Npz, canonical_json, open_npz, write_sealed_json};
use crate::maze::{ACTIONS, Maze};
use anyhow::Result;
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const FORMAT: &str = "marlin-maze-demonstrations";
pub const FORMAT_VERSION: u32 = 1;

/// `demonstrations.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DemoMeta {
    pub format: String,
    pub format_version: u32,
    pub scenario: String,
    pub scenario_file: String,
    /// The map, one string per row.
    pub map: Vec<String>,
    /// Goal letters and their rewards.
    pub goals: Vec<(char, f64)>,
    pub slip: f64,
    /// λ of the demonstrator, if known.
    pub lambda: Option<f64>,
    /// "mutual_information" or "fixed_prior".
    pub cost: String,
    /// The fixed prior over the actions (fixed_prior only).
    pub prior: Option<Vec<f64>>,
    pub seed: u64,
    pub trajectories: usize,
    pub steps: usize,
    /// Where the policy came from.
    pub policy: String,
    pub actions: Vec<String>,
}

impl DemoMeta {
    /// The maze the record was made in.
    pub fn maze(&self) -> Result<Maze, String> {
        Maze::parse(&self.map.join("\n"), &self.goals, self.slip).map_err(|e| format!("its map: {e}"))
    }
}

/// Trajectories of one agent: `states[i]` has one more entry than `actions[i]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Demonstrations {
    pub states: Vec<Vec<usize>>,
    pub actions: Vec<Vec<usize>>,
}

impl Demonstrations {
    pub fn push(&mut self, states: Vec<usize>, actions: Vec<usize>) {
        self.states.push(states);
        self.actions.push(actions);
    }
}

/// The rendered map rows of `maze` with the goal letters of `goals`.
pub fn map_rows(maze: &Maze, goals: &[(char, f64)]) -> Vec<String> {
    maze.render(|r| goals.iter().find(|g| g.1 == r).map_or('G', |g| g.0))
        .lines()
        .map(str::to_string)
        .collect()
}

/// Write the demonstrations into `dir`, atomically (all trajectories have
/// `meta.steps` steps).
pub fn write(dir: &Path, meta: &DemoMeta, maze: &Maze, demos: &Demonstrations) -> Result<()> {
    let (t, l) = (demos.states.len(), meta.steps);
    let reward = maze.reward();
    let grid = |f: &dyn Fn(usize) -> f64| -> Vec<f64> { demos.states.iter().flatten().map(|&s| f(s)).collect() };
    let as_i64 = |v: Vec<f64>| v.into_iter().map(|x| x as i64).collect::<Vec<i64>>();
    let mut npz = Npz::sealed(FORMAT, FORMAT_VERSION, Some(&canonical_json(meta)));
    npz.add(
        "state",
        Array2::from_shape_vec((t, l + 1), as_i64(grid(&|s| s as f64)))?,
    )
    .add(
        "row",
        Array2::from_shape_vec((t, l + 1), as_i64(grid(&|s| maze.position(s).0 as f64)))?,
    )
    .add(
        "col",
        Array2::from_shape_vec((t, l + 1), as_i64(grid(&|s| maze.position(s).1 as f64)))?,
    )
    .add(
        "action",
        Array2::from_shape_vec(
            (t, l),
            demos.actions.iter().flatten().map(|&a| a as i64).collect::<Vec<_>>(),
        )?,
    )
    .add("reward", Array2::from_shape_vec((t, l + 1), grid(&|s| reward[s]))?);
    npz.write(&dir.join("demonstrations.npz"))?;
    write_sealed_json(&dir.join("demonstrations.json"), meta)
}

/// Whether a JSON file beside `npz` says this is a maze record.
pub fn is_demonstrations(npz: &Path) -> bool {
    json_format(npz).is_some_and(|f| f == FORMAT)
}

/// The `format` of the JSON file beside `npz`, if it has one.
pub fn json_format(npz: &Path) -> Option<String> {
    std::fs::read_to_string(npz.with_extension("json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("format").and_then(|f| f.as_str()).map(str::to_string))
}

/// Read and check a record: the JSON beside the archive, every array's
/// shape, every index's range, and that each step is possible in the map.
/// Errors say what is wrong and what is allowed (the caller names the file).
pub fn read(path: &Path) -> Result<(DemoMeta, Maze, Demonstrations), String> {
    let (json, meta) = read_meta::<DemoMeta>(path, |m| m, FORMAT, FORMAT_VERSION)?;
    let maze = meta.maze().map_err(|e| format!("{}: {e}", json.display()))?;
    let mut npz = open_npz(path, &[FORMAT], FORMAT_VERSION, Some(&canonical_json(&meta)))?;
    let state: Array2<i64> = npz
        .by_name("state")
        .map_err(|e| format!("no int64 array `state` [T, L+1] ({e})"))?;
    let action: Array2<i64> = npz
        .by_name("action")
        .map_err(|e| format!("no int64 array `action` [T, L] ({e})"))?;
    let (t, l1) = state.dim();
    if l1 < 2 || action.dim() != (t, l1 - 1) || t == 0 {
        return Err(format!(
            "inconsistent shapes: state {:?}, action {:?}; allowed: [T, L+1] and [T, L] with T ≥ 1, L ≥ 1",
            state.shape(),
            action.shape()
        ));
    }
    check_steps(&maze, state.view(), action.view())?;
    let mut demos = Demonstrations::default();
    for i in 0..t {
        demos.push(
            state.row(i).iter().map(|&s| s as usize).collect(),
            action.row(i).iter().map(|&a| a as usize).collect(),
        );
    }
    Ok((meta, maze, demos))
}

/// The JSON beside `path` (its path and content), checked to be of
/// `format` at a version from 1 to `max_version`; `demo` finds the maze
/// record's fields in it.
pub fn read_meta<M: serde::de::DeserializeOwned>(
    path: &Path,
    demo: impl Fn(&M) -> &DemoMeta,
    format: &str,
    max_version: u32,
) -> Result<(std::path::PathBuf, M), String> {
    super::require_file(path)?;
    let json = path.with_extension("json");
    let text = std::fs::read_to_string(&json).map_err(|e| format!("cannot read {}: {e}", json.display()))?;
    let meta: M = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", json.display()))?;
    let d = demo(&meta);
    if d.format != format {
        return Err(format!(
            "{}: format {:?}; allowed: {format:?}",
            json.display(),
            d.format
        ));
    }
    if d.format_version == 0 || d.format_version > max_version {
        return Err(format!(
            "{}: format version {}; this marlin reads versions 1 to {max_version}",
            json.display(),
            d.format_version
        ));
    }
    Ok((json, meta))
}

/// Every state a free cell, every action one of the five, every step one the
/// map allows.
fn check_steps(maze: &Maze, state: ArrayView2<i64>, action: ArrayView2<i64>) -> Result<(), String> {
    let ns = maze.states() as i64;
    if let Some(((i, j), v)) = state.indexed_iter().find(|(_, v)| **v < 0 || **v >= ns) {
        return Err(format!(
            "`state`[{i}, {j}] = {v}; allowed: 0 to {} (the free cells)",
            ns - 1
        ));
    }
    if let Some(((i, j), v)) = action
        .indexed_iter()
        .find(|(_, v)| **v < 0 || **v >= ACTIONS.len() as i64)
    {
        return Err(format!(
            "`action`[{i}, {j}] = {v}; allowed: 0 to 4 ({})",
            ACTIONS.join(", ")
        ));
    }
    let mdp = maze.mdp();
    for ((i, j), &a) in action.indexed_iter() {
        let (s, t) = (state[[i, j]] as usize, state[[i, j + 1]] as usize);
        if !mdp.next[s * ACTIONS.len() + a as usize]
            .iter()
            .any(|e| e.0 == t && e.1 > 0.0)
        {
            return Err(format!(
                "trajectory {i}, step {j}: {} from cell {:?} cannot lead to cell {:?} in this map",
                ACTIONS[a as usize],
                maze.position(s),
                maze.position(t)
            ));
        }
    }
    Ok(())
}
