//! Demonstrations of a team of maze walkers: the file format `simulate`
//! writes for a team maze and `infer` reads (`team_demonstrations.npz` +
//! `team_demonstrations.json`).
//!
//! Format version 1. For T trajectories of L steps of m walkers the archive
//! holds `state` `int64[T, L+1, m]` (each walker's state index: free cells
//! in reading order), `row`, `col` `int64[T, L+1, m]` (its cell),
//! `action` `int64[T, L, m]` (0..4 = N, E, S, W, stay: the move walker k
//! chose at step t) and `reward` `float64[T, L+1]` (the team's reward at
//! step t). The JSON is a maze record's (the map, goals, slip, λ, cost)
//! plus `agents` and `team_goal`. Readers check every shape and range and
//! that every step is one the map allows: a walker's move, or — after a
//! step where the team finished — a restart on a start cell.

use super::demos::{self, DemoMeta};
use crate::files::{Npz, canonical_json, open_npz, write_sealed_json};
use crate::maze::{ACTIONS, Maze, TeamGoal};
use anyhow::Result;
use ndarray::{Array2, Array3};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const FORMAT: &str = "marlin-team-demonstrations";
pub const FORMAT_VERSION: u32 = 1;

/// `team_demonstrations.json`: a maze record's metadata and the team's.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TeamDemoMeta {
    #[serde(flatten)]
    pub demo: DemoMeta,
    pub agents: usize,
    /// "all_on_goals" or "meet".
    pub team_goal: String,
}

impl TeamDemoMeta {
    pub fn goal(&self) -> Result<TeamGoal, String> {
        match self.team_goal.as_str() {
            "all_on_goals" => Ok(TeamGoal::AllOnGoals),
            "meet" => Ok(TeamGoal::Meet),
            g => Err(format!("team_goal {g:?}; allowed: \"all_on_goals\", \"meet\"")),
        }
    }
}

/// Trajectories of a team: `states[i][t·m + k]` for t ≤ L, `actions[i][t·m + k]` for t < L.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TeamDemonstrations {
    pub agents: usize,
    pub steps: usize,
    pub states: Vec<Vec<usize>>,
    pub actions: Vec<Vec<usize>>,
}

impl TeamDemonstrations {
    pub fn new(agents: usize, steps: usize) -> Self {
        TeamDemonstrations {
            agents,
            steps,
            ..Default::default()
        }
    }

    /// The cells of the walkers at step t of trajectory i.
    pub fn cells(&self, i: usize, t: usize) -> &[usize] {
        &self.states[i][t * self.agents..(t + 1) * self.agents]
    }

    /// The moves of the walkers at step t of trajectory i.
    pub fn moves(&self, i: usize, t: usize) -> &[usize] {
        &self.actions[i][t * self.agents..(t + 1) * self.agents]
    }
}

/// Write the demonstrations into `dir`, atomically.
pub fn write(dir: &Path, meta: &TeamDemoMeta, maze: &Maze, goal: TeamGoal, demos: &TeamDemonstrations) -> Result<()> {
    let (t, l, m) = (demos.states.len(), demos.steps, demos.agents);
    let flat = |f: &dyn Fn(usize) -> i64| -> Vec<i64> { demos.states.iter().flatten().map(|&s| f(s)).collect() };
    let mut npz = Npz::sealed(FORMAT, FORMAT_VERSION, Some(&canonical_json(meta)));
    npz.add("state", Array3::from_shape_vec((t, l + 1, m), flat(&|s| s as i64))?)
        .add(
            "row",
            Array3::from_shape_vec((t, l + 1, m), flat(&|s| maze.position(s).0 as i64))?,
        )
        .add(
            "col",
            Array3::from_shape_vec((t, l + 1, m), flat(&|s| maze.position(s).1 as i64))?,
        )
        .add(
            "action",
            Array3::from_shape_vec((t, l, m), demos.actions.iter().flatten().map(|&a| a as i64).collect())?,
        )
        .add(
            "reward",
            Array2::from_shape_fn((t, l + 1), |(i, j)| goal.reward(maze, demos.cells(i, j))),
        );
    npz.write(&dir.join("team_demonstrations.npz"))?;
    write_sealed_json(&dir.join("team_demonstrations.json"), meta)
}

/// Whether a JSON file beside `npz` says this is a team record.
pub fn is_team_demonstrations(npz: &Path) -> bool {
    super::demos::json_format(npz).is_some_and(|f| f == FORMAT)
}

/// Read and check a team record (errors say what is wrong and what is
/// allowed; the caller names the file).
pub fn read(path: &Path) -> Result<(TeamDemoMeta, Maze, TeamGoal, TeamDemonstrations), String> {
    let (json, meta) = demos::read_meta::<TeamDemoMeta>(path, |m| &m.demo, FORMAT, FORMAT_VERSION)?;
    let maze = meta.demo.maze().map_err(|e| format!("{}: {e}", json.display()))?;
    let goal = meta.goal().map_err(|e| format!("{}: {e}", json.display()))?;
    let mut npz = open_npz(path, &[FORMAT], FORMAT_VERSION, Some(&canonical_json(&meta)))?;
    let state: Array3<i64> = npz
        .by_name("state")
        .map_err(|e| format!("no int64 array `state` [T, L+1, m] ({e})"))?;
    let action: Array3<i64> = npz
        .by_name("action")
        .map_err(|e| format!("no int64 array `action` [T, L, m] ({e})"))?;
    let (t, l1, m) = state.dim();
    if t == 0 || l1 < 2 || m != meta.agents || action.dim() != (t, l1 - 1, m) {
        return Err(format!(
            "inconsistent shapes: state {:?}, action {:?} for {} walkers; allowed: [T, L+1, m] and [T, L, m] \
             with T ≥ 1, L ≥ 1, m = agents",
            state.shape(),
            action.shape(),
            meta.agents
        ));
    }
    let ns = maze.states() as i64;
    if let Some((i, v)) = state.indexed_iter().find(|(_, v)| **v < 0 || **v >= ns) {
        return Err(format!("`state`{i:?} = {v}; allowed: 0 to {} (the free cells)", ns - 1));
    }
    if let Some((i, v)) = action
        .indexed_iter()
        .find(|(_, v)| **v < 0 || **v >= ACTIONS.len() as i64)
    {
        return Err(format!("`action`{i:?} = {v}; allowed: 0 to 4 ({})", ACTIONS.join(", ")));
    }
    let mut demos = TeamDemonstrations::new(m, l1 - 1);
    for i in 0..t {
        demos.states.push(
            state
                .slice(ndarray::s![i, .., ..])
                .iter()
                .map(|&s| s as usize)
                .collect(),
        );
        demos.actions.push(
            action
                .slice(ndarray::s![i, .., ..])
                .iter()
                .map(|&a| a as usize)
                .collect(),
        );
    }
    let starts: Vec<usize> = maze.reset_row().iter().map(|e| e.0).collect();
    for i in 0..t {
        for j in 0..l1 - 1 {
            let done = goal.done(&maze, demos.cells(i, j));
            for k in 0..m {
                let (s, a, n) = (demos.cells(i, j)[k], demos.moves(i, j)[k], demos.cells(i, j + 1)[k]);
                let possible = if done {
                    starts.contains(&n)
                } else {
                    maze.move_row(s, a).iter().any(|e| e.0 == n && e.1 > 0.0)
                };
                if !possible {
                    return Err(format!(
                        "trajectory {i}, step {j}, walker {k}: {} from cell {:?} cannot lead to cell {:?} in this map{}",
                        ACTIONS[a],
                        maze.position(s),
                        maze.position(n),
                        if done {
                            " (the team had finished: every walker restarts on a start cell)"
                        } else {
                            ""
                        }
                    ));
                }
            }
        }
    }
    Ok((meta, maze, goal, demos))
}
