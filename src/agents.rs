//! Agents: what a neuron is to the runtime. An agent has its own state,
//! policy, RNG stream and inbox (the presynaptic spikes it observes); each
//! tick it is asked, through [`Agent::fire_probability`], what it would do
//! given only its own [`Observation`], and the runtime draws its action from
//! the agent's own stream. Learning rules ([`crate::learn`]) hook in through
//! [`Agent::catch_up`] and [`Agent::learn`], which receive the global
//! [`Broadcast`].
//!
//! Depends on `model`, `rng` and `topology` only; no I/O, no threads.

use crate::rng::Stream;

/// Fixed-point scale of the per-tick log-ratio sums (2⁻³² resolution), so
/// they add up identically in any order — over shards, threads and ranks.
pub const FIXED: f64 = 4_294_967_296.0;

/// `v` in fixed point ([`FIXED`]), rounded half away from zero (written
/// out: `f64::round` is a library call on baseline x86-64, and this runs
/// once per neuron update).
#[inline]
pub fn to_fixed(v: f64) -> i64 {
    let scaled = v * FIXED;
    (scaled + 0.5f64.copysign(scaled)) as i64
}

/// What one agent sees at tick t: the input (if it receives it), its own
/// state and its presynaptic partners' states — nothing else.
pub struct Observation<'a> {
    pub tick: u64,
    /// Input index x_t (only meaningful when `receives_input`).
    pub x: usize,
    /// Input value, when this agent receives the input.
    pub input: Option<f64>,
    /// The agent's own current state σ_k.
    pub own: bool,
    /// The agent's id k.
    pub id: usize,
    /// Number of neurons in the network.
    pub n: usize,
    /// Whether the agent observes every other neuron (then `pre` is empty).
    pub all_to_all: bool,
    /// Presynaptic partners (when not `all_to_all`; may be empty: a neuron
    /// that sees no other neuron).
    pub pre: &'a [u32],
    /// The spike frame σ_t, as words of 64 neurons (bit k%64 of word k/64).
    pub frame: &'a [u64],
}

impl Observation<'_> {
    #[inline]
    pub fn spike(&self, j: usize) -> bool {
        self.frame[j / 64] >> (j % 64) & 1 == 1
    }

    /// The full network state σ as an integer (n ≤ 64, all-to-all only).
    #[inline]
    pub fn sigma(&self) -> usize {
        self.frame[0] as usize
    }

    /// Index of this observation in a tabular policy: for all-to-all
    /// networks the full state `x·2ⁿ + σ` (x = 0 when the agent does not
    /// receive the input; n ≤ 64), otherwise [`Observation::local_index`].
    #[inline]
    pub fn table_index(&self) -> usize {
        if self.all_to_all {
            let x = if self.input.is_some() { self.x } else { 0 };
            (x << self.n) | self.sigma()
        } else {
            self.local_index()
        }
    }

    /// Number of entries a tabular policy over this agent's observation
    /// needs: `X·2ⁿ` (all-to-all) or `X·2·2^deg`, with X = 1 when the agent
    /// does not receive the input. `None` if that exceeds 2³².
    pub fn table_len(n: usize, degree: Option<usize>, inputs: usize, receives_input: bool) -> Option<usize> {
        let xs = if receives_input { inputs } else { 1 };
        let bits = match degree {
            None => n,
            Some(d) => d + 1,
        };
        if bits > 32 {
            return None;
        }
        xs.checked_mul(1usize << bits).filter(|&v| v <= 1 << 32)
    }

    /// Index of the local observation for tabular policies over
    /// (input index, own state, presynaptic states): `((x·2 + own)·2^deg + Σ_j σ_pre_j 2^j)`.
    pub fn local_index(&self) -> usize {
        let mut idx = 0usize;
        for (b, &j) in self.pre.iter().enumerate() {
            idx |= (self.spike(j as usize) as usize) << b;
        }
        let x = if self.input.is_some() { self.x } else { 0 };
        ((x << 1 | self.own as usize) << self.pre.len()) | idx
    }
}

/// What the control plane broadcasts to every agent each tick (theory §4).
/// The learning signal (`ř_t − ĝ`, or the critic's TD error δ_t) reaches
/// agents as its running integral, so an agent that did not act for a while
/// applies everything it missed in one step when it next acts
/// ([`Agent::catch_up`]) — exactly what applying it every tick would give.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Broadcast {
    pub tick: u64,
    /// `Σ_{τ<t} η_τ · signal_τ`.
    pub cumulative: f64,
    /// η_t, the actors' learning rate at this tick.
    pub eta: f64,
    /// λ, the price of information.
    pub lambda: f64,
    /// Agents charge themselves their own coding cost instead of the team's
    /// (the signal then carries the reward only).
    pub own_cost: bool,
}

/// A policy maps an observation to a firing probability.
pub trait Policy: Send + Sync {
    fn p_fire(&self, obs: &Observation) -> f64;
}

/// The same firing probability whatever happens (an untrained network).
#[derive(Clone, Debug)]
pub struct ConstantPolicy(pub f64);

impl Policy for ConstantPolicy {
    fn p_fire(&self, _: &Observation) -> f64 {
        self.0
    }
}

/// A table over the full network state `s = x·2ⁿ + σ` (the exact solver's
/// policies; all-to-all networks of n ≤ 30).
#[derive(Clone, Debug)]
pub struct FullStatePolicy {
    pub n: usize,
    /// `table[s]` = π_k(1 | s) for this agent.
    pub table: Vec<f64>,
}

impl FullStatePolicy {
    /// One policy per neuron from a state-major table `fire[s·n + k]` =
    /// π_k(1 | s) (the solver's `Policy::fire`, or policy.npz's `p_fire`).
    pub fn per_neuron(n: usize, fire: &[f64]) -> Vec<FullStatePolicy> {
        let states = fire.len() / n;
        (0..n)
            .map(|k| FullStatePolicy {
                n,
                table: (0..states).map(|s| fire[s * n + k]).collect(),
            })
            .collect()
    }
}

impl Policy for FullStatePolicy {
    #[inline]
    fn p_fire(&self, obs: &Observation) -> f64 {
        self.table[(obs.x << self.n) | obs.sigma()]
    }
}

/// A table over the agent's local observation ([`Observation::local_index`]).
#[derive(Clone, Debug)]
pub struct LocalTablePolicy {
    pub table: Vec<f64>,
}

impl Policy for LocalTablePolicy {
    #[inline]
    fn p_fire(&self, obs: &Observation) -> f64 {
        self.table[obs.local_index()]
    }
}

/// `logit π(1|o) = b + u·x + Σ_j w_j σ_j` over the presynaptic partners
/// (theory §4); for all-to-all, `weights[j]` is the weight from neuron j.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogisticPolicy {
    pub bias: f64,
    pub input_weight: f64,
    pub weights: Vec<f64>,
}

impl LogisticPolicy {
    /// `logit π(1|o)`.
    #[inline]
    pub fn logit(&self, obs: &Observation) -> f64 {
        let mut z = self.bias + self.input_weight * obs.input.unwrap_or(0.0);
        if obs.all_to_all {
            for (j, w) in self.weights.iter().enumerate() {
                if j != obs.id && obs.spike(j) {
                    z += w;
                }
            }
        } else {
            for (w, &j) in self.weights.iter().zip(obs.pre) {
                if obs.spike(j as usize) {
                    z += w;
                }
            }
        }
        z
    }
}

impl Policy for LogisticPolicy {
    #[inline]
    fn p_fire(&self, obs: &Observation) -> f64 {
        1.0 / (1.0 + (-self.logit(obs)).exp())
    }
}

/// The agent interface of the runtime.
pub trait Agent: Send {
    /// π(1 | o): the probability of firing given this agent's observation.
    fn fire_probability(&self, obs: &Observation) -> f64;
    /// The agent's own RNG stream (the runtime draws its actions from it).
    fn rng(&mut self) -> &mut Stream;
    /// The agent's prior p_k(1), against which its coding cost is measured.
    fn prior(&self) -> f64;
    /// Called before the agent acts, when a learning signal is broadcast:
    /// apply the signal accumulated since it last caught up. Default: nothing.
    #[inline]
    fn catch_up(&mut self, _b: &Broadcast) {}
    /// Called after the agent acted, with its firing probability `p`, its
    /// action and its log-ratio `log(π(a|o)/p_k(a))`. Default: no learning.
    #[inline]
    fn learn(&mut self, _obs: &Observation, _fired: bool, _p: f64, _log_ratio: f64, _b: &Broadcast) {}
}

/// A neuron agent with a policy of type `P`.
#[derive(Clone, Debug)]
pub struct Neuron<P: Policy> {
    pub id: usize,
    pub policy: P,
    pub prior: f64,
    pub rng: Stream,
}

impl<P: Policy> Neuron<P> {
    /// A team of neurons: neuron k gets `policies[k]`, prior `priors[k]` and
    /// its own stream `(seed, Agent, k)`.
    pub fn team(policies: Vec<P>, priors: &[f64], seed: u64) -> Vec<Neuron<P>> {
        policies
            .into_iter()
            .enumerate()
            .map(|(k, policy)| Neuron {
                id: k,
                policy,
                prior: priors[k],
                rng: crate::rng::stream(seed, crate::rng::Domain::Agent, k as u64),
            })
            .collect()
    }
}

impl<P: Policy> Agent for Neuron<P> {
    #[inline]
    fn fire_probability(&self, obs: &Observation) -> f64 {
        self.policy.p_fire(obs)
    }
    #[inline]
    fn rng(&mut self) -> &mut Stream {
        &mut self.rng
    }
    fn prior(&self) -> f64 {
        self.prior
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs<'a>(frame: &'a [u64], pre: &'a [u32], input: Option<f64>) -> Observation<'a> {
        Observation {
            tick: 0,
            x: 1,
            input,
            own: true,
            id: 0,
            n: 4,
            all_to_all: pre.is_empty(),
            pre,
            frame,
        }
    }

    #[test]
    fn local_index_packs_input_own_and_partners() {
        let frame = [0b1010u64];
        let pre = [1u32, 2, 3];
        // partners 1,2,3 → bits (1, 0, 1); own = 1; x = 1 → ((1·2+1)·8) | 0b101
        assert_eq!(obs(&frame, &pre, Some(1.0)).local_index(), 3 * 8 + 0b101);
        // without the input, x does not enter
        assert_eq!(obs(&frame, &pre, None).local_index(), 8 + 0b101);
    }

    #[test]
    fn table_index_is_the_full_state_for_all_to_all() {
        let frame = [0b1010u64];
        // x = 1, n = 4: 1·16 + 0b1010
        assert_eq!(obs(&frame, &[], Some(1.0)).table_index(), 16 + 0b1010);
        assert_eq!(obs(&frame, &[], None).table_index(), 0b1010);
        assert_eq!(Observation::table_len(4, None, 2, true), Some(32));
        assert_eq!(Observation::table_len(4, Some(3), 2, false), Some(16));
        assert_eq!(Observation::table_len(40, None, 2, true), None);
    }

    #[test]
    fn a_neuron_without_partners_sees_only_the_input_and_itself() {
        let frame = [0b1011u64];
        let mut o = obs(&frame, &[], Some(1.0));
        o.all_to_all = false;
        assert_eq!(o.table_index(), 0b11, "(x = 1, own = 1), nobody else");
        let p = LogisticPolicy {
            bias: 0.5,
            input_weight: 0.0,
            weights: vec![],
        };
        assert!((p.logit(&o) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn logistic_sums_active_partner_weights() {
        let frame = [0b0110u64];
        let p = LogisticPolicy {
            bias: -1.0,
            input_weight: 2.0,
            weights: vec![10.0, 0.5, -0.25],
        };
        let pre = [1u32, 2, 3];
        let expect = 1.0 / (1.0 + (-(-1.0f64 + 2.0 * 1.0 + 10.0 + 0.5)).exp());
        assert!((p.p_fire(&obs(&frame, &pre, Some(1.0))) - expect).abs() < 1e-12);
    }
}
