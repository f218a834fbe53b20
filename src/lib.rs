//! marlin: neural circuits as teams of reinforcement-learning agents.
//!
//! See `ARCHITECTURE.md` for the bird's-eye view. Modules, in dependency
//! order: [`model`] (pure data) ← [`solver`] (exact math) ← [`maze`] and
//! [`coding`] (worlds), and [`infer`] (inverse RL); [`rng`] ← [`topology`] ← [`agents`] ← [`learn`] ← [`runtime`] ←
//! [`record`] (the simulator); [`files`] (I/O plumbing) ← [`checkpoint`] (saved runs, Ctrl-C); [`scenario`]
//! (files → networks); [`report`] (figures and the HTML report); [`commands`] (what each
//! subcommand does); [`text`] (counts and rates in messages, for all). The `marlin`
//! command (arguments, console output, exit codes) is the `marlin-cli` crate
//! (`crates/marlin-cli`), which uses this library and nothing else of ours.

// Numerical code indexes several arrays by the same loop variable.
#![allow(clippy::needless_range_loop)]

pub mod agents;
pub mod checkpoint;
pub mod coding;
pub mod commands;
pub mod files;
pub mod infer;
pub mod learn;
pub mod maze;
pub mod memory;
pub mod model;
pub mod progress;
pub mod record;
pub mod report;
pub mod rng;
pub mod runtime;
pub mod scenario;
pub mod solver;
pub mod text;
pub mod topology;
