//! `marlin solve`: the exact optimum of a scenario's network, for one λ or a
//! sweep, written as summary.json, policy.npz and SVG figures.

use super::BadInput;
use super::params::{NetworkParams, Sealed};
use crate::files::{write_json, write_text};
use crate::model::Network;
use crate::scenario::Scenario;
use crate::solver::{self, Solution, SolveError};
use anyhow::{Context, Result};
use ndarray::{Array, Array1, Array2, Array3};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What `solve` was asked to do.
#[derive(Clone, Debug)]
pub struct SolveArgs {
    pub scenario: PathBuf,
    pub out: Option<PathBuf>,
    pub lambda: Option<f64>,
    pub sweep: Option<Vec<f64>>,
    pub quiet: bool,
}

/// One solved λ, as written to summary.json.
#[derive(Clone, Debug, Serialize)]
pub struct SolveRecord {
    pub lambda: f64,
    /// Long-run objective ⟨r⟩ − λ·info, per tick.
    pub g: f64,
    pub mean_reward: f64,
    /// ⟨Σ_{acting k} KL(π_k ‖ p_k)⟩, nats per tick.
    pub info_nats: f64,
    /// Marginal firing probability of each neuron when it acts.
    pub p_fire: Vec<f64>,
    /// The prior the final policy was optimised against.
    pub prior: Vec<f64>,
    /// `count_distribution[x][c]` = P(spike count = c | input index x).
    pub count_distribution: Vec<Vec<f64>>,
    /// Stationary probability of each input index.
    pub input_marginal: Vec<f64>,
    pub converged: bool,
    /// Blahut–Arimoto iterations.
    pub iterations: usize,
    pub value_sweeps: usize,
    pub value_residual: f64,
    pub prior_residual: f64,
    pub stationary_sweeps: usize,
    pub stationary_residual: f64,
    pub seconds: f64,
    pub warnings: Vec<String>,
}

#[derive(Serialize)]
struct Summary<'a> {
    marlin_version: &'static str,
    scenario: &'a str,
    scenario_file: String,
    neurons: usize,
    dead: &'a [usize],
    input_values: &'a [f64],
    update: String,
    cost: &'static str,
    reward: &'static str,
    state_indexing: &'static str,
    #[serde(flatten)]
    single: Option<&'a SolveRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sweep: Option<&'a [SolveRecord]>,
    /// A sweep's warnings, each with its λ (a single solve's sit at the top
    /// level already, with its record).
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
}

/// The λ values `solve` is asked for: `--sweep-lambda`, `--lambda` (not
/// both), or the scenario's; each positive and finite.
pub fn lambdas(sweep: Option<&[f64]>, lambda: Option<f64>, scenario: f64) -> Result<Vec<f64>, BadInput> {
    let lambdas: Vec<f64> = match (sweep, lambda) {
        (Some(_), Some(_)) => return Err(BadInput("give --lambda or --sweep-lambda, not both".into())),
        (Some(s), None) => s.to_vec(),
        (None, Some(l)) => vec![l],
        (None, None) => vec![scenario],
    };
    if let Some(l) = lambdas.iter().find(|l| !(l.is_finite() && **l > 0.0)) {
        return Err(BadInput(format!(
            "λ = {l} is not allowed; allowed: positive finite numbers"
        )));
    }
    if lambdas.is_empty() {
        return Err(BadInput("--sweep-lambda needs at least one value".into()));
    }
    Ok(lambdas)
}

/// The folder `solve` writes into without `--out`, inside the scenario's
/// output folder: `solve` at the scenario's λ, `solve_lambda_L` for
/// `--lambda L` (L as a number prints: 1.0 → `solve_lambda_1`), `sweep` for
/// `--sweep-lambda` (one `lambda_L` folder per λ inside).
pub fn default_folder(lambda: Option<f64>, sweep: bool) -> String {
    match (lambda, sweep) {
        (_, true) => "sweep".into(),
        (Some(l), false) => format!("solve_lambda_{l}"),
        (None, false) => "solve".into(),
    }
}

/// Run `solve`; returns the records written.
pub fn run(args: &SolveArgs) -> Result<Vec<SolveRecord>> {
    let scenario = Scenario::load(&args.scenario).map_err(BadInput::from)?;
    let base = scenario.network().map_err(BadInput::from)?;
    let lambdas = lambdas(args.sweep.as_deref(), args.lambda, scenario.lambda)?;
    // Refuse what cannot be solved before creating any output.
    solver::check_size(&base).map_err(|e| BadInput(format!("{}: {e}", args.scenario.display())))?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| scenario.output.join(default_folder(args.lambda, args.sweep.is_some())));
    let sweeping = args.sweep.is_some();

    let bar = crate::progress::Task::start("solving λ", "", Some(lambdas.len() as u64), args.quiet);
    let mut records = Vec::new();
    for &lambda in &lambdas {
        let mut net = base.clone();
        net.lambda = lambda;
        let t0 = std::time::Instant::now();
        let sol = solver::solve_with(&net, &scenario.solver, &mut |p| {
            bar.set_message(format!(
                "λ={lambda}: Blahut–Arimoto iteration {}, g={:.5}, {} sweeps, Δp={:.1e}",
                p.iteration, p.g, p.value_sweeps, p.prior_residual
            ))
        })
        .map_err(|e| match e {
            SolveError::Invalid(_) | SolveError::TooLarge { .. } | SolveError::TooSlow { .. } => {
                anyhow::Error::new(BadInput(e.to_string()))
            }
        })?;
        let record = record(&net, &sol, t0.elapsed().as_secs_f64());
        for w in &record.warnings {
            tracing::warn!(lambda, "{w}");
        }
        let dir = if sweeping {
            out.join(format!("lambda_{lambda}"))
        } else {
            out.clone()
        };
        write_policy(&dir.join("policy.npz"), &net, &sol, &scenario.name)?;
        let labels = input_labels(&net.input.values);
        let svg = crate::report::count_distribution(
            &format!("{}: spike counts at the optimum (λ = {lambda})", scenario.name),
            &record.count_distribution,
            &labels,
        )
        .map_err(|e| anyhow::anyhow!("drawing the count distribution: {e}"))?;
        write_text(&dir.join("count_distribution.svg"), &svg)?;
        if let Some(m) = &scenario.motor {
            super::draw(
                &dir.join("maze.svg"),
                crate::report::maze_map(
                    &format!(
                        "walker's visit density, λ = {lambda}: goal every {:.0} ticks",
                        m.maze.reward().iter().cloned().fold(0.0, f64::max) / record.mean_reward.max(1e-300)
                    ),
                    &m.maze.grid(&record.input_marginal),
                    crate::report::MapScale::Sequential,
                    &super::maze::marks(&m.maze),
                    None,
                ),
            )?;
        }
        records.push(record);
        bar.inc(1);
    }
    bar.finish();
    if sweeping {
        let pts: Vec<(f64, f64, f64)> = records.iter().map(|r| (r.lambda, r.info_nats, r.mean_reward)).collect();
        let svg = crate::report::tradeoff(&format!("{}: reward–information trade-off", scenario.name), &pts)
            .map_err(|e| anyhow::anyhow!("drawing the trade-off: {e}"))?;
        write_text(&out.join("tradeoff.svg"), &svg)?;
    }
    let summary = Summary {
        marlin_version: env!("CARGO_PKG_VERSION"),
        scenario: &scenario.name,
        scenario_file: scenario.path.display().to_string(),
        neurons: base.n,
        dead: &scenario.dead,
        input_values: &base.input.values,
        update: base.update.to_string(),
        cost: base.cost.name(),
        reward: scenario.reward.kind(),
        state_indexing: "s = x·2^n + σ; bit k of σ is neuron k",
        single: (!sweeping).then(|| &records[0]),
        sweep: sweeping.then_some(records.as_slice()),
        warnings: sweeping.then(|| {
            records
                .iter()
                .flat_map(|r| r.warnings.iter().map(move |w| format!("λ = {}: {w}", r.lambda)))
                .collect()
        }),
    };
    write_json(&out.join("summary.json"), &summary).context("writing summary.json")?;
    Ok(records)
}

/// Labels like "x = -1" for each input value.
pub fn input_labels(values: &[f64]) -> Vec<String> {
    values.iter().map(|v| format!("x = {v:+}")).collect()
}

fn record(net: &Network, sol: &Solution, seconds: f64) -> SolveRecord {
    SolveRecord {
        lambda: net.lambda,
        g: sol.eval.g,
        mean_reward: sol.eval.mean_reward,
        info_nats: sol.eval.info_nats,
        p_fire: sol.eval.p_fire.clone(),
        prior: sol.prior.clone(),
        count_distribution: sol.eval.count_distribution(net),
        input_marginal: sol.eval.input_marginal(net),
        converged: sol.converged,
        iterations: sol.iterations,
        value_sweeps: sol.value_sweeps,
        value_residual: sol.value_residual,
        prior_residual: sol.prior_residual,
        stationary_sweeps: sol.eval.stationary_sweeps,
        stationary_residual: sol.eval.stationary_residual,
        seconds,
        warnings: sol.warnings.clone(),
    }
}

/// policy.npz: `p_fire` `[X, 2ⁿ, n]` = π_k(1 | x, σ); `rho`, `h`, `reward`
/// `[X, 2ⁿ]`; `prior` `[n]`; `input_values` `[X]`; `transition` `[X, X]`; `lambda` `[]`;
/// and beside it policy.json, what it was solved for ([`super::params`]),
/// in the scenario named `scenario`.
pub fn write_policy(path: &Path, net: &Network, sol: &Solution, scenario: &str) -> Result<()> {
    let xs = net.input.len();
    let c = net.configs();
    let shape2 = |v: &[f64]| Array2::from_shape_vec((xs, c), v.to_vec()).expect("state table shape");
    let params = Sealed::new(
        crate::files::formats::POLICY,
        "marlin solve",
        scenario,
        NetworkParams::of(net),
    );
    let mut npz = params.archive();
    npz.add(
        "p_fire",
        Array3::from_shape_vec((xs, c, net.n), sol.policy.fire.clone()).expect("policy shape"),
    )
    .add("rho", shape2(&sol.eval.rho))
    .add("h", shape2(&sol.h))
    .add("reward", shape2(&net.reward))
    .add("prior", Array1::from(sol.prior.clone()))
    .add("input_values", Array1::from(net.input.values.clone()))
    .add(
        "transition",
        Array2::from_shape_vec((xs, xs), net.input.transition.clone()).expect("transition shape"),
    )
    .add("lambda", Array::from_elem((), net.lambda));
    params.write(npz, path)
}
