//! The commands on a sensory-coding scenario (docs/theory.md §8): `solve` (the
//! self-consistent code by alternation, its tuning curves, posterior and
//! information against independent neurons) and the study of `marlin run`
//! (solve, record the code with the runtime, infer its reward by the network
//! pipeline, and predict the code under new pixel statistics or a new λ
//! from the inferred reward, against the truth and the naive prediction).
//!
//! `solve` also writes the solved code as an ordinary network scenario
//! (`network.toml` with its reward table `reward.npy`, and `policy.npz`), so
//! `marlin simulate`, `infer` and `predict` work on it unchanged. Inputs are
//! validated before anything is written; every output is written atomically.

use super::infer::{InferArgs, run_infer};
use super::simulate::{SimulateArgs, run_simulate};
use super::{BadInput, draw};
use crate::coding::{self, CodingSolution, CodingTask};
use crate::files::{Npz, write_json, write_text};
use crate::model::{Network, spike_count};
use crate::report;
use crate::scenario::CodingScenario;
use crate::solver::{self, SolveOptions};
use anyhow::{Context, Result};
use ndarray::{Array1, Array2, Array3};
use ndarray_npy::WriteNpyExt;
use serde::Serialize;
use std::path::{Path, PathBuf};

const NATS_PER_BIT: f64 = std::f64::consts::LN_2;
/// Rate curves closer than this at every input are one cell type.
pub const TYPE_TOLERANCE: f64 = 0.02;

/// What a solved code looks like, as written to coding.json.
#[derive(Clone, Debug, Serialize)]
pub struct CodeSummary {
    pub pixel_probability: f64,
    pub lambda: f64,
    /// ⟨log p(y | σ)⟩ − λ·I, the objective the alternation ascends.
    pub objective: f64,
    /// I(Y; Σ) of the network and of independent neurons with the same
    /// P(σ_k = 1 | pixels on), bits.
    pub information_y_bits: f64,
    pub independent_information_y_bits: f64,
    /// The coding cost Σ_k I(A_k; S) per tick in nats (asynchronous: one acts).
    pub info_nats: f64,
    /// P(y = +1 | spike count), count 0..=n.
    pub posterior_by_count: Vec<Option<f64>>,
    /// Whether P(y = +1 | count) rises with the count (over counts that occur).
    pub posterior_monotone: bool,
    /// `rates[k][m]` = P(σ_k = 1 | m pixels on).
    pub rates: Vec<Vec<f64>>,
    /// Neurons with the same rate curve (within [`TYPE_TOLERANCE`]).
    pub cell_types: Vec<Vec<usize>>,
    /// Mean firing of each type.
    pub type_rates: Vec<f64>,
    pub alternations: usize,
    pub converged: bool,
    pub start_objective: Vec<f64>,
    pub warnings: Vec<String>,
}

/// Measure a solved code.
pub fn summarize(task: &CodingTask, sol: &CodingSolution) -> CodeSummary {
    let mut s = measure(task, &sol.y, &sol.solution.eval, sol.objective());
    s.alternations = sol.history.len();
    s.converged = sol.converged;
    s.start_objective = sol.start_objective.clone();
    s.warnings = sol.warnings.iter().chain(&sol.solution.warnings).cloned().collect();
    s
}

/// Measure any code of the task from its exact evaluation (the history
/// fields empty).
fn measure(task: &CodingTask, y: &[bool], eval: &solver::Evaluation, objective: f64) -> CodeSummary {
    let n = task.neurons;
    let rho = &eval.rho;
    let post = coding::posterior_by_count(n, y, rho);
    let occurs: Vec<f64> = post.iter().copied().filter(|p| p.is_finite()).collect();
    let rates = coding::rates(n, y.len(), rho);
    let types = coding::cell_types(&rates, TYPE_TOLERANCE);
    let type_rates = types
        .iter()
        .map(|g| g.iter().map(|&k| eval.p_fire[k]).sum::<f64>() / g.len() as f64)
        .collect();
    CodeSummary {
        pixel_probability: task.pixel_probability,
        lambda: task.lambda,
        objective,
        information_y_bits: coding::information(n, y, rho) / NATS_PER_BIT,
        independent_information_y_bits: coding::independent_information(n, y, rho) / NATS_PER_BIT,
        info_nats: eval.info_nats,
        posterior_by_count: post.iter().map(|p| p.is_finite().then_some(*p)).collect(),
        posterior_monotone: occurs.windows(2).all(|w| w[1] >= w[0] - 1e-9),
        rates,
        cell_types: types,
        type_rates,
        alternations: 0,
        converged: true,
        start_objective: Vec::new(),
        warnings: Vec::new(),
    }
}

/// The code decentralised learners reached, and the alternation continued from it.
#[derive(Clone, Debug, Serialize)]
pub struct LearnedCode {
    /// The learned policies measured exactly with their own posterior
    /// (objective = ⟨log p_π(y | σ)⟩ − λ·I).
    pub learned: CodeSummary,
    /// The alternation started from the learned code's posterior and
    /// marginals: a fixed point at least as good (each step cannot lower
    /// the objective).
    pub refined: CodeSummary,
    /// The objective of the solved code (the alternation from the
    /// symmetric decoder, as `marlin solve` reports it).
    pub solved_objective: f64,
}

/// Measure the learned policies `fire` (state-major, the solver's layout)
/// against their own posterior, and refine them by alternation.
pub fn learned_code(sc: &CodingScenario, sol: &CodingSolution, fire: Vec<f64>) -> Result<LearnedCode> {
    let task = &sc.task;
    let n = task.neurons;
    let net = &sol.network;
    let opts = SolveOptions {
        stationary_tol: 1e-12,
        ..sc.options.solve.clone()
    };
    let eval = solver::evaluate(net, &solver::Policy { n, fire }, &opts);
    let post = coding::posterior(n, &sol.y, &eval.rho);
    let mean_log_post = coding::mean_log_posterior(n, &sol.y, &eval.rho, &post);
    let learned = measure(task, &sol.y, &eval, mean_log_post - task.lambda * eval.info_nats);
    let refined = coding::alternate(task, &net.input, &sol.y, &post, eval.p_fire.clone(), &sc.options)
        .map_err(|e| BadInput(e.to_string()))?;
    Ok(LearnedCode {
        learned,
        refined: summarize(task, &refined),
        solved_objective: sol.objective(),
    })
}

/// Solve the task with the scenario's options, with a spinner.
pub fn solve_task(sc: &CodingScenario, task: &CodingTask, quiet: bool) -> Result<CodingSolution> {
    let bar = crate::progress::Task::start("solving the code by alternation", "", None, quiet);

    let sol = coding::solve(task, task.input(), &task.feature(), &sc.options).map_err(|e| BadInput(e.to_string()));
    bar.finish();
    Ok(sol?)
}

/// `marlin solve` on a coding scenario: the code, its figures, and the code
/// as a network scenario in `out`.
pub fn solve(sc: &CodingScenario, out: &Path, quiet: bool) -> Result<CodeSummary> {
    Ok(solve_into(sc, out, quiet)?.1)
}

/// [`solve`], handing back the solution as well.
fn solve_into(sc: &CodingScenario, out: &Path, quiet: bool) -> Result<(CodingSolution, CodeSummary)> {
    let t0 = std::time::Instant::now();
    let sol = solve_task(sc, &sc.task, quiet)?;
    let summary = summarize(&sc.task, &sol);
    for w in &summary.warnings {
        tracing::warn!("{w}");
    }
    write_code(sc, &sc.task, &sol, &summary, out)?;
    write_json(
        &out.join("coding.json"),
        &serde_json::json!({
            "scenario": sc.name,
            "task": task_json(&sc.task),
            "code": summary,
            "note": "the best fixed point the alternation reached from the symmetric decoder (the paper's \
                     start); it need not be the optimum — `marlin train` on this scenario learns codes against \
                     an online decoder and continues the alternation from them (learned_code.json)",
            "seconds": t0.elapsed().as_secs_f64(),
        }),
    )?;
    Ok((sol, summary))
}

/// The copy of the coding scenario in `OUT/code` of `marlin train`.
pub const CODING_SCENARIO: &str = "coding_scenario.toml";

/// `marlin train` on a coding scenario: the code solved into `OUT/code`
/// (as `marlin solve` writes it), then decentralised learners of their
/// own code ([`train_code`]) in `OUT`. A resumed run solves again in
/// memory (the solve is deterministic) and leaves `OUT/code` as it is.
pub fn train(
    sc: &CodingScenario,
    args: &super::train::TrainArgs,
) -> Result<(super::train::TrainSummary, Vec<LearnedCode>)> {
    let out = match (&args.resume, &args.out) {
        (Some(dir), _) | (None, Some(dir)) => dir.clone(),
        (None, None) => sc.output.join("train"),
    };
    let code = out.join("code");
    let sol = match args.resume {
        Some(_) => solve_task(sc, &sc.task, args.quiet)?,
        None => {
            let (sol, _) = solve_into(sc, &code, args.quiet)?;
            // `marlin train --resume OUT` finds the task here.
            let text = std::fs::read_to_string(&sc.path).with_context(|| format!("reading {}", sc.path.display()))?;
            write_text(&code.join(CODING_SCENARIO), &text)?;
            sol
        }
    };
    train_code(
        sc,
        &sol,
        &code,
        &super::train::TrainArgs {
            out: Some(out),
            ..args.clone()
        },
    )
}

fn task_json(t: &CodingTask) -> serde_json::Value {
    serde_json::json!({
        "pixels": t.pixels,
        "threshold": t.threshold,
        "pixel_probability": t.pixel_probability,
        "change_probability": t.change_probability,
        "neurons": t.neurons,
        "lambda": t.lambda,
        "input": "lumped: index m = number of active pixels (hold, or redraw m ~ Binomial(pixels, q))",
    })
}

/// policy.npz, reward.npy, network.toml, code.npz and the figures.
fn write_code(sc: &CodingScenario, task: &CodingTask, sol: &CodingSolution, s: &CodeSummary, out: &Path) -> Result<()> {
    let net = &sol.network;
    let (n, xs, c) = (net.n, net.input.len(), net.configs());
    super::solve::write_policy(
        &out.join("policy.npz"),
        net,
        &sol.solution,
        &format!("{}_code", sc.name),
    )?;
    let table = Array2::from_shape_vec((xs, c), net.reward.clone()).expect("reward shape");
    crate::files::write_atomic(&out.join("reward.npy"), |f| {
        table.write_npy(f).context("writing reward.npy")?;
        Ok(())
    })?;
    write_text(&out.join("network.toml"), &network_toml(sc, task, net))?;
    let rho = &sol.solution.eval.rho;
    let tuning = coding::tuning(net, &sol.solution.policy, rho);
    let mut npz = Npz::new(crate::files::formats::CODING);
    npz.add("rates", Array2::from_shape_fn((n, xs), |(k, x)| s.rates[k][x]))
        .add("tuning", Array3::from_shape_fn((n, xs, n), |(k, x, o)| tuning[k][x][o]))
        .add("posterior", Array1::from(sol.posterior.clone()))
        .add(
            "posterior_by_count",
            Array1::from(coding::posterior_by_count(n, &sol.y, rho)),
        )
        .add(
            "feature",
            Array1::from(sol.y.iter().map(|&b| if b { 1i64 } else { -1 }).collect::<Vec<_>>()),
        )
        .add("pixel_count_probability", Array1::from(task.count_distribution()))
        .add(
            "objective",
            Array1::from(sol.history.iter().map(|a| a.objective).collect::<Vec<_>>()),
        );
    npz.write(&out.join("code.npz"))?;

    let m_axis = |v: &[f64]| -> Vec<(f64, f64)> { v.iter().enumerate().map(|(m, &r)| (m as f64, r)).collect() };
    let series: Vec<(String, Vec<(f64, f64)>)> = s
        .cell_types
        .iter()
        .map(|g| (format!("neurons {g:?}"), m_axis(&s.rates[g[0]])))
        .collect();
    draw(
        &out.join("tuning.svg"),
        report::lines(
            &format!("{}: tuning curves, q = {}", sc.name, task.pixel_probability),
            "active pixels",
            "P(neuron active)",
            &series,
            None,
        ),
    )?;
    // π_k(1 | m, spikes of the others) for the first neuron of each type,
    // one curve per input class y.
    let mut by_count = Vec::new();
    for g in &s.cell_types {
        let k = g[0];
        for (label, want) in [("y = −1", false), ("y = +1", true)] {
            let ms: Vec<usize> = (0..xs).filter(|&m| sol.y[m] == want).collect();
            let pts = (0..n)
                .map(|o| {
                    let vals: Vec<f64> = ms.iter().map(|&m| tuning[k][m][o]).filter(|v| v.is_finite()).collect();
                    let v = if vals.is_empty() {
                        f64::NAN
                    } else {
                        vals.iter().sum::<f64>() / vals.len() as f64
                    };
                    (o as f64, v)
                })
                .collect();
            by_count.push((format!("neurons {g:?}, {label}"), pts));
        }
    }
    draw(
        &out.join("tuning_count.svg"),
        report::lines(
            &format!("{}: firing against the others' spike count", sc.name),
            "spikes of the other neurons",
            "π(fire)",
            &by_count,
            None,
        ),
    )?;
    let post: Vec<(f64, f64)> = s
        .posterior_by_count
        .iter()
        .enumerate()
        .map(|(c, p)| (c as f64, p.unwrap_or(f64::NAN)))
        .collect();
    draw(
        &out.join("posterior.svg"),
        report::lines(
            &format!(
                "p(y = +1 | spike count): I(Y;Σ) = {:.3} bits (independent: {:.3})",
                s.information_y_bits, s.independent_information_y_bits
            ),
            "spike count",
            "p(y = +1 | count)",
            &[("network".to_string(), post)],
            Some((0.5, "chance")),
        ),
    )?;
    Ok(())
}

/// The solved code as a network scenario: lumped input, reward table.
fn network_toml(sc: &CodingScenario, task: &CodingTask, net: &Network) -> String {
    let xs = net.input.len();
    let rows: Vec<String> = (0..xs)
        .map(|a| {
            let row: Vec<String> = (0..xs).map(|b| format!("{:e}", net.input.p(a, b))).collect();
            format!("  [{}]", row.join(", "))
        })
        .collect();
    let values: Vec<String> = net.input.values.iter().map(|v| format!("{v:.1}")).collect();
    format!(
        "# The self-consistent code of {name} (written by `marlin solve`): the\n\
         # reward is its own log-posterior log p(y | σ), frozen.\n\
         name = \"{name}_code\"\n\
         description = \"The solved code of {name}: q = {q}, λ = {lambda}\"\n\
         seed = {seed}\n\n\
         [network]\nneurons = {n}\nupdate = \"asynchronous\"\ntopology = {{ kind = \"all_to_all\" }}\n\n\
         [input]\n# index m = number of active pixels\nvalues = [{values}]\ntransition = [\n{rows}\n]\n\n\
         [reward]\nkind = \"table\"\nfile = \"reward.npy\"\n\n\
         [cost]\nlambda = {lambda}\nkind = \"mutual_information\"\n\n\
         [learning]\npolicy = \"tabular\"\n\
         # `marlin train` rewards the learners with a decoder's log p(y | σ) learned online\n\
         # from their own responses (the self-consistent code; y = +1 where feature is 1);\n\
         # without this line they learn the frozen table above.\n\
         decoder = {{ feature = [{feature}] }}\n",
        feature = task
            .feature()
            .iter()
            .map(|&y| if y { "1" } else { "0" })
            .collect::<Vec<_>>()
            .join(", "),
        name = sc.name,
        q = task.pixel_probability,
        lambda = task.lambda,
        seed = sc.seed,
        n = net.n,
        values = values.join(", "),
        rows = rows.join(",\n"),
    )
}

/// A change of the world the study predicts.
#[derive(Clone, Debug, PartialEq)]
pub enum CodingPerturbation {
    PixelProbability(f64),
    Lambda(f64),
}

impl CodingPerturbation {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (kind, value) = spec
            .split_once(':')
            .ok_or_else(|| format!("{spec:?}: allowed: \"pixel_probability:Q\" or \"lambda:L\""))?;
        let v: f64 = value
            .trim()
            .parse()
            .map_err(|_| format!("{spec:?}: {value:?} is not a number"))?;
        match kind.trim() {
            "pixel_probability" if v > 0.0 && v < 1.0 => Ok(CodingPerturbation::PixelProbability(v)),
            "pixel_probability" => Err(format!("{spec:?}: allowed: a probability in (0, 1)")),
            "lambda" if v.is_finite() && v > 0.0 => Ok(CodingPerturbation::Lambda(v)),
            "lambda" => Err(format!("{spec:?}: allowed: a positive λ")),
            other => Err(format!(
                "{spec:?}: unknown perturbation {other:?}; allowed: \"pixel_probability:Q\" or \"lambda:L\""
            )),
        }
    }

    pub fn apply(&self, task: &CodingTask) -> CodingTask {
        let mut t = task.clone();
        match *self {
            CodingPerturbation::PixelProbability(q) => t.pixel_probability = q,
            CodingPerturbation::Lambda(l) => t.lambda = l,
        }
        t
    }
}

/// What the inverse RL of the recorded code found.
#[derive(Clone, Debug, Serialize)]
pub struct CodingInference {
    pub ticks: usize,
    /// Pearson correlation over well-visited states (input means removed) of
    /// the inferred reward with the true reward log p(y | σ).
    pub correlation_with_truth: f64,
    /// The same against log p̂(y | σ) estimated from the record alone.
    pub correlation_with_record_posterior: f64,
    /// Least-squares scale a of r̂ ≈ a·log p̂(y | σ) + b(x) (1 when λ is right).
    pub scale: f64,
    /// y(m) read off the inferred reward: +1 where r̂(m, ·) rises with the
    /// record's posterior, and whether that is the true feature for every m.
    pub decoded_feature: Vec<i8>,
    pub feature_recovered: bool,
    pub well_visited_states: usize,
}

/// Correlate an inferred reward (reward.npz from `marlin infer`) with the
/// log-posterior, the true one and the record's own.
pub fn assess_inference(truth: &[f64], y: &[bool], n: usize, r: &[f64], visits: &[u64]) -> CodingInference {
    let c = 1usize << n;
    let xs = y.len();
    let min_visits = crate::infer::TabularOptions::default().min_visits;
    let ok = |s: usize| visits[s] >= min_visits && r[s].is_finite();
    let corr = crate::infer::centred_correlation(r, truth, n, xs, ok);
    // The record's own posterior: its joint histogram of (x, σ).
    let rho: Vec<f64> = visits.iter().map(|&v| v as f64).collect();
    let post = coding::posterior(n, y, &rho);
    let own = coding::log_posterior_reward(n, y, &post);
    let corr_own = crate::infer::centred_correlation(r, &own, n, xs, ok);
    // Scale by least squares after removing each input's mean.
    let (mut sxy, mut sxx) = (0.0, 0.0);
    let mut decoded = Vec::with_capacity(xs);
    for x in 0..xs {
        let states: Vec<usize> = (0..c).map(|sg| x * c + sg).filter(|&s| ok(s)).collect();
        if states.len() < 2 {
            decoded.push(0);
            continue;
        }
        let mr = states.iter().map(|&s| r[s]).sum::<f64>() / states.len() as f64;
        // Against the log-odds of y = +1 (the same regressor for both y).
        let lo: Vec<f64> = states
            .iter()
            .map(|&s| {
                let p = post[s % c].clamp(coding::POSTERIOR_FLOOR, 1.0 - coding::POSTERIOR_FLOOR);
                (p / (1.0 - p)).ln()
            })
            .collect();
        let ml = lo.iter().sum::<f64>() / lo.len() as f64;
        let cov: f64 = states.iter().zip(&lo).map(|(&s, l)| (r[s] - mr) * (l - ml)).sum();
        decoded.push(if cov > 0.0 { 1 } else { -1 });
        let mo = states.iter().map(|&s| own[s]).sum::<f64>() / states.len() as f64;
        for &s in &states {
            sxy += (r[s] - mr) * (own[s] - mo);
            sxx += (own[s] - mo) * (own[s] - mo);
        }
    }
    let recovered = decoded.iter().zip(y).all(|(&d, &yx)| d == if yx { 1 } else { -1 });
    CodingInference {
        ticks: visits.iter().sum::<u64>() as usize,
        correlation_with_truth: corr,
        correlation_with_record_posterior: corr_own,
        scale: if sxx > 0.0 { sxy / sxx } else { f64::NAN },
        decoded_feature: decoded,
        feature_recovered: recovered,
        well_visited_states: (0..xs * c).filter(|&s| ok(s)).count(),
    }
}

/// One prediction of the study.
#[derive(Clone, Debug, Serialize)]
pub struct CodingPrediction {
    pub perturbation: String,
    /// The code re-solved by alternation with the true objective.
    pub truth: CodeSummary,
    /// The inferred objective: alternation with the log-posterior reward at
    /// the inferred scale (λ / a).
    pub predicted_objective: CodeSummary,
    /// The inferred reward table kept fixed (unvisited states filled with
    /// the visit-weighted mean of their input and spike count).
    pub predicted_table: CodeSummary,
    /// Old policies in the new world.
    pub naive: NaiveSummary,
    /// P(m)-weighted total variation between P(spike count | m) of each and the truth.
    pub tv_objective_truth: f64,
    pub tv_table_truth: f64,
    pub tv_naive_truth: f64,
    /// [`rate_error`] of each against the truth (cell types and tunings).
    pub rate_error_objective: f64,
    pub rate_error_table: f64,
    pub rate_error_naive: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct NaiveSummary {
    pub information_y_bits: f64,
    pub rates: Vec<Vec<f64>>,
    pub cell_types: Vec<Vec<usize>>,
}

/// Largest difference of P(σ_k = 1 | m) between two codes after sorting
/// each code's neurons by mean rate, then by curve (neuron labels are
/// arbitrary in a symmetric task): 0 when the codes have the same cell types and tunings.
pub fn rate_error(a: &[Vec<f64>], b: &[Vec<f64>], weights: &[f64]) -> f64 {
    let sorted = |r: &[Vec<f64>]| {
        let mut v = r.to_vec();
        let mean = |c: &Vec<f64>| c.iter().zip(weights).map(|(x, w)| x * w).sum::<f64>();
        v.sort_by(|p, q| {
            mean(p).total_cmp(&mean(q)).then_with(|| {
                p.iter()
                    .zip(q)
                    .map(|(a, b)| a.total_cmp(b))
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
        });
        v
    };
    let (a, b) = (sorted(a), sorted(b));
    a.iter()
        .zip(&b)
        .flat_map(|(p, q)| p.iter().zip(q).map(|(x, y)| (x - y).abs()))
        .fold(0.0, f64::max)
}

/// Mean over m (weighted by P(m)) of the TV distance between P(count | m).
fn tv_counts(a: &Network, ra: &[f64], rb: &[f64]) -> f64 {
    let c = a.configs();
    let mut total = 0.0;
    for x in 0..a.input.len() {
        let dist = |rho: &[f64]| {
            let mut d = vec![0.0; a.n + 1];
            for s in 0..c {
                d[spike_count(s)] += rho[x * c + s];
            }
            d
        };
        let (da, db) = (dist(ra), dist(rb));
        let (za, zb) = (da.iter().sum::<f64>(), db.iter().sum::<f64>());
        let tv: f64 = da.iter().zip(&db).map(|(p, q)| (p / za - q / zb).abs()).sum::<f64>() / 2.0;
        total += za * tv;
    }
    total
}

/// Fill the states inference could not see with the visit-weighted mean of
/// their (input, spike count); a count never seen takes its input's mean.
pub fn filled_table(r: &[f64], visits: &[u64], n: usize, xs: usize) -> Vec<f64> {
    let c = 1usize << n;
    let min_visits = crate::infer::TabularOptions::default().min_visits;
    let ok = |s: usize| visits[s] >= min_visits && r[s].is_finite();
    let mut out = r.to_vec();
    for x in 0..xs {
        let mean_of = |pred: &dyn Fn(usize) -> bool| {
            let (mut sw, mut sv) = (0.0, 0.0);
            for sg in 0..c {
                let s = x * c + sg;
                if ok(s) && pred(sg) {
                    sw += visits[s] as f64;
                    sv += visits[s] as f64 * r[s];
                }
            }
            (sw > 0.0).then(|| sv / sw)
        };
        let whole = mean_of(&|_| true).unwrap_or(0.0);
        let by_count: Vec<f64> = (0..=n)
            .map(|k| mean_of(&|sg| spike_count(sg) == k).unwrap_or(whole))
            .collect();
        for sg in 0..c {
            let s = x * c + sg;
            if !ok(s) {
                out[s] = by_count[spike_count(sg)];
            }
        }
    }
    out
}

/// Predict one perturbation from the inferred reward `r_hat` (filled) and
/// scale, with the old code `old` for the naive prediction.
pub fn predict(
    sc: &CodingScenario,
    old: &CodingSolution,
    r_hat: &[f64],
    scale: f64,
    p: &CodingPerturbation,
    spec: &str,
    quiet: bool,
) -> Result<CodingPrediction> {
    let new_task = p.apply(&sc.task);
    let truth = solve_task(sc, &new_task, quiet)?;
    // The inferred objective: r̂ = a·log p(y|σ), so the network maximises
    // ⟨log p⟩ − (λ/a)·I.
    let mut objective_task = new_task.clone();
    if scale.is_finite() && scale > 0.0 {
        objective_task.lambda = new_task.lambda / scale;
    }
    let by_objective = solve_task(sc, &objective_task, quiet)?;
    // The inferred table, fixed.
    let table_net = new_task.network(new_task.input(), r_hat.to_vec());
    let table_opts = SolveOptions {
        starts: Some(sc.options.starts),
        ..sc.options.solve.clone()
    };
    let table_sol = solver::solve(&table_net, &table_opts).map_err(|e| BadInput(e.to_string()))?;
    let y = new_task.feature();
    let as_code = |net: Network, solution: solver::Solution| CodingSolution {
        posterior: coding::posterior(net.n, &y, &solution.eval.rho),
        network: net,
        y: y.clone(),
        history: vec![coding::Alternation {
            objective: f64::NAN,
            g_solved: solution.eval.g,
            information_y: coding::information(new_task.neurons, &y, &solution.eval.rho),
            posterior_change: f64::NAN,
        }],
        converged: solution.converged,
        start_objective: solution.start_g.clone(),
        warnings: Vec::new(),
        solution,
    };
    let table_code = as_code(table_net, table_sol);
    // Naive: the old policies in the new world.
    let naive_net = new_task.network(new_task.input(), truth.network.reward.clone());
    let naive_eval = solver::evaluate(&naive_net, &old.solution.policy, &sc.options.solve);
    let n = new_task.neurons;
    let naive_rates = coding::rates(n, y.len(), &naive_eval.rho);
    let naive = NaiveSummary {
        information_y_bits: coding::information(n, &y, &naive_eval.rho) / NATS_PER_BIT,
        cell_types: coding::cell_types(&naive_rates, TYPE_TOLERANCE),
        rates: naive_rates,
    };
    let truth_rho = &truth.solution.eval.rho;
    let (truth_s, objective_s, table_s) = (
        summarize(&new_task, &truth),
        summarize(&objective_task, &by_objective),
        summarize(&new_task, &table_code),
    );
    let w = new_task.count_distribution();
    Ok(CodingPrediction {
        rate_error_objective: rate_error(&objective_s.rates, &truth_s.rates, &w),
        rate_error_table: rate_error(&table_s.rates, &truth_s.rates, &w),
        rate_error_naive: rate_error(&naive.rates, &truth_s.rates, &w),
        perturbation: spec.to_string(),
        tv_objective_truth: tv_counts(&truth.network, &by_objective.solution.eval.rho, truth_rho),
        tv_table_truth: tv_counts(&truth.network, &table_code.solution.eval.rho, truth_rho),
        tv_naive_truth: tv_counts(&truth.network, &naive_eval.rho, truth_rho),
        truth: truth_s,
        predicted_objective: objective_s,
        predicted_table: table_s,
        naive,
    })
}

/// The study's perturbations (default: the pixel probability halved),
/// each parsed before any stage runs. `marlin validate` checks the same.
pub fn study_perturbations(sc: &CodingScenario) -> Result<Vec<(String, CodingPerturbation)>, BadInput> {
    match &sc.study.perturbations {
        None => Ok(vec![(
            format!("pixel_probability:{}", sc.task.pixel_probability / 2.0),
            CodingPerturbation::PixelProbability(sc.task.pixel_probability / 2.0),
        )]),
        Some(list) => list
            .iter()
            .map(|p| {
                CodingPerturbation::parse(&p.value)
                    .map(|c| (p.value.clone(), c))
                    .map_err(|e| {
                        let place = p.at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default();
                        BadInput(format!("{}{place}: `study.perturbations`: {e}", sc.path.display()))
                    })
            })
            .collect(),
    }
}

/// `marlin run` on a coding scenario.
pub fn study(
    sc: &CodingScenario,
    out: &Path,
    ticks: Option<u64>,
    resume: bool,
    quiet: bool,
) -> Result<serde_json::Value> {
    let perturbations = study_perturbations(sc)?;
    let ticks = ticks.unwrap_or(sc.study.ticks);
    if ticks == 0 {
        return Err(BadInput("--ticks must be at least 1".into()).into());
    }
    let t0 = std::time::Instant::now();
    let say = |m: &str| crate::progress::stage(quiet, m);
    say("solving the code by alternation");
    let solve_dir = out.join("solve");
    let sol = solve_task(sc, &sc.task, quiet)?;
    let code = summarize(&sc.task, &sol);
    write_code(sc, &sc.task, &sol, &code, &solve_dir)?;

    say("recording the code");
    let sim = run_simulate(&SimulateArgs::study_recording(
        solve_dir.join("network.toml"),
        solve_dir.join("policy.npz"),
        ticks,
        out.join("simulate"),
        resume,
        quiet,
    ))?;

    // Decentralised learners of the self-consistent code: rewarded by an
    // online decoder of their own responses, scored with their own posterior.
    let mut train_warnings = Vec::new();
    let trained = if sc.study.train_ticks > 0 {
        say("training decentralised learners against an online decoder of their own code");
        let (t, learned) = train_code(
            sc,
            &sol,
            &solve_dir,
            &super::train::TrainArgs {
                ticks: Some(sc.study.train_ticks),
                policies: Some(vec![crate::learn::PolicyKind::Tabular]),
                seed: Some(sc.seed),
                out: Some(out.join("train")),
                quiet,
                resume: super::study::resumable(resume, &out.join("train"), "train"),
                ..Default::default()
            },
        )?;
        train_warnings = t.warnings.clone();
        let run = &t.runs[0];
        let l = &learned[0];
        serde_json::json!({
            "ticks": run.ticks,
            "seconds": run.seconds,
            "g": l.learned.objective,
            "untrained_g": t.untrained.exact.as_ref().map(|e| e.g),
            "solved_objective": l.solved_objective,
            "learned": l.learned,
            "refined": l.refined,
            "note": "learners rewarded by an online decoder's log p̂(y | σ) of their own responses; g is the \
                     learned code's exact objective with its own posterior; refined: the alternation continued \
                     from the learned code",
        })
    } else {
        serde_json::Value::Null
    };

    say("inferring the reward from the recording");
    // The tabular inversion caps log-odds at what the counts can show, so
    // near-deterministic responses shrink its rewards; the (input, spike
    // count) maximum-likelihood fit models the saturation and is the
    // study's estimate. Both are written.
    let infer = |model: super::infer::RewardModel, dir: &str| {
        run_infer(&InferArgs {
            trajectory: out.join("simulate/trajectory.npz"),
            lambda: Some(sc.task.lambda),
            reward_model: Some(model),
            scenario: Some(solve_dir.join("network.toml")),
            bootstrap: 0,
            out: Some(out.join(dir)),
            quiet,
        })
    };
    let tabular_summary = infer(super::infer::RewardModel::Tabular, "infer_tabular")?;
    let count_summary = infer(super::infer::RewardModel::Count, "infer")?;
    let n = sc.task.neurons;
    let (r_tab, visits) = read_inferred(&out.join("infer_tabular/reward.npz"))?;
    let tabular = assess_inference(&sol.network.reward, &sol.y, n, &r_tab, &visits);
    let (r_hat, visits) = read_inferred(&out.join("infer/reward.npz"))?;
    let assessed = assess_inference(&sol.network.reward, &sol.y, n, &r_hat, &visits);
    let filled = filled_table(&r_hat, &visits, n, sol.y.len());
    draw(
        &out.join("infer/reward_vs_log_posterior.svg"),
        report::scatter(
            &format!(
                "inferred reward against log p(y | σ): r = {:.3} (count fit), {:.3} (tabular)",
                assessed.correlation_with_truth, tabular.correlation_with_truth
            ),
            "log p(y(x) | σ) (input means removed)",
            "inferred reward (input means removed)",
            &[
                (
                    "count fit".to_string(),
                    centred_pairs(&sol.network.reward, &r_hat, &visits, n, sol.y.len()),
                ),
                (
                    "tabular".to_string(),
                    centred_pairs(&sol.network.reward, &r_tab, &visits, n, sol.y.len()),
                ),
            ],
        ),
    )?;

    let mut predictions = Vec::new();
    let mut prediction_figures = Vec::new();
    for (i, (spec, p)) in perturbations.iter().enumerate() {
        say(&format!("predicting {spec}"));
        let pred = predict(sc, &sol, &filled, assessed.scale, p, spec, quiet)?;
        let path = out.join(format!("predict/{}.svg", i + 1));
        draw(&path, rates_figure(&pred))?;
        prediction_figures.push((spec.clone(), path));
        predictions.push(pred);
    }
    let infer_warnings = count_summary.warnings.iter().chain(&tabular_summary.warnings);
    let predict_warnings = predictions.iter().flat_map(|p| {
        let all = p.truth.warnings.iter().chain(&p.predicted_objective.warnings);
        all.chain(&p.predicted_table.warnings)
            .map(move |w| format!("predict {}: {w}", p.perturbation))
    });
    let warnings: Vec<String> = code
        .warnings
        .iter()
        .map(|w| format!("solve: {w}"))
        .chain(train_warnings.iter().map(|w| format!("train: {w}")))
        .chain(infer_warnings.map(|w| format!("infer: {w}")))
        .chain(predict_warnings)
        .collect();
    let summary = serde_json::json!({
        "scenario": sc.name,
        "output": crate::files::outdir::final_path(&out).display().to_string(),
        "task": task_json(&sc.task),
        "solve": code,
        "simulate": { "ticks": ticks, "mean_reward": sim.totals.reward / sim.totals.ticks.max(1) as f64, "seconds": sim.seconds },
        "train": trained,
        "infer": assessed,
        "infer_tabular": tabular,
        "predict": predictions,
        "seconds": t0.elapsed().as_secs_f64(),
        "warnings": warnings,
    });
    write_json(&out.join("summary.json"), &summary)?;
    write_text(
        &out.join("report.html"),
        &report_page(sc, out, &summary, &prediction_figures)?,
    )?;
    Ok(summary)
}

/// `marlin train` on the solved code (`solve_dir/network.toml`, whose
/// `[learning] decoder` makes the reward the learners' own log-posterior),
/// then each run's learned code measured and refined ([`learned_code`]),
/// written to `learned_code.json` beside `learning.json`. A learned or
/// refined code better than the solved one is reported as a warning: the
/// alternation from the symmetric decoder found a fixed point, not the optimum.
pub fn train_code(
    sc: &CodingScenario,
    sol: &CodingSolution,
    solve_dir: &Path,
    args: &super::train::TrainArgs,
) -> Result<(super::train::TrainSummary, Vec<LearnedCode>)> {
    let out = args.out.clone().unwrap_or_else(|| sc.output.join("train"));
    let mut t = super::train::run_train(&super::train::TrainArgs {
        scenario: solve_dir.join("network.toml"),
        out: Some(out.clone()),
        ..args.clone()
    })?;
    let (n, xs) = (sc.task.neurons, sol.y.len());
    let mut learned = Vec::new();
    for run in &t.runs {
        let dir = if t.runs.len() > 1 {
            out.join(&run.label)
        } else {
            out.clone()
        };
        let (fire, _) = super::simulate::read_fire(&dir.join("learned_policy.npz"), n, xs)?;
        let l = learned_code(sc, sol, fire)?;
        let best = l.learned.objective.max(l.refined.objective);
        if best > l.solved_objective + 1e-6 {
            t.warnings.push(format!(
                "{}: the learned code (objective {:.4}; refined by alternation {:.4}) beats the solved code \
                 ({:.4}): the alternation from the symmetric decoder stopped at a fixed point that is not the optimum",
                run.label, l.learned.objective, l.refined.objective, l.solved_objective
            ));
        }
        learned.push(l);
    }
    let runs: Vec<serde_json::Value> = t
        .runs
        .iter()
        .zip(&learned)
        .map(|(r, l)| serde_json::json!({ "label": r.label, "code": l }))
        .collect();
    write_json(
        &out.join("learned_code.json"),
        &serde_json::json!({ "scenario": sc.name, "runs": runs, "warnings": t.warnings }),
    )?;
    Ok((t, learned))
}

/// The rate curves of each cell type: truth, the two predictions, naive.
fn rates_figure(p: &CodingPrediction) -> Result<String, Box<dyn std::error::Error>> {
    let mut series = Vec::new();
    let mut add = |who: &str, rates: &[Vec<f64>], types: &[Vec<usize>]| {
        for g in types {
            let pts = rates[g[0]].iter().enumerate().map(|(m, &r)| (m as f64, r)).collect();
            series.push((format!("{who}: {} neuron(s)", g.len()), pts));
        }
    };
    // The truth last, on top: a prediction that matches it is hidden under it.
    add(
        "inferred objective",
        &p.predicted_objective.rates,
        &p.predicted_objective.cell_types,
    );
    add(
        "inferred table",
        &p.predicted_table.rates,
        &p.predicted_table.cell_types,
    );
    add("naive", &p.naive.rates, &p.naive.cell_types);
    add("truth", &p.truth.rates, &p.truth.cell_types);
    report::lines(
        &format!("{}: tuning of each cell type", p.perturbation),
        "active pixels",
        "P(neuron active)",
        &series,
        None,
    )
}

/// report.html: the code, the inference and the predictions, with figures.
fn report_page(
    sc: &CodingScenario,
    out: &Path,
    s: &serde_json::Value,
    predictions: &[(String, PathBuf)],
) -> Result<String> {
    use crate::report::html::{Section, page};
    let num = |v: &serde_json::Value| v.as_f64().map_or("—".to_string(), |x| format!("{x:.3}"));
    let mut headline = vec![
        (
            "I(Y; Σ) in bits: network / independent neurons with its rates".to_string(),
            format!(
                "{} / {}",
                num(&s["solve"]["information_y_bits"]),
                num(&s["solve"]["independent_information_y_bits"])
            ),
        ),
        ("cell types".into(), s["solve"]["cell_types"].to_string()),
        (
            "inferred reward vs log p(y | σ), correlation (count fit / tabular)".into(),
            format!(
                "{} / {}",
                num(&s["infer"]["correlation_with_truth"]),
                num(&s["infer_tabular"]["correlation_with_truth"])
            ),
        ),
    ];
    if !s["train"].is_null() {
        headline.push((
            "decentralised learners of their own code: objective learned / refined by alternation / solved code".into(),
            format!(
                "{} / {} / {}",
                num(&s["train"]["g"]),
                num(&s["train"]["refined"]["objective"]),
                num(&s["train"]["solved_objective"])
            ),
        ));
        headline.push((
            "learned code: I(Y; Σ) bits, cell types".into(),
            format!(
                "{}, {}",
                num(&s["train"]["learned"]["information_y_bits"]),
                s["train"]["learned"]["cell_types"]
            ),
        ));
    }
    for p in s["predict"].as_array().into_iter().flatten() {
        headline.push((
            format!(
                "{}: rate error of the prediction (inferred objective / table / naive)",
                p["perturbation"].as_str().unwrap_or("?")
            ),
            format!(
                "{} / {} / {}",
                num(&p["rate_error_objective"]),
                num(&p["rate_error_table"]),
                num(&p["rate_error_naive"])
            ),
        ));
    }
    let fig = |path: &str, caption: &str| super::figure(&out.join(path), caption);
    let mut sections = vec![
        Section {
            id: "solve".into(),
            title: "The self-consistent code".into(),
            intro: "Solved by alternation: the reward is the code's own log-posterior of y (docs/theory.md §8).".into(),
            figures: vec![
                fig(
                    "solve/tuning.svg",
                    "Firing probability of each cell type against the number of active pixels.",
                )?,
                fig(
                    "solve/tuning_count.svg",
                    "Firing probability against the spike count of the other neurons, for each value of y.",
                )?,
                fig(
                    "solve/posterior.svg",
                    "The posterior p(y = +1 | spike count): it should rise with the count.",
                )?,
            ],
        },
        Section {
            id: "infer".into(),
            title: "Inverse RL from the recorded code".into(),
            intro: "The reward inferred from simulated responses against the true reward log p(y | σ), input means \
                    removed."
                .into(),
            figures: vec![fig(
                "infer/reward_vs_log_posterior.svg",
                "Points on a line: the inferred reward is proportional to log p(y | σ).",
            )?],
        },
        Section {
            id: "predict".into(),
            title: "Predicted adaptation".into(),
            intro:
                "The code re-solved under new input statistics or cost: the truth, the prediction from the inferred \
                    objective (log-posterior at the inferred scale), the inferred reward table kept fixed, and the \
                    old policies (naive)."
                    .into(),
            figures: predictions
                .iter()
                .map(|(spec, p)| {
                    super::figure(
                        p,
                        &format!(
                            "{spec}: one curve per cell type; a prediction that matches the truth lies under its \
                             curve."
                        ),
                    )
                })
                .collect::<Result<_>>()?,
        },
    ];
    if !s["train"].is_null() {
        sections.insert(
            1,
            Section {
                id: "train".into(),
                title: "Decentralised learning".into(),
                intro: "Tabular learners (docs/theory.md §4) given the fixed point's reward log p(y | σ), frozen."
                    .into(),
                figures: vec![fig(
                    "train/learning_curve.svg",
                    "Exact g of the learned policies over training, each scored with its own posterior; the line: \
                     the solved code's g*.",
                )?],
            },
        );
    }
    let t = &sc.task;
    Ok(page(
        &format!("marlin study: {}", sc.name),
        &format!(
            "{} — {} (q = {}), {}, λ = {}; marlin {}, {:.1} s.",
            sc.description,
            crate::text::count(t.pixels as u64, "pixel"),
            t.pixel_probability,
            crate::text::count(t.neurons as u64, "neuron"),
            t.lambda,
            env!("CARGO_PKG_VERSION"),
            s["seconds"].as_f64().unwrap_or(f64::NAN)
        ),
        &crate::report::html::summary_warnings(s),
        &headline,
        &sections,
    ))
}

/// `(truth, inferred)` pairs over well-visited states, input means removed.
fn centred_pairs(truth: &[f64], r: &[f64], visits: &[u64], n: usize, xs: usize) -> Vec<(f64, f64)> {
    let c = 1usize << n;
    let min_visits = crate::infer::TabularOptions::default().min_visits;
    let mut pts = Vec::new();
    for x in 0..xs {
        let states: Vec<usize> = (x * c..(x + 1) * c)
            .filter(|&s| visits[s] >= min_visits && r[s].is_finite())
            .collect();
        if states.is_empty() {
            continue;
        }
        let k = states.len() as f64;
        let mt = states.iter().map(|&s| truth[s]).sum::<f64>() / k;
        let mr = states.iter().map(|&s| r[s]).sum::<f64>() / k;
        pts.extend(states.iter().map(|&s| (truth[s] - mt, r[s] - mr)));
    }
    pts
}

/// `r` and `visits` from `marlin infer`'s reward.npz.
fn read_inferred(path: &Path) -> Result<(Vec<f64>, Vec<u64>)> {
    let mut npz = crate::files::open_npz(path, &[crate::files::formats::REWARD], 1, None)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let r: Array2<f64> = npz.by_name("r.npy").with_context(|| format!("{}: r", path.display()))?;
    let v: Array2<i64> = npz
        .by_name("visits.npy")
        .with_context(|| format!("{}: visits", path.display()))?;
    Ok((
        r.iter().copied().collect(),
        v.iter().map(|&x| x.max(0) as u64).collect(),
    ))
}

/// The default folder of `marlin solve` on a coding scenario.
pub fn solve_dir(sc: &CodingScenario, out: Option<&PathBuf>) -> PathBuf {
    out.cloned().unwrap_or_else(|| sc.output.join("solve"))
}
