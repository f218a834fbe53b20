//! The control plane's side of learning: from each tick's reward and the
//! acting agents' reported log-ratios it forms the net reward
//! `ř_t = r_t − λ Σ_acting log(π/p)`, keeps the baseline ĝ (running average
//! of ř), runs the critic V̂ (actor–critic) and integrates the broadcast
//! signal `ř_t − ĝ` or `δ_t = ř_t − ĝ + V̂(s_{t+1}) − V̂(s_t)`.
//!
//! The runtime replays the teacher on every tick thread from identical
//! inputs, so every replica holds the same numbers bit for bit (the same
//! replication as the clock and the environment).

use super::Rule;
use crate::agents::Broadcast;
use serde::{Deserialize, Serialize};

/// The critic's representation of V̂.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CriticKind {
    /// One value per global state `s = x·2ⁿ + σ` (n ≤ [`MAX_TABULAR_CRITIC`]).
    Tabular,
    /// Linear in one-hot features of (input, spike count): `X·(n+1)` values.
    Counts,
}

/// Largest network with a tabular critic (2ⁿ values per input).
pub const MAX_TABULAR_CRITIC: usize = 24;

impl CriticKind {
    pub fn name(self) -> &'static str {
        match self {
            CriticKind::Tabular => "tabular",
            CriticKind::Counts => "counts",
        }
    }

    /// The default for a network: tabular while the global state space is
    /// at most 2²⁰ states, else counts.
    pub fn default_for(n: usize, inputs: usize) -> Self {
        if n <= 20 && inputs << n <= 1 << 20 {
            CriticKind::Tabular
        } else {
            CriticKind::Counts
        }
    }
}

/// V̂ over the global state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Critic {
    pub kind: CriticKind,
    pub n: usize,
    pub values: Vec<f64>,
}

impl Critic {
    pub fn new(kind: CriticKind, n: usize, inputs: usize) -> Self {
        let len = match kind {
            CriticKind::Tabular => {
                assert!(n <= MAX_TABULAR_CRITIC, "tabular critic for {n} neurons");
                inputs << n
            }
            CriticKind::Counts => inputs * (n + 1),
        };
        Critic {
            kind,
            n,
            values: vec![0.0; len],
        }
    }

    /// Where the state (x, σ) with `count` spikes lives in `values`.
    #[inline]
    pub fn index(&self, x: usize, frame: &[u64], count: usize) -> usize {
        match self.kind {
            CriticKind::Tabular => (x << self.n) | frame[0] as usize,
            CriticKind::Counts => x * (self.n + 1) + count,
        }
    }
}

/// The teacher's fixed settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeacherConfig {
    pub rule: Rule,
    pub lambda: f64,
    /// The signal carries the reward only; agents charge their own cost.
    pub own_cost: bool,
    /// η₀ of the actors.
    pub rate: f64,
    /// η_t = η₀/(1 + t/τ) (and the critic's rate likewise); `None`: constant.
    pub decay_ticks: Option<f64>,
    pub baseline_rate: f64,
    pub critic_rate: f64,
}

impl TeacherConfig {
    /// The schedule factor 1/(1 + t/τ).
    #[inline]
    pub fn schedule(&self, t: u64) -> f64 {
        match self.decay_ticks {
            Some(tau) => 1.0 / (1.0 + t as f64 / tau),
            None => 1.0,
        }
    }
}

/// The control plane's learning state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Teacher {
    pub config: TeacherConfig,
    /// ĝ, the running average of ř.
    pub baseline: f64,
    /// `Σ_τ η_τ · signal_τ` over the ticks so far.
    pub cumulative: f64,
    pub critic: Option<Critic>,
    /// The critic's index of the current state s_t.
    current: usize,
}

impl Teacher {
    /// A teacher whose critic (actor–critic only) is `critic`.
    pub fn new(config: TeacherConfig, critic: Option<Critic>) -> Self {
        let critic = if config.rule == Rule::ActorCritic { critic } else { None };
        Teacher {
            config,
            baseline: 0.0,
            cumulative: 0.0,
            critic,
            current: 0,
        }
    }

    /// What agents acting at tick `t` receive.
    #[inline]
    pub fn broadcast(&self, t: u64) -> Broadcast {
        Broadcast {
            tick: t,
            cumulative: self.cumulative,
            eta: self.config.rate * self.config.schedule(t),
            lambda: self.config.lambda,
            own_cost: self.config.own_cost,
        }
    }

    /// Locate the current state (at the start of every run segment).
    pub fn start(&mut self, x: usize, frame: &[u64], count: usize) {
        if let Some(c) = &self.critic {
            self.current = c.index(x, frame, count);
        }
    }

    /// The end of tick t: reward `r_t`, the acting agents' summed log-ratios
    /// `info`, and the next state (x_{t+1}, σ_{t+1}).
    #[inline]
    pub fn step(&mut self, t: u64, reward: f64, info: f64, x: usize, frame: &[u64], count: usize) {
        let cfg = &self.config;
        let net = if cfg.own_cost {
            reward
        } else {
            reward - cfg.lambda * info
        };
        let schedule = cfg.schedule(t);
        let mut signal = net - self.baseline;
        if let Some(c) = &mut self.critic {
            let next = c.index(x, frame, count);
            signal += c.values[next] - c.values[self.current];
            c.values[self.current] += cfg.critic_rate * schedule * signal;
            self.current = next;
        }
        self.baseline += cfg.baseline_rate * (net - self.baseline);
        self.cumulative += cfg.rate * schedule * signal;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rule: Rule) -> TeacherConfig {
        TeacherConfig {
            rule,
            lambda: 0.5,
            own_cost: false,
            rate: 0.1,
            decay_ticks: None,
            baseline_rate: 0.5,
            critic_rate: 1.0,
        }
    }

    #[test]
    fn reinforce_integrates_net_reward_minus_baseline() {
        let mut t = Teacher::new(config(Rule::Reinforce), Some(Critic::new(CriticKind::Counts, 2, 1)));
        assert!(t.critic.is_none(), "REINFORCE has no critic");
        t.step(0, 1.0, 0.4, 0, &[0], 0); // ř = 0.8, ĝ = 0 → signal 0.8
        assert!((t.cumulative - 0.08).abs() < 1e-15);
        assert!((t.baseline - 0.4).abs() < 1e-15);
        t.step(1, 0.0, 0.0, 0, &[0], 0); // ř = 0, signal −0.4
        assert!((t.cumulative - 0.04).abs() < 1e-15);
    }

    #[test]
    fn own_cost_leaves_the_cost_out_of_the_broadcast() {
        let mut cfg = config(Rule::Reinforce);
        cfg.own_cost = true;
        let mut t = Teacher::new(cfg, None);
        t.step(0, 1.0, 0.4, 0, &[0], 0); // signal = r − ĝ = 1, whatever the cost
        assert!((t.cumulative - 0.1).abs() < 1e-15);
        assert!(t.broadcast(1).own_cost);
    }

    #[test]
    fn actor_critic_broadcasts_the_td_error() {
        let mut t = Teacher::new(config(Rule::ActorCritic), Some(Critic::new(CriticKind::Counts, 2, 1)));
        t.critic.as_mut().unwrap().values = vec![0.0, 2.0, 5.0];
        t.start(0, &[0b01], 1);
        // ř = 1, ĝ = 0, V̂(count 2) − V̂(count 1) = 3 → δ = 4
        t.step(0, 1.0, 0.0, 0, &[0b11], 2);
        assert!((t.cumulative - 0.4).abs() < 1e-15);
        // critic rate 1: V̂(count 1) += δ
        assert!((t.critic.as_ref().unwrap().values[1] - 6.0).abs() < 1e-15);
    }
}
