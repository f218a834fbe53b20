//! The commands on a maze scenario (docs/theory.md §7): `solve` (the optimal
//! information-constrained walker, its visit density and a sampled
//! trajectory per λ), `simulate` (record demonstrations), `infer` (the reward
//! map from demonstrations by four estimators), `predict` (the policy after
//! raising λ or moving walls, against the truth and the naive prediction)
//! and the whole study of `marlin run`.
//!
//! Inputs are validated before anything is written; every output is
//! written atomically.

use super::params::{self, MazeParams, Sealed};
use super::{BadInput, draw};
use crate::files::{Npz, write_json};
use crate::infer::mdp::{self as inv, ActionCounts, FitOptions, Marginal};
use crate::maze::{ACTIONS, Maze};
use crate::record::demos::{self, DemoMeta, Demonstrations};
use crate::report::{self, MapScale};
use crate::rng::{Domain, stream};
use crate::scenario::MazeScenario;
use crate::solver::mdp::{self as mdp, ActionPrior, MdpSolution};
use anyhow::{Context, Result};
use ndarray::{Array1, Array2};
use rand::Rng;
use serde::Serialize;
use std::path::{Path, PathBuf};

const NATS_PER_BIT: f64 = std::f64::consts::LN_2;

/// One solved λ, as written to summary.json.
#[derive(Clone, Debug, Serialize)]
pub struct MazeSolveRecord {
    pub lambda: f64,
    pub g: f64,
    /// Goal visits per step.
    pub mean_reward: f64,
    /// I(S;A) (or the KL to the fixed prior), nats and bits per step.
    pub info_nats: f64,
    pub info_bits: f64,
    /// How often each action is taken (N, E, S, W, stay).
    pub action_marginal: Vec<f64>,
    pub prior: Vec<f64>,
    pub converged: bool,
    pub iterations: usize,
    pub value_sweeps: usize,
    pub seconds: f64,
    pub warnings: Vec<String>,
}

fn cost_name(c: &ActionPrior) -> &'static str {
    match c {
        ActionPrior::Marginal => "mutual_information",
        ActionPrior::Fixed(_) => "fixed_prior",
    }
}

/// Goal (gold) and start (green) outlines for the figures.
pub(crate) fn marks(maze: &Maze) -> Vec<(usize, usize, bool)> {
    let mut m: Vec<(usize, usize, bool)> = maze
        .goals
        .iter()
        .map(|g| (g.0 / maze.width, g.0 % maze.width, true))
        .collect();
    if maze.marked_starts {
        m.extend(maze.starts.iter().map(|&c| (c / maze.width, c % maze.width, false)));
    }
    m
}

/// A trajectory of `steps` from a start cell drawn uniformly, in the
/// stream `(seed, Agent, id)`.
fn trajectory(maze: &Maze, pi: &[f64], steps: usize, seed: u64, id: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = stream(seed, Domain::Agent, id);
    let start_cell = maze.starts[rng.random_range(0..maze.starts.len())];
    let start = maze.state_of[start_cell].expect("start cells are free");
    mdp::sample(&maze.mdp(), pi, start, steps, &mut rng)
}

fn positions(maze: &Maze, states: &[usize]) -> Vec<(usize, usize)> {
    states.iter().map(|&s| maze.position(s)).collect()
}

/// `marlin solve` on a maze: one folder per λ when sweeping.
pub fn solve(
    sc: &MazeScenario,
    lambdas: &[f64],
    out: &Path,
    sweeping: bool,
    quiet: bool,
) -> Result<Vec<MazeSolveRecord>> {
    let maze = &sc.maze;
    let bar = crate::progress::Task::start("solving λ", "", Some(lambdas.len() as u64), quiet);
    let mut records = Vec::new();
    for (i, &lambda) in lambdas.iter().enumerate() {
        let t0 = std::time::Instant::now();
        let sol = mdp::solve(&maze.mdp(), lambda, &sc.cost, &sc.solver);
        let seconds = t0.elapsed().as_secs_f64();
        for w in &sol.warnings {
            tracing::warn!(lambda, "{w}");
        }
        let dir = if sweeping {
            out.join(format!("lambda_{lambda}"))
        } else {
            out.to_path_buf()
        };
        write_policy(&dir.join("policy.npz"), sc, &sol, lambda)?;
        let (path, _) = trajectory(maze, &sol.pi, sc.study.steps, sc.seed, i as u64);
        draw(
            &dir.join("maze.svg"),
            report::maze_map(
                &format!("{}: visit density and one trajectory, λ = {lambda}", sc.name),
                &maze.grid(&sol.eval.rho),
                MapScale::Sequential,
                &marks(maze),
                Some(&positions(maze, &path)),
            ),
        )?;
        let record = MazeSolveRecord {
            lambda,
            g: sol.eval.g,
            mean_reward: sol.eval.mean_reward,
            info_nats: sol.eval.info_nats,
            info_bits: sol.eval.info_nats / NATS_PER_BIT,
            action_marginal: sol.eval.marginal.clone(),
            prior: sol.prior.clone(),
            converged: sol.converged,
            iterations: sol.iterations,
            value_sweeps: sol.value_sweeps,
            seconds,
            warnings: sol.warnings.clone(),
        };
        write_json(
            &dir.join("summary.json"),
            &serde_json::json!({
                "marlin_version": env!("CARGO_PKG_VERSION"),
                "scenario": sc.name,
                "scenario_file": sc.path.display().to_string(),
                "world": "maze",
                "map": demos::map_rows(maze, &sc.goals),
                "cost": cost_name(&sc.cost),
                "actions": ACTIONS,
                "state_indexing": "state = index of the free cell in reading order (row by row); policy.npz row/col give its cell",
                "solution": record,
            }),
        )?;
        records.push(record);
        bar.inc(1);
    }
    bar.finish();
    if sweeping {
        let points: Vec<(f64, f64, f64)> = records.iter().map(|r| (r.lambda, r.info_bits, r.mean_reward)).collect();
        draw(
            &out.join("tradeoff.svg"),
            report::tradeoff(&format!("{}: goal rate against I(S;A) in bits", sc.name), &points),
        )?;
        write_json(
            &out.join("summary.json"),
            &serde_json::json!({
                "scenario": sc.name,
                "world": "maze",
                "sweep": records,
                "warnings": records
                    .iter()
                    .flat_map(|r| r.warnings.iter().map(move |w| format!("λ = {}: {w}", r.lambda)))
                    .collect::<Vec<_>>(),
            }),
        )?;
    }
    Ok(records)
}

/// policy.npz, and beside it policy.json: what it was solved for.
fn write_policy(path: &Path, sc: &MazeScenario, sol: &MdpSolution, lambda: f64) -> Result<()> {
    let maze = &sc.maze;
    let ns = maze.states();
    let params = Sealed::new(
        crate::files::formats::MAZE_POLICY,
        "marlin solve",
        &sc.name,
        MazeParams::walker(sc, lambda),
    );
    let mut npz = params.archive();
    npz.add("pi", Array2::from_shape_vec((ns, ACTIONS.len()), sol.pi.clone())?)
        .add("lambda", Array1::from(vec![lambda]))
        .add("h", Array1::from(sol.h.clone()))
        .add("rho", Array1::from(sol.eval.rho.clone()))
        .add("prior", Array1::from(sol.prior.clone()))
        .add(
            "row",
            Array1::from((0..ns).map(|s| maze.position(s).0 as i64).collect::<Vec<_>>()),
        )
        .add(
            "col",
            Array1::from((0..ns).map(|s| maze.position(s).1 as i64).collect::<Vec<_>>()),
        )
        .add("density", grid_array(maze, &sol.eval.rho)?);
    params.write(npz, path)
}

fn grid_array(maze: &Maze, values: &[f64]) -> Result<Array2<f64>> {
    let g = maze.grid(values);
    Ok(Array2::from_shape_vec(
        (maze.height, maze.width),
        g.into_iter().flatten().collect(),
    )?)
}

/// A policy table `pi` [S, 5] from policy.npz, checked against the maze
/// (and, by the parameters beside it, against the scenario: refused if
/// solved for another one), and the λ it was solved for (`lambda` [1], if
/// present).
fn read_policy(path: &Path, sc: &MazeScenario) -> Result<(Vec<f64>, Option<f64>), BadInput> {
    let maze = &sc.maze;
    let bad = |m: String| BadInput(format!("{}: {m}", path.display()));
    let solve_with = format!("marlin solve {}", sc.path.display());
    let (mut npz, sealed) =
        params::open::<MazeParams>(path, &[crate::files::formats::MAZE_POLICY], &solve_with).map_err(bad)?;
    match &sealed {
        Some(p) => params::check(path, p, &sc.path, &MazeParams::walker(sc, sc.lambda), &solve_with)?,
        None => params::unchecked(path),
    }
    let pi: Array2<f64> = npz
        .by_name("pi")
        .map_err(|e| bad(format!("no float64 array `pi` [states, 5] ({e})")))?;
    if pi.dim() != (maze.states(), ACTIONS.len()) {
        return Err(bad(format!(
            "`pi` has shape {:?}; this maze needs [{}, {}] (its free cells × N, E, S, W, stay)",
            pi.shape(),
            maze.states(),
            ACTIONS.len()
        )));
    }
    for (s, row) in pi.rows().into_iter().enumerate() {
        let sum: f64 = row.sum();
        if row.iter().any(|p| !(0.0..=1.0).contains(p)) || (sum - 1.0).abs() > 1e-6 {
            return Err(bad(format!(
                "row {s} of `pi` is not a distribution over the 5 actions (sums to {sum}); allowed: entries in [0, 1] summing to 1"
            )));
        }
    }
    let lambda: Option<Array1<f64>> = npz.optional("lambda").map_err(|e| BadInput(e.0))?;
    let lambda = lambda
        .and_then(|l| l.first().copied())
        .filter(|l| l.is_finite() && *l > 0.0);
    Ok((pi.iter().copied().collect(), lambda))
}

/// What `simulate` did on a maze.
#[derive(Clone, Debug, Serialize)]
pub struct MazeSimulated {
    pub trajectories: usize,
    pub steps: usize,
    /// Goal visits per step over all demonstrations.
    pub mean_reward: f64,
    pub seconds: f64,
    pub out: PathBuf,
}

/// Record `trajectories` demonstrations of `steps` steps with the policy of
/// `policy` (policy.npz) or, when None, uniformly random moves.
pub fn simulate(
    sc: &MazeScenario,
    policy: Option<&Path>,
    trajectories: usize,
    steps: usize,
    out: &Path,
) -> Result<MazeSimulated> {
    let maze = &sc.maze;
    if trajectories == 0 || steps == 0 {
        return Err(BadInput("a maze record needs at least 1 trajectory of at least 1 step".into()).into());
    }
    let (pi, policy_lambda) = match policy {
        Some(p) => read_policy(p, sc)?,
        None => (vec![1.0 / ACTIONS.len() as f64; maze.states() * ACTIONS.len()], None),
    };
    let t0 = std::time::Instant::now();
    let mut rec = Demonstrations::default();
    for i in 0..trajectories {
        let (s, a) = trajectory(maze, &pi, steps, sc.seed, i as u64);
        rec.push(s, a);
    }
    let reward = maze.reward();
    let total: f64 = rec.states.iter().flat_map(|s| &s[..steps]).map(|&s| reward[s]).sum();
    let meta = DemoMeta {
        format: demos::FORMAT.into(),
        format_version: demos::FORMAT_VERSION,
        scenario: sc.name.clone(),
        scenario_file: sc.path.display().to_string(),
        map: demos::map_rows(maze, &sc.goals),
        goals: sc.goals.clone(),
        slip: maze.slip,
        lambda: policy_lambda,
        cost: cost_name(&sc.cost).into(),
        prior: match &sc.cost {
            ActionPrior::Fixed(p) => Some(p.clone()),
            ActionPrior::Marginal => None,
        },
        seed: sc.seed,
        trajectories,
        steps,
        policy: policy.map_or("uniformly random moves".into(), |p| crate::files::outdir::recorded(p)),
        actions: ACTIONS.iter().map(|a| a.to_string()).collect(),
    };
    demos::write(out, &meta, maze, &rec)?;
    let mut visits = vec![0.0; maze.states()];
    for s in rec.states.iter().flatten() {
        visits[*s] += 1.0;
    }
    draw(
        &out.join("demonstrations.svg"),
        report::maze_map(
            &format!(
                "{}: visits in {}, and the first",
                sc.name,
                crate::text::count(trajectories as u64, "demonstration")
            ),
            &maze.grid(&visits),
            MapScale::Sequential,
            &marks(maze),
            Some(&positions(maze, &rec.states[0])),
        ),
    )?;
    Ok(MazeSimulated {
        trajectories,
        steps,
        mean_reward: total / (trajectories * steps) as f64,
        seconds: t0.elapsed().as_secs_f64(),
        out: out.to_path_buf(),
    })
}

/// The reward estimators.
pub const MODELS: [&str; 4] = ["direct", "sparse", "ml", "ml_marginal"];
/// The estimator `predict` and the study use by default: the direct map
/// made sparse. Under the average-reward criterion a cell whose inferred
/// reward beats the goal's rate is worth sitting on for good, so the noise
/// of the full maps (a few hundredths) changed the predicted optimum for
/// two of three records (docs/mazes.md).
pub const DEFAULT_MODEL: &str = "sparse";

/// Robust z-score above which the sparse map keeps a cell's reward.
pub const SPARSE_Z: f64 = 10.0;

/// The sparse map of a reward map: cells whose reward stands out from the
/// visited cells' median by more than [`SPARSE_Z`] robust standard
/// deviations (1.4826 × the median absolute deviation) keep their excess
/// over the median; every other cell gets 0. Returns the map and the kept
/// cells.
pub fn sparse(reward: &[f64], visited: &[bool]) -> (Vec<f64>, Vec<usize>) {
    let mut values: Vec<f64> = (0..reward.len())
        .filter(|&s| visited[s] && reward[s].is_finite())
        .map(|s| reward[s])
        .collect();
    if values.is_empty() {
        return (vec![0.0; reward.len()], Vec::new());
    }
    let (m, spread) = median_and_spread(&mut values);
    let kept: Vec<usize> = (0..reward.len())
        .filter(|&s| visited[s] && reward[s].is_finite() && reward[s] - m > SPARSE_Z * spread.max(1e-12))
        .collect();
    let mut out = vec![0.0; reward.len()];
    for &s in &kept {
        out[s] = reward[s] - m;
    }
    (out, kept)
}

/// The median of `values` and their robust standard deviation (1.4826 ×
/// the median absolute deviation); `values` is left sorted.
pub(crate) fn median_and_spread(values: &mut [f64]) -> (f64, f64) {
    fn median(v: &mut [f64]) -> f64 {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        }
    }
    let m = median(values);
    let mut dev: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
    (m, 1.4826 * median(&mut dev))
}

/// One estimator's result, as in reward.json.
#[derive(Clone, Debug, Serialize)]
pub struct MethodSummary {
    pub model: &'static str,
    pub description: &'static str,
    /// The visited cell (row, col) of the largest inferred reward, and whether it is a goal.
    pub argmax_cell: Option<(usize, usize)>,
    pub argmax_is_goal: bool,
    /// Rank of the best goal among visited cells (1 = top).
    pub goal_rank: Option<usize>,
    /// Pearson correlation with the true reward over visited cells.
    pub correlation_with_truth: Option<f64>,
    pub identified_states: usize,
    pub log_likelihood: Option<f64>,
    pub seconds: f64,
    pub warnings: Vec<String>,
}

/// What `infer` found in a maze record.
#[derive(Clone, Debug, Serialize)]
pub struct MazeInferSummary {
    pub trajectories: usize,
    pub steps: usize,
    pub visited_states: usize,
    pub states: usize,
    /// λ used; None: the rewards are r/λ.
    pub lambda: Option<f64>,
    pub units: &'static str,
    /// Plug-in I(S;A) of the demonstrations in bits, and with the
    /// Miller–Madow bias correction (S_visited − 1)(A_used − 1)/(2N ln 2).
    pub info_bits_plugin: f64,
    pub info_bits_corrected: f64,
    pub methods: Vec<MethodSummary>,
    pub out: PathBuf,
}

/// How a reward map scores against the maze's goals, over the cells
/// `visited` marks (the estimators extrapolate differently elsewhere, so
/// they are compared where the demonstrations say something): the argmax
/// cell, whether it is a goal, the best goal's rank, and the correlation
/// with the true reward.
pub fn score(maze: &Maze, reward: &[f64], visited: &[bool]) -> (Option<usize>, bool, Option<usize>, Option<f64>) {
    let finite: Vec<usize> = (0..reward.len())
        .filter(|&s| reward[s].is_finite() && visited[s])
        .collect();
    let argmax = finite.iter().copied().max_by(|&a, &b| reward[a].total_cmp(&reward[b]));
    let is_goal = argmax.is_some_and(|s| maze.is_goal(s));
    let best_goal = finite
        .iter()
        .copied()
        .filter(|&s| maze.is_goal(s))
        .max_by(|&a, &b| reward[a].total_cmp(&reward[b]));
    let rank = best_goal.map(|g| 1 + finite.iter().filter(|&&s| reward[s] > reward[g]).count());
    let masked: Vec<f64> = (0..reward.len())
        .map(|s| if visited[s] { reward[s] } else { f64::NAN })
        .collect();
    let corr = crate::infer::correlation(&masked, &maze.reward());
    (argmax, is_goal, rank, corr.is_finite().then_some(corr))
}

/// Run the estimators on demonstrations: (model, reward, summary).
pub fn estimate(
    maze: &Maze,
    counts: &ActionCounts,
    lambda: f64,
    prior: Option<&[f64]>,
) -> Vec<(&'static str, Vec<f64>, MethodSummary)> {
    let world = maze.mdp();
    let mut out = Vec::new();
    let visited: Vec<bool> = (0..counts.states).map(|s| counts.visits(s) > 0.0).collect();
    let summarise = |model: &'static str, description: &'static str, r: &[f64], ll, secs, warnings| {
        let (argmax, is_goal, rank, corr) = score(maze, r, &visited);
        MethodSummary {
            model,
            description,
            argmax_cell: argmax.map(|s| maze.position(s)),
            argmax_is_goal: is_goal,
            goal_rank: rank,
            correlation_with_truth: corr,
            identified_states: r.iter().filter(|v| v.is_finite()).count(),
            log_likelihood: ll,
            seconds: secs,
            warnings,
        }
    };
    let t0 = std::time::Instant::now();
    match inv::invert(&world, counts, lambda, prior) {
        Ok(d) => {
            let s = summarise(
                "direct",
                "docs/theory.md §7: direct inversion: log-odds between actions give value differences, least squares gives h",
                &d.reward,
                None,
                t0.elapsed().as_secs_f64(),
                d.notes.clone(),
            );
            out.push(("direct", d.reward.clone(), s));
            let t1 = std::time::Instant::now();
            let (map, kept) = sparse(&d.reward, &visited);
            let mut notes = vec![format!(
                "the direct map's cells more than {SPARSE_Z} robust standard deviations above its median keep \
                 their excess ({} cell(s)); every other cell is 0",
                kept.len()
            )];
            if kept.is_empty() {
                notes.push("no cell stands out: the sparse map is flat (no evidence of a goal)".into());
            }
            let s = summarise(
                "sparse",
                "the direct map made sparse: only cells that stand out from the rest keep a reward",
                &map,
                None,
                t0.elapsed().as_secs_f64() + t1.elapsed().as_secs_f64(),
                notes,
            );
            out.push(("sparse", map, s));
        }
        Err(e) => tracing::warn!("direct inversion failed: {e}"),
    }
    for (model, marginal, description) in [
        (
            "ml",
            Marginal::Empirical,
            "maximum likelihood of the actions, against the demonstrations' empirical action marginal",
        ),
        (
            "ml_marginal",
            Marginal::Model,
            "maximum likelihood of the actions, against the model's own action marginal (uses how often each move is made)",
        ),
    ] {
        if prior.is_some() && marginal == Marginal::Model {
            continue;
        }
        let t0 = std::time::Instant::now();
        let opts = FitOptions {
            marginal,
            ..FitOptions::default()
        };
        match inv::fit(&world, counts, lambda, None, &opts) {
            Ok(f) => {
                let s = summarise(
                    model,
                    description,
                    &f.reward,
                    Some(f.log_likelihood),
                    t0.elapsed().as_secs_f64(),
                    f.warnings.clone(),
                );
                out.push((model, f.reward, s));
            }
            Err(e) => tracing::warn!("{model} fit failed: {e}"),
        }
    }
    out
}

/// Plug-in and bias-corrected I(S;A) of the demonstrations, in bits.
pub fn demonstrated_information(counts: &ActionCounts) -> (f64, f64) {
    let plugin = counts.information();
    let visited = (0..counts.states).filter(|&s| counts.visits(s) > 0.0).count();
    let used = (0..counts.actions)
        .filter(|&a| (0..counts.states).any(|s| counts.n[s * counts.actions + a] > 0.0))
        .count();
    let bias = (visited.saturating_sub(1) * used.saturating_sub(1)) as f64 / (2.0 * counts.total().max(1.0));
    (plugin / NATS_PER_BIT, (plugin - bias).max(0.0) / NATS_PER_BIT)
}

/// `marlin infer` on a maze record.
pub fn infer(path: &Path, lambda: Option<f64>, out: &Path) -> Result<MazeInferSummary> {
    let (meta, maze, rec) = demos::read(path).map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
    if let Some(l) = lambda
        && !(l.is_finite() && l > 0.0)
    {
        return Err(BadInput(format!("--lambda {l}; allowed: a positive number")).into());
    }
    let mut counts = ActionCounts::new(maze.states(), ACTIONS.len());
    for (s, a) in rec.states.iter().zip(&rec.actions) {
        counts.add_trajectory(s, a);
    }
    let prior = meta.prior.clone();
    let results = estimate(&maze, &counts, lambda.unwrap_or(1.0), prior.as_deref());
    let (plugin, corrected) = demonstrated_information(&counts);
    let mut npz = Npz::new(crate::files::formats::MAZE_REWARD);
    let ns = maze.states();
    npz.add(
        "row",
        Array1::from((0..ns).map(|s| maze.position(s).0 as i64).collect::<Vec<_>>()),
    )
    .add(
        "col",
        Array1::from((0..ns).map(|s| maze.position(s).1 as i64).collect::<Vec<_>>()),
    );
    for (model, r, _) in &results {
        npz.add(&format!("reward_{model}"), Array1::from(r.clone()))
            .add(&format!("map_{model}"), grid_array(&maze, r)?);
        if *model == DEFAULT_MODEL {
            npz.add("reward", Array1::from(r.clone()));
        }
    }
    let visits: Vec<f64> = (0..ns).map(|s| counts.visits(s)).collect();
    npz.add("visits", Array1::from(visits.clone()));
    let summary = MazeInferSummary {
        trajectories: rec.states.len(),
        steps: meta.steps,
        visited_states: visits.iter().filter(|v| **v > 0.0).count(),
        states: ns,
        lambda,
        units: if lambda.is_some() { "reward" } else { "reward / λ" },
        info_bits_plugin: plugin,
        info_bits_corrected: corrected,
        methods: results.iter().map(|r| r.2.clone()).collect(),
        out: out.to_path_buf(),
    };
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (model, r, _) in &results {
        draw(
            &out.join(format!("reward_{model}.svg")),
            report::maze_map(
                &format!("inferred reward ({model})"),
                &maze.grid(r),
                MapScale::Diverging,
                &marks(&maze),
                None,
            ),
        )?;
    }
    draw(
        &out.join("visits.svg"),
        report::maze_map(
            "visits in the demonstrations",
            &maze.grid(&visits),
            MapScale::Sequential,
            &marks(&maze),
            None,
        ),
    )?;
    npz.write(&out.join("reward.npz"))?;
    write_json(
        &out.join("reward.json"),
        &serde_json::json!({
            "format": "marlin-maze-reward",
            "format_version": 1,
            "world": "maze",
            "demonstrations": crate::files::outdir::recorded(&path),
            "map": meta.map,
            "goals": meta.goals,
            "slip": meta.slip,
            "default_model": DEFAULT_MODEL,
            "summary": summary,
        }),
    )?;
    Ok(summary)
}

/// A maze perturbation.
#[derive(Clone, Debug)]
pub enum MazePerturbation {
    Lambda(f64),
    Walls(PathBuf),
}

impl MazePerturbation {
    /// `lambda:L` or `walls:FILE` (FILE relative to `base`).
    pub fn parse(spec: &str, base: &Path) -> Result<Self, String> {
        match spec.split_once(':') {
            Some(("lambda", v)) => match v.trim().parse::<f64>() {
                Ok(l) if l.is_finite() && l > 0.0 => Ok(MazePerturbation::Lambda(l)),
                _ => Err(format!("{spec:?}: λ must be a positive number")),
            },
            Some(("walls", f)) if !f.trim().is_empty() => Ok(MazePerturbation::Walls(base.join(f.trim()))),
            _ => Err(format!(
                "{spec:?} is not a maze perturbation; allowed: lambda:L (a new coding-cost weight) or walls:FILE \
                 (a map of the same maze with walls moved)"
            )),
        }
    }
}

/// A maze prediction, as written to prediction.json.
#[derive(Clone, Debug, Serialize)]
pub struct MazePrediction {
    pub perturbation: String,
    pub model: String,
    /// Total variation between predicted and true policies per non-goal
    /// state, averaged over the true perturbed visit density.
    pub tv_pred_truth: f64,
    /// The same for the naive prediction (the unperturbed policy, cell by cell).
    pub tv_naive_truth: f64,
    /// The inferred reward re-solved on the unperturbed maze against the
    /// true unperturbed policy (how well the reward explains the record).
    pub tv_baseline: f64,
    /// Goal rate of the true, predicted and naive policies in the perturbed maze.
    pub goal_rate_truth: f64,
    pub goal_rate_pred: f64,
    pub goal_rate_naive: f64,
    pub warnings: Vec<String>,
}

/// Mean over `rho` of the per-state total variation between two policies,
/// skipping goal states (where the action has no effect).
fn mean_tv(maze: &Maze, rho: &[f64], a: &[f64], b: &[f64]) -> f64 {
    let na = ACTIONS.len();
    let (mut acc, mut w) = (0.0, 0.0);
    for s in 0..maze.states() {
        if maze.is_goal(s) {
            continue;
        }
        let tv: f64 = (0..na).map(|k| (a[s * na + k] - b[s * na + k]).abs()).sum::<f64>() / 2.0;
        acc += rho[s] * tv;
        w += rho[s];
    }
    if w > 0.0 { acc / w } else { 0.0 }
}

/// Read one model's reward map from reward.npz (and its units from reward.json).
fn read_reward(path: &Path, model: &str, maze: &Maze) -> Result<(Vec<f64>, bool), BadInput> {
    let bad = |m: String| BadInput(format!("{}: {m}", path.display()));
    let json = std::fs::read_to_string(path.with_extension("json"))
        .map_err(|e| bad(format!("cannot read reward.json beside it: {e}")))?;
    let meta: serde_json::Value = serde_json::from_str(&json).map_err(|e| bad(format!("reward.json: {e}")))?;
    if meta["format"] != "marlin-maze-reward" {
        return Err(bad(
            "not a maze reward (reward.json's format is not \"marlin-maze-reward\")".into(),
        ));
    }
    let in_lambda_units = meta["summary"]["lambda"].is_null();
    let mut npz = crate::files::open_npz(path, &[crate::files::formats::MAZE_REWARD], 1, None).map_err(bad)?;
    let r: Array1<f64> = npz.by_name(&format!("reward_{model}")).map_err(|e| {
        bad(format!(
            "no float64 array `reward_{model}` ({e}); allowed models: {}",
            MODELS.join(", ")
        ))
    })?;
    if r.len() != maze.states() {
        return Err(bad(format!(
            "{} rewards but the scenario's maze has {} free cells (was it inferred in another maze?)",
            r.len(),
            maze.states()
        )));
    }
    Ok((r.to_vec(), in_lambda_units))
}

/// A prediction in numbers (no I/O): the true and predicted optima in the
/// perturbed maze `new` at `lambda_new`, and how far each is from the truth.
#[derive(Clone, Debug)]
pub struct Forecast {
    pub truth: MdpSolution,
    pub pred: MdpSolution,
    /// The unperturbed true policy, cell by cell (the old marginal on new cells).
    pub naive: Vec<f64>,
    pub tv_pred_truth: f64,
    pub tv_naive_truth: f64,
    pub tv_baseline: f64,
    pub goal_rate_pred: f64,
    pub goal_rate_naive: f64,
    pub warnings: Vec<String>,
}

/// Predict the optimum of `inferred` (a reward per state of `old`, in reward
/// units; NaN where unidentified) in `new` at `lambda_new`, against the true
/// reward's optimum there and against the naive prediction (the old
/// optimum at `lambda_old`, cell by cell).
pub fn forecast(
    old: &Maze,
    new: &Maze,
    inferred: &[f64],
    lambda_old: f64,
    lambda_new: f64,
    cost: &ActionPrior,
    opts: &crate::solver::SolveOptions,
) -> Forecast {
    let mut warnings = Vec::new();
    // Cells the old map did not have, or whose reward was not identified,
    // get the median inferred reward.
    let mut sorted: Vec<f64> = inferred.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let mut filled = 0;
    let reward_new: Vec<f64> = new
        .cells
        .iter()
        .map(
            |&c| match old.state_of[c].map(|s| inferred[s]).filter(|v| v.is_finite()) {
                Some(v) => v,
                None => {
                    filled += 1;
                    median
                }
            },
        )
        .collect();
    if filled > 0 {
        warnings.push(format!(
            "{} of the perturbed maze {} no inferred reward (new, or never visited); {} the median inferred \
             reward {median:.4}",
            crate::text::count(filled as u64, "cell"),
            if filled == 1 { "has" } else { "have" },
            if filled == 1 { "it gets" } else { "they get" }
        ));
    }
    let solve = |m: &Maze, r: Vec<f64>, l: f64| mdp::solve(&m.mdp_with_reward(r), l, cost, opts);
    let truth = solve(new, new.reward(), lambda_new);
    let pred = solve(new, reward_new, lambda_new);
    let old_truth = solve(old, old.reward(), lambda_old);
    let old_pred = solve(
        old,
        inferred
            .iter()
            .map(|v| if v.is_finite() { *v } else { median })
            .collect(),
        lambda_old,
    );
    for w in truth.warnings.iter().chain(&pred.warnings) {
        warnings.push(format!("solver: {w}"));
    }
    let na = ACTIONS.len();
    let naive: Vec<f64> = new
        .cells
        .iter()
        .flat_map(|&c| match old.state_of[c] {
            Some(s) => old_truth.pi[s * na..(s + 1) * na].to_vec(),
            None => old_truth.eval.marginal.clone(),
        })
        .collect();
    let world = new.mdp();
    let rate = |pi: &[f64]| world.evaluate(pi, lambda_new, None, opts).mean_reward;
    Forecast {
        tv_pred_truth: mean_tv(new, &truth.eval.rho, &pred.pi, &truth.pi),
        tv_naive_truth: mean_tv(new, &truth.eval.rho, &naive, &truth.pi),
        tv_baseline: mean_tv(old, &old_truth.eval.rho, &old_pred.pi, &old_truth.pi),
        goal_rate_pred: rate(&pred.pi),
        goal_rate_naive: rate(&naive),
        truth,
        pred,
        naive,
        warnings,
    }
}

/// `marlin predict` on a maze: the new optimum of the inferred reward against
/// the truth (the true reward re-solved) and the naive prediction.
pub fn predict(
    sc: &MazeScenario,
    reward_file: &Path,
    spec: &str,
    model: &str,
    base: &Path,
    out: &Path,
) -> Result<MazePrediction> {
    let perturbation = MazePerturbation::parse(spec, base).map_err(BadInput)?;
    if !MODELS.contains(&model) {
        return Err(BadInput(format!(
            "--reward-model {model:?}; allowed for a maze: {}",
            MODELS.join(", ")
        ))
        .into());
    }
    let old = &sc.maze;
    let (inferred, in_lambda_units) = read_reward(reward_file, model, old)?;
    let mut warnings = Vec::new();
    let scale = if in_lambda_units { sc.lambda } else { 1.0 };
    let inferred: Vec<f64> = inferred.iter().map(|r| r * scale).collect();
    let (new, lambda) = match &perturbation {
        MazePerturbation::Lambda(l) => (old.clone(), *l),
        MazePerturbation::Walls(f) => {
            let m = sc.read_map(f).map_err(BadInput::from)?;
            crate::scenario::maze::check_same_size(f, &m, old).map_err(BadInput)?;
            (m, sc.lambda)
        }
    };
    let f = forecast(old, &new, &inferred, sc.lambda, lambda, &sc.cost, &sc.solver);
    warnings.extend(f.warnings.iter().cloned());
    let p = MazePrediction {
        perturbation: spec.to_string(),
        model: model.to_string(),
        tv_pred_truth: f.tv_pred_truth,
        tv_naive_truth: f.tv_naive_truth,
        tv_baseline: f.tv_baseline,
        goal_rate_truth: f.truth.eval.mean_reward,
        goal_rate_pred: f.goal_rate_pred,
        goal_rate_naive: f.goal_rate_naive,
        warnings,
    };
    let (truth, pred) = (&f.truth, &f.pred);
    for (name, sol) in [("truth", truth), ("prediction", pred)] {
        let (path, _) = trajectory(&new, &sol.pi, sc.study.steps, sc.seed, 0);
        draw(
            &out.join(format!("{name}.svg")),
            report::maze_map(
                &format!("{spec}: {name}'s visit density"),
                &new.grid(&sol.eval.rho),
                MapScale::Sequential,
                &marks(&new),
                Some(&positions(&new, &path)),
            ),
        )?;
    }
    write_json(&out.join("prediction.json"), &p)?;
    Ok(p)
}

/// The study's perturbations (default: λ doubled), each checked — and its
/// walls map read — before any stage runs.
pub fn study_perturbations(sc: &MazeScenario) -> Result<Vec<String>> {
    let base = sc.path.parent().unwrap_or(Path::new("."));
    let specs: Vec<String> = match &sc.study.perturbations {
        Some(p) => p.iter().map(|s| s.value.clone()).collect(),
        None => vec![format!("lambda:{}", 2.0 * sc.lambda)],
    };
    for (i, s) in specs.iter().enumerate() {
        let at = sc.study.perturbations.as_ref().and_then(|p| p[i].at);
        let place = at.map_or(String::new(), |(l, c)| format!(":{l}:{c}"));
        match MazePerturbation::parse(s, base) {
            Err(e) => return Err(BadInput(format!("{}{place}: study.perturbations: {e}", sc.path.display())).into()),
            Ok(MazePerturbation::Walls(f)) => {
                sc.read_map(&f).map_err(BadInput::from)?;
            }
            Ok(_) => {}
        }
    }
    Ok(specs)
}

/// `marlin run` on a maze: solve (the study's λ sweep), record
/// demonstrations at the scenario's λ, infer with every estimator,
/// predict every perturbation. Returns the summary written.
pub fn study(sc: &MazeScenario, out: &Path, quiet: bool) -> Result<serde_json::Value> {
    let t0 = std::time::Instant::now();
    let base = sc.path.parent().unwrap_or(Path::new("."));
    let specs = study_perturbations(sc)?;
    let mut lambdas = sc.study.sweep_lambda.clone();
    if !lambdas.contains(&sc.lambda) {
        lambdas.push(sc.lambda);
    }
    let solved = solve(sc, &lambdas, &out.join("solve"), true, quiet)?;
    let main_dir = out.join("solve").join(format!("lambda_{}", sc.lambda));
    let sim = simulate(
        sc,
        Some(&main_dir.join("policy.npz")),
        sc.study.trajectories,
        sc.study.steps,
        &out.join("simulate"),
    )?;
    let inferred = infer(
        &out.join("simulate").join("demonstrations.npz"),
        Some(sc.lambda),
        &out.join("infer"),
    )?;
    let model = if inferred.methods.iter().any(|m| m.model == DEFAULT_MODEL) {
        DEFAULT_MODEL
    } else {
        "ml"
    };
    let mut predictions = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let p = predict(
            sc,
            &out.join("infer").join("reward.npz"),
            s,
            model,
            base,
            &out.join("predict").join(format!("{i}")),
        )?;
        predictions.push(p);
    }
    let mut warnings: Vec<String> = solved.iter().flat_map(|r| r.warnings.clone()).collect();
    warnings.extend(inferred.methods.iter().flat_map(|m| m.warnings.clone()));
    warnings.extend(predictions.iter().flat_map(|p| p.warnings.clone()));
    let summary = serde_json::json!({
        "scenario": sc.name,
        "world": "maze",
        "output": crate::files::outdir::final_path(&out).display().to_string(),
        "seconds": t0.elapsed().as_secs_f64(),
        "solve": solved,
        "simulate": sim,
        "infer": inferred,
        "predict": predictions,
        "warnings": warnings,
    });
    write_json(&out.join("summary.json"), &summary)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::sparse;

    #[test]
    fn the_sparse_map_keeps_only_cells_that_stand_out() {
        let mut r: Vec<f64> = (0..20).map(|i| -0.03 + 0.001 * ((i * 7) % 5) as f64).collect();
        r[3] = 0.9;
        r[11] = f64::NAN;
        let mut visited = vec![true; 20];
        visited[19] = false;
        r[19] = 5.0; // unvisited: no evidence, whatever its value
        let (map, kept) = sparse(&r, &visited);
        assert_eq!(kept, vec![3]);
        for (s, v) in map.iter().enumerate() {
            if s == 3 {
                assert!((v - (0.9 - (-0.028))).abs() < 1e-12, "{v}");
            } else {
                assert_eq!(*v, 0.0, "cell {s}");
            }
        }
        // A flat map keeps nothing.
        let (map, kept) = sparse(&[0.1; 6], &[true; 6]);
        assert!(kept.is_empty() && map.iter().all(|v| *v == 0.0));
    }
}
