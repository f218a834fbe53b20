//! Teams of maze walkers (theory §7, many agents): `solve` (the exact
//! product-policy optimum of a small team over the joint state), `train`
//! (decentralised learners, scored exactly against the optimum when the
//! joint world is small enough) and the study of `marlin run` (both, and
//! learned performance against team size). A maze without `[team]` is a
//! team of one walker, so `marlin train` works on every maze.
//!
//! Inputs are validated before anything is written; every output is
//! written atomically.

use super::params::{MazeParams, Sealed};
use super::{BadInput, draw};
use crate::files::write_json;
use crate::learn::walkers::{WalkerLearning, WalkerTeam, WalkerView};
use crate::maze::{ACTIONS, Maze};
use crate::report::{self, MapScale};
use crate::runtime::transport::Ranks;
use crate::runtime::{Layout, walkers};
use crate::scenario::MazeScenario;
use crate::scenario::maze::TeamSpec;
use crate::solver::mdp::ActionPrior;
use crate::solver::team::{self, Team, TeamSolution};
use anyhow::Result;
use ndarray::{Array1, Array2, Array3};
use serde::Serialize;
use std::path::Path;

const NATS_PER_BIT: f64 = std::f64::consts::LN_2;

/// The exact optimum, as written to team.json.
#[derive(Clone, Debug, Serialize)]
pub struct TeamSolveRecord {
    pub agents: usize,
    pub goal: &'static str,
    pub lambda: f64,
    pub g: f64,
    /// Team rewards per step.
    pub mean_reward: f64,
    /// Σ_k I(S; A_k), nats per step, and per walker in bits.
    pub info_nats: f64,
    pub info_bits_per_walker: f64,
    /// How often each walker takes each move (N, E, S, W, stay).
    pub marginals: Vec<Vec<f64>>,
    pub converged: bool,
    pub iterations: usize,
    pub value_sweeps: usize,
    pub start_g: Vec<f64>,
    pub seconds: f64,
    pub warnings: Vec<String>,
}

fn cost_of(sc: &MazeScenario) -> ActionPrior {
    sc.cost.clone()
}

/// `marlin solve` on a team maze: the exact optimum, each walker's visit
/// density, team_policy.npz and team.json in `out`.
pub fn solve(sc: &MazeScenario, out: &Path, quiet: bool) -> Result<(TeamSolveRecord, Team, TeamSolution)> {
    let spec = sc.team_spec();
    let t = sc.team_world(spec.agents, &spec).map_err(BadInput::from)?;
    let bar = crate::progress::Task::start("solving the team exactly", "", None, quiet);
    let t0 = std::time::Instant::now();
    let sol = team::solve(&t, sc.lambda, &cost_of(sc), &sc.solver);
    bar.finish();
    let seconds = t0.elapsed().as_secs_f64();
    for w in &sol.warnings {
        tracing::warn!("{w}");
    }
    let maze = &sc.maze;
    let (ns, m, na) = (maze.states(), spec.agents, ACTIONS.len());
    let total = t.joint.states;
    let params = Sealed::new(
        crate::files::formats::TEAM_POLICY,
        "marlin solve",
        &sc.name,
        MazeParams::team(sc),
    );
    let mut npz = params.archive();
    npz.add(
        "pi",
        Array3::from_shape_vec((total, m, na), sol.pi.clone()).expect("policy shape"),
    )
    .add("rho", Array1::from(sol.eval.rho.clone()))
    .add("h", Array1::from(sol.h.clone()))
    .add("reward", Array1::from(t.joint.reward.clone()))
    .add(
        "cell",
        Array2::from_shape_fn((ns, 2), |(s, i)| {
            let (r, c) = maze.position(s);
            [r, c][i] as i64
        }),
    )
    .add("lambda", ndarray::arr0(sc.lambda));
    params.write(npz, &out.join("team_policy.npz"))?;
    for k in 0..m {
        let density = crate::maze::walker_density(&sol.eval.rho, ns, k);
        draw(
            &out.join(format!("walker_{k}.svg")),
            report::maze_map(
                &format!("{}: walker {k} of {m}, visit density, λ = {}", sc.name, sc.lambda),
                &maze.grid(&density),
                MapScale::Sequential,
                &goal_marks(maze),
                None,
            ),
        )?;
    }
    let record = TeamSolveRecord {
        agents: m,
        goal: spec.goal.name(),
        lambda: sc.lambda,
        g: sol.eval.g,
        mean_reward: sol.eval.mean_reward,
        info_nats: sol.eval.info_nats,
        info_bits_per_walker: sol.eval.info_nats / m as f64 / NATS_PER_BIT,
        marginals: sol.eval.marginals.clone(),
        converged: sol.converged,
        iterations: sol.iterations,
        value_sweeps: sol.value_sweeps,
        start_g: sol.start_g.clone(),
        seconds,
        warnings: sol.warnings.clone(),
    };
    write_json(&out.join("team.json"), &record)?;
    Ok((record, t, sol))
}

fn goal_marks(maze: &Maze) -> Vec<(usize, usize, bool)> {
    maze.goals
        .iter()
        .map(|g| (g.0 / maze.width, g.0 % maze.width, true))
        .collect()
}

/// One checkpoint of team learning.
#[derive(Clone, Debug, Serialize)]
pub struct TeamCheckpoint {
    pub tick: u64,
    /// Over the ticks since the previous checkpoint.
    pub running_g: f64,
    pub mean_reward: f64,
    /// Exact g of the learned policies (when the joint world is tabulable).
    pub exact_g: Option<f64>,
    pub g_over_optimum: Option<f64>,
}

/// A learning run, as written to learning.json.
#[derive(Clone, Debug, Serialize)]
pub struct TeamTrainRecord {
    pub agents: usize,
    pub view: &'static str,
    pub rule: &'static str,
    pub ticks: u64,
    pub seed: u64,
    pub g_optimum: Option<f64>,
    pub checkpoints: Vec<TeamCheckpoint>,
    /// The last checkpoint's numbers.
    pub running_g: f64,
    pub mean_reward: f64,
    pub exact_g: Option<f64>,
    pub g_over_optimum: Option<f64>,
    pub seconds: f64,
}

/// Checkpoints per learning run.
const CHECKPOINTS: u64 = 20;

/// Train `agents` walkers with `view`; score them exactly against
/// `optimum` = (joint world, g*) when given.
pub fn train(
    sc: &MazeScenario,
    agents: usize,
    view: WalkerView,
    optimum: Option<(&Team, f64)>,
    placement: Placement,
    out: &Path,
    quiet: bool,
) -> Result<TeamTrainRecord> {
    let Placement { layout, ranks } = placement;
    let spec = sc.team_spec();
    if let Some(r) = ranks {
        walkers::check_ranks(agents, r.size()).map_err(|e| BadInput(format!("{}: {e}", sc.path.display())))?;
    }
    // Under MPI every rank runs its block of walkers; rank 0 writes.
    let writes = ranks.is_none_or(|r| r.rank() == 0);
    let quiet = quiet || !writes;
    let learning = WalkerLearning {
        agents,
        view,
        topology: spec
            .topology
            .as_ref()
            .filter(|_| view == WalkerView::Topology)
            .map(|t| crate::topology::Topology::build(t, agents, sc.seed)),
        goal: spec.goal,
        lambda: sc.lambda,
        critic: spec.critic,
        ticks: spec.ticks,
        learning_rate: spec.learning_rate,
        fixed_prior: match &sc.cost {
            ActionPrior::Fixed(p) => Some(p.clone()),
            ActionPrior::Marginal => None,
        },
        seed: sc.seed,
        ..WalkerLearning::default()
    };
    let mut learners = WalkerTeam::new(&sc.maze, learning.clone()).map_err(BadInput)?;
    let bar = crate::progress::Task::start("learning", "steps", Some(spec.ticks), quiet);
    let t0 = std::time::Instant::now();
    let mut checkpoints = Vec::new();
    let block = (spec.ticks / CHECKPOINTS).max(1);
    let layout = layout.unwrap_or_else(|| walkers::layout_for(agents, None, ranks));
    while learners.tick < spec.ticks {
        let todo = block.min(spec.ticks - learners.tick);
        let st = walkers::run(&mut learners, layout, todo, &mut |_: &walkers::WalkerTick| {}, ranks)?;
        share_walkers(&mut learners, ranks);
        let exact = optimum.map(|(t, gs)| {
            let e = t.evaluate(&learners.joint_policy(), sc.lambda, &sc.cost, &sc.solver);
            (e.g, e.g / gs)
        });
        checkpoints.push(TeamCheckpoint {
            tick: learners.tick,
            running_g: st.g,
            mean_reward: st.mean_reward,
            exact_g: exact.map(|e| e.0),
            g_over_optimum: exact.map(|e| e.1),
        });
        bar.set_position(learners.tick);
    }
    bar.finish();
    let seconds = t0.elapsed().as_secs_f64();
    let na = ACTIONS.len();
    let last = checkpoints.last().cloned().expect("at least one checkpoint");
    let record = TeamTrainRecord {
        agents,
        view: view.name(),
        rule: if spec.critic { "actor_critic" } else { "reinforce" },
        ticks: spec.ticks,
        seed: sc.seed,
        g_optimum: optimum.map(|o| o.1),
        running_g: last.running_g,
        mean_reward: last.mean_reward,
        exact_g: last.exact_g,
        g_over_optimum: last.g_over_optimum,
        checkpoints,
        seconds,
    };
    if !writes {
        return Ok(record);
    }
    // Walkers of a topology may see different numbers of partners: their
    // tables are padded with NaN to the largest, and `rows` says how many
    // are theirs.
    let rows: Vec<usize> = learners.walkers.iter().map(|w| w.logits.len() / na).collect();
    let most = rows.iter().copied().max().unwrap_or(0);
    let params = Sealed::new(
        crate::files::formats::TEAM_LEARNED_POLICY,
        "marlin train",
        &sc.name,
        MazeParams {
            agents: Some(agents),
            view: Some(view.name().into()),
            ..MazeParams::team(sc)
        },
    );
    let mut npz = params.archive();
    npz.add(
        "logits",
        Array3::from_shape_fn((agents, most, na), |(k, o, a)| {
            learners.walkers[k].logits.get(o * na + a).copied().unwrap_or(f64::NAN)
        }),
    )
    .add("rows", Array1::from_iter(rows.iter().map(|&r| r as i64)))
    .add(
        "prior",
        Array2::from_shape_fn((agents, na), |(k, a)| learners.walkers[k].prior[a]),
    );
    params.write(npz, &out.join("learned_policy.npz"))?;
    let series = vec![
        (
            "running g (per stretch)".to_string(),
            record
                .checkpoints
                .iter()
                .map(|c| (c.tick as f64, c.running_g))
                .collect(),
        ),
        (
            "exact g of the learned policies".to_string(),
            record
                .checkpoints
                .iter()
                .map(|c| (c.tick as f64, c.exact_g.unwrap_or(f64::NAN)))
                .collect(),
        ),
    ];
    draw(
        &out.join("learning_curve.svg"),
        report::lines(
            &format!("{}: {agents} walker(s), view {}, learning", sc.name, view.name()),
            "steps",
            "g (reward − λ·information per step)",
            &series,
            optimum.map(|(_, g)| (g, "optimum g*")),
        ),
    )?;
    write_json(&out.join("learning.json"), &record)?;
    Ok(record)
}

/// `marlin train` on a maze: the scenario's team (or one walker), on
/// `layout` (default: one thread below 4096 walkers), scored against the
/// exact optimum when the joint world is small enough.
pub fn train_scenario(sc: &MazeScenario, placement: Placement, out: &Path, quiet: bool) -> Result<TeamTrainRecord> {
    let ranks = placement.ranks;
    let spec = sc.team_spec();
    if let Some(r) = ranks {
        walkers::check_ranks(spec.agents, r.size()).map_err(|e| BadInput(format!("{}: {e}", sc.path.display())))?;
    }
    let optimum = optimum(sc, spec.agents, &spec, quiet || ranks.is_some_and(|r| r.rank() > 0));
    train(
        sc,
        spec.agents,
        spec.view,
        optimum.as_ref().map(|(t, g)| (t, *g)),
        placement,
        out,
        quiet,
    )
}

/// Where a team's walkers run: the layout within this process (default:
/// [`walkers::layout_for`]) and, under MPI, the ranks.
#[derive(Clone, Copy, Default)]
pub struct Placement<'a> {
    pub layout: Option<Layout>,
    pub ranks: Option<&'a Ranks>,
}

/// After a distributed stretch every rank holds up-to-date tables only for
/// its own block of walkers: share every block's tables and marginals with
/// every rank (for exact scores and the written policy; the other walkers'
/// streams stay where they are run).
fn share_walkers(team: &mut WalkerTeam, ranks: Option<&Ranks>) {
    let Some(r) = ranks else { return };
    let m = team.spec.agents;
    let mine: Vec<u8> = team.walkers[walkers::rank_walkers(m, r.rank(), r.size())]
        .iter()
        .flat_map(|w| w.logits.iter().chain(&w.prior).flat_map(|x| x.to_le_bytes()))
        .collect();
    for (rank, bytes) in super::gather_bytes(ranks, mine).iter().enumerate() {
        let mut values = bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")));
        for k in walkers::rank_walkers(m, rank, r.size()) {
            let w = &mut team.walkers[k];
            for x in w.logits.iter_mut().chain(w.prior.iter_mut()) {
                *x = values.next().expect("every rank sends its walkers' tables");
            }
        }
    }
}

/// Largest joint world (joint states × joint moves) `train` solves to score
/// its learners: two walkers in mazes of up to 63 cells. Three walkers in a
/// 13-cell maze (2 197 × 125) took more than 10 minutes.
pub const SCORE_LIMIT: usize = 100_000;

/// The joint world and its exact g*, when it can be tabulated and solved
/// quickly ([`SCORE_LIMIT`]).
fn optimum(sc: &MazeScenario, agents: usize, spec: &TeamSpec, quiet: bool) -> Option<(Team, f64)> {
    let t = sc.team_world(agents, spec).ok()?;
    if t.joint.states * t.joint.actions > SCORE_LIMIT {
        crate::progress::note(
            quiet,
            &format!(
                "not scoring the learners exactly: the joint world of {agents} walkers has {} joint states × {} \
                 joint moves, above {SCORE_LIMIT} (too slow to solve)",
                t.joint.states, t.joint.actions
            ),
        );
        return None;
    }
    crate::progress::note(
        quiet,
        &format!("solving the {agents}-walker team exactly to score the learners"),
    );
    let g = team::solve(&t, sc.lambda, &cost_of(sc), &sc.solver).eval.g;
    Some((t, g))
}

/// `marlin run` on a team maze: the exact optimum, learners with the
/// scenario's view (and with their own cells only, when that differs),
/// and learned performance for each size of `team.sweep_agents`.
pub fn study(sc: &MazeScenario, out: &Path, quiet: bool) -> Result<serde_json::Value> {
    let spec = sc.team_spec();
    let t0 = std::time::Instant::now();
    let specs = super::maze::study_perturbations(sc)?;
    let base = sc.path.parent().unwrap_or(Path::new("."));
    let say = |m: &str| crate::progress::stage(quiet, m);
    say("solving the team exactly");
    let solved = match sc.team_world(spec.agents, &spec).map_err(BadInput::from) {
        Ok(_) => Some(solve(sc, &out.join("solve"), quiet)?),
        Err(e) => {
            say(&format!("no exact solve: {e}"));
            None
        }
    };
    // Inverse RL and prediction need the optimum as the demonstrator.
    let mut inverse = serde_json::Value::Null;
    if solved.is_some() {
        say(&format!(
            "recording {} of {} by the optimum",
            crate::text::count(sc.study.trajectories as u64, "demonstration"),
            crate::text::count(sc.study.steps as u64, "step")
        ));
        let sim = super::team_irl::simulate(
            sc,
            Some(&out.join("solve").join("team_policy.npz")),
            sc.study.trajectories,
            sc.study.steps,
            &out.join("simulate"),
        )?;
        say("inferring the team reward");
        let record = out.join("simulate").join("team_demonstrations.npz");
        let inferred = super::team_irl::infer(&record, None, &out.join("infer"))?;
        let mut predictions = Vec::new();
        for (i, p) in specs.iter().enumerate() {
            say(&format!("predicting {p}"));
            let reward = out.join("infer").join("team_reward.npz");
            let dir = out.join("predict").join(format!("{i}"));
            predictions.push(super::team_irl::predict(sc, &reward, p, base, &dir)?);
        }
        inverse = serde_json::json!({ "simulate": sim, "infer": inferred, "predict": predictions });
    }
    let optimum = solved.as_ref().map(|(r, t, _)| (t, r.g));
    let mut trained = Vec::new();
    let mut views = vec![spec.view];
    if spec.view == WalkerView::Joint {
        views.push(WalkerView::Own);
    }
    for view in views {
        say(&format!(
            "training {} that see {}",
            crate::text::count(spec.agents as u64, "walker"),
            view.name()
        ));
        let dir = out.join(format!("train_{}", view.name()));
        trained.push(train(
            sc,
            spec.agents,
            view,
            optimum,
            Placement::default(),
            &dir,
            quiet,
        )?);
    }
    let mut scaling = Vec::new();
    for &m in &spec.sweep_agents {
        say(&format!(
            "training {} (own view)",
            crate::text::count(m as u64, "walker")
        ));
        let dir = out.join(format!("scaling/agents_{m}"));
        scaling.push(train(sc, m, WalkerView::Own, None, Placement::default(), &dir, quiet)?);
    }
    if !scaling.is_empty() {
        let pts = |f: &dyn Fn(&TeamTrainRecord) -> f64| -> Vec<(f64, f64)> {
            scaling.iter().map(|r| (r.agents as f64, f(r))).collect()
        };
        draw(
            &out.join("scaling.svg"),
            report::lines(
                &format!("{}: learned team performance against team size", sc.name),
                "walkers",
                "per step",
                &[
                    ("team reward rate".to_string(), pts(&|r| r.mean_reward)),
                    ("g (running)".to_string(), pts(&|r| r.running_g)),
                ],
                None,
            ),
        )?;
    }
    let summary = serde_json::json!({
        "scenario": sc.name,
        "output": crate::files::outdir::final_path(&out).display().to_string(),
        "agents": spec.agents,
        "goal": spec.goal.name(),
        "lambda": sc.lambda,
        "solve": solved.as_ref().map(|s| &s.0),
        "inverse": inverse,
        "train": trained,
        "scaling": scaling,
        "seconds": t0.elapsed().as_secs_f64(),
        "warnings": solved.as_ref().map_or(&[][..], |s| &s.0.warnings[..]),
    });
    write_json(&out.join("summary.json"), &summary)?;
    Ok(summary)
}
