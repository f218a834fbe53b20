//! Sensory-coding scenario files (theory §8): a `[coding]` table in place of
//! `[network]`, `[input]` and `[reward]` — the reward is the network's own
//! log-posterior of the feature, so it is not written in the file.
//!
//! ```toml
//! name = "efficient_coding"
//! seed = 1
//! [coding]
//! pixels = 7                 # binary pixels, each on with probability q
//! threshold = 3              # y = +1 when more than 3 pixels are on
//! pixel_probability = 0.5    # q
//! change_probability = 0.05  # the image is redrawn with this probability per tick
//! neurons = 7
//! [cost]
//! lambda = 0.02              # mutual-information cost, nats
//! [study]
//! ticks = 1_000_000          # recorded for inverse RL by `marlin run`
//! perturbations = ["pixel_probability:0.2", "lambda:0.2"]
//! ```

use super::{Cx, Placed, ScenarioError, SolverSection, header, solver_options};
use crate::coding::{CodingOptions, CodingTask};
use serde::Deserialize;
use std::path::PathBuf;
use toml::Spanned;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct CodingFile {
    name: Option<String>,
    description: Option<String>,
    seed: Option<Spanned<i64>>,
    output: Option<String>,
    coding: Spanned<CodingSection>,
    cost: Spanned<CodingCost>,
    solver: Option<SolverSection>,
    study: Option<Spanned<CodingStudySection>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct CodingSection {
    pixels: Option<Spanned<i64>>,
    threshold: Option<Spanned<i64>>,
    pixel_probability: Option<Spanned<f64>>,
    change_probability: Option<Spanned<f64>>,
    neurons: Option<Spanned<i64>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct CodingCost {
    lambda: Spanned<f64>,
    kind: Option<Spanned<String>>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct CodingStudySection {
    ticks: Option<Spanned<i64>>,
    train_ticks: Option<Spanned<i64>>,
    perturbations: Option<Spanned<Vec<String>>>,
}

/// Largest number of pixels (the lumped input has pixels + 1 values).
pub const MAX_PIXELS: i64 = 64;
/// Largest network the coding solver tabulates (the alternation solves it
/// many times).
pub const MAX_CODING_NEURONS: i64 = 12;

/// What `marlin run` does on a coding scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct CodingStudy {
    /// Ticks recorded from the solved code for inverse RL.
    pub ticks: u64,
    /// Learning ticks of the decentralised learners (0: no training stage).
    pub train_ticks: u64,
    /// `pixel_probability:Q` and `lambda:L` specs; None: q halved.
    pub perturbations: Option<Vec<Placed>>,
}

/// A validated sensory-coding scenario.
#[derive(Clone, Debug)]
pub struct CodingScenario {
    pub path: PathBuf,
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub output: PathBuf,
    pub task: CodingTask,
    pub options: CodingOptions,
    pub study: CodingStudy,
}

/// Whether a parsed TOML document is a sensory-coding scenario.
pub(super) fn is_coding(doc: &toml::Table) -> bool {
    doc.contains_key("coding")
}

pub(super) fn parse(cx: &Cx, text: &str) -> Result<CodingScenario, ScenarioError> {
    let f: CodingFile = cx.deserialize(text)?;
    let (name, seed, output) = header(cx, f.name, &f.seed, f.output)?;
    let sec = f.coding.get_ref();
    let pixels = match &sec.pixels {
        Some(v) => cx.count(v, "coding.pixels", 1, MAX_PIXELS)?,
        None => 7,
    };
    let threshold = match &sec.threshold {
        Some(v) => cx.count(v, "coding.threshold", 0, pixels as i64 - 1)?,
        None => (pixels - 1) / 2,
    };
    let pixel_probability = match &sec.pixel_probability {
        Some(v) => cx.prob(v, "coding.pixel_probability", true, true)?,
        None => 0.5,
    };
    let change_probability = match &sec.change_probability {
        Some(v) => cx.prob(v, "coding.change_probability", true, false)?,
        None => 0.05,
    };
    let neurons = match &sec.neurons {
        Some(v) => cx.count(v, "coding.neurons", 1, MAX_CODING_NEURONS)?,
        None => 7,
    };
    let cost = f.cost.get_ref();
    let lambda = cx.positive(&cost.lambda, "cost.lambda")?;
    if let Some(k) = &cost.kind
        && k.get_ref() != "mutual_information"
    {
        return Err(cx.err(
            k.span(),
            "cost.kind",
            format!(
                "got {:?}; allowed: \"mutual_information\" (the coding world's cost is the information each \
                 neuron's response carries)",
                k.get_ref()
            ),
        ));
    }
    let solve = solver_options(cx, &f.solver)?;
    let options = CodingOptions {
        starts: solve.starts.unwrap_or(8),
        solve: crate::solver::SolveOptions {
            // Each alternation is one Blahut–Arimoto run from the last prior.
            starts: Some(1),
            ..solve
        },
        ..CodingOptions::default()
    };
    let mut study = CodingStudy {
        ticks: 1_000_000,
        train_ticks: 20_000_000,
        perturbations: None,
    };
    if let Some(st) = &f.study {
        let s = st.get_ref();
        if let Some(v) = &s.ticks {
            study.ticks = cx.count(v, "study.ticks", 1, 1_000_000_000_000)? as u64;
        }
        if let Some(v) = &s.train_ticks {
            study.train_ticks = cx.count(v, "study.train_ticks", 0, 1_000_000_000_000)? as u64;
        }
        if let Some(p) = &s.perturbations {
            let at = Some(cx.line_col(p.span().start));
            study.perturbations = Some(p.get_ref().iter().map(|s| Placed { value: s.clone(), at }).collect());
        }
    }
    Ok(CodingScenario {
        path: cx.path.to_path_buf(),
        name,
        description: f.description.unwrap_or_default(),
        seed,
        output,
        task: CodingTask {
            pixels,
            threshold,
            pixel_probability,
            change_probability,
            neurons,
            lambda,
        },
        options,
        study,
    })
}
