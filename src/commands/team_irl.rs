//! Teams of maze walkers recorded, inverted and predicted (theory §5–§7,
//! many agents): `simulate` records demonstrations of a team (the exact
//! optimum of `marlin solve`, or untrained walkers) on the actor runtime;
//! `infer` recovers the shared reward over joint states from them
//! ([`crate::infer::team`]) and scores it against the reward the map and
//! the team goal imply; `predict` re-solves the team with the inferred
//! reward under a new λ and compares the prediction with the truth and
//! with the naive (unchanged) policies.
//!
//! Inputs are validated before anything is written; outputs are written
//! atomically.

use super::maze::{MazeSimulated, marks};
use super::{BadInput, draw};
use crate::files::{Npz, formats, write_json};
use crate::infer::correlation;
use crate::infer::team::{TeamCounts, invert};
use crate::learn::walkers::{WalkerLearning, WalkerTeam, WalkerView};
use crate::maze::{ACTIONS, Maze, joint_cell, joint_cells};
use crate::record::demos::{self, DemoMeta};
use crate::record::team_demos::{self, TeamDemoMeta, TeamDemonstrations};
use crate::report::{self, MapScale};
use crate::runtime::walkers::{self, WalkerTick};
use crate::scenario::MazeScenario;
use crate::solver::mdp::ActionPrior;
use anyhow::Result;
use ndarray::{Array0, Array1, Array2, Array3};
use serde::Serialize;
use std::path::Path;

/// A team policy file (`team_policy.npz` of `marlin solve`): each walker's
/// policy over the joint states, their marginals and λ.
struct TeamPolicy {
    pi: Vec<f64>,
    priors: Vec<Vec<f64>>,
    lambda: Option<f64>,
}

fn read_team_policy(
    path: &Path,
    sc: &MazeScenario,
    joint_states: usize,
    agents: usize,
) -> Result<TeamPolicy, BadInput> {
    use super::params::{self, MazeParams};
    let bad = |m: String| BadInput(format!("{}: {m}", path.display()));
    let solve_with = format!("marlin solve {}", sc.path.display());
    let (mut npz, sealed) = params::open::<MazeParams>(path, &[formats::TEAM_POLICY], &solve_with).map_err(bad)?;
    match &sealed {
        Some(p) => params::check(path, p, &sc.path, &MazeParams::team(sc), &solve_with)?,
        None => params::unchecked(path),
    }
    let na = ACTIONS.len();
    let pi: Array3<f64> = npz
        .by_name("pi")
        .map_err(|e| bad(format!("no float64 array `pi` [joint states, walkers, 5] ({e})")))?;
    if pi.dim() != (joint_states, agents, na) {
        return Err(bad(format!(
            "`pi` has shape {:?}; this team needs [{joint_states}, {agents}, {na}] (joint states × walkers × N, E, S, W, stay)",
            pi.shape()
        )));
    }
    let pi: Vec<f64> = pi.iter().copied().collect();
    for (i, row) in pi.chunks(na).enumerate() {
        let sum: f64 = row.iter().sum();
        if row.iter().any(|p| !(0.0..=1.0).contains(p)) || (sum - 1.0).abs() > 1e-6 {
            return Err(bad(format!(
                "`pi`[{}, {}] is not a distribution over the 5 moves (sums to {sum}); allowed: entries in [0, 1] \
                 summing to 1",
                i / agents,
                i % agents
            )));
        }
    }
    let rho: Array1<f64> = npz
        .by_name("rho")
        .map_err(|e| bad(format!("no float64 array `rho` [joint states] ({e})")))?;
    if rho.len() != joint_states {
        return Err(bad(format!("`rho` has {} entries; allowed: {joint_states}", rho.len())));
    }
    let total: f64 = rho.sum();
    if let Some((s, v)) = rho.iter().enumerate().find(|(_, v)| !(v.is_finite() && **v >= 0.0)) {
        return Err(bad(format!(
            "`rho`[{s}] = {v}; allowed: a visit distribution (entries ≥ 0 summing to 1)"
        )));
    }
    if (total - 1.0).abs() > 1e-6 {
        return Err(bad(format!(
            "`rho` sums to {total}; allowed: a visit distribution (entries ≥ 0 summing to 1)"
        )));
    }
    // Each walker's marginal Σ_s ρ(s) π_k(·|s): what the mutual-information cost measures against.
    let priors = (0..agents)
        .map(|k| {
            (0..na)
                .map(|a| {
                    (0..joint_states)
                        .map(|s| rho[s] * pi[(s * agents + k) * na + a])
                        .sum::<f64>()
                        .max(1e-300)
                })
                .collect()
        })
        .collect();
    let lambda: Option<Array0<f64>> = npz.optional("lambda").map_err(|e| BadInput(e.0))?;
    let lambda = lambda.map(|l| l.into_scalar()).filter(|l| l.is_finite() && *l > 0.0);
    Ok(TeamPolicy { pi, priors, lambda })
}

/// `marlin simulate` on a team maze: `trajectories` demonstrations of
/// `steps` steps by the walkers of `policy` (a team_policy.npz) or, when
/// None, untrained walkers (uniformly random moves), each run on the actor
/// runtime from start cells drawn by the walkers' own streams.
pub fn simulate(
    sc: &MazeScenario,
    policy: Option<&Path>,
    trajectories: usize,
    steps: usize,
    out: &Path,
) -> Result<MazeSimulated> {
    let spec = sc.team_spec();
    let (maze, m) = (&sc.maze, spec.agents);
    if trajectories == 0 || steps == 0 {
        return Err(BadInput("a team record needs at least 1 trajectory of at least 1 step".into()).into());
    }
    let demonstrator = match policy {
        Some(p) => {
            let t = sc.team_world(m, &spec).map_err(BadInput::from)?;
            Some(read_team_policy(p, sc, t.joint.states, m)?)
        }
        None => None,
    };
    let t0 = std::time::Instant::now();
    let mut rec = TeamDemonstrations::new(m, steps);
    let mut total = 0.0;
    for i in 0..trajectories {
        let learning = WalkerLearning {
            agents: m,
            view: WalkerView::Own,
            goal: spec.goal,
            lambda: sc.lambda,
            seed: crate::rng::mix(sc.seed, i as u64),
            fixed_prior: match &sc.cost {
                ActionPrior::Fixed(p) => Some(p.clone()),
                ActionPrior::Marginal => None,
            },
            ..WalkerLearning::default()
        };
        let mut team = match &demonstrator {
            Some(d) => WalkerTeam::following(maze, learning, &d.pi, &d.priors).map_err(BadInput)?,
            None => {
                let mut t = WalkerTeam::new(maze, learning).map_err(BadInput)?;
                t.teacher = None;
                t
            }
        };
        let (mut states, mut actions) = (Vec::with_capacity((steps + 1) * m), Vec::with_capacity(steps * m));
        let mut obs = |t: &WalkerTick| {
            states.extend_from_slice(t.cells);
            actions.extend_from_slice(t.actions);
        };
        let st = walkers::run(
            &mut team,
            crate::runtime::Layout::single(),
            steps as u64,
            &mut obs,
            None,
        )?;
        total += st.mean_reward * steps as f64;
        states.extend_from_slice(&team.cells);
        rec.states.push(states);
        rec.actions.push(actions);
    }
    let meta = TeamDemoMeta {
        demo: DemoMeta {
            format: team_demos::FORMAT.into(),
            format_version: team_demos::FORMAT_VERSION,
            scenario: sc.name.clone(),
            scenario_file: sc.path.display().to_string(),
            map: demos::map_rows(maze, &sc.goals),
            goals: sc.goals.clone(),
            slip: maze.slip,
            lambda: demonstrator.as_ref().and_then(|d| d.lambda),
            cost: match &sc.cost {
                ActionPrior::Fixed(_) => "fixed_prior".into(),
                ActionPrior::Marginal => "mutual_information".into(),
            },
            prior: match &sc.cost {
                ActionPrior::Fixed(p) => Some(p.clone()),
                ActionPrior::Marginal => None,
            },
            seed: sc.seed,
            trajectories,
            steps,
            policy: policy.map_or("untrained walkers (uniformly random moves)".into(), |p| {
                crate::files::outdir::recorded(p)
            }),
            actions: ACTIONS.iter().map(|a| a.to_string()).collect(),
        },
        agents: m,
        team_goal: spec.goal.name().into(),
    };
    team_demos::write(out, &meta, maze, spec.goal, &rec)?;
    for k in 0..m {
        let mut visits = vec![0.0; maze.states()];
        for tr in &rec.states {
            for t in 0..=steps {
                visits[tr[t * m + k]] += 1.0;
            }
        }
        let path: Vec<(usize, usize)> = (0..=steps).map(|t| maze.position(rec.states[0][t * m + k])).collect();
        draw(
            &out.join(format!("walker_{k}.svg")),
            report::maze_map(
                &format!(
                    "{}: walker {k} of {m}, visits in {}, and the first",
                    sc.name,
                    crate::text::count(trajectories as u64, "demonstration")
                ),
                &maze.grid(&visits),
                MapScale::Sequential,
                &marks(maze),
                Some(&path),
            ),
        )?;
    }
    Ok(MazeSimulated {
        trajectories,
        steps,
        mean_reward: total / (trajectories * steps) as f64,
        seconds: t0.elapsed().as_secs_f64(),
        out: out.to_path_buf(),
    })
}

/// What `infer` found in a team record (infer.json).
#[derive(Clone, Debug, Serialize)]
pub struct TeamInferSummary {
    pub record: String,
    pub agents: usize,
    pub team_goal: String,
    pub trajectories: usize,
    pub steps: usize,
    pub joint_states: usize,
    pub visited_states: usize,
    /// λ the reward is expressed with (the demonstrators' when known; else
    /// 1: the reward is r/λ).
    pub lambda: f64,
    pub lambda_known: bool,
    /// Each walker's plug-in I(S; A_k) from the record, bits per step
    /// (biased upwards by about (moves − 1)·(visited states)/(2·steps·ln 2)),
    /// and the same with that bias subtracted.
    pub info_bits: Vec<f64>,
    pub info_bits_corrected: Vec<f64>,
    /// Pearson correlation between the inferred reward and the reward the
    /// map and team goal imply, over the visited joint states.
    pub correlation_with_truth: Option<f64>,
    /// How many joint states the truth rewards, among the visited ones.
    pub rewarded_states: usize,
    /// Of the top `rewarded_states` inferred states, how many the truth rewards.
    pub top_rewarded: usize,
    /// The cells of the walkers in the inferred reward's best joint state,
    /// and whether the truth rewards it.
    pub argmax_cells: Vec<(usize, usize)>,
    pub argmax_is_rewarded: bool,
    pub equations: usize,
    pub residual_rms: f64,
    pub notes: Vec<String>,
    pub seconds: f64,
}

/// `marlin infer` on a team record: the inferred shared reward
/// (team_reward.npz), each walker's view of it (reward_walker_K.svg: the
/// visit-weighted mean over joint states with the walker on that cell)
/// and infer.json.
pub fn infer(path: &Path, lambda: Option<f64>, out: &Path) -> Result<TeamInferSummary> {
    let (meta, maze, goal, rec) = team_demos::read(path).map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
    let m = rec.agents;
    let team = maze
        .team(m, goal)
        .map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
    if let Some(l) = lambda
        && !(l.is_finite() && l > 0.0)
    {
        return Err(BadInput(format!("--lambda {l}; allowed: a positive number")).into());
    }
    let t0 = std::time::Instant::now();
    let (ns, js) = (maze.states(), team.joint.states);
    let joint = |cells: &[usize]| crate::maze::joint_index(cells, ns);
    let mut counts = TeamCounts::new(js, m, ACTIONS.len());
    for i in 0..rec.states.len() {
        for t in 0..rec.steps {
            counts.add(joint(rec.cells(i, t)), rec.moves(i, t));
        }
    }
    let lam = lambda.or(meta.demo.lambda);
    let inv = invert(&team, &counts, lam.unwrap_or(1.0), meta.demo.prior.as_deref())
        .map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
    let visited: Vec<usize> = (0..js).filter(|&s| counts.visits[s] > 0.0).collect();
    let pick = |v: &[f64]| visited.iter().map(|&s| v[s]).collect::<Vec<f64>>();
    let truth = &team.joint.reward;
    let c = correlation(&pick(&inv.reward), &pick(truth));
    let rewarded = visited.iter().filter(|&&s| truth[s] > 0.0).count();
    let mut order = visited.clone();
    order.sort_by(|&a, &b| inv.reward[b].total_cmp(&inv.reward[a]));
    let top = order[..rewarded].iter().filter(|&&s| truth[s] > 0.0).count();
    let best = order[0];
    let argmax_cells: Vec<(usize, usize)> = joint_cells(best, ns, m).into_iter().map(|s| maze.position(s)).collect();
    let (info_bits, info_bits_corrected) = (0..m)
        .map(|k| super::maze::demonstrated_information(&counts.agent(k)))
        .unzip();
    let unobserved = (0..m)
        .map(|k| counts.marginal(k).iter().filter(|&&p| p == 0.0).count())
        .sum::<usize>();
    let mut npz = Npz::new(formats::TEAM_REWARD);
    npz.add("reward", Array1::from(inv.reward.clone()))
        .add("h", Array1::from(inv.h.clone()))
        .add("visits", Array1::from(counts.visits.clone()))
        .add("truth", Array1::from(truth.clone()))
        .add(
            "cell",
            Array2::from_shape_fn((ns, 2), |(s, i)| {
                let (r, c) = maze.position(s);
                [r, c][i] as i64
            }),
        )
        .add("lambda", ndarray::arr0(lam.unwrap_or(1.0)))
        .add("lambda_known", ndarray::arr0(if lam.is_some() { 1.0 } else { 0.0 }))
        .add("unobserved_moves", ndarray::arr0(unobserved as f64));
    npz.write(&out.join("team_reward.npz"))?;
    for k in 0..m {
        let (mut acc, mut w) = (vec![0.0; ns], vec![0.0; ns]);
        for &s in &visited {
            let c = joint_cell(s, ns, k);
            acc[c] += counts.visits[s] * inv.reward[s];
            w[c] += counts.visits[s];
        }
        let view: Vec<f64> = (0..ns)
            .map(|c| if w[c] > 0.0 { acc[c] / w[c] } else { f64::NAN })
            .collect();
        draw(
            &out.join(format!("reward_walker_{k}.svg")),
            report::maze_map(
                &format!("inferred team reward seen from walker {k}'s cell (visit-weighted mean)"),
                &maze.grid(&view),
                MapScale::Diverging,
                &marks(&maze),
                None,
            ),
        )?;
    }
    let summary = TeamInferSummary {
        record: crate::files::outdir::recorded(&path),
        agents: m,
        team_goal: meta.team_goal.clone(),
        trajectories: rec.states.len(),
        steps: rec.steps,
        joint_states: js,
        visited_states: visited.len(),
        lambda: lam.unwrap_or(1.0),
        lambda_known: lam.is_some(),
        info_bits,
        info_bits_corrected,
        correlation_with_truth: c.is_finite().then_some(c),
        rewarded_states: rewarded,
        top_rewarded: top,
        argmax_cells,
        argmax_is_rewarded: truth[best] > 0.0,
        equations: inv.equations,
        residual_rms: inv.residual_rms,
        notes: inv.notes.clone(),
        seconds: t0.elapsed().as_secs_f64(),
    };
    write_json(&out.join("infer.json"), &summary)?;
    Ok(summary)
}

/// A team prediction, as written to prediction.json.
#[derive(Clone, Debug, Serialize)]
pub struct TeamPrediction {
    pub perturbation: String,
    pub agents: usize,
    /// Total variation between predicted and true policies per walker and
    /// joint state (states where the team finished skipped: moves do
    /// nothing there), averaged over walkers and the true perturbed visit
    /// density.
    pub tv_pred_truth: f64,
    /// The same for the naive prediction (the unperturbed optimum, joint
    /// state by joint state).
    pub tv_naive_truth: f64,
    /// The inferred reward re-solved in the unperturbed world against the
    /// true unperturbed optimum (how well the reward explains the record).
    pub tv_baseline: f64,
    /// Team reward per step of the true, predicted and naive policies in
    /// the perturbed world.
    pub team_rate_truth: f64,
    pub team_rate_pred: f64,
    pub team_rate_naive: f64,
    pub g_truth: f64,
    pub warnings: Vec<String>,
    pub seconds: f64,
}

/// Mean over walkers and `rho` of the per-state total variation between
/// two team policies (layout `[(s·m + k)·A + a]`), skipping finished states.
fn mean_team_tv(team: &crate::solver::team::Team, done: &[bool], rho: &[f64], a: &[f64], b: &[f64]) -> f64 {
    let (m, na) = (team.agents, team.actions);
    let (mut acc, mut w) = (0.0, 0.0);
    for s in 0..team.joint.states {
        if done[s] {
            continue;
        }
        for k in 0..m {
            let at = (s * m + k) * na;
            let tv: f64 = (0..na).map(|i| (a[at + i] - b[at + i]).abs()).sum::<f64>() / 2.0;
            acc += rho[s] * tv / m as f64;
        }
        w += rho[s];
    }
    if w > 0.0 { acc / w } else { 0.0 }
}

/// Read an inferred team reward (team_reward.npz of `infer`): the reward
/// per joint state, whether it is in units of λ, and how many (walker,
/// move) pairs the record never showed.
fn read_team_reward(path: &Path, joint_states: usize) -> Result<(Vec<f64>, bool, usize), BadInput> {
    let bad = |m: String| BadInput(format!("{}: {m}", path.display()));
    let mut npz = crate::files::open_npz(path, &[formats::TEAM_REWARD], 1, None).map_err(bad)?;
    let r: Array1<f64> = npz
        .by_name("reward")
        .map_err(|e| bad(format!("no float64 array `reward` [joint states] ({e})")))?;
    if r.len() != joint_states {
        return Err(bad(format!(
            "{} rewards but the scenario's team has {joint_states} joint states (was it inferred for another \
             team or maze?)",
            r.len()
        )));
    }
    let known: Array0<f64> = npz
        .by_name("lambda_known")
        .map_err(|e| bad(format!("no float64 scalar `lambda_known` ({e})")))?;
    let unobserved: Array0<f64> = npz
        .by_name("unobserved_moves")
        .map_err(|e| bad(format!("no float64 scalar `unobserved_moves` ({e})")))?;
    Ok((
        r.to_vec(),
        known.into_scalar() == 0.0,
        unobserved.into_scalar() as usize,
    ))
}

/// `marlin predict` on a team maze: the team optimum of the inferred reward
/// after `spec` (`lambda:L`, or `walls:FILE` relative to `base`) against the
/// truth (the true reward re-solved) and the naive prediction; truth.svg /
/// prediction.svg draw walker 0's visit density of each.
pub fn predict(sc: &MazeScenario, reward_file: &Path, spec: &str, base: &Path, out: &Path) -> Result<TeamPrediction> {
    use super::maze::MazePerturbation;
    use crate::solver::team::{self, Team};
    let t0 = std::time::Instant::now();
    let perturbation = MazePerturbation::parse(spec, base).map_err(BadInput)?;
    let tspec = sc.team_spec();
    let m = tspec.agents;
    let old_team = sc.team_world(m, &tspec).map_err(BadInput::from)?;
    let (inferred, in_lambda_units, unobserved) = read_team_reward(reward_file, old_team.joint.states)?;
    let scale = if in_lambda_units { sc.lambda } else { 1.0 };
    let old = &sc.maze;
    let (new, lambda) = match &perturbation {
        MazePerturbation::Lambda(l) => (old.clone(), *l),
        MazePerturbation::Walls(f) => {
            let map = sc.read_map(f).map_err(BadInput::from)?;
            crate::scenario::maze::check_same_size(f, &map, old).map_err(BadInput)?;
            (map, sc.lambda)
        }
    };
    let new_team = new.team(m, tspec.goal).map_err(|e| BadInput(format!("{spec}: {e}")))?;
    let mut warnings = Vec::new();
    if unobserved > 0 {
        warnings.push(format!(
            "the record never showed {unobserved} (walker, move) pairs: the inferred reward is weakly identified \
             and predictions from it are unreliable (compare tv_baseline with tv_naive_truth)"
        ));
    }
    let mut sorted: Vec<f64> = inferred.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0) * scale;
    let (ns_old, ns_new) = (old.states(), new.states());
    // The old joint state of new joint state j, when every walker's cell existed before.
    let old_joint = |j: usize| -> Option<usize> {
        (0..m).rev().try_fold(0usize, |acc, k| {
            let s_new = joint_cell(j, ns_new, k);
            old.state_of[new.cells[s_new]].map(|s| acc * ns_old + s)
        })
    };
    let mut filled = 0;
    let reward_new: Vec<f64> = (0..new_team.joint.states)
        .map(|j| match old_joint(j).map(|o| inferred[o]).filter(|v| v.is_finite()) {
            Some(v) => v * scale,
            None => {
                filled += 1;
                median
            }
        })
        .collect();
    if filled > 0 {
        warnings.push(format!(
            "{filled} joint states of the perturbed team have no inferred reward (a new cell, or never visited); \
             they get the median inferred reward {median:.4}"
        ));
    }
    let with = |t: &Team, r: Vec<f64>| {
        let mut t = t.clone();
        t.joint.reward = r;
        t
    };
    let solve = |t: &Team, l: f64| team::solve(t, l, &sc.cost, &sc.solver);
    let truth = solve(&new_team, lambda);
    let pred = solve(&with(&new_team, reward_new), lambda);
    let old_truth = solve(&old_team, sc.lambda);
    let old_filled: Vec<f64> = inferred
        .iter()
        .map(|v| if v.is_finite() { v * scale } else { median })
        .collect();
    let old_pred = solve(&with(&old_team, old_filled), sc.lambda);
    for w in truth.warnings.iter().chain(&pred.warnings) {
        warnings.push(format!("solver: {w}"));
    }
    let na = ACTIONS.len();
    let mut naive = Vec::with_capacity(new_team.joint.states * m * na);
    for j in 0..new_team.joint.states {
        let o = old_joint(j);
        for k in 0..m {
            match o {
                Some(o) => naive.extend_from_slice(&old_truth.pi[(o * m + k) * na..(o * m + k + 1) * na]),
                None => naive.extend_from_slice(&old_truth.eval.marginals[k]),
            }
        }
    }
    let done = |t: &Team, maze: &Maze| -> Vec<bool> {
        let ns = maze.states();
        (0..t.joint.states)
            .map(|j| tspec.goal.done(maze, &joint_cells(j, ns, m)))
            .collect()
    };
    let (done_new, done_old) = (done(&new_team, &new), done(&old_team, old));
    let rate = |pi: &[f64]| new_team.evaluate(pi, lambda, &sc.cost, &sc.solver).mean_reward;
    let p = TeamPrediction {
        perturbation: spec.to_string(),
        agents: m,
        tv_pred_truth: mean_team_tv(&new_team, &done_new, &truth.eval.rho, &pred.pi, &truth.pi),
        tv_naive_truth: mean_team_tv(&new_team, &done_new, &truth.eval.rho, &naive, &truth.pi),
        tv_baseline: mean_team_tv(&old_team, &done_old, &old_truth.eval.rho, &old_pred.pi, &old_truth.pi),
        team_rate_truth: truth.eval.mean_reward,
        team_rate_pred: rate(&pred.pi),
        team_rate_naive: rate(&naive),
        g_truth: truth.eval.g,
        warnings,
        seconds: t0.elapsed().as_secs_f64(),
    };
    for (name, sol) in [("truth", &truth), ("prediction", &pred)] {
        let density = crate::maze::walker_density(&sol.eval.rho, ns_new, 0);
        draw(
            &out.join(format!("{name}.svg")),
            report::maze_map(
                &format!("{spec}: {name}'s visit density of walker 0"),
                &new.grid(&density),
                MapScale::Sequential,
                &marks(&new),
                None,
            ),
        )?;
    }
    write_json(&out.join("prediction.json"), &p)?;
    Ok(p)
}
