//! Decentralised learning for a team of maze walkers (theory §4 and §7):
//! every walker learns its own tabular policy over what it observes from
//! the broadcast signal alone, paying λ·log(π_k(a|o)/p̂_k(a)) per move
//! against its running marginal p̂_k.
//!
//! This module owns the walker as an agent — its table, its running
//! marginal, its RNG stream, how it decides, moves and learns — the
//! critic that forms the broadcast ([`WalkerTeacher`]) and what each walker
//! sees ([`Sight`]). [`WalkerTeam::run`] is the plain serial loop of one
//! team; `runtime::walkers` runs the same walkers as actors on shards,
//! threads and MPI ranks and gives the same numbers bit for bit.
//!
//! Per step t: each walker observes the cells its sight allows, draws its
//! move from its own stream, and moves (its own stream again: the slip, or
//! its restart cell when the team finished at t). The critic forms
//! ř = r − λ Σ_k log(π_k/p̂_k) (the sum in 2⁻³² fixed point, so it does not
//! depend on the order walkers report), the baseline ĝ and a tabular
//! critic's TD error δ = ř − ĝ + V̂(s') − V̂(s) (actor–critic) or ř − ĝ
//! (REINFORCE), and each walker steps its logits along η_t·δ·∇log π_k(a_k|o_k).
//! Results depend only on the seed. No I/O.

use crate::agents::{FIXED, to_fixed};
pub use crate::maze::joint_index;
use crate::maze::{ACTIONS, Maze, TeamGoal, joint_cell};
use crate::rng::{Domain, Stream, stream};
use crate::topology::Topology;
use rand::Rng;
use serde::Serialize;

/// What each walker observes besides its own cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WalkerView {
    /// Its own cell only.
    Own,
    /// Every walker's cell (the joint state).
    Joint,
    /// Its own cell and the cells of its partners in a topology.
    Topology,
}

impl WalkerView {
    pub fn name(self) -> &'static str {
        match self {
            WalkerView::Own => "own",
            WalkerView::Joint => "joint",
            WalkerView::Topology => "topology",
        }
    }
}

/// Largest table a walker or the critic keeps (entries).
pub const MAX_TABLE: usize = 1 << 24;

/// Who sees whom: the observation index of every walker.
#[derive(Clone, Debug, PartialEq)]
pub struct Sight {
    pub view: WalkerView,
    /// Cells of the maze.
    pub cells: usize,
    pub agents: usize,
    /// The walkers each walker sees (topology view; empty otherwise).
    partners: Vec<Vec<usize>>,
}

impl Sight {
    /// The sight of `agents` walkers in a maze of `cells` free cells; the
    /// topology view needs `topology` (over the walkers).
    pub fn new(view: WalkerView, cells: usize, agents: usize, topology: Option<&Topology>) -> Result<Sight, String> {
        let partners = match (view, topology) {
            (WalkerView::Topology, Some(t)) if t.n == agents => (0..agents)
                .map(|k| match t.all_to_all {
                    true => (0..agents).filter(|&p| p != k).collect(),
                    false => t.partners(k).iter().map(|&p| p as usize).collect(),
                })
                .collect(),
            (WalkerView::Topology, Some(t)) => {
                return Err(format!("a topology of {} agents for {agents} walkers", t.n));
            }
            (WalkerView::Topology, None) => return Err("view = \"topology\" needs a topology of the walkers".into()),
            _ => Vec::new(),
        };
        let sight = Sight {
            view,
            cells,
            agents,
            partners,
        };
        for k in 0..agents {
            if sight.rows(k).is_none_or(|o| o * ACTIONS.len() > MAX_TABLE) {
                let seen = sight.seen(k);
                return Err(format!(
                    "walker {k} sees {seen} walker(s) in a maze of {cells} cells: a table of {cells}^{seen} rows; \
                     allowed: at most {MAX_TABLE} entries — use view = \"own\" or a sparser topology"
                ));
            }
        }
        Ok(sight)
    }

    /// How many walkers' cells walker k observes (itself included).
    pub fn seen(&self, k: usize) -> usize {
        match self.view {
            WalkerView::Own => 1,
            WalkerView::Joint => self.agents,
            WalkerView::Topology => 1 + self.partners[k].len(),
        }
    }

    /// Rows of walker k's table; None on overflow.
    pub fn rows(&self, k: usize) -> Option<usize> {
        self.cells.checked_pow(self.seen(k) as u32)
    }

    /// Walker k's observation when the walkers stand at `cells`: its own
    /// cell; the joint index Σ_j s_j·S^j (joint view, the team solver's
    /// state); or s_k + S·Σ_i s_{p_i}·S^i over its partners p_i.
    #[inline]
    pub fn observe(&self, k: usize, cells: &[usize]) -> usize {
        match self.view {
            WalkerView::Own => cells[k],
            WalkerView::Joint => joint_index(cells, self.cells),
            WalkerView::Topology => {
                let rest = self.partners[k].iter().rev().fold(0, |o, &p| o * self.cells + cells[p]);
                cells[k] + self.cells * rest
            }
        }
    }
}

/// Knobs of team learning.
#[derive(Clone, Debug, Serialize)]
pub struct WalkerLearning {
    pub agents: usize,
    pub view: WalkerView,
    /// The walkers' topology (view = topology).
    #[serde(skip)]
    pub topology: Option<Topology>,
    pub goal: TeamGoal,
    pub lambda: f64,
    /// Actor–critic (true) or REINFORCE with the baseline only.
    pub critic: bool,
    pub ticks: u64,
    /// Actor step size η₀/(1 + t/τ).
    pub learning_rate: f64,
    pub decay_ticks: f64,
    pub critic_rate: f64,
    pub baseline_rate: f64,
    /// Rate of the running marginals p̂_k.
    pub prior_rate: f64,
    /// A fixed action prior (the fixed-prior coding cost: log π/p against
    /// it, no running marginal); None: the mutual-information cost.
    pub fixed_prior: Option<Vec<f64>>,
    pub seed: u64,
}

impl WalkerLearning {
    /// The rate at which walkers' marginals follow their policies: 0 for
    /// walkers that do not learn and under a fixed prior.
    pub fn marginal_rate(&self, learning: bool) -> f64 {
        if learning && self.fixed_prior.is_none() {
            self.prior_rate
        } else {
            0.0
        }
    }
}

impl Default for WalkerLearning {
    fn default() -> Self {
        WalkerLearning {
            agents: 2,
            view: WalkerView::Joint,
            topology: None,
            goal: TeamGoal::AllOnGoals,
            lambda: 0.2,
            critic: true,
            ticks: 2_000_000,
            learning_rate: 0.5,
            decay_ticks: 500_000.0,
            critic_rate: 0.1,
            baseline_rate: 1e-3,
            prior_rate: 1e-4,
            fixed_prior: None,
            seed: 1,
        }
    }
}

/// One walker: its policy table, running marginal, RNG stream and last
/// decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Walker {
    /// `logits[o·A + a]`; π(a|o) ∝ p̂(a)·exp(logit).
    pub logits: Vec<f64>,
    /// Running marginal p̂(a).
    pub prior: Vec<f64>,
    rng: Stream,
    /// The (observation, action) of its last move.
    last: (usize, usize),
}

impl Walker {
    /// Walker k of a run seeded `seed`, with a table of `rows` rows (uniform
    /// policy), and its start cell drawn from its own stream.
    pub fn new(maze: &Maze, rows: usize, seed: u64, k: usize) -> (Walker, usize) {
        let na = ACTIONS.len();
        let mut w = Walker {
            logits: vec![0.0; rows * na],
            prior: vec![1.0 / na as f64; na],
            rng: stream(seed, Domain::Agent, k as u64),
            last: (0, 0),
        };
        let cell = w.start(maze);
        (w, cell)
    }

    /// A walker that follows `pi[o·A + a]` (rows summing to 1) against the
    /// marginal `prior`: logits ln π − ln p̂ (π = 0 gives −[`crate::learn::MAX_LOGIT`]).
    pub fn following(&mut self, pi: &[f64], prior: &[f64]) {
        let na = ACTIONS.len();
        assert_eq!(pi.len(), self.logits.len(), "one policy row per observation");
        self.prior = prior.to_vec();
        for (i, l) in self.logits.iter_mut().enumerate() {
            *l = (pi[i].ln() - prior[i % na].ln()).clamp(-crate::learn::MAX_LOGIT, crate::learn::MAX_LOGIT);
        }
    }

    /// π(·|o) into `out`.
    pub fn policy(&self, o: usize, out: &mut [f64]) {
        let na = ACTIONS.len();
        let row = &self.logits[o * na..(o + 1) * na];
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let mut z = 0.0;
        for a in 0..na {
            out[a] = self.prior[a] * (row[a] - m).exp();
            z += out[a];
        }
        out.iter_mut().for_each(|p| *p /= z);
    }

    /// Draw a move for observation `o` from the walker's stream and let the
    /// running marginal follow π(·|o) at `prior_rate`; returns the move and
    /// its log-ratio log(π(a|o)/p̂(a)) (against p̂ before the update).
    #[inline]
    pub fn act(&mut self, o: usize, prior_rate: f64) -> (usize, f64) {
        let na = ACTIONS.len();
        let mut pi = [0.0; ACTIONS.len()];
        self.policy(o, &mut pi);
        let u: f64 = self.rng.random();
        let mut a = 0;
        let mut acc = pi[0];
        while u >= acc && a + 1 < na {
            a += 1;
            acc += pi[a];
        }
        let info = (pi[a] / self.prior[a]).ln();
        if prior_rate > 0.0 {
            for b in 0..na {
                self.prior[b] =
                    ((1.0 - prior_rate) * self.prior[b] + prior_rate * pi[b]).max(crate::learn::PRIOR_FLOOR);
            }
        }
        self.last = (o, a);
        (a, info)
    }

    /// Where the walker goes from state `s` after move `a`: a start cell
    /// (drawn from its stream) when the team finished, else the move's
    /// cell, replaced by a uniformly drawn move with the maze's slip
    /// probability (the law of [`Maze::move_row`]).
    #[inline]
    pub fn go(&mut self, maze: &Maze, s: usize, a: usize, done: bool) -> usize {
        if done {
            return self.start(maze);
        }
        let mut a = a;
        if maze.slip > 0.0 {
            let u: f64 = self.rng.random();
            if u < maze.slip {
                a = ((u / maze.slip * ACTIONS.len() as f64) as usize).min(ACTIONS.len() - 1);
            }
        }
        maze.state_of[maze.step(maze.cells[s], a)].expect("moves stay on free cells")
    }

    fn start(&mut self, maze: &Maze) -> usize {
        let c = maze.starts[self.rng.random_range(0..maze.starts.len())];
        maze.state_of[c].expect("start cells are free")
    }

    /// Step the logits of the last decision by `step`·∇log π(a|o).
    #[inline]
    pub fn learn(&mut self, step: f64) {
        let na = ACTIONS.len();
        let (o, a) = self.last;
        let mut pi = [0.0; ACTIONS.len()];
        self.policy(o, &mut pi);
        let row = &mut self.logits[o * na..(o + 1) * na];
        for b in 0..na {
            let grad = f64::from(u8::from(b == a)) - pi[b];
            row[b] = (row[b] + step * grad).clamp(-crate::learn::MAX_LOGIT, crate::learn::MAX_LOGIT);
        }
    }
}

/// What the team's critic tells apart.
#[derive(Clone, Copy, Debug, PartialEq)]
enum CriticKey {
    /// The joint state (when its table has at most [`MAX_TABLE`] entries).
    Joint,
    /// Which walkers stand on a goal (up to [`GOAL_SET_WALKERS`] walkers).
    OnGoals,
    /// How many walkers stand on a goal.
    CountOnGoals,
}

/// Most walkers whose set on goals the critic tells apart (2¹⁶ entries).
const GOAL_SET_WALKERS: usize = 16;

/// The learning control plane of a team: the critic V̂, the baseline ĝ and
/// the step size, replicated wherever walkers run (every thread and rank
/// computes the same numbers from the same inputs).
#[derive(Clone, Debug, PartialEq)]
pub struct WalkerTeacher {
    /// V̂ over `key`'s index of the walkers' cells.
    critic: Vec<f64>,
    key: CriticKey,
    pub g_hat: f64,
    use_critic: bool,
    critic_rate: f64,
    baseline_rate: f64,
    learning_rate: f64,
    decay_ticks: f64,
    lambda: f64,
}

impl WalkerTeacher {
    pub fn new(spec: &WalkerLearning, cells: usize) -> Self {
        let m = spec.agents;
        let (key, len) = match cells.checked_pow(m as u32).filter(|&o| o <= MAX_TABLE) {
            Some(len) => (CriticKey::Joint, len),
            None if m <= GOAL_SET_WALKERS => (CriticKey::OnGoals, 1 << m),
            None => (CriticKey::CountOnGoals, m + 1),
        };
        WalkerTeacher {
            critic: vec![0.0; len],
            key,
            g_hat: 0.0,
            use_critic: spec.critic,
            critic_rate: spec.critic_rate,
            baseline_rate: spec.baseline_rate,
            learning_rate: spec.learning_rate,
            decay_ticks: spec.decay_ticks,
            lambda: spec.lambda,
        }
    }

    fn key(&self, maze: &Maze, cells: &[usize]) -> usize {
        match self.key {
            CriticKey::Joint => joint_index(cells, maze.states()),
            CriticKey::OnGoals => cells
                .iter()
                .enumerate()
                .filter(|(_, s)| maze.is_goal(**s))
                .fold(0, |m, (k, _)| m | (1 << k)),
            CriticKey::CountOnGoals => cells.iter().filter(|s| maze.is_goal(**s)).count(),
        }
    }

    /// Tick `t` took the walkers from `before` to `after` with reward `r`
    /// and Σ_k log-ratios `info`: update the critic and the baseline and
    /// return the actors' step η_t·δ.
    pub fn step(&mut self, maze: &Maze, t: u64, r: f64, info: f64, before: &[usize], after: &[usize]) -> f64 {
        let r_net = r - self.lambda * info;
        let mut signal = r_net - self.g_hat;
        if self.use_critic {
            let (b, a) = (self.key(maze, before), self.key(maze, after));
            signal += self.critic[a] - self.critic[b];
            self.critic[b] += self.critic_rate * signal;
        }
        self.g_hat += self.baseline_rate * (r_net - self.g_hat);
        let eta = self.learning_rate / (1.0 + t as f64 / self.decay_ticks);
        eta * signal
    }
}

/// What [`WalkerTeam::run_recorded`] calls each step: (t, cells, moves, reward).
pub type StepRecord<'r> = dyn FnMut(u64, &[usize], &[usize], f64) + 'r;

/// Statistics of a stretch of learning.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stretch {
    pub ticks: u64,
    /// Mean reward per step (team successes per step for a unit reward).
    pub mean_reward: f64,
    /// Mean of Σ_k log(π_k/p̂_k) per step, nats.
    pub info_nats: f64,
    /// mean_reward − λ·info_nats, an estimate of g.
    pub g: f64,
}

impl Stretch {
    /// From the sums of a stretch of `ticks` steps.
    pub fn from_sums(ticks: u64, reward: f64, info: f64, lambda: f64) -> Self {
        let t = ticks.max(1) as f64;
        Stretch {
            ticks,
            mean_reward: reward / t,
            info_nats: info / t,
            g: (reward - lambda * info) / t,
        }
    }
}

/// A team of walkers in a maze: the world, the walkers, where they stand
/// and (when they learn) the teacher.
pub struct WalkerTeam<'a> {
    pub maze: &'a Maze,
    pub spec: WalkerLearning,
    pub sight: Sight,
    pub walkers: Vec<Walker>,
    /// The state index of every walker at tick `tick`.
    pub cells: Vec<usize>,
    /// None: the walkers follow fixed policies (no learning, fixed marginals).
    pub teacher: Option<WalkerTeacher>,
    pub tick: u64,
}

impl<'a> WalkerTeam<'a> {
    /// Learners with uniform policies at their start cells.
    pub fn new(maze: &'a Maze, spec: WalkerLearning) -> Result<WalkerTeam<'a>, String> {
        let ns = maze.states();
        let sight = Sight::new(spec.view, ns, spec.agents, spec.topology.as_ref())?;
        if let Some(p) = &spec.fixed_prior
            && (p.len() != ACTIONS.len()
                || p.iter().any(|x| x.is_nan() || *x <= 0.0)
                || (p.iter().sum::<f64>() - 1.0).abs() > 1e-9)
        {
            return Err(format!(
                "a fixed prior {p:?}; allowed: {} positive probabilities summing to 1",
                ACTIONS.len()
            ));
        }
        let (mut walkers, cells): (Vec<Walker>, Vec<usize>) = (0..spec.agents)
            .map(|k| Walker::new(maze, sight.rows(k).expect("checked by Sight::new"), spec.seed, k))
            .unzip();
        if let Some(p) = &spec.fixed_prior {
            walkers.iter_mut().for_each(|w| w.prior = p.clone());
        }
        Ok(WalkerTeam {
            maze,
            teacher: Some(WalkerTeacher::new(&spec, ns)),
            sight,
            cells,
            walkers,
            tick: 0,
            spec,
        })
    }

    /// Walkers that follow fixed per-walker policies over the joint state,
    /// `pi[(j·m + k)·A + a]` (the team solver's layout), against fixed
    /// marginals `priors[k]`: a demonstrator, not a learner.
    pub fn following(
        maze: &'a Maze,
        spec: WalkerLearning,
        pi: &[f64],
        priors: &[Vec<f64>],
    ) -> Result<WalkerTeam<'a>, String> {
        let spec = WalkerLearning {
            view: WalkerView::Joint,
            prior_rate: 0.0,
            ..spec
        };
        let mut team = WalkerTeam::new(maze, spec)?;
        let (m, na) = (team.spec.agents, ACTIONS.len());
        let joint = team.sight.rows(0).expect("checked");
        if pi.len() != joint * m * na || priors.len() != m {
            return Err(format!(
                "a team policy of {} numbers and {} marginals for {m} walkers over {joint} joint states",
                pi.len(),
                priors.len()
            ));
        }
        for k in 0..m {
            let own: Vec<f64> = (0..joint * na).map(|i| pi[((i / na) * m + k) * na + i % na]).collect();
            team.walkers[k].following(&own, &priors[k]);
        }
        team.teacher = None;
        Ok(team)
    }

    /// Run `ticks` steps in a plain loop (the reference the runtime's
    /// walker actors reproduce), calling `record(t, cells, actions, r)`
    /// for each; returns the stretch's statistics.
    pub fn run_recorded(&mut self, ticks: u64, record: &mut StepRecord) -> Stretch {
        let m = self.spec.agents;
        let prior_rate = self.spec.marginal_rate(self.teacher.is_some());
        let mut actions = vec![0usize; m];
        let mut next = vec![0usize; m];
        let (mut total_r, mut total_info) = (0.0, 0.0);
        for _ in 0..ticks {
            let r = self.spec.goal.reward(self.maze, &self.cells);
            let done = self.spec.goal.done(self.maze, &self.cells);
            let mut info = 0i64;
            for k in 0..m {
                let o = self.sight.observe(k, &self.cells);
                let w = &mut self.walkers[k];
                let (a, lr) = w.act(o, prior_rate);
                info += to_fixed(lr);
                actions[k] = a;
                next[k] = w.go(self.maze, self.cells[k], a, done);
            }
            let info = info as f64 / FIXED;
            record(self.tick, &self.cells, &actions, r);
            total_r += r;
            total_info += info;
            if let Some(teacher) = self.teacher.as_mut() {
                let step = teacher.step(self.maze, self.tick, r, info, &self.cells, &next);
                self.walkers.iter_mut().for_each(|w| w.learn(step));
            }
            std::mem::swap(&mut self.cells, &mut next);
            self.tick += 1;
        }
        Stretch::from_sums(ticks, total_r, total_info, self.spec.lambda)
    }

    /// [`WalkerTeam::run_recorded`] without a record.
    pub fn run(&mut self, ticks: u64) -> Stretch {
        self.run_recorded(ticks, &mut |_, _, _, _| {})
    }

    /// Every walker's policy over the joint states, `pi[(s·m + k)·A + a]`,
    /// in the layout of [`crate::solver::team::Team`] (for exact scoring;
    /// needs the joint state space to be tabulable).
    pub fn joint_policy(&self) -> Vec<f64> {
        let ns = self.maze.states();
        let m = self.spec.agents;
        let na = ACTIONS.len();
        let total = ns.pow(m as u32);
        let mut out = vec![0.0; total * m * na];
        let mut cells = vec![0; m];
        for j in 0..total {
            for (k, c) in cells.iter_mut().enumerate() {
                *c = joint_cell(j, ns, k);
            }
            for k in 0..m {
                let o = self.sight.observe(k, &cells);
                self.walkers[k].policy(o, &mut out[(j * m + k) * na..(j * m + k + 1) * na]);
            }
        }
        out
    }
}
