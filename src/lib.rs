//! marlin: neural circuits as teams of reinforcement-learning agents.
//!
//! See `ARCHITECTURE.md` for the bird's-eye view. Modules, in dependency
//! order: [`model`] (pure data) ← [`solver`] (exact math) ← [`scenario`]
//! (files → model) ← [`output`] and [`report`] (writing) ← [`cli`].

pub mod model;
pub mod solver;
