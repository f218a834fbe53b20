//! `marlin infer`: the reward a recorded network optimises (docs/theory.md §5).
//! Two methods: tabular inversion of an asynchronous record with known
//! actors (one reward per state, model-free) and maximum likelihood of a
//! parametric reward (count, pattern or user features) under the
//! soft-optimal policy, which also reads synchronous, random-partial and
//! actor-less (imported) records and partially observed networks. Reads the
//! trajectory format of [`crate::record`]; writes reward.npz, reward.json
//! and figures.

use super::BadInput;
use crate::files::{Npz, write_json, write_text};
use crate::infer::likelihood::{self, Features, FitOptions, Responses};
use crate::infer::{EdgeCounts, TabularOptions, centred_correlation, invert_tabular, project_on_counts};
use crate::model::{CodingCost, InputProcess, Network, Observes, UpdateScheme, spike_count};
use crate::record::TrajectoryMeta;
use anyhow::{Context, Result};
use ndarray::{Array1, Array2, ArrayD};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Largest network the tabular inversion accepts.
pub const MAX_TABULAR_INFER: usize = 20;
/// Largest network the maximum-likelihood fit accepts (each likelihood
/// evaluation is an exact solve).
pub const MAX_PARAMETRIC_INFER: usize = 16;

/// The reward model of `--reward-model`.
#[derive(Clone, Debug, PartialEq)]
pub enum RewardModel {
    /// One reward per state, by tabular inversion.
    Tabular,
    /// Maximum likelihood, one-hot (input, spike count) features.
    Count,
    /// Maximum likelihood, per-input single-neuron and pairwise features.
    Pattern,
    /// Maximum likelihood, one reward per input value (identifiable when
    /// the network moves its input, e.g. per cell of a maze it drives).
    Input,
    /// Maximum likelihood, features from a .npy file.
    File(PathBuf),
}

impl RewardModel {
    pub fn parse(s: &str) -> Self {
        match s {
            "tabular" => RewardModel::Tabular,
            "count" => RewardModel::Count,
            "pattern" => RewardModel::Pattern,
            "input" => RewardModel::Input,
            path => RewardModel::File(PathBuf::from(path)),
        }
    }

    pub fn name(&self) -> String {
        match self {
            RewardModel::Tabular => "tabular".into(),
            RewardModel::Count => "count".into(),
            RewardModel::Pattern => "pattern".into(),
            RewardModel::Input => "input".into(),
            RewardModel::File(p) => format!("features from {}", p.display()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct InferArgs {
    pub trajectory: PathBuf,
    pub lambda: Option<f64>,
    /// None: tabular for asynchronous records with known actors of fully
    /// observed networks, count otherwise.
    pub reward_model: Option<RewardModel>,
    /// The scenario the record came from, if not the one its metadata names:
    /// its topology (what each neuron observes) and its true reward.
    pub scenario: Option<PathBuf>,
    /// Bootstrap replicates (0: no intervals).
    pub bootstrap: usize,
    pub out: Option<PathBuf>,
    /// No progress bar.
    pub quiet: bool,
}

/// Contiguous blocks the record is cut into for the bootstrap.
pub const BOOTSTRAP_BLOCKS: usize = 50;
/// Largest state space for which per-state bootstrap intervals are kept.
pub const MAX_STATE_INTERVALS: usize = 1 << 16;

#[derive(Serialize, Debug)]
pub struct InferSummary {
    /// One line on what was found (printed by the CLI and `marlin run`).
    pub headline: String,
    pub method: String,
    pub reward_model: String,
    pub trajectory: String,
    pub ticks: usize,
    pub n: usize,
    pub update: String,
    /// What each neuron observes in the model: "full state" or where the
    /// partial observation came from.
    pub observation: String,
    /// "known" (reward units) or "unknown" (r/λ).
    pub lambda: Option<f64>,
    pub units: &'static str,
    pub input_chain: &'static str,
    pub transition: Vec<Vec<f64>>,
    pub visited_states: usize,
    pub states: usize,
    /// Tabular inversion: weighted RMS residual of the edge equations.
    pub residual_rms: Option<f64>,
    pub p_fire: Vec<f64>,
    /// `count_reward[x][c]`: the reward of spike count c under input x — the
    /// fitted parameter (count model), else the visit-weighted mean of the
    /// inferred reward over states with c active neurons; null where no
    /// such state was visited.
    pub count_reward: Vec<Vec<Option<f64>>>,
    pub argmax_count: Vec<usize>,
    /// Bootstrap 95 % intervals `[lo, hi]` of `count_reward` (with --bootstrap).
    pub count_reward_interval: Option<Vec<Vec<[Option<f64>; 2]>>>,
    /// Per input: whether the interval of the best count lies above every
    /// other count's interval (with --bootstrap).
    pub argmax_separated: Option<Vec<bool>>,
    /// Parametric models: θ by feature, with bootstrap intervals.
    pub parameters: Option<Vec<Parameter>>,
    /// Parametric models: the maximum-likelihood fit.
    pub fit: Option<FitReport>,
    pub bootstrap: Option<String>,
    /// With the scenario's true reward: Pearson correlation over visited
    /// states after removing each input's mean.
    pub centred_correlation_with_truth: Option<f64>,
    /// Tabular inversion: does the (input, count) projection explain the
    /// record? Likelihood-ratio statistic of the record's actions against
    /// the soft-optimal policy of the count reward, its degrees of freedom
    /// and z = (stat − df)/√(2df).
    pub count_model_fit: Option<CountFit>,
    /// A network that drove a maze walker: the inferred reward per cell
    /// and whether its best cell is a goal.
    pub motor: Option<MotorInference>,
    /// Misfit and other warnings.
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
    pub seconds: f64,
}

/// The goal of a network that drove a maze walker, recovered from its
/// spikes and the walker's cells.
#[derive(Serialize, serde::Deserialize, Debug, Clone)]
pub struct MotorInference {
    /// Per cell (maze state index): the inferred reward averaged over the
    /// visits of the cell; null for cells never visited.
    pub cell_reward: Vec<Option<f64>>,
    /// (row, col) of the visited cell with the largest inferred reward.
    pub best_cell: (usize, usize),
    pub goal_cells: Vec<(usize, usize)>,
    pub goal_recovered: bool,
    /// How far the best cell stands above the other visited cells: (best −
    /// median) / robust SD of the others.
    pub best_z: f64,
    /// Pearson correlation over visited cells with the true per-cell reward.
    pub correlation_with_truth: Option<f64>,
    pub visited_cells: usize,
    pub cells: usize,
}

/// One parameter of a parametric reward.
#[derive(Serialize, Debug, Clone)]
pub struct Parameter {
    pub name: String,
    pub value: f64,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
}

/// The maximum-likelihood fit of a parametric reward.
#[derive(Serialize, Debug, Clone)]
pub struct FitReport {
    pub log_likelihood: f64,
    /// The ceiling: every (state, neuron) at its own empirical rate.
    pub saturated_log_likelihood: f64,
    /// 2·(saturated − fitted): roughly χ²(df) under a correct model.
    pub deviance: f64,
    pub df: usize,
    pub z: f64,
    pub responses: f64,
    pub iterations: u64,
    pub likelihood_evaluations: usize,
    pub gradient: &'static str,
    pub converged: bool,
    pub seconds: f64,
}

/// Likelihood-ratio check of the count model.
#[derive(Serialize, Debug, Clone)]
pub struct CountFit {
    pub statistic: f64,
    pub df: usize,
    pub z: f64,
}

/// A model is reported as not fitting when z exceeds this…
pub const MISFIT_Z: f64 = 5.0;
/// …and the statistic exceeds its degrees of freedom by this factor. The
/// tabular path's count reward is a least-squares projection, not a
/// maximum-likelihood fit, which inflates the statistic above χ² even for a
/// correct model (up to 1.2× on the toy at 10⁵ ticks); a reward the counts
/// cannot express gives far more (28× for a pattern reward).
pub const MISFIT_RATIO: f64 = 1.5;

struct Record {
    meta: TrajectoryMeta,
    x: Vec<usize>,
    sigma: Vec<usize>,
    actor: Vec<i64>,
    /// Asynchronous with the drawn neuron recorded.
    actor_known: bool,
}

/// Read a trajectory (format, seal, shapes and ranges: `record::read`) and
/// check it can be inverted: few enough neurons, all recorded, dense.
/// Where `infer` writes by default: `infer/` beside the record's folder
/// (out/toy8/simulate/trajectory.npz → out/toy8/infer; a maze's
/// demonstrations likewise).
pub fn default_folder(record: &Path) -> PathBuf {
    let folder = record.parent().unwrap_or(Path::new("."));
    folder.parent().unwrap_or(folder).join("infer")
}

fn read(path: &Path) -> Result<Record, BadInput> {
    let bad = |m: String| BadInput(format!("{}: {m}", path.display()));
    let fits = |meta: &TrajectoryMeta| {
        let n = meta.n;
        if n > MAX_TABULAR_INFER {
            return Err(format!(
                "{n} neurons; inference tabulates the state space and allows at most {MAX_TABULAR_INFER} \
                 ({MAX_PARAMETRIC_INFER} for parametric rewards)"
            ));
        }
        if meta.recorded_neurons != (0..n).collect::<Vec<_>>() {
            return Err("inference needs every neuron recorded, in order 0..n".into());
        }
        // Its tables over the X·2ⁿ states (counts, rewards, values, the
        // policy's n entries per state and their copies), before any is made.
        let states = (meta.inputs as u64) << n;
        let need = states.saturating_mul(16 * (8 + n as u64));
        let budget = crate::memory::MemoryBudget::now();
        if !budget.fits(need) {
            return Err(format!(
                "{n} neurons with {} input values is {states} states; inference's tables need about {} MiB and \
                 {} — record fewer neurons",
                meta.inputs,
                need >> 20,
                budget.describe()
            ));
        }
        Ok(())
    };
    let tr = crate::record::read(path, fits).map_err(bad)?;
    let spikes = tr.spikes.ok_or_else(|| {
        bad("no uint8 array `spikes` [T, n]: inference needs the dense form (--record-format dense)".into())
    })?;
    if tr.x.len() < 2 {
        return Err(bad("fewer than 2 ticks".into()));
    }
    let sigma = spikes
        .rows()
        .into_iter()
        .map(|row| crate::record::state_index(&row.to_vec()))
        .collect();
    let actor_known = tr.meta.update == "asynchronous" && tr.actor.iter().any(|&a| a >= 0);
    Ok(Record {
        meta: tr.meta,
        x: tr.x,
        sigma,
        actor: tr.actor,
        actor_known,
    })
}

/// Everything both methods share: the record, the input chain, the truth.
struct Shared {
    rec: Record,
    out: PathBuf,
    n: usize,
    xs: usize,
    /// The input chain (with the motor rule when the network moved its input).
    input: InputProcess,
    chain: &'static str,
    /// The maze the network drove, when it did.
    motor: Option<crate::scenario::MotorMaze>,
    truth: Option<Vec<f64>>,
    observes: Option<Vec<Observes>>,
    observation: String,
    labels: Vec<String>,
    units: &'static str,
}

/// What a method inferred, in the solver's state indexing.
struct Inferred {
    r: Vec<f64>,
    h: Vec<f64>,
    visits: Vec<u64>,
    p_fire: Vec<f64>,
    by_count: Vec<Vec<f64>>,
    /// Bootstrap 95 % intervals per (input, count) and per state.
    count_iv: Option<Vec<Vec<[f64; 2]>>>,
    state_iv: Option<(Vec<f64>, Vec<f64>)>,
    /// Parametric: θ and its intervals.
    theta: Option<(Vec<f64>, Option<Intervals>)>,
    /// Parametric: the fitted model's policies `fire[s·n + k]` — the
    /// equilibrium that explains the record, from which `predict
    /// --equilibrium recorded` continues.
    policy: Option<Vec<f64>>,
}

/// 95 % intervals `[lo, hi]`, one per parameter or state.
type Intervals = Vec<[f64; 2]>;

pub fn run_infer(args: &InferArgs) -> Result<InferSummary> {
    let started = std::time::Instant::now();
    if let Some(l) = args.lambda
        && !(l.is_finite() && l > 0.0)
    {
        return Err(BadInput(format!("--lambda {l}: allowed: a positive finite number")).into());
    }
    let rec = read(&args.trajectory)?;
    let (n, xs) = (rec.meta.n, rec.meta.inputs);
    let out = args.out.clone().unwrap_or_else(|| default_folder(&args.trajectory));
    // The input chain, estimated from the record where every input was left at least once.
    let mut trans = vec![0.0; xs * xs];
    for w in rec.x.windows(2) {
        trans[w[0] * xs + w[1]] += 1.0;
    }
    let estimated = (0..xs).all(|a| (0..xs).map(|b| trans[a * xs + b]).sum::<f64>() > 0.0);
    let (transition, chain) = if estimated {
        for a in 0..xs {
            let z: f64 = (0..xs).map(|b| trans[a * xs + b]).sum();
            (0..xs).for_each(|b| trans[a * xs + b] /= z);
        }
        (trans, "estimated from the record")
    } else {
        (
            rec.meta.transition.iter().flatten().copied().collect(),
            "from the trajectory metadata (an input was never seen)",
        )
    };
    // The scenario (given, or named by the metadata): what each neuron
    // observes, and the true reward.
    let scenario_path = args
        .scenario
        .clone()
        .unwrap_or_else(|| PathBuf::from(&rec.meta.scenario_file));
    let scenario = match crate::scenario::Scenario::load(&scenario_path) {
        Ok(s) if s.neurons == n && s.input.len() == xs => Some(s),
        Ok(_) if args.scenario.is_some() => {
            return Err(BadInput(format!(
                "--scenario {}: its network ({} neurons) does not match the record ({n} neurons, {xs} inputs)",
                scenario_path.display(),
                n
            ))
            .into());
        }
        Err(e) if args.scenario.is_some() => return Err(BadInput::from(e).into()),
        _ => None,
    };
    let motor = scenario.as_ref().and_then(|s| s.motor.clone());
    if let Some(what) = &rec.meta.controlled_input
        && motor.is_none()
    {
        return Err(BadInput(format!(
            "{}: the network moved its input ({what}), so inference needs the maze's moves from the scenario, \
             and {} could not be read as that scenario; allowed: --scenario FILE naming the maze scenario the \
             record came from",
            args.trajectory.display(),
            scenario_path.display()
        ))
        .into());
    }
    let (input, chain) = match &scenario {
        Some(s) if motor.is_some() => (
            s.input.clone(),
            "the maze's moves under the motor rule (from the scenario; the network moved its input)",
        ),
        _ => (
            InputProcess {
                values: rec.meta.input_values.clone(),
                transition,
                control: None,
            },
            chain,
        ),
    };
    let truth = scenario.as_ref().map(|s| s.reward.tabulate(n));
    let observes = scenario
        .as_ref()
        .and_then(|s| s.tabular_network().ok())
        .and_then(|net| (!net.fully_observed()).then_some(net.observes).flatten());
    let observation = match (&observes, &scenario) {
        (Some(_), Some(s)) => format!("partial: the topology of {}", s.path.display()),
        _ => "full state".into(),
    };
    let cx = Shared {
        out,
        n,
        xs,
        input,
        chain,
        motor,
        truth,
        observation,
        labels: super::solve::input_labels(&rec.meta.input_values),
        units: if args.lambda.is_some() {
            "reward per tick"
        } else {
            "r/λ"
        },
        observes,
        rec,
    };
    let model = args.reward_model.clone().unwrap_or(if cx.motor.is_some() {
        RewardModel::Input
    } else if cx.rec.actor_known && cx.observes.is_none() {
        RewardModel::Tabular
    } else {
        RewardModel::Count
    });
    if model == RewardModel::Tabular && cx.motor.is_some() {
        return Err(BadInput(format!(
            "{}: the network moved its input (a maze walker), and the tabular inversion needs the input's chain \
             to be invertible, which the walker's moves are not (several cells lead to the same one); allowed: \
             --reward-model input (one reward per cell, the default here), count, pattern or a feature file",
            args.trajectory.display()
        ))
        .into());
    }
    let mut summary = match &model {
        RewardModel::Tabular => tabular(args, &cx)?,
        other => parametric(args, &cx, other)?,
    };
    summary.reward_model = model.name();
    summary.headline = headline(&summary);
    summary.seconds = started.elapsed().as_secs_f64();
    for w in &summary.warnings {
        tracing::warn!("{w}");
    }
    write_json(&cx.out.join("reward.json"), &summary).context("writing reward.json")?;
    Ok(summary)
}

/// Tabular inversion (docs/theory.md §5 steps 1–4) and its projection on (input, count).
fn tabular(args: &InferArgs, cx: &Shared) -> Result<InferSummary> {
    let (n, xs, rec) = (cx.n, cx.xs, &cx.rec);
    if !rec.actor_known {
        return Err(BadInput(format!(
            "{}: the tabular inversion needs an asynchronous record with the acting neuron of every tick \
             (this one is {}{}); use --reward-model count, pattern or a feature file (maximum likelihood)",
            args.trajectory.display(),
            rec.meta.update,
            if rec.meta.update == "asynchronous" {
                " without actors"
            } else {
                ""
            }
        ))
        .into());
    }
    let mut warnings = Vec::new();
    if cx.observes.is_some() {
        warnings.push(
            "the tabular inversion assumes every neuron observes the whole state, but the scenario's neurons \
             observe only part of it: the reward is misread — use --reward-model count or pattern"
                .to_string(),
        );
    }
    let opts = TabularOptions {
        lambda: args.lambda,
        dead: rec.meta.dead.clone(),
        ..TabularOptions::default()
    };
    let counts = EdgeCounts::from_record(n, xs, &rec.x, &rec.sigma, &rec.actor);
    let inv = invert_tabular(&counts, &cx.input.transition, &opts)
        .map_err(|e| BadInput(format!("{}: {e}", args.trajectory.display())))?;
    let by_count = project_on_counts(&inv);
    let c = 1usize << n;
    // Does the count model fit? Solve for the soft-optimal policy of the
    // count reward (λ as given, else 1: the reward is then r/λ) against the
    // estimated marginals, and compare the record's actions with it.
    let fit = {
        let (table, _) = crate::infer::count_table(n, &by_count);
        let mut net = model_network(cx, args.lambda, &inv.p);
        net.reward = table;
        match crate::solver::solve(&net, &crate::solver::SolveOptions::default()) {
            Ok(sol) => {
                let params = xs * n; // one value per (input, count), up to a constant per input
                let (statistic, df, z) = crate::infer::likelihood_ratio(&counts, |s, k| sol.policy.p(s, k), params);
                if z > MISFIT_Z && statistic > MISFIT_RATIO * df as f64 {
                    warnings.push(format!(
                        "the (input, count) reward does not explain the record: likelihood-ratio statistic {statistic:.0} \
                         on {df} degrees of freedom (z = {z:.1}); the network's reward depends on more than \
                         the spike count — use the tabular reward (reward.npz `r`)"
                    ));
                }
                Some(CountFit { statistic, df, z })
            }
            Err(e) => {
                warnings.push(format!("could not check the count model's fit: {e}"));
                None
            }
        }
    };
    // Bootstrap intervals over trajectory blocks.
    let mut count_iv = None;
    let mut state_iv = None;
    if args.bootstrap > 0 {
        let keep = xs * c <= MAX_STATE_INTERVALS;
        let bar = bootstrap_bar(args);
        let reps = crate::infer::bootstrap(
            n,
            xs,
            &rec.x,
            &rec.sigma,
            &rec.actor,
            &cx.input.transition,
            &opts,
            BOOTSTRAP_BLOCKS,
            args.bootstrap,
            rec.meta.seed,
            keep,
            &|| bar.inc(1),
        );
        bar.finish();
        count_iv = Some(
            (0..xs)
                .map(|x| {
                    (0..=n)
                        .map(|k| interval(reps.iter().map(|r| r.count_reward[x][k]).collect()))
                        .collect()
                })
                .collect(),
        );
        state_iv = keep.then(|| {
            let per: Vec<[f64; 2]> = (0..xs * c)
                .map(|s| interval(reps.iter().filter_map(|r| r.r.as_ref().map(|v| v[s])).collect()))
                .collect();
            (per.iter().map(|p| p[0]).collect(), per.iter().map(|p| p[1]).collect())
        });
    }
    let inferred = Inferred {
        r: inv.r.clone(),
        h: inv.h.clone(),
        visits: counts.visits.clone(),
        p_fire: inv.p.clone(),
        by_count,
        count_iv,
        state_iv,
        theta: None,
        policy: None,
    };
    let mut summary = write_outputs(
        args,
        cx,
        &inferred,
        "inferred reward by spike count (projection on (input, count))",
    )?;
    summary.method =
        "tabular inversion (docs/theory.md §5 steps 1–4) + least-squares projection on (input, count)".into();
    summary.residual_rms = Some(inv.residual_rms);
    summary.count_model_fit = fit;
    summary.warnings.extend(warnings);
    summary.notes.extend(inv.notes.iter().cloned());
    Ok(summary)
}

/// The network whose soft-optimal policy models the record: the record's
/// n and input chain, λ (1 when unknown), its update scheme and what each
/// neuron observes, against the estimated marginals.
fn model_network(cx: &Shared, lambda: Option<f64>, p_fire: &[f64]) -> Network {
    let update = match cx.rec.meta.update.as_str() {
        "synchronous" => UpdateScheme::Synchronous,
        "random_partial" => UpdateScheme::RandomPartial {
            q: cx.rec.meta.act_probability,
        },
        _ => UpdateScheme::Asynchronous,
    };
    Network {
        n: cx.n,
        alive: (0..cx.n).map(|k| !cx.rec.meta.dead.contains(&k)).collect(),
        input: cx.input.clone(),
        reward: vec![0.0; cx.xs << cx.n],
        lambda: lambda.unwrap_or(1.0),
        cost: CodingCost::FixedPrior(p_fire.iter().map(|p| p.clamp(1e-6, 1.0 - 1e-6)).collect()),
        update,
        observes: cx.observes.clone(),
    }
}

/// Reward features of `--reward-model`, validated against the state space.
fn features(model: &RewardModel, n: usize, xs: usize) -> Result<Features, BadInput> {
    Ok(match model {
        RewardModel::Count => Features::counts(n, xs),
        RewardModel::Pattern => Features::pattern(n, xs),
        RewardModel::Input => Features::inputs(n, xs),
        RewardModel::File(path) => {
            let bad = |m: String| BadInput(format!("{}: {m}", path.display()));
            let a: ArrayD<f64> = crate::files::read_npy_file(path).map_err(|e| {
                BadInput(format!(
                    "{e}; allowed: a float64 .npy array of features of shape [X, 2^n, P] or [X·2^n, P]"
                ))
            })?;
            let states = xs << n;
            let p = match a.shape() {
                [x, c, p] if *x == xs && *c == 1 << n => *p,
                [s, p] if *s == states => *p,
                other => {
                    return Err(bad(format!(
                        "shape {other:?}; allowed: [{xs}, {}, P] or [{states}, P] (the record has {xs} inputs and \
                         {n} neurons)",
                        1 << n
                    )));
                }
            };
            if p == 0 || p > 4096 {
                return Err(bad(format!("{p} features; allowed: 1 to 4096")));
            }
            if let Some(v) = a.iter().find(|v| !v.is_finite()) {
                return Err(bad(format!("holds {v}; allowed: finite numbers")));
            }
            Features {
                names: (0..p).map(|j| format!("feature{j}")).collect(),
                phi: a.iter().copied().collect(),
            }
        }
        RewardModel::Tabular => unreachable!("tabular is not parametric"),
    })
}

/// Maximum likelihood of a parametric reward.
fn parametric(args: &InferArgs, cx: &Shared, which: &RewardModel) -> Result<InferSummary> {
    let (n, xs, rec) = (cx.n, cx.xs, &cx.rec);
    if n > MAX_PARAMETRIC_INFER {
        return Err(BadInput(format!(
            "{}: {n} neurons; the maximum-likelihood fit solves the network exactly at every evaluation and \
             allows at most {MAX_PARAMETRIC_INFER}",
            args.trajectory.display()
        ))
        .into());
    }
    let features = features(which, n, xs)?;
    let q = rec.meta.act_probability;
    let responses = |a: usize, b: usize| {
        if rec.actor_known {
            Responses::acting(n, xs, &rec.x[a..b], &rec.sigma[a..b], &rec.actor[a..b])
        } else {
            Responses::all_neurons(n, xs, &rec.x[a..b], &rec.sigma[a..b], q)
        }
    };
    let data = responses(0, rec.x.len());
    let model = model_network(cx, args.lambda, &data.p_fire);
    crate::solver::check_size(&model).map_err(|e| BadInput(format!("{}: {e}", args.trajectory.display())))?;
    let opts = FitOptions::default();
    let t0 = std::time::Instant::now();
    let bar = crate::progress::Task::start("fitting the reward by maximum likelihood", "", None, args.quiet);
    let fit = likelihood::fit(&model, &data, &features, None, &opts)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.trajectory.display()))?;
    bar.finish();
    let fit_seconds = t0.elapsed().as_secs_f64();
    let mut warnings = fit.warnings.clone();
    // Goodness of fit against the saturated model.
    let saturated = data.saturated_log_likelihood();
    let cells = data.trials.iter().filter(|&&t| t > 0.0).count();
    let df = cells.saturating_sub(features.len()).max(1);
    let deviance = 2.0 * (saturated - fit.log_likelihood).max(0.0);
    let z = (deviance - df as f64) / (2.0 * df as f64).sqrt();
    if z > MISFIT_Z && deviance > MISFIT_RATIO * df as f64 {
        warnings.push(format!(
            "the {} reward does not explain the record: deviance {deviance:.0} on {df} degrees of freedom \
             (z = {z:.1}); the network's reward depends on more than these features",
            which.name()
        ));
    }
    let c = 1usize << n;
    let states = xs * c;
    let count_of = |r: &[f64], visits: &[u64]| -> Vec<Vec<f64>> {
        if *which == RewardModel::Count {
            // The fitted parameters, where their counts were seen.
            let seen = count_seen(n, xs, visits);
            return (0..xs)
                .map(|x| {
                    (0..=n)
                        .map(|k| {
                            if seen[x][k] {
                                r[x * c + (1usize << k) - 1]
                            } else {
                                f64::NAN
                            }
                        })
                        .collect()
                })
                .collect();
        }
        crate::infer::count_projection(n, xs, r, visits)
    };
    let by_count = count_of(&fit.reward, &data.visits);
    // Bootstrap: refit on resampled blocks.
    let (mut count_iv, mut state_iv, mut theta_iv) = (None, None, None);
    if args.bootstrap > 0 {
        let bar = bootstrap_bar(args);
        let reps = likelihood::bootstrap(
            &model,
            rec.x.len(),
            &responses,
            &features,
            &fit.theta,
            &opts,
            BOOTSTRAP_BLOCKS,
            args.bootstrap,
            rec.meta.seed,
            &|| bar.inc(1),
        );
        bar.finish();
        let ok: Vec<&Vec<f64>> = reps.iter().flatten().collect();
        if ok.len() < reps.len() {
            warnings.push(format!(
                "{} of {} bootstrap refits failed and were left out",
                reps.len() - ok.len(),
                reps.len()
            ));
        }
        let rewards: Vec<Vec<f64>> = ok.iter().map(|t| features.reward(t)).collect();
        let counts: Vec<Vec<Vec<f64>>> = rewards.iter().map(|r| count_of(r, &data.visits)).collect();
        count_iv = Some(
            (0..xs)
                .map(|x| {
                    (0..=n)
                        .map(|k| interval(counts.iter().map(|r| r[x][k]).collect()))
                        .collect()
                })
                .collect(),
        );
        theta_iv = Some(
            (0..features.len())
                .map(|j| interval(ok.iter().map(|t| t[j]).collect()))
                .collect::<Vec<_>>(),
        );
        if states <= MAX_STATE_INTERVALS {
            let per: Vec<[f64; 2]> = (0..states)
                .map(|s| interval(rewards.iter().map(|r| r[s]).collect()))
                .collect();
            state_iv = Some((per.iter().map(|p| p[0]).collect(), per.iter().map(|p| p[1]).collect()));
        }
    }
    let inferred = Inferred {
        r: fit.reward.clone(),
        h: fit.h.clone(),
        visits: data.visits.clone(),
        p_fire: data.p_fire.clone(),
        by_count,
        count_iv,
        state_iv,
        theta: Some((fit.theta.clone(), theta_iv.clone())),
        policy: Some(fit.policy.fire.clone()),
    };
    let title = if *which == RewardModel::Count {
        "inferred reward by spike count (maximum likelihood, (input, count) features)".to_string()
    } else {
        format!(
            "inferred reward by spike count ({} model, averaged per count)",
            which.name()
        )
    };
    let mut summary = write_outputs(args, cx, &inferred, &title)?;
    summary.method = format!(
        "maximum likelihood of the recorded {} under the soft-optimal policy of r_θ = Φθ (exact solver at every \
         evaluation, marginals p̂ from the record; L-BFGS, gradient by {})",
        if rec.actor_known {
            "actions of the acting neurons"
        } else {
            "next states of every neuron"
        },
        fit.gradient
    );
    summary.parameters = Some(
        features
            .names
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let iv = theta_iv.as_ref().map(|v| v[j]);
                Parameter {
                    name: name.clone(),
                    value: fit.theta[j],
                    lo: iv.map(|v| v[0]).filter(|v| v.is_finite()),
                    hi: iv.map(|v| v[1]).filter(|v| v.is_finite()),
                }
            })
            .collect(),
    );
    summary.fit = Some(FitReport {
        log_likelihood: fit.log_likelihood,
        saturated_log_likelihood: saturated,
        deviance,
        df,
        z,
        responses: fit.responses,
        iterations: fit.iterations,
        likelihood_evaluations: fit.evaluations,
        gradient: fit.gradient,
        converged: fit.converged,
        seconds: fit_seconds,
    });
    summary.warnings.extend(warnings);
    summary.notes.push(if cx.motor.is_some() {
        "the network moves its input, so rewards of input values are identifiable; a global constant is not \
         (the rewards are relative)"
            .into()
    } else {
        "an additive function of the input alone (and a global constant) is not identifiable: θ directions \
         that only shift an input's rewards stay at their start (0); compare rewards after removing each \
         input's mean"
            .into()
    });
    if args.lambda.is_none() {
        summary
            .notes
            .push("λ unknown: rewards and values are in units of λ (r/λ)".into());
    }
    if !rec.actor_known {
        summary.notes.push(format!(
            "actors not recorded: every neuron's next state counts as a response, P(σ'_k = 1 | s) = \
             q·π_k(1|s) + (1 − q)·σ_k with q = {q} (for asynchronous records this is a composite likelihood: \
             right marginals, neurons treated as independent given s)"
        ));
    }
    Ok(summary)
}

/// Whether any visited state of input x has c active neurons.
fn count_seen(n: usize, xs: usize, visits: &[u64]) -> Vec<Vec<bool>> {
    let c = 1usize << n;
    let mut seen = vec![vec![false; n + 1]; xs];
    for s in 0..xs * c {
        if visits[s] > 0 {
            seen[s / c][spike_count(s % c)] = true;
        }
    }
    seen
}

fn bootstrap_bar(args: &InferArgs) -> crate::progress::Task {
    crate::progress::Task::start("bootstrap", "replicates", Some(args.bootstrap as u64), args.quiet)
}

/// The 95 % percentile interval of bootstrap values (NaN-skipping).
fn interval(mut v: Vec<f64>) -> [f64; 2] {
    [
        crate::infer::quantile(&mut v, 0.025),
        crate::infer::quantile(&mut v, 0.975),
    ]
}

/// reward.npz, the figures, and the summary fields both methods share.
fn write_outputs(args: &InferArgs, cx: &Shared, inf: &Inferred, count_title: &str) -> Result<InferSummary> {
    let (n, xs) = (cx.n, cx.xs);
    let c = 1usize << n;
    let by_count = &inf.by_count;
    let argmax = crate::infer::argmax_count(by_count);
    // Over the states seen often enough to say something (as the tabular
    // inversion's identified states).
    let min_visits = TabularOptions::default().min_visits;
    let corr = cx
        .truth
        .as_ref()
        .map(|t| centred_correlation(&inf.r, t, n, xs, |s| inf.visits[s] >= min_visits));
    let mut npz = Npz::new(crate::files::formats::REWARD);
    let grid = |v: Vec<f64>| Array2::from_shape_vec((xs, c), v).expect("state grid");
    let counts_grid = |v: Vec<f64>| Array2::from_shape_vec((xs, n + 1), v).expect("count grid");
    npz.add("r", grid(inf.r.clone()))
        .add("h", grid(inf.h.clone()))
        .add(
            "visits",
            Array2::from_shape_vec((xs, c), inf.visits.iter().map(|&v| v as i64).collect()).expect("grid"),
        )
        .add("p_fire", Array1::from(inf.p_fire.clone()))
        .add(
            "count_reward",
            counts_grid(by_count.iter().flatten().copied().collect()),
        );
    if let Some(t) = &cx.truth {
        npz.add("r_true", grid(t.clone()));
    }
    if let Some(civ) = &inf.count_iv {
        let flat = |i: usize| {
            civ.iter()
                .flat_map(|row| row.iter().map(move |p| p[i]))
                .collect::<Vec<f64>>()
        };
        npz.add("count_reward_lo", counts_grid(flat(0)))
            .add("count_reward_hi", counts_grid(flat(1)));
    }
    if let Some((lo, hi)) = &inf.state_iv {
        npz.add("r_lo", grid(lo.clone())).add("r_hi", grid(hi.clone()));
    }
    if let Some((theta, iv)) = &inf.theta {
        npz.add("theta", Array1::from(theta.clone()));
        if let Some(iv) = iv {
            npz.add("theta_lo", Array1::from(iv.iter().map(|p| p[0]).collect::<Vec<_>>()))
                .add("theta_hi", Array1::from(iv.iter().map(|p| p[1]).collect::<Vec<_>>()));
        }
    }
    if let Some(fire) = &inf.policy {
        npz.add(
            "policy",
            ndarray::Array3::from_shape_vec((xs, c, n), fire.clone()).expect("policy grid"),
        );
    }
    npz.write(&cx.out.join("reward.npz"))?;
    // Reward by count, input means removed (with the intervals, shifted alike).
    let units = cx.units;
    let means: Vec<f64> = by_count
        .iter()
        .map(|row| {
            let fin: Vec<f64> = row.iter().copied().filter(|v| v.is_finite()).collect();
            fin.iter().sum::<f64>() / fin.len().max(1) as f64
        })
        .collect();
    let centred: Vec<Vec<f64>> = by_count
        .iter()
        .zip(&means)
        .map(|(row, m)| row.iter().map(|v| v - m).collect())
        .collect();
    let bands: Option<Vec<(Vec<f64>, Vec<f64>)>> = inf.count_iv.as_ref().map(|civ| {
        civ.iter()
            .zip(&means)
            .map(|(row, m)| {
                (
                    row.iter().map(|p| p[0] - m).collect(),
                    row.iter().map(|p| p[1] - m).collect(),
                )
            })
            .collect()
    });
    let svg = crate::report::per_count_with_intervals(
        count_title,
        &format!("inferred reward ({units}), input mean removed"),
        &centred,
        bands.as_deref(),
        &cx.labels,
    )
    .map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
    write_text(&cx.out.join("reward_by_count.svg"), &svg)?;
    // r beside h: the immediate reward against the critic's long-run value,
    // per visited state (input means removed).
    let centre = |v: &[f64]| -> Vec<f64> {
        let mut out = v.to_vec();
        for x in 0..xs {
            let idx: Vec<usize> = (x * c..(x + 1) * c)
                .filter(|&s| v[s].is_finite() && inf.visits[s] > 0)
                .collect();
            let m = idx.iter().map(|&s| v[s]).sum::<f64>() / idx.len().max(1) as f64;
            (x * c..(x + 1) * c).for_each(|s| out[s] -= m);
        }
        out
    };
    let (r_c, h_c) = (centre(&inf.r), centre(&inf.h));
    let per_input = |a: &[f64], b: &[f64]| -> Vec<(String, Vec<(f64, f64)>)> {
        (0..xs)
            .map(|x| {
                let pts = (x * c..(x + 1) * c)
                    .filter(|&s| inf.visits[s] > 0)
                    .map(|s| (a[s], b[s]))
                    .collect();
                (cx.labels[x].clone(), pts)
            })
            .collect()
    };
    let svg = crate::report::scatter(
        "value h (critic) against reward r, per visited state",
        &format!("inferred reward r ({units}), input mean removed"),
        &format!("inferred value h ({units}), input mean removed"),
        &per_input(&r_c, &h_c),
    )
    .map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
    write_text(&cx.out.join("reward_vs_value.svg"), &svg)?;
    if let Some(t) = &cx.truth {
        let t_c = centre(t);
        let svg = crate::report::scatter(
            &format!(
                "inferred against true reward (centred correlation {:.3})",
                corr.unwrap_or(f64::NAN)
            ),
            "true reward, input mean removed",
            &format!("inferred reward ({units}), input mean removed"),
            &per_input(&t_c, &r_c),
        )
        .map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
        write_text(&cx.out.join("inferred_vs_true.svg"), &svg)?;
    }
    Ok(InferSummary {
        headline: String::new(),
        method: String::new(),
        reward_model: args.reward_model.as_ref().map_or_else(
            || if inf.theta.is_some() { "count" } else { "tabular" }.into(),
            |m| m.name(),
        ),
        trajectory: crate::files::outdir::recorded(&args.trajectory),
        ticks: cx.rec.x.len(),
        n,
        update: cx.rec.meta.update.clone(),
        observation: cx.observation.clone(),
        lambda: args.lambda,
        units: if args.lambda.is_some() {
            "reward units (λ given)"
        } else {
            "units of λ (r/λ), λ not given"
        },
        input_chain: cx.chain,
        transition: cx.input.transition.chunks(xs).map(|r| r.to_vec()).collect(),
        visited_states: inf.visits.iter().filter(|&&v| v > 0).count(),
        states: xs * c,
        residual_rms: None,
        p_fire: inf.p_fire.clone(),
        count_reward: by_count
            .iter()
            .map(|row| row.iter().map(|v| v.is_finite().then_some(*v)).collect())
            .collect(),
        argmax_separated: inf.count_iv.as_ref().map(|civ| {
            argmax
                .iter()
                .enumerate()
                .map(|(x, &best)| {
                    let lo = civ[x][best][0];
                    (0..=n)
                        .filter(|&k| k != best && civ[x][k][1].is_finite())
                        .all(|k| lo > civ[x][k][1])
                })
                .collect()
        }),
        count_reward_interval: inf.count_iv.as_ref().map(|civ| {
            civ.iter()
                .map(|row| {
                    row.iter()
                        .map(|p| [p[0].is_finite().then_some(p[0]), p[1].is_finite().then_some(p[1])])
                        .collect()
                })
                .collect()
        }),
        parameters: None,
        fit: None,
        bootstrap: (args.bootstrap > 0).then(|| {
            format!(
                "{} over {BOOTSTRAP_BLOCKS} contiguous blocks of the record; 95 % percentile intervals{}",
                crate::text::count(args.bootstrap as u64, "replicate"),
                if inf.state_iv.is_some() {
                    "; per-state r_lo / r_hi in reward.npz"
                } else {
                    ""
                }
            )
        }),
        argmax_count: argmax,
        centred_correlation_with_truth: corr.filter(|c| c.is_finite()),
        count_model_fit: None,
        motor: cx.motor.as_ref().map(|m| motor_inference(cx, m, inf)).transpose()?,
        warnings: Vec::new(),
        notes: Vec::new(),
        seconds: 0.0,
    })
}

/// What was found, in one line: the goal cell for a network that drove a
/// maze walker, else the best spike count per input.
fn headline(s: &InferSummary) -> String {
    let truth = |c: Option<f64>, what: &str| c.map(|c| format!("; {what} {c:.4}")).unwrap_or_default();
    match &s.motor {
        Some(m) => format!(
            "inferred goal: cell {:?} ({}; true goals {:?}), {:.0} robust SDs above the other cells{}",
            m.best_cell,
            if m.goal_recovered { "a goal" } else { "NOT a goal" },
            m.goal_cells,
            m.best_z,
            truth(m.correlation_with_truth, "correlation with the true reward over cells"),
        ),
        None => format!(
            "reward peaks at spike count {:?} per input{}",
            s.argmax_count,
            truth(
                s.centred_correlation_with_truth,
                "centred correlation with the true reward"
            ),
        ),
    }
}

/// The per-cell reward of a motor network's record, its best cell, and the
/// map (reward_map.svg).
fn motor_inference(cx: &Shared, m: &crate::scenario::MotorMaze, inf: &Inferred) -> Result<MotorInference> {
    let (n, xs) = (cx.n, cx.xs);
    let c = 1usize << n;
    let per_cell = |r: &[f64]| -> Vec<f64> {
        (0..xs)
            .map(|x| {
                let (mut acc, mut w) = (0.0, 0.0);
                for sigma in 0..c {
                    let s = x * c + sigma;
                    if inf.visits[s] > 0 && r[s].is_finite() {
                        acc += inf.visits[s] as f64 * r[s];
                        w += inf.visits[s] as f64;
                    }
                }
                if w > 0.0 { acc / w } else { f64::NAN }
            })
            .collect()
    };
    let cells = per_cell(&inf.r);
    let visited: Vec<usize> = (0..xs).filter(|&x| cells[x].is_finite()).collect();
    let best = *visited
        .iter()
        .max_by(|&&a, &&b| cells[a].total_cmp(&cells[b]))
        .ok_or_else(|| anyhow::anyhow!("the record visits no cell"))?;
    let mut others: Vec<f64> = visited.iter().filter(|&&x| x != best).map(|&x| cells[x]).collect();
    let best_z = if others.is_empty() {
        f64::NAN
    } else {
        let (med, spread) = super::maze::median_and_spread(&mut others);
        (cells[best] - med) / spread.max(1e-12)
    };
    let correlation_with_truth = cx.truth.as_ref().and_then(|t| {
        let truth: Vec<f64> = (0..xs).map(|x| t[x * c]).collect();
        let a: Vec<f64> = visited.iter().map(|&x| cells[x]).collect();
        let b: Vec<f64> = visited.iter().map(|&x| truth[x]).collect();
        let r = crate::infer::correlation(&a, &b);
        r.is_finite().then_some(r)
    });
    super::draw(
        &cx.out.join("reward_map.svg"),
        crate::report::maze_map(
            "inferred reward per cell (gold: true goal)",
            &m.maze.grid(&cells),
            crate::report::MapScale::Diverging,
            &super::maze::marks(&m.maze),
            None,
        ),
    )?;
    Ok(MotorInference {
        cell_reward: cells.iter().map(|v| v.is_finite().then_some(*v)).collect(),
        best_cell: m.maze.position(best),
        goal_cells: (0..xs)
            .filter(|&x| m.maze.is_goal(x))
            .map(|x| m.maze.position(x))
            .collect(),
        goal_recovered: m.maze.is_goal(best),
        best_z,
        correlation_with_truth,
        visited_cells: visited.len(),
        cells: xs,
    })
}
