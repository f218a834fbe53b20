//! Decentralised learning for a team of maze walkers (THEORY §4 and §7):
//! every walker learns its own tabular policy over what it observes from
//! the broadcast signal alone, paying λ·log(π_k(a|o)/p̂_k(a)) per move
//! against its running marginal p̂_k.
//!
//! Per step: each walker draws its move from its own RNG stream; the
//! environment (its own stream: slips and resets) moves them; the teacher
//! forms ř = r − λ Σ_k log(π_k/p̂_k), the baseline ĝ and a tabular critic's
//! TD error δ = ř − ĝ + V̂(s') − V̂(s) (actor–critic) or ř − ĝ (REINFORCE),
//! and each walker steps its logits along δ·∇log π_k(a_k|o_k). A walker
//! sees its own cell (`Own`) or every walker's cell (`Joint`, the exact
//! solver's setting). Results depend only on the seed. No I/O.

use crate::maze::{ACTIONS, Maze, TeamGoal};
use crate::rng::{Domain, Stream, stream};
use rand::Rng;
use serde::Serialize;

/// What each walker observes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WalkerView {
    /// Its own cell only.
    Own,
    /// Every walker's cell (the joint state).
    Joint,
}

impl WalkerView {
    pub fn name(self) -> &'static str {
        match self {
            WalkerView::Own => "own",
            WalkerView::Joint => "joint",
        }
    }
}

/// Largest table a walker or the critic keeps (entries).
pub const MAX_TABLE: usize = 1 << 24;

/// Knobs of team learning.
#[derive(Clone, Debug, Serialize)]
pub struct WalkerLearning {
    pub agents: usize,
    pub view: WalkerView,
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
    pub seed: u64,
}

impl Default for WalkerLearning {
    fn default() -> Self {
        WalkerLearning {
            agents: 2,
            view: WalkerView::Joint,
            goal: TeamGoal::AllOnGoals,
            lambda: 0.2,
            critic: true,
            ticks: 2_000_000,
            learning_rate: 0.5,
            decay_ticks: 500_000.0,
            critic_rate: 0.1,
            baseline_rate: 1e-3,
            prior_rate: 1e-4,
            seed: 1,
        }
    }
}

/// One walker's learned policy.
#[derive(Clone, Debug)]
pub struct Walker {
    /// `logits[o·A + a]`.
    pub logits: Vec<f64>,
    /// Running marginal p̂(a).
    pub prior: Vec<f64>,
    rng: Stream,
}

impl Walker {
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
}

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

/// A team of learning walkers in a maze.
pub struct WalkerTeam<'a> {
    pub maze: &'a Maze,
    pub spec: WalkerLearning,
    pub walkers: Vec<Walker>,
    /// Critic V̂ over the joint state (or, when that is too large, over
    /// which walkers stand on a goal).
    critic: Vec<f64>,
    g_hat: f64,
    cells: Vec<usize>,
    env: Stream,
    pub tick: u64,
}

impl<'a> WalkerTeam<'a> {
    pub fn new(maze: &'a Maze, spec: WalkerLearning) -> Result<WalkerTeam<'a>, String> {
        let ns = maze.states();
        let na = ACTIONS.len();
        let obs = observations(ns, spec.agents, spec.view)
            .filter(|o| o * na <= MAX_TABLE)
            .ok_or_else(|| {
                format!(
                    "{} walkers that see the joint state of a maze of {ns} cells need tables of {ns}^{} rows; \
                     allowed: at most {MAX_TABLE} entries — use view = \"own\"",
                    spec.agents, spec.agents
                )
            })?;
        let critic_len = observations(ns, spec.agents, WalkerView::Joint)
            .filter(|&o| o <= MAX_TABLE)
            .unwrap_or(1 << spec.agents.min(24));
        let walkers = (0..spec.agents)
            .map(|k| Walker {
                logits: vec![0.0; obs * na],
                prior: vec![1.0 / na as f64; na],
                rng: stream(spec.seed, Domain::Agent, k as u64),
            })
            .collect();
        let mut env = stream(spec.seed, Domain::Environment, 0);
        let cells = (0..spec.agents).map(|_| start(maze, &mut env)).collect();
        Ok(WalkerTeam {
            maze,
            critic: vec![0.0; critic_len],
            g_hat: 0.0,
            cells,
            env,
            tick: 0,
            walkers,
            spec,
        })
    }

    fn observation(&self, k: usize) -> usize {
        match self.spec.view {
            WalkerView::Own => self.cells[k],
            WalkerView::Joint => joint_index(&self.cells, self.maze.states()),
        }
    }

    fn critic_key(&self, cells: &[usize]) -> usize {
        let ns = self.maze.states();
        if observations(ns, self.spec.agents, WalkerView::Joint).is_some_and(|o| o <= MAX_TABLE) {
            joint_index(cells, ns)
        } else {
            cells
                .iter()
                .enumerate()
                .filter(|(_, s)| self.maze.is_goal(**s))
                .fold(0, |m, (k, _)| m | (1 << k.min(23)))
        }
    }

    /// Learn for `ticks` steps; returns the stretch's statistics.
    pub fn run(&mut self, ticks: u64) -> Stretch {
        let na = ACTIONS.len();
        let m = self.spec.agents;
        let lambda = self.spec.lambda;
        let mut pi = vec![0.0; na];
        let mut actions = vec![0usize; m];
        let mut obs = vec![0usize; m];
        let (mut total_r, mut total_info) = (0.0, 0.0);
        for _ in 0..ticks {
            let r = self.spec.goal.reward(self.maze, &self.cells);
            let mut info = 0.0;
            for k in 0..m {
                obs[k] = self.observation(k);
                let w = &mut self.walkers[k];
                w.policy(obs[k], &mut pi);
                let u: f64 = w.rng.random();
                let mut a = 0;
                let mut acc = pi[0];
                while u >= acc && a + 1 < na {
                    a += 1;
                    acc += pi[a];
                }
                actions[k] = a;
                info += (pi[a] / w.prior[a]).ln();
                // The running marginal follows the expected action.
                let rate = self.spec.prior_rate;
                for b in 0..na {
                    w.prior[b] = ((1.0 - rate) * w.prior[b] + rate * pi[b]).max(crate::learn::PRIOR_FLOOR);
                }
            }
            let before = self.critic_key(&self.cells);
            // The environment moves the walkers (or resets them all).
            if self.spec.goal.done(self.maze, &self.cells) {
                for k in 0..m {
                    self.cells[k] = start(self.maze, &mut self.env);
                }
            } else {
                for k in 0..m {
                    let row = self.maze.move_row(self.cells[k], actions[k]);
                    self.cells[k] = draw(&row, &mut self.env);
                }
            }
            let r_net = r - lambda * info;
            total_r += r;
            total_info += info;
            let after = self.critic_key(&self.cells);
            let mut signal = r_net - self.g_hat;
            if self.spec.critic {
                signal += self.critic[after] - self.critic[before];
                self.critic[before] += self.spec.critic_rate * signal;
            }
            self.g_hat += self.spec.baseline_rate * (r_net - self.g_hat);
            let eta = self.spec.learning_rate / (1.0 + self.tick as f64 / self.spec.decay_ticks);
            for k in 0..m {
                let w = &mut self.walkers[k];
                w.policy(obs[k], &mut pi);
                let row = &mut w.logits[obs[k] * na..(obs[k] + 1) * na];
                for b in 0..na {
                    let grad = f64::from(u8::from(b == actions[k])) - pi[b];
                    row[b] = (row[b] + eta * signal * grad).clamp(-crate::learn::MAX_LOGIT, crate::learn::MAX_LOGIT);
                }
            }
            self.tick += 1;
        }
        let t = ticks.max(1) as f64;
        Stretch {
            ticks,
            mean_reward: total_r / t,
            info_nats: total_info / t,
            g: (total_r - lambda * total_info) / t,
        }
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
        let mut pi = vec![0.0; na];
        for j in 0..total {
            for k in 0..m {
                let o = match self.spec.view {
                    WalkerView::Joint => j,
                    WalkerView::Own => j / ns.pow(k as u32) % ns,
                };
                self.walkers[k].policy(o, &mut pi);
                out[(j * m + k) * na..(j * m + k + 1) * na].copy_from_slice(&pi);
            }
        }
        out
    }
}

/// Rows of a walker's table: `ns` or `ns^agents`; None on overflow.
fn observations(ns: usize, agents: usize, view: WalkerView) -> Option<usize> {
    match view {
        WalkerView::Own => Some(ns),
        WalkerView::Joint => ns.checked_pow(agents as u32),
    }
}

fn joint_index(cells: &[usize], ns: usize) -> usize {
    cells.iter().rev().fold(0, |j, &s| j * ns + s)
}

fn start(maze: &Maze, rng: &mut Stream) -> usize {
    let c = maze.starts[rng.random_range(0..maze.starts.len())];
    maze.state_of[c].expect("start cells are free")
}

fn draw(row: &[(usize, f64)], rng: &mut Stream) -> usize {
    let u: f64 = rng.random();
    let mut acc = 0.0;
    for &(s, p) in row {
        acc += p;
        if u < acc {
            return s;
        }
    }
    row.last().expect("a move row is not empty").0
}
