//! The network model: state space, input process, reward table, coding cost
//! and update scheme, as plain data (theory §1–2).
//!
//! Everything else in marlin is a function of a [`Network`]: the exact solver
//! optimises it, the runtime simulates it, inference reconstructs its reward.
//! This module owns the binding conventions — the state index `s = x·2ⁿ + σ`
//! with bit k of σ being neuron k, nats, per-tick rewards — and does no I/O.

use std::fmt;

/// Largest number of neurons whose full state space marlin will tabulate.
pub const MAX_TABULAR_NEURONS: usize = 30;

/// How neurons update their state each tick (theory §1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UpdateScheme {
    /// One living neuron, drawn uniformly, acts per tick (the paper's scheme).
    Asynchronous,
    /// Every living neuron acts every tick.
    Synchronous,
    /// Every living neuron acts independently with probability `q` per tick.
    RandomPartial { q: f64 },
}

impl UpdateScheme {
    /// Probability that a given living neuron acts in a tick (`m` = number alive).
    pub fn act_probability(&self, alive: usize) -> f64 {
        match *self {
            UpdateScheme::Asynchronous => 1.0 / alive.max(1) as f64,
            UpdateScheme::Synchronous => 1.0,
            UpdateScheme::RandomPartial { q } => q,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            UpdateScheme::Asynchronous => "asynchronous",
            UpdateScheme::Synchronous => "synchronous",
            UpdateScheme::RandomPartial { .. } => "random_partial",
        }
    }
}

impl fmt::Display for UpdateScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateScheme::RandomPartial { q } => write!(f, "random_partial(q={q})"),
            other => f.write_str(other.name()),
        }
    }
}

/// The coding cost each acting neuron pays, `λ·KL(π_k(·|o) ‖ p_k)` (theory §2).
#[derive(Clone, Debug, PartialEq)]
pub enum CodingCost {
    /// `p_k` is the marginal of k's actions under the stationary distribution.
    MutualInformation,
    /// `p_k(1)` given per neuron.
    FixedPrior(Vec<f64>),
}

impl CodingCost {
    pub fn name(&self) -> &'static str {
        match self {
            CodingCost::MutualInformation => "mutual_information",
            CodingCost::FixedPrior(_) => "fixed_prior",
        }
    }
}

/// The exogenous input: a finite Markov chain over `values.len()` states.
#[derive(Clone, Debug, PartialEq)]
pub struct InputProcess {
    /// The value of each input index (e.g. `[-1, +1]` for the toy).
    pub values: Vec<f64>,
    /// Row-major `X×X` transition matrix `P[x][x']`; rows sum to 1.
    pub transition: Vec<f64>,
    /// `Some` when the network moves the input (motor neurons driving a
    /// maze walker, theory §7): then `transition` is the chain of the
    /// `stay` command, and the chain of a tick depends on the network state
    /// σ' the tick ends in.
    pub control: Option<Box<InputControl>>,
}

/// An input the network moves by a motor rule: neurons `g·per_group ..
/// (g+1)·per_group` form group g (of [`InputControl::transitions`]`.len() − 1`
/// groups); after the neurons update, the group with the most spikes issues
/// its command, and a tie for the most, or silence, issues the last command
/// (`stay`). Neurons past the groups are hidden: they command nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct InputControl {
    pub per_group: usize,
    /// One row-major `X×X` matrix per command: the groups' commands, then `stay`.
    pub transitions: Vec<Vec<f64>>,
    /// Distribution of the first input value of a run (e.g. the start cells).
    pub start: Vec<f64>,
}

impl InputControl {
    pub fn groups(&self) -> usize {
        self.transitions.len() - 1
    }

    /// The command of the bit frame `frame` (bit k%64 of word k/64 is neuron k).
    pub fn command(&self, frame: &[u64]) -> usize {
        // Spikes among neurons lo..hi, word by word.
        let count = |lo: usize, hi: usize| -> u32 {
            let mut total = 0;
            let mut start = lo;
            while start < hi {
                let end = hi.min((start / 64 + 1) * 64);
                let len = end - start;
                let mask = if len == 64 {
                    u64::MAX
                } else {
                    ((1u64 << len) - 1) << (start % 64)
                };
                total += (frame[start / 64] & mask).count_ones();
                start = end;
            }
            total
        };
        let (mut best, mut top, mut tied) = (self.groups(), 0u32, false);
        for g in 0..self.groups() {
            let c = count(g * self.per_group, (g + 1) * self.per_group);
            if c > top {
                (best, top, tied) = (g, c, false);
            } else if c == top && c > 0 {
                tied = true;
            }
        }
        if tied { self.groups() } else { best }
    }
}

impl InputProcess {
    /// `X` values; with probability `p_switch` the input jumps to one of the
    /// other values drawn uniformly, otherwise it stays.
    pub fn switching(values: Vec<f64>, p_switch: f64) -> Self {
        let x = values.len();
        let mut transition = vec![0.0; x * x];
        for a in 0..x {
            for b in 0..x {
                transition[a * x + b] = if a == b {
                    if x == 1 { 1.0 } else { 1.0 - p_switch }
                } else {
                    p_switch / (x - 1) as f64
                };
            }
        }
        InputProcess {
            values,
            transition,
            control: None,
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn p(&self, a: usize, b: usize) -> f64 {
        self.transition[a * self.len() + b]
    }

    /// The row-major `X×X` chain of a tick that ends in network state
    /// `sigma` (the same for every σ unless the network moves the input).
    #[inline]
    pub fn chain(&self, sigma: usize) -> &[f64] {
        self.chain_after(&[sigma as u64])
    }

    /// [`InputProcess::chain`] for a network of any size whose state is the
    /// bit frame `frame` (bit k%64 of word k/64 is neuron k).
    #[inline]
    pub fn chain_after(&self, frame: &[u64]) -> &[f64] {
        match &self.control {
            None => &self.transition,
            Some(c) => &c.transitions[c.command(frame)],
        }
    }

    /// Distribution of the first input value of a run: the start of a
    /// controlled input, else the chain's stationary distribution.
    pub fn initial(&self) -> Vec<f64> {
        match &self.control {
            Some(c) => c.start.clone(),
            None => self.stationary(),
        }
    }

    /// Stationary distribution of the input chain (power iteration on a
    /// lazy copy of the chain, so periodic chains converge too).
    pub fn stationary(&self) -> Vec<f64> {
        let x = self.len();
        let mut mu = vec![1.0 / x as f64; x];
        for _ in 0..100_000 {
            let mut next = vec![0.0; x];
            for a in 0..x {
                for b in 0..x {
                    next[b] += mu[a] * 0.5 * (self.p(a, b) + if a == b { 1.0 } else { 0.0 });
                }
            }
            let diff: f64 = next.iter().zip(&mu).map(|(a, b)| (a - b).abs()).sum();
            mu = next;
            if diff < 1e-15 {
                break;
            }
        }
        mu
    }
}

/// A network of `n` binary neuron-agents driven by an input chain, with a
/// tabulated reward over the full state space.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    pub n: usize,
    /// Dead neurons are clamped to 0, never act and are never drawn (theory §6).
    pub alive: Vec<bool>,
    pub input: InputProcess,
    /// `r(s)` for every `s = x·2ⁿ + σ`.
    pub reward: Vec<f64>,
    pub lambda: f64,
    pub cost: CodingCost,
    pub update: UpdateScheme,
    /// What each neuron observes (theory §1); `None`: the full state `s`.
    pub observes: Option<Vec<Observes>>,
}

/// What one neuron observes: the input or not, and the neurons whose states
/// it sees (its own and its presynaptic partners'), as a bit mask of σ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observes {
    pub input: bool,
    pub mask: usize,
}

impl Observes {
    /// The observation of a neuron at `s = x·2ⁿ + σ`, as an index into a
    /// table of `X·2ⁿ` entries: `x'·2ⁿ + (σ & mask)`, x' = 0 when the input
    /// is not observed.
    #[inline]
    pub fn class(&self, s: usize, n: usize) -> usize {
        let (x, sigma) = (s >> n, s & ((1usize << n) - 1));
        let x = if self.input { x } else { 0 };
        (x << n) | (sigma & self.mask)
    }
}

impl Network {
    /// Whether every living neuron observes the whole state.
    pub fn fully_observed(&self) -> bool {
        let full = self.configs() - 1;
        self.observes.as_ref().is_none_or(|o| {
            o.iter()
                .zip(&self.alive)
                .all(|(ob, &a)| !a || (ob.input && ob.mask & full == full))
        })
    }

    /// Number of network configurations σ, `2ⁿ`.
    pub fn configs(&self) -> usize {
        1usize << self.n
    }

    /// Number of full states `X·2ⁿ`.
    pub fn states(&self) -> usize {
        self.input.len() << self.n
    }

    pub fn alive_count(&self) -> usize {
        self.alive.iter().filter(|a| **a).count()
    }

    /// Bit mask of living neurons.
    pub fn alive_mask(&self) -> usize {
        self.alive
            .iter()
            .enumerate()
            .filter(|(_, a)| **a)
            .fold(0usize, |m, (k, _)| m | (1 << k))
    }

    /// `true` when σ has no dead neuron active (only such states are reachable).
    pub fn reachable(&self, sigma: usize) -> bool {
        sigma & !self.alive_mask() == 0
    }

    /// The prior `p_k(1)` of a fixed-prior cost, if any.
    pub fn fixed_prior(&self) -> Option<&[f64]> {
        match &self.cost {
            CodingCost::FixedPrior(p) => Some(p),
            CodingCost::MutualInformation => None,
        }
    }

    /// Kill neurons: they are clamped to 0 from now on.
    pub fn kill(&mut self, neurons: &[usize]) {
        for &k in neurons {
            self.alive[k] = false;
        }
    }
}

/// Number of active neurons in σ.
#[inline]
pub fn spike_count(sigma: usize) -> usize {
    sigma.count_ones() as usize
}

/// A reward family, kept symbolic so that networks too large to tabulate
/// (the runtime's) can still evaluate it per state.
#[derive(Clone, Debug, PartialEq)]
pub enum RewardSpec {
    /// `value` when exactly `targets[x]` neurons are active.
    TargetCount { targets: Vec<usize>, value: f64 },
    /// Per input, neurons that should be on and neurons that should be off.
    Pattern {
        on: Vec<Vec<usize>>,
        off: Vec<Vec<usize>>,
        value: f64,
        all_or_nothing: bool,
    },
    /// A full table over `s = x·2ⁿ + σ`.
    Table(Vec<f64>),
    /// A reward per input value, whatever the neurons do (e.g. the goal of
    /// a maze the network moves).
    Input(Vec<f64>),
}

impl RewardSpec {
    /// The table `r(s)` for a network of `n` neurons (caller checks n is tabulable).
    pub fn tabulate(&self, n: usize) -> Vec<f64> {
        match self {
            RewardSpec::TargetCount { targets, value } => rewards::target_count(n, targets, *value),
            RewardSpec::Pattern {
                on,
                off,
                value,
                all_or_nothing,
            } => rewards::pattern(n, on, off, *value, *all_or_nothing),
            RewardSpec::Table(t) => t.clone(),
            RewardSpec::Input(r) => r.iter().flat_map(|&v| std::iter::repeat_n(v, 1 << n)).collect(),
        }
    }

    /// `r(x, σ)` for a network of `n` neurons whose state is the bit frame
    /// `frame` (bit k%64 of word k/64 is neuron k) with `count` active.
    /// (Inlined for the count target, which large networks evaluate every
    /// tick.)
    #[inline]
    pub fn evaluate(&self, n: usize, x: usize, frame: &[u64], count: usize) -> f64 {
        match self {
            RewardSpec::TargetCount { targets, value } => {
                if count == targets[x] {
                    *value
                } else {
                    0.0
                }
            }
            _ => self.evaluate_state(n, x, frame),
        }
    }

    /// [`RewardSpec::evaluate`] for the rewards that read the state.
    #[inline(never)]
    fn evaluate_state(&self, n: usize, x: usize, frame: &[u64]) -> f64 {
        let on = |k: usize| frame[k / 64] >> (k % 64) & 1 == 1;
        match self {
            RewardSpec::TargetCount { .. } => unreachable!("evaluate answers count targets itself"),
            RewardSpec::Pattern {
                on: want_on,
                off,
                value,
                all_or_nothing,
            } => {
                let total = want_on[x].len() + off[x].len();
                if total == 0 {
                    return 0.0;
                }
                let matched =
                    want_on[x].iter().filter(|&&k| on(k)).count() + off[x].iter().filter(|&&k| !on(k)).count();
                if *all_or_nothing {
                    if matched == total { *value } else { 0.0 }
                } else {
                    value * matched as f64 / total as f64
                }
            }
            RewardSpec::Table(t) => t[(x << n) | frame[0] as usize],
            RewardSpec::Input(r) => r[x],
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            RewardSpec::TargetCount { .. } => "target_count",
            RewardSpec::Pattern { .. } => "pattern",
            RewardSpec::Table(_) => "table",
            RewardSpec::Input(_) => "input",
        }
    }
}

/// Reward families that build a tabulated `r(x, σ)`.
pub mod rewards {
    /// Reward `value` when exactly `targets[x]` neurons are active.
    pub fn target_count(n: usize, targets: &[usize], value: f64) -> Vec<f64> {
        let c = 1usize << n;
        let mut r = vec![0.0; targets.len() * c];
        for (x, &t) in targets.iter().enumerate() {
            for sigma in 0..c {
                if super::spike_count(sigma) == t {
                    r[x * c + sigma] = value;
                }
            }
        }
        r
    }

    /// For each input, a set of neurons that should be on and a set that
    /// should be off. `all_or_nothing`: reward `value` only if every listed
    /// neuron matches; otherwise `value` × the fraction matched.
    pub fn pattern(n: usize, on: &[Vec<usize>], off: &[Vec<usize>], value: f64, all_or_nothing: bool) -> Vec<f64> {
        let c = 1usize << n;
        let mut r = vec![0.0; on.len() * c];
        for x in 0..on.len() {
            let total = on[x].len() + off[x].len();
            for sigma in 0..c {
                let matched = on[x].iter().filter(|&&k| sigma >> k & 1 == 1).count()
                    + off[x].iter().filter(|&&k| sigma >> k & 1 == 0).count();
                r[x * c + sigma] = if total == 0 {
                    0.0
                } else if all_or_nothing {
                    if matched == total { value } else { 0.0 }
                } else {
                    value * matched as f64 / total as f64
                };
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switching_rows_sum_to_one_and_stationary_is_uniform() {
        let p = InputProcess::switching(vec![0.0, 1.0, 2.0], 0.3);
        for a in 0..3 {
            let s: f64 = (0..3).map(|b| p.p(a, b)).sum();
            assert!((s - 1.0).abs() < 1e-12);
        }
        for m in p.stationary() {
            assert!((m - 1.0 / 3.0).abs() < 1e-9);
        }
    }

    #[test]
    fn evaluate_agrees_with_the_table_for_every_family() {
        let n = 4;
        let specs = [
            RewardSpec::TargetCount {
                targets: vec![1, 3],
                value: 2.0,
            },
            RewardSpec::Pattern {
                on: vec![vec![0], vec![1, 2]],
                off: vec![vec![3], vec![]],
                value: 1.0,
                all_or_nothing: false,
            },
            RewardSpec::Pattern {
                on: vec![vec![0], vec![1, 2]],
                off: vec![vec![3], vec![]],
                value: 1.0,
                all_or_nothing: true,
            },
            RewardSpec::Table((0..32).map(|i| i as f64 * 0.5).collect()),
        ];
        for spec in &specs {
            let table = spec.tabulate(n);
            for x in 0..2 {
                for sigma in 0..16usize {
                    let got = spec.evaluate(n, x, &[sigma as u64], spike_count(sigma));
                    assert_eq!(got, table[(x << n) | sigma], "{spec:?} x={x} σ={sigma:b}");
                }
            }
        }
    }

    #[test]
    fn pattern_fraction_counts_matches() {
        let r = rewards::pattern(2, &[vec![0]], &[vec![1]], 1.0, false);
        assert_eq!(r, vec![0.5, 1.0, 0.0, 0.5]);
        let r = rewards::pattern(2, &[vec![0]], &[vec![1]], 1.0, true);
        assert_eq!(r, vec![0.0, 1.0, 0.0, 0.0]);
    }
}
