//! `marlin predict`: how a network adapts to a perturbation (theory §6).
//! Re-solves the perturbed network with the inferred reward (the
//! prediction), and — the scenario's true reward being known — with the true
//! reward (the truth), and evaluates the old policies under the perturbation
//! without re-optimisation (the naive prediction).

use super::BadInput;
use crate::files::{write_json, write_text};
use crate::maze::Maze;
use crate::model::{InputProcess, Network, RewardSpec};
use crate::scenario::{MotorMaze, Scenario};
use crate::solver::{self, Policy, SolveOptions};
use crate::topology::TopologySpec;
use anyhow::{Context, Result};
use ndarray::Array2;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A perturbation of the network or its world.
#[derive(Clone, Debug, PartialEq)]
pub enum Perturbation {
    /// Cell death: these neurons are clamped to 0 and never act.
    Kill(Vec<usize>),
    /// A new coding-cost weight λ.
    Lambda(f64),
    /// New input statistics: a switching probability or a row-major matrix.
    Input(InputProcess),
    /// A new topology: who observes whom (neurons keep whether they see the input).
    Topology(TopologySpec),
    /// The maze a network drives, with its walls moved (same size, goal
    /// letters and motor groups).
    Walls { maze: Box<Maze>, per_direction: usize },
}

impl Perturbation {
    /// `spec` for the network of `scenario`: [`Self::motor_walls`] for
    /// `walls:FILE` when the network drives a maze, [`Self::parse`]
    /// otherwise.
    pub fn for_scenario(scenario: &Scenario, spec: &str) -> Result<Self, BadInput> {
        match (&scenario.motor, spec.split_once(':')) {
            (Some(m), Some(("walls", file))) => Perturbation::motor_walls(m, file.trim()),
            _ => Perturbation::parse(spec, scenario.neurons, &scenario.input.values),
        }
    }

    /// `walls:FILE` for a network driving the maze `motor`: the map in FILE
    /// (relative to the current directory).
    pub fn motor_walls(motor: &MotorMaze, file: &str) -> Result<Self, BadInput> {
        if file.is_empty() {
            return Err(BadInput(
                "--perturb walls: needs a map file (walls:FILE, the same maze with walls moved)".into(),
            ));
        }
        let path = Path::new(file);
        let maze = motor.read_map(path).map_err(BadInput::from)?;
        crate::scenario::maze::check_same_size(path, &maze, &motor.maze).map_err(BadInput)?;
        if maze.states() > crate::scenario::MAX_INPUTS {
            return Err(BadInput(format!(
                "{}: {} free cells; allowed: at most {}",
                path.display(),
                maze.states(),
                crate::scenario::MAX_INPUTS
            )));
        }
        Ok(Perturbation::Walls {
            maze: Box::new(maze),
            per_direction: motor.per_direction,
        })
    }

    /// Parse `kill:K[,K...]`, `lambda:L`, `input:P` (switching probability),
    /// `input:a,b;c,d` (transition matrix rows separated by `;`) or
    /// `topology:none | all_to_all | ring:K | random_in_degree:K | erdos_renyi:P`.
    pub fn parse(spec: &str, n: usize, values: &[f64]) -> Result<Self, BadInput> {
        let bad = |m: &str| BadInput(format!("--perturb {spec:?}: {m}"));
        let (kind, arg) = spec
            .split_once(':')
            .ok_or_else(|| bad("expected KIND:ARGS; allowed kinds: kill, lambda, input, topology"))?;
        match kind {
            "kill" => {
                let mut ks = Vec::new();
                for part in arg.split(',') {
                    let k: usize = part
                        .trim()
                        .parse()
                        .map_err(|_| bad(&format!("{part:?} is not a neuron index")))?;
                    if k >= n {
                        return Err(bad(&format!("neuron {k} is out of range; allowed: 0 to {}", n - 1)));
                    }
                    ks.push(k);
                }
                if ks.len() >= n {
                    return Err(bad("at least one neuron must survive"));
                }
                Ok(Perturbation::Kill(ks))
            }
            "lambda" => {
                let l: f64 = arg.trim().parse().map_err(|_| bad("λ must be a number"))?;
                if !(l.is_finite() && l > 0.0) {
                    return Err(bad("allowed: a positive finite λ"));
                }
                Ok(Perturbation::Lambda(l))
            }
            "input" => {
                let x = values.len();
                if !arg.contains(',') {
                    let p: f64 = arg
                        .trim()
                        .parse()
                        .map_err(|_| bad("a switching probability or a matrix a,b;c,d"))?;
                    if !(0.0..=1.0).contains(&p) {
                        return Err(bad("the switching probability must be in [0, 1]"));
                    }
                    return Ok(Perturbation::Input(InputProcess::switching(values.to_vec(), p)));
                }
                let rows: Vec<Vec<f64>> = arg
                    .split(';')
                    .map(|r| {
                        r.split(',')
                            .map(|v| v.trim().parse::<f64>())
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .collect::<Result<_, _>>()
                    .map_err(|_| bad("matrix entries must be numbers"))?;
                if rows.len() != x || rows.iter().any(|r| r.len() != x) {
                    return Err(bad(&format!("the matrix must be {x}×{x}")));
                }
                if rows
                    .iter()
                    .any(|r| (r.iter().sum::<f64>() - 1.0).abs() > 1e-9 || r.iter().any(|v| !(0.0..=1.0).contains(v)))
                {
                    return Err(bad("rows must be probabilities summing to 1"));
                }
                Ok(Perturbation::Input(InputProcess {
                    values: values.to_vec(),
                    transition: rows.concat(),
                    control: None,
                }))
            }
            "topology" => {
                let (name, param) = arg.split_once(':').unwrap_or((arg, ""));
                let allowed = "allowed: none, all_to_all, ring:K, random_in_degree:K, erdos_renyi:P";
                let k = || -> Result<usize, BadInput> {
                    param
                        .trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|&k| k >= 1 && k < n)
                        .ok_or_else(|| bad(&format!("{name} needs K from 1 to {}", n.saturating_sub(1))))
                };
                Ok(Perturbation::Topology(match name.trim() {
                    "none" => TopologySpec::Edges(Vec::new()),
                    "all_to_all" => TopologySpec::AllToAll,
                    "ring" => TopologySpec::Ring { k: k()? },
                    "random_in_degree" => TopologySpec::RandomInDegree { k: k()? },
                    "erdos_renyi" => {
                        let p: f64 = param.trim().parse().map_err(|_| bad("erdos_renyi needs P in [0, 1]"))?;
                        if !(0.0..=1.0).contains(&p) {
                            return Err(bad("erdos_renyi needs P in [0, 1]"));
                        }
                        TopologySpec::ErdosRenyi { p }
                    }
                    other => return Err(bad(&format!("unknown topology {other:?}; {allowed}"))),
                }))
            }
            "walls" => Err(bad(
                "walls: moves the walls of a maze, and this is a network scenario; allowed: kill, lambda, input, \
                 topology",
            )),
            "pixel_probability" => Err(bad(
                "pixel_probability: applies to a sensory-coding scenario ([coding]), through `marlin run` on it; \
                 allowed: kill, lambda, input, topology",
            )),
            _ => Err(bad(&format!(
                "unknown kind {kind:?}; allowed: kill, lambda, input, topology"
            ))),
        }
    }

    /// Apply to `net`; `seed` builds random topologies.
    pub fn apply(&self, net: &mut Network, seed: u64) {
        match self {
            Perturbation::Kill(ks) => net.kill(ks),
            Perturbation::Lambda(l) => net.lambda = *l,
            Perturbation::Input(p) => net.input = p.clone(),
            Perturbation::Walls { maze, per_direction } => {
                net.input = maze.motor_input(*per_direction);
                net.reward = RewardSpec::Input(maze.reward()).tabulate(net.n);
            }
            Perturbation::Topology(spec) => {
                let sees_input: Vec<bool> = match &net.observes {
                    Some(o) => o.iter().map(|ob| ob.input).collect(),
                    None => vec![true; net.n],
                };
                net.observes = crate::scenario::observes(spec, &sees_input, seed);
            }
        }
    }
}

/// Which optimum a re-solved network is taken to reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Equilibrium {
    #[default]
    Best,
    Recorded,
}

impl Equilibrium {
    pub fn parse(s: &str) -> Result<Self, BadInput> {
        match s {
            "best" => Ok(Equilibrium::Best),
            "recorded" => Ok(Equilibrium::Recorded),
            other => Err(BadInput(format!("--equilibrium {other:?}; allowed: best, recorded"))),
        }
    }
}

#[derive(Clone, Debug)]
pub struct PredictArgs {
    /// `best` (default): every network at the solver's best optimum;
    /// `recorded`: the truth continues from the recorded (best) optimum and
    /// the prediction from the equilibrium that explained the record (the
    /// fitted policies in reward.npz), each to the local optimum it reaches.
    pub equilibrium: Equilibrium,
    pub reward: PathBuf,
    pub scenario: PathBuf,
    pub perturb: String,
    /// `count` (projection on (input, count), default) or `tabular`.
    pub model: String,
    pub out: Option<PathBuf>,
}

#[derive(Serialize, Debug)]
pub struct Prediction {
    /// A network driving a maze walker: the walker's outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub motor: Option<MotorOutcome>,
    pub perturbation: String,
    pub reward_model: String,
    /// `[x][c]` = P(spike count c | input x) after the perturbation.
    pub predicted: Vec<Vec<f64>>,
    pub truth: Vec<Vec<f64>>,
    pub naive: Vec<Vec<f64>>,
    /// Total variation between count distributions, maximum over inputs.
    pub tv_pred_truth: f64,
    pub tv_naive_truth: f64,
    /// The check every prediction needs: the unperturbed network re-solved
    /// with the inferred reward against the unperturbed truth. A prediction
    /// cannot be better than the inferred reward reproduces what it was
    /// inferred from.
    pub tv_baseline: f64,
    pub predicted_converged: bool,
    pub truth_converged: bool,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
}

/// What a perturbation does to the walker a network drives: the reward it
/// collects and where it spends its time (per free cell of the perturbed
/// maze), for the truth, the prediction (its policies under the true
/// reward) and the naive prediction.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct MotorOutcome {
    pub mean_reward_truth: f64,
    pub mean_reward_predicted: f64,
    pub mean_reward_naive: f64,
    /// Total variation between visit densities over cells.
    pub tv_visits_predicted: f64,
    pub tv_visits_naive: f64,
    pub visits_truth: Vec<f64>,
    pub visits_predicted: Vec<f64>,
    pub visits_naive: Vec<f64>,
}

/// The walker's stationary probability per cell (x), from ρ over (x, σ).
fn visit_density(rho: &[f64], cells: usize) -> Vec<f64> {
    let per = rho.len() / cells;
    rho.chunks(per).map(|c| c.iter().sum()).collect()
}

/// A table over (cell, σ) of the maze `old` carried to the maze `new` by
/// cell position; cells `old` did not have get the median entry (noted).
fn remap_cells(table: &[f64], old: &Maze, new: &Maze, n: usize, notes: &mut Vec<String>) -> Vec<f64> {
    let c = 1usize << n;
    let mut sorted: Vec<f64> = table.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let mut filled = 0;
    let out = new
        .cells
        .iter()
        .flat_map(|&cell| match old.state_of[cell] {
            Some(x) => table[x * c..(x + 1) * c].to_vec(),
            None => {
                filled += 1;
                vec![median; c]
            }
        })
        .collect();
    if filled > 0 {
        notes.push(format!(
            "{} of the moved-walls maze {} before: the inferred reward there is the median inferred \
             reward {median:.4}",
            crate::text::count(filled as u64, "cell"),
            if filled == 1 { "was a wall" } else { "were walls" }
        ));
    }
    out
}

/// Per-neuron policies over (cell, σ) of `old` carried to `new` by cell
/// position; a new cell gets, for each σ, the old policy averaged over the
/// old cells with weights ρ(cell, σ) (plainly where ρ is 0).
fn remap_policy(policy: &Policy, rho: &[f64], old: &Maze, new: &Maze) -> Policy {
    let n = policy.n;
    let c = 1usize << n;
    let xs_old = old.states();
    let average: Vec<f64> = (0..c)
        .flat_map(|sigma| {
            let w: Vec<f64> = (0..xs_old).map(|x| rho[x * c + sigma]).collect();
            let total: f64 = w.iter().sum();
            (0..n).map(move |k| {
                let p = |x: usize| policy.fire[(x * c + sigma) * n + k];
                match total > 0.0 {
                    true => (0..xs_old).map(|x| w[x] * p(x)).sum::<f64>() / total,
                    false => (0..xs_old).map(p).sum::<f64>() / xs_old as f64,
                }
            })
        })
        .collect();
    let fire = new
        .cells
        .iter()
        .flat_map(|&cell| match old.state_of[cell] {
            Some(x) => policy.fire[x * c * n..(x + 1) * c * n].to_vec(),
            None => average.clone(),
        })
        .collect();
    Policy { n, fire }
}

/// Baseline distance above which a prediction is flagged as untrustworthy.
pub const BASELINE_TV_WARN: f64 = 0.05;

/// Total variation between two sets of per-input distributions, max over inputs.
pub fn max_tv(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(p, q)| p.iter().zip(q).map(|(u, v)| (u - v).abs()).sum::<f64>() / 2.0)
        .fold(0.0, f64::max)
}

/// An inferred reward file: the reward table, notes on how gaps were
/// filled, and (parametric fits) the fitted policies and the marginals.
struct RewardFile {
    table: Vec<f64>,
    notes: Vec<String>,
    policy: Option<Policy>,
    p_fire: Option<Vec<f64>>,
}

fn read_reward(path: &Path, model: &str, n: usize, xs: usize) -> Result<RewardFile, BadInput> {
    let bad = |m: String| BadInput(format!("{}: {m}", path.display()));
    let mut npz = crate::files::open_npz(path, &[crate::files::formats::REWARD], 1, None).map_err(bad)?;
    let c = 1usize << n;
    let mut notes = Vec::new();
    let table: Vec<f64> = match model {
        "count" => {
            let cr: Array2<f64> = npz
                .by_name("count_reward")
                .map_err(|e| bad(format!("no float64 `count_reward` [X, n+1] ({e})")))?;
            if cr.shape() != [xs, n + 1] {
                return Err(bad(format!(
                    "`count_reward` has shape {:?}; the scenario needs [{xs}, {}]",
                    cr.shape(),
                    n + 1
                )));
            }
            let rows: Vec<Vec<f64>> = cr.rows().into_iter().map(|r| r.to_vec()).collect();
            let (t, filled) = crate::infer::count_table(n, &rows);
            for (x, f) in filled.iter().enumerate() {
                match f {
                    None => return Err(bad(format!("no identified count for input {x}"))),
                    Some(true) => {
                        let floor = rows[x]
                            .iter()
                            .copied()
                            .filter(|v| v.is_finite())
                            .fold(f64::INFINITY, f64::min);
                        notes.push(format!(
                            "input {x}: counts never observed get the lowest inferred reward ({floor:.4})"
                        ));
                    }
                    Some(false) => {}
                }
            }
            t
        }
        "tabular" => {
            let r: Array2<f64> = npz
                .by_name("r")
                .map_err(|e| bad(format!("no float64 `r` [X, 2^n] ({e})")))?;
            if r.shape() != [xs, c] {
                return Err(bad(format!(
                    "`r` has shape {:?}; the scenario needs [{xs}, {c}]",
                    r.shape()
                )));
            }
            let floor = r
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(f64::INFINITY, f64::min);
            if !floor.is_finite() {
                return Err(bad("`r` has no identified state".into()));
            }
            let missing = r.iter().filter(|v| !v.is_finite()).count();
            if missing > 0 {
                notes.push(format!(
                    "{missing} unidentified states get the lowest inferred reward ({floor:.4})"
                ));
            }
            r.iter().map(|&v| if v.is_finite() { v } else { floor }).collect()
        }
        other => return Err(BadInput(format!("--reward-model {other:?}; allowed: count, tabular"))),
    };
    let p_fire: Option<ndarray::Array1<f64>> = npz.optional("p_fire").map_err(|e| BadInput(e.0))?;
    let p_fire = p_fire
        .map(|p| p.to_vec())
        .filter(|p| p.len() == n && p.iter().all(|v| *v > 0.0 && *v < 1.0));
    let policy: Option<ndarray::Array3<f64>> = npz.optional("policy").map_err(|e| BadInput(e.0))?;
    let policy = match policy {
        None => None,
        Some(a) if a.shape() == [xs, c, n] && a.iter().all(|v| (0.0..=1.0).contains(v)) => Some(Policy {
            n,
            fire: a.iter().copied().collect(),
        }),
        Some(a) => {
            return Err(bad(format!(
                "`policy` has shape {:?} or values outside [0, 1]; allowed: [{xs}, {c}, {n}] probabilities",
                a.shape()
            )));
        }
    };
    Ok(RewardFile {
        table,
        notes,
        policy,
        p_fire,
    })
}

pub fn run_predict(args: &PredictArgs) -> Result<Prediction> {
    let scenario = Scenario::load(&args.scenario).map_err(BadInput::from)?;
    let base = scenario.network().map_err(BadInput::from)?;
    let (n, xs) = (base.n, base.input.len());
    let perturbation = Perturbation::for_scenario(&scenario, &args.perturb)?;
    if let (Perturbation::Input(_), Some(m)) = (&perturbation, &scenario.motor) {
        return Err(BadInput(format!(
            "--perturb {}: the input of {} is a maze walker the network moves ({} cells), not a chain to replace; \
             allowed here: lambda:L, kill:K, topology:...",
            args.perturb,
            args.scenario.display(),
            m.maze.states()
        ))
        .into());
    }
    let RewardFile {
        table: r_hat,
        mut notes,
        policy: fitted,
        p_fire,
    } = read_reward(&args.reward, &args.model, n, xs)?;
    solver::check_size(&base).map_err(|e| BadInput(e.to_string()))?;
    let out = args.out.clone().unwrap_or_else(|| scenario.output.join("predict"));
    let opts: &SolveOptions = &scenario.solver;
    let bad = |e: solver::SolveError| anyhow::Error::new(BadInput(e.to_string()));

    // The old network: optimal for the true reward before the perturbation.
    let old = solver::solve(&base, opts).map_err(bad)?;
    let mut perturbed = base.clone();
    perturbation.apply(&mut perturbed, scenario.seed);
    let mut inferred = perturbed.clone();
    inferred.reward = match (&perturbation, &scenario.motor) {
        (Perturbation::Walls { maze, .. }, Some(m)) => remap_cells(&r_hat, &m.maze, maze, n, &mut notes),
        _ => r_hat.clone(),
    };
    let mut unperturbed = base.clone();
    unperturbed.reward = r_hat;
    let (truth, predicted, baseline) = match args.equilibrium {
        Equilibrium::Best => (
            solver::solve(&perturbed, opts).map_err(bad)?,
            solver::solve(&inferred, opts).map_err(bad)?,
            solver::solve(&unperturbed, opts).map_err(bad)?,
        ),
        Equilibrium::Recorded => {
            let truth =
                solver::solve_continued(&perturbed, opts, &old.prior, Some(&old.policy), Some(&old.h)).map_err(bad)?;
            let start_prior = p_fire
                .clone()
                .unwrap_or_else(|| old.prior.iter().map(|_| 0.5).collect());
            if fitted.is_none() {
                notes.push(
                    "the reward file holds no fitted policies (tabular inversion): the inferred network starts \
                     from the record's marginals only"
                        .into(),
                );
            }
            let baseline =
                solver::solve_continued(&unperturbed, opts, &start_prior, fitted.as_ref(), None).map_err(bad)?;
            let predicted = solver::solve_continued(
                &inferred,
                opts,
                &baseline.prior,
                Some(&baseline.policy),
                Some(&baseline.h),
            )
            .map_err(bad)?;
            (truth, predicted, baseline)
        }
    };
    let tv_baseline = max_tv(
        &baseline.eval.count_distribution(&base),
        &old.eval.count_distribution(&base),
    );
    let mut warnings = Vec::new();
    if tv_baseline > BASELINE_TV_WARN {
        warnings.push(format!(
            "the inferred reward does not reproduce the unperturbed network (total variation {tv_baseline:.3} between \
             its optimum and the truth's count distributions): predictions from it are unreliable — more data, \
             another reward model, or (several optima) a different equilibrium"
        ));
    }
    // Naive: the old policies, perturbation applied, no re-optimisation
    // (moved walls: each cell's old policy; a new cell's is the old policy
    // averaged over the cells, weighted by their stationary probability).
    let mut old_policy: Policy = match (&perturbation, &scenario.motor) {
        (Perturbation::Walls { maze, .. }, Some(m)) => remap_policy(&old.policy, &old.eval.rho, &m.maze, maze),
        _ => old.policy.clone(),
    };
    for s in 0..perturbed.states() {
        for k in 0..n {
            if !perturbed.alive[k] {
                old_policy.fire[s * n + k] = 0.0;
            }
        }
    }
    if let Some(obs) = perturbed
        .observes
        .as_ref()
        .filter(|_| !perturbed.fully_observed() && !matches!(perturbation, Perturbation::Walls { .. }))
    {
        // Neurons that now see less keep their old policy averaged over what
        // they no longer see (under the old stationary distribution).
        let states = perturbed.states();
        for k in 0..n {
            let mut num = vec![0.0; states];
            let mut den = vec![0.0; states];
            for s in 0..states {
                let o = obs[k].class(s, n);
                num[o] += old.eval.rho[s] * old_policy.p(s, k);
                den[o] += old.eval.rho[s];
            }
            for s in 0..states {
                let o = obs[k].class(s, n);
                if den[o] > 0.0 {
                    old_policy.fire[s * n + k] = num[o] / den[o];
                }
            }
        }
    }
    let naive = solver::evaluate_with_prior(&perturbed, &old_policy, &old.prior, opts);
    if matches!(perturbation, Perturbation::Lambda(_)) {
        notes.push("naive prediction for a new λ: the old policies, unchanged".into());
    }
    let motor = scenario.motor.as_ref().map(|_| {
        let visits = |e: &solver::Evaluation| visit_density(&e.rho, perturbed.input.len());
        // The prediction's policies under the true (perturbed) reward.
        let pred_true = solver::evaluate_with_prior(&perturbed, &predicted.policy, &predicted.eval.prior, opts);
        let tv = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| (u - v).abs()).sum::<f64>() / 2.0;
        let (v_truth, v_pred, v_naive) = (visits(&truth.eval), visits(&pred_true), visits(&naive));
        MotorOutcome {
            mean_reward_truth: truth.eval.mean_reward,
            mean_reward_predicted: pred_true.mean_reward,
            mean_reward_naive: naive.mean_reward,
            tv_visits_predicted: tv(&v_pred, &v_truth),
            tv_visits_naive: tv(&v_naive, &v_truth),
            visits_truth: v_truth,
            visits_predicted: v_pred,
            visits_naive: v_naive,
        }
    });
    let result = Prediction {
        motor,
        perturbation: args.perturb.clone(),
        reward_model: args.model.clone(),
        predicted: predicted.eval.count_distribution(&inferred),
        truth: truth.eval.count_distribution(&perturbed),
        naive: naive.count_distribution(&perturbed),
        tv_pred_truth: 0.0,
        tv_naive_truth: 0.0,
        tv_baseline,
        predicted_converged: predicted.converged,
        truth_converged: truth.converged,
        warnings,
        notes,
    };
    let result = Prediction {
        tv_pred_truth: max_tv(&result.predicted, &result.truth),
        tv_naive_truth: max_tv(&result.naive, &result.truth),
        ..result
    };
    let labels = crate::commands::solve::input_labels(&perturbed.input.values);
    let mut series = Vec::new();
    let mut names = Vec::new();
    for (x, label) in labels.iter().enumerate() {
        for (what, d) in [
            ("truth", &result.truth),
            ("predicted", &result.predicted),
            ("naive", &result.naive),
        ] {
            series.push(d[x].clone());
            names.push(format!("{label}: {what}"));
        }
    }
    let svg = crate::report::per_count(
        &format!("{}: {} — predicted vs truth vs naive", scenario.name, args.perturb),
        "P(count | input)",
        &series,
        &names,
    )
    .map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
    write_text(&out.join("prediction.svg"), &svg)?;
    for w in &result.warnings {
        tracing::warn!("{w}");
    }
    write_json(&out.join("prediction.json"), &result).context("writing prediction.json")?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::Perturbation;

    #[test]
    fn perturbations_of_other_worlds_are_named() {
        let e = Perturbation::parse("walls:moved.txt", 8, &[-1.0, 1.0]).unwrap_err().0;
        assert!(e.contains("maze") && e.contains("kill, lambda"), "{e}");
        let e = Perturbation::parse("pixel_probability:0.2", 8, &[-1.0, 1.0])
            .unwrap_err()
            .0;
        assert!(e.contains("sensory-coding"), "{e}");
        let e = Perturbation::parse("melt:1", 8, &[-1.0, 1.0]).unwrap_err().0;
        assert!(e.contains("unknown kind"), "{e}");
    }
}
