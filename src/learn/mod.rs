//! Decentralised learning (theory §4): every neuron learns its own policy
//! from what it observes and the broadcast signal — nothing else.
//!
//! Owns the agents' side of learning — parametrised policies (tabular over
//! the agent's observation, logistic with synaptic weights), eligibility
//! traces, the running estimate of each agent's marginal p_k — and, in
//! [`teacher`], the control plane's side: the net reward ř, the baseline ĝ,
//! the critic and the broadcast signal. The runtime executes both; this
//! module does no I/O and no threading.
//!
//! Depends on `agents` (the [`Agent`] trait and [`Broadcast`]) and `rng`.

pub mod decoder;
pub mod teacher;
pub mod walkers;

pub use teacher::{Critic, CriticKind, Teacher, TeacherConfig};

use crate::agents::{Agent, Broadcast, LogisticPolicy, Observation};
use crate::rng::Stream;
use serde::{Deserialize, Serialize};

/// Logits are kept within ±`MAX_LOGIT` (π within about 10⁻¹³ of 0 and 1),
/// so log-ratios stay finite.
pub const MAX_LOGIT: f64 = 30.0;
/// Running priors stay within [`PRIOR_FLOOR`, 1 − `PRIOR_FLOOR`].
pub const PRIOR_FLOOR: f64 = 1e-6;
/// Eligibility entries below this magnitude are dropped (tabular traces).
const TRACE_FLOOR: f64 = 1e-8;

/// Which signal drives the agents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Three-factor / REINFORCE: `ř_t − ĝ`.
    Reinforce,
    /// Actor–critic: the critic's TD error `δ_t = ř_t − ĝ + V̂(s_{t+1}) − V̂(s_t)`.
    ActorCritic,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::Reinforce => "reinforce",
            Rule::ActorCritic => "actor_critic",
        }
    }
}

/// How each agent parametrises its policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// One logit per observation ([`Observation::table_index`]).
    Tabular,
    /// `logit π(1|o) = b + u·x + Σ_j w_j σ_j`.
    Logistic,
}

impl PolicyKind {
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Tabular => "tabular",
            PolicyKind::Logistic => "logistic",
        }
    }
}

/// Everything a scenario says about learning (`[learning]`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LearningSpec {
    /// Rules to train with, one run each.
    pub rules: Vec<Rule>,
    /// Policy parametrisations, one run each (crossed with `rules`).
    pub policies: Vec<PolicyKind>,
    pub ticks: u64,
    /// Number of checkpoints (exact evaluations, saved policies) over the run.
    pub checkpoints: usize,
    /// η₀ for tabular policies.
    pub tabular_rate: f64,
    /// η₀ for logistic policies.
    pub logistic_rate: f64,
    /// η_t = η₀ / (1 + t/τ); `None` keeps η constant. Also scales the critic's rate.
    pub rate_decay_ticks: Option<f64>,
    /// γ_e of the eligibility traces (decays once per own action).
    pub trace_decay: f64,
    /// Rate of the running average ĝ of ř.
    pub baseline_rate: f64,
    /// Critic (actor–critic only); `None`: tabular when small, counts otherwise.
    pub critic: Option<CriticKind>,
    pub critic_rate: f64,
    /// Rate of each agent's running estimate of its marginal p_k (slower
    /// than the policy); ignored under a fixed prior.
    pub prior_rate: f64,
    /// Each agent charges only its own coding cost (a different objective).
    pub own_cost: bool,
    /// Reward the learners with an online decoder's log-posterior of an
    /// input feature under their own code ([`decoder`]), in place of the
    /// scenario's reward: the self-consistent code of theory §8.
    pub decoder: Option<decoder::DecoderSpec>,
}

impl Default for LearningSpec {
    fn default() -> Self {
        LearningSpec {
            rules: vec![Rule::ActorCritic],
            policies: vec![PolicyKind::Tabular, PolicyKind::Logistic],
            ticks: 5_000_000,
            checkpoints: 25,
            tabular_rate: 0.5,
            logistic_rate: 0.02,
            rate_decay_ticks: Some(1.0e6),
            trace_decay: 0.0,
            baseline_rate: 1e-3,
            critic: None,
            critic_rate: 0.1,
            prior_rate: 1e-4,
            own_cost: false,
            decoder: None,
        }
    }
}

/// A policy an agent can learn: a logit that is differentiable in its
/// parameters, with the eligibility trace kept beside the parameters.
pub trait Learnable: Send + Clone {
    /// `logit π(1|o)`.
    fn logit(&self, obs: &Observation) -> f64;
    /// `e ← γ·e + coeff·∇_θ logit(o)`.
    fn push_trace(&mut self, obs: &Observation, coeff: f64, gamma: f64);
    /// `θ ← θ + scale·e`.
    fn apply_trace(&mut self, scale: f64);
    /// `θ ← θ + coeff·∇_θ logit(o)` (an immediate, trace-free step).
    fn nudge(&mut self, obs: &Observation, coeff: f64);
}

/// One logit per observation, with a sparse trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TabularLogits {
    pub logits: Vec<f64>,
    trace: Vec<(usize, f64)>,
}

impl TabularLogits {
    /// All logits at `logit` (π = sigmoid(logit) everywhere).
    pub fn new(len: usize, logit: f64) -> Self {
        TabularLogits {
            logits: vec![logit; len],
            trace: Vec::new(),
        }
    }
}

impl Learnable for TabularLogits {
    #[inline]
    fn logit(&self, obs: &Observation) -> f64 {
        self.logits[obs.table_index()]
    }

    fn push_trace(&mut self, obs: &Observation, coeff: f64, gamma: f64) {
        if gamma == 0.0 {
            self.trace.clear();
        } else {
            self.trace.iter_mut().for_each(|e| e.1 *= gamma);
            self.trace.retain(|e| e.1.abs() >= TRACE_FLOOR);
        }
        let i = obs.table_index();
        match self.trace.iter_mut().find(|e| e.0 == i) {
            Some(e) => e.1 += coeff,
            None => self.trace.push((i, coeff)),
        }
    }

    #[inline]
    fn apply_trace(&mut self, scale: f64) {
        for &(i, e) in &self.trace {
            self.logits[i] = (self.logits[i] + scale * e).clamp(-MAX_LOGIT, MAX_LOGIT);
        }
    }

    fn nudge(&mut self, obs: &Observation, coeff: f64) {
        let i = obs.table_index();
        self.logits[i] = (self.logits[i] + coeff).clamp(-MAX_LOGIT, MAX_LOGIT);
    }
}

/// A logistic unit (bias, input weight, synapses) with a dense trace laid
/// out as `[bias, input_weight, weights...]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogisticLearner {
    pub unit: LogisticPolicy,
    trace: Vec<f64>,
}

impl LogisticLearner {
    /// A unit with bias `bias` and zero weights over `synapses` partners.
    pub fn new(synapses: usize, bias: f64) -> Self {
        LogisticLearner {
            unit: LogisticPolicy {
                bias,
                input_weight: 0.0,
                weights: vec![0.0; synapses],
            },
            trace: vec![0.0; synapses + 2],
        }
    }

    /// A unit with its eligibility trace laid out as `[bias, input_weight,
    /// weights...]` (as [`Self::trace`] returns it).
    ///
    /// # Panics
    /// When the trace's length is not the number of parameters.
    pub fn from_parts(unit: LogisticPolicy, trace: Vec<f64>) -> Self {
        assert_eq!(trace.len(), unit.weights.len() + 2, "one trace entry per parameter");
        LogisticLearner { unit, trace }
    }

    /// The eligibility trace, `[bias, input_weight, weights...]`.
    pub fn trace(&self) -> &[f64] {
        &self.trace
    }

    /// Calls `f(i, ∂logit/∂θ_i)` for every parameter with a non-zero
    /// derivative (θ laid out as the trace) of a unit with `synapses` weights.
    #[inline]
    fn gradient(synapses: usize, obs: &Observation, mut f: impl FnMut(usize, f64)) {
        f(0, 1.0);
        if let Some(u) = obs.input {
            f(1, u);
        }
        if obs.all_to_all {
            for j in 0..synapses {
                if j != obs.id && obs.spike(j) {
                    f(2 + j, 1.0);
                }
            }
        } else {
            for (b, &j) in obs.pre.iter().enumerate() {
                if obs.spike(j as usize) {
                    f(2 + b, 1.0);
                }
            }
        }
    }
}

impl Learnable for LogisticLearner {
    #[inline]
    fn logit(&self, obs: &Observation) -> f64 {
        self.unit.logit(obs)
    }

    fn push_trace(&mut self, obs: &Observation, coeff: f64, gamma: f64) {
        if gamma == 0.0 {
            self.trace.iter_mut().for_each(|e| *e = 0.0);
        } else {
            self.trace.iter_mut().for_each(|e| *e *= gamma);
        }
        let trace = &mut self.trace;
        Self::gradient(self.unit.weights.len(), obs, |i, d| trace[i] += coeff * d);
    }

    fn apply_trace(&mut self, scale: f64) {
        let u = &mut self.unit;
        u.bias += scale * self.trace[0];
        u.input_weight += scale * self.trace[1];
        for (w, e) in u.weights.iter_mut().zip(&self.trace[2..]) {
            *w += scale * e;
        }
    }

    fn nudge(&mut self, obs: &Observation, coeff: f64) {
        let unit = &mut self.unit;
        Self::gradient(unit.weights.len(), obs, |i, d| match i {
            0 => unit.bias += coeff * d,
            1 => unit.input_weight += coeff * d,
            _ => unit.weights[i - 2] += coeff * d,
        });
    }
}

/// A neuron that learns: its policy parameters `L`, its running prior, its
/// own RNG stream, and where it last caught up with the broadcast signal.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LearningNeuron<L: Learnable> {
    pub id: usize,
    pub params: L,
    /// p_k(1): the running marginal (mutual-information cost) or the fixed prior.
    pub prior: f64,
    /// Rate of the running prior; 0 keeps it fixed.
    pub prior_rate: f64,
    /// γ_e.
    pub trace_decay: f64,
    /// The broadcast's `cumulative` when this agent last caught up.
    pub caught_up: f64,
    pub rng: Stream,
}

impl<L: Learnable> LearningNeuron<L> {
    /// π(1|o) under the current parameters.
    #[inline]
    pub fn p_fire(&self, obs: &Observation) -> f64 {
        sigmoid(self.params.logit(obs))
    }
}

/// `1 / (1 + e^{−z})`.
#[inline]
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl<L: Learnable> Agent for LearningNeuron<L> {
    #[inline]
    fn fire_probability(&self, obs: &Observation) -> f64 {
        self.p_fire(obs)
    }
    #[inline]
    fn rng(&mut self) -> &mut Stream {
        &mut self.rng
    }
    #[inline]
    fn prior(&self) -> f64 {
        self.prior
    }
    #[inline]
    fn catch_up(&mut self, b: &Broadcast) {
        let d = b.cumulative - self.caught_up;
        if d != 0.0 {
            self.params.apply_trace(d);
        }
        self.caught_up = b.cumulative;
    }
    #[inline]
    fn learn(&mut self, obs: &Observation, fired: bool, p: f64, log_ratio: f64, b: &Broadcast) {
        // ∇_θ log π(a|o) = (a − π(1|o))·∇_θ logit.
        let g = fired as u8 as f64 - p;
        self.params.push_trace(obs, g, self.trace_decay);
        if b.own_cost {
            self.params.nudge(obs, -b.eta * b.lambda * log_ratio * g);
        }
        if self.prior_rate > 0.0 {
            self.prior = (self.prior + self.prior_rate * (p - self.prior)).clamp(PRIOR_FLOOR, 1.0 - PRIOR_FLOOR);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs<'a>(frame: &'a [u64], pre: &'a [u32]) -> Observation<'a> {
        Observation {
            tick: 0,
            x: 1,
            input: Some(-1.0),
            own: false,
            id: 0,
            n: 3,
            all_to_all: pre.is_empty(),
            pre,
            frame,
        }
    }

    #[test]
    fn logistic_gradient_matches_finite_differences() {
        let frame = [0b110u64];
        let o = obs(&frame, &[]);
        let mut l = LogisticLearner::new(3, 0.3);
        l.unit.input_weight = 0.7;
        l.unit.weights = vec![5.0, -0.4, 0.9];
        l.push_trace(&o, 1.0, 0.0);
        let base = l.logit(&o);
        let eps = 1e-6;
        let mut numeric = Vec::new();
        for i in 0..5 {
            let mut m = l.clone();
            match i {
                0 => m.unit.bias += eps,
                1 => m.unit.input_weight += eps,
                _ => m.unit.weights[i - 2] += eps,
            }
            numeric.push((m.logit(&o) - base) / eps);
        }
        for (a, b) in numeric.iter().zip(&l.trace) {
            assert!((a - b).abs() < 1e-4, "{numeric:?} vs {:?}", l.trace);
        }
        // the agent's own weight (j = id = 0) never enters
        assert_eq!(l.trace[2], 0.0);
    }

    #[test]
    fn tabular_trace_decays_merges_and_applies() {
        let f1 = [0b001u64];
        let f2 = [0b011u64];
        let mut t = TabularLogits::new(16, 0.0);
        t.push_trace(&obs(&f1, &[]), 1.0, 0.5);
        t.push_trace(&obs(&f2, &[]), 2.0, 0.5);
        t.push_trace(&obs(&f1, &[]), 1.0, 0.5);
        t.apply_trace(1.0);
        // f1 at index 8+1: 1·0.25 + 1 ; f2 at 8+3: 2·0.5
        assert!((t.logits[9] - 1.25).abs() < 1e-12);
        assert!((t.logits[11] - 1.0).abs() < 1e-12);
        assert_eq!(t.logits.iter().filter(|v| **v != 0.0).count(), 2);
    }

    #[test]
    fn an_agent_charging_its_own_cost_steps_down_its_log_ratio_at_once() {
        let frame = [0b010u64];
        let o = obs(&frame, &[]);
        let mut a = LearningNeuron {
            id: 0,
            params: TabularLogits::new(16, 0.0),
            prior: 0.2,
            prior_rate: 0.0,
            trace_decay: 0.0,
            caught_up: 0.0,
            rng: crate::rng::stream(1, crate::rng::Domain::Agent, 0),
        };
        let b = Broadcast {
            eta: 0.1,
            lambda: 2.0,
            own_cost: true,
            ..Broadcast::default()
        };
        // Fired with π = 0.5 against p = 0.2: log-ratio ln 2.5, ∇ = 1 − 0.5.
        let lr = (0.5f64 / 0.2).ln();
        a.learn(&o, true, 0.5, lr, &b);
        let i = o.table_index();
        assert!((a.params.logits[i] - (-0.1 * 2.0 * lr * 0.5)).abs() < 1e-15);
        // The team objective (own_cost false) leaves it to the broadcast.
        let mut team = a.clone();
        team.params.logits[i] = 0.0;
        team.learn(&o, true, 0.5, lr, &Broadcast { own_cost: false, ..b });
        assert_eq!(team.params.logits[i], 0.0);
    }

    #[test]
    fn catching_up_late_equals_applying_every_tick() {
        let frame = [0b010u64];
        let o = obs(&frame, &[]);
        let mk = || LearningNeuron {
            id: 0,
            params: LogisticLearner::new(3, 0.0),
            prior: 0.5,
            prior_rate: 0.0,
            trace_decay: 0.0,
            caught_up: 0.0,
            rng: crate::rng::stream(1, crate::rng::Domain::Agent, 0),
        };
        let b0 = Broadcast::default();
        let (mut eager, mut lazy) = (mk(), mk());
        eager.learn(&o, true, 0.5, 0.0, &b0);
        lazy.learn(&o, true, 0.5, 0.0, &b0);
        let mut c = 0.0;
        for s in [0.3, -0.1, 0.7] {
            c += s;
            eager.catch_up(&Broadcast { cumulative: c, ..b0 });
        }
        lazy.catch_up(&Broadcast { cumulative: c, ..b0 });
        assert!((eager.params.unit.bias - lazy.params.unit.bias).abs() < 1e-15);
        assert!((lazy.params.unit.bias - 0.5 * 0.9).abs() < 1e-12);
    }
}
