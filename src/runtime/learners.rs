//! Learning at scale: a network of logistic learners (theory §4, one weight
//! per synapse) executed as plain arrays instead of one agent object each.
//!
//! [`LearningNeuron`]`<`[`LogisticLearner`]`>` is the model of a learning
//! neuron; on the agent engine each of them builds an observation, zeroes
//! and refills a dense trace of K + 2 entries and sweeps it again to catch
//! up with the broadcast signal — three passes over its synapses and two
//! allocations' worth of pointer chasing per update. A [`LogisticTeam`]
//! holds the same state as arrays aligned with the topology (weights by
//! postsynaptic neuron, CSR) and does one fused pass per update: catch up
//! the weights whose trace is set, add the weights of the spiking partners,
//! and set the new trace. With γ_e = 0 (the default) the trace after an
//! action is (a − π)·∇logit, i.e. the same number on the bias, on the input
//! weight (times the input) and on every synapse whose partner spiked, so
//! it is stored as one number per neuron and one byte per synapse.
//!
//! The arithmetic is the agent's, operation for operation (the logit adds
//! bias, input drive and the spiking partners' weights in partner order —
//! a silent partner adds ±0.0, which can change only the sign of a zero;
//! the catch-up adds d·e with d the difference of cumulative signals), so a
//! team's run is **bit-identical** to the agent engine's run of the same
//! learners — trajectories, learned weights, streams — for any layout and
//! rank count; the tests compare them. The team converts to and from the
//! agents ([`LogisticTeam::from_agents`], [`LogisticTeam::to_agents`]), so
//! checkpoints, exports and exact scores keep using the agent form.
//!
//! Networks with all-to-all observation (small by construction) and traces
//! with γ_e > 0 stay on the agent engine.

use super::sparse::LogisticNeurons;
use super::transport::{Ranks, rank_neurons};
use super::{Fault, Host, Layout, Observer, Plan, RunState, RunTotals, RuntimeNetwork, Tick, drive_on, word_mask};
use crate::agents::{Broadcast, LogisticPolicy};
use crate::learn::{LearningNeuron, LogisticLearner, PRIOR_FLOOR, sigmoid};
use crate::model::UpdateScheme;
use crate::rng::{Domain, Stream, stream};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Logistic learners of a network's neurons `neurons` (all n, or an MPI
/// rank's block) as arrays: per neuron its parameters, running prior,
/// catch-up point, trace and stream; per synapse (aligned with the
/// topology's rows of these neurons) its weight and trace bit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogisticTeam {
    neurons: std::ops::Range<usize>,
    /// The topology's index of the first neuron's first synapse.
    edge_base: usize,
    bias: Vec<f64>,
    input_weight: Vec<f64>,
    prior: Vec<f64>,
    prior_rate: Vec<f64>,
    /// The broadcast's `cumulative` when the neuron last caught up.
    caught_up: Vec<f64>,
    /// The trace of the bias, (a − π) at the last action.
    grad: Vec<f64>,
    /// The trace of the input weight, (a − π)·u at the last action.
    grad_input: Vec<f64>,
    weights: Vec<f64>,
    /// 1 where the partner spiked at the neuron's last action (the synapse
    /// carries the trace `grad`).
    trace: Vec<u8>,
    rng: Vec<Stream>,
}

impl LogisticTeam {
    /// The team of `agents` (the learners of `neurons`, in order), or why
    /// they cannot run as one: an all-to-all topology, a trace decay other
    /// than 0, or parameters that do not match the topology.
    pub fn from_agents(
        net: &RuntimeNetwork,
        agents: &[LearningNeuron<LogisticLearner>],
        neurons: std::ops::Range<usize>,
    ) -> Result<Self, String> {
        let topo = &net.topology;
        if topo.all_to_all {
            return Err("all-to-all observation runs on the agent engine".into());
        }
        if agents.len() != neurons.len() || neurons.end > net.n {
            return Err(format!(
                "{} learners for neurons {}..{} of {}",
                agents.len(),
                neurons.start,
                neurons.end,
                net.n
            ));
        }
        let edge_base = topo.offsets[neurons.start] as usize;
        let edges = topo.offsets[neurons.end] as usize - edge_base;
        let len = neurons.len();
        let mut team = LogisticTeam {
            neurons: neurons.clone(),
            edge_base,
            bias: Vec::with_capacity(len),
            input_weight: Vec::with_capacity(len),
            prior: Vec::with_capacity(len),
            prior_rate: Vec::with_capacity(len),
            caught_up: Vec::with_capacity(len),
            grad: Vec::with_capacity(len),
            grad_input: Vec::with_capacity(len),
            weights: Vec::with_capacity(edges),
            trace: Vec::with_capacity(edges),
            rng: Vec::with_capacity(len),
        };
        for (a, k) in agents.iter().zip(neurons) {
            if a.id != k {
                return Err(format!("learner {} given for neuron {k}", a.id));
            }
            if a.trace_decay != 0.0 {
                return Err(format!(
                    "neuron {k} decays its trace (γ_e = {}); arrays hold γ_e = 0 only",
                    a.trace_decay
                ));
            }
            let unit = &a.params.unit;
            let trace = a.params.trace();
            let k_in = topo.in_degree(k);
            if unit.weights.len() != k_in || trace.len() != k_in + 2 {
                return Err(format!(
                    "neuron {k} has {} weights for {k_in} presynaptic partners",
                    unit.weights.len()
                ));
            }
            team.bias.push(unit.bias);
            team.input_weight.push(unit.input_weight);
            team.prior.push(a.prior);
            team.prior_rate.push(a.prior_rate);
            team.caught_up.push(a.caught_up);
            team.grad.push(trace[0]);
            team.grad_input.push(trace[1]);
            team.weights.extend_from_slice(&unit.weights);
            for &e in &trace[2..] {
                if e != 0.0 && e != trace[0] {
                    return Err(format!("neuron {k}'s trace is not one of a step with γ_e = 0"));
                }
                team.trace.push((e != 0.0) as u8);
            }
            team.rng.push(a.rng.clone());
        }
        Ok(team)
    }

    /// Learners that start as the fixed neurons `fixed` (weights widened to
    /// `f64`; traces empty; streams `(seed, Agent, k)`), for the neurons
    /// `block` of `net`; the prior learns at `prior_rate` (0 keeps it).
    pub fn from_neurons(
        net: &RuntimeNetwork,
        fixed: &LogisticNeurons,
        seed: u64,
        block: std::ops::Range<usize>,
        prior_rate: f64,
    ) -> Result<Self, String> {
        fixed.check(net)?;
        let topo = &net.topology;
        let (lo, hi) = (topo.offsets[block.start] as usize, topo.offsets[block.end] as usize);
        let weights = fixed.synapse_weights(net, lo..hi);
        let len = block.len();
        Ok(LogisticTeam {
            neurons: block.clone(),
            edge_base: lo,
            bias: fixed.bias[block.clone()].to_vec(),
            input_weight: fixed.input_weight[block.clone()].to_vec(),
            prior: fixed.prior[block.clone()].to_vec(),
            prior_rate: vec![prior_rate; len],
            caught_up: vec![0.0; len],
            grad: vec![0.0; len],
            grad_input: vec![0.0; len],
            trace: vec![0; weights.len()],
            weights,
            rng: block.map(|k| stream(seed, Domain::Agent, k as u64)).collect(),
        })
    }

    /// The learners as agents (the agent engine's form, for checkpoints,
    /// exports and exact evaluation).
    pub fn to_agents(&self, net: &RuntimeNetwork) -> Vec<LearningNeuron<LogisticLearner>> {
        let topo = &net.topology;
        self.neurons
            .clone()
            .enumerate()
            .map(|(i, k)| {
                let row = topo.offsets[k] as usize - self.edge_base..topo.offsets[k + 1] as usize - self.edge_base;
                let mut trace = Vec::with_capacity(row.len() + 2);
                trace.push(self.grad[i]);
                trace.push(self.grad_input[i]);
                // (0 + g·1, as the agent's trace is formed.)
                trace.extend(
                    self.trace[row.clone()]
                        .iter()
                        .map(|&b| if b != 0 { self.grad[i] } else { 0.0 }),
                );
                let unit = LogisticPolicy {
                    bias: self.bias[i],
                    input_weight: self.input_weight[i],
                    weights: self.weights[row].to_vec(),
                };
                LearningNeuron {
                    id: k,
                    params: LogisticLearner::from_parts(unit, trace),
                    prior: self.prior[i],
                    prior_rate: self.prior_rate[i],
                    trace_decay: 0.0,
                    caught_up: self.caught_up[i],
                    rng: self.rng[i].clone(),
                }
            })
            .collect()
    }

    /// The neurons this team holds.
    pub fn neurons(&self) -> std::ops::Range<usize> {
        self.neurons.clone()
    }

    /// Bytes held: 88 per neuron (seven numbers and a 32-byte stream) and 9
    /// per synapse (weight and trace byte), beside the topology.
    pub fn bytes(&self) -> u64 {
        (self.neurons.len() * (7 * 8 + std::mem::size_of::<Stream>()) + self.weights.len() * 9) as u64
    }

    /// Run `ticks` ticks from `state` as the agent engine would run these
    /// learners ([`super::try_run_on`]): alone (`ranks` `None`, the team
    /// holds all n) or as one rank of several (the team holds this rank's
    /// block, [`rank_neurons`]). Asynchronous networks run on one thread.
    pub fn run(
        &mut self,
        net: &RuntimeNetwork,
        layout: Layout,
        state: RunState,
        ticks: u64,
        observer: &mut dyn Observer,
        ranks: Option<&Ranks>,
    ) -> Result<(RunState, RunTotals), Fault> {
        let ranks = ranks.filter(|r| r.size() > 1);
        let block = ranks.map_or(0..net.n, |r| rank_neurons(net.n, r.rank(), r.size()));
        assert_eq!(block, self.neurons, "the team holds this process's neurons");
        let layout = match net.update {
            UpdateScheme::Asynchronous => Layout::single(),
            _ => layout,
        };
        let plan = Plan::within(block, layout);
        let mut hosts = self.split(net, &plan);
        drive_on(net, &mut hosts, &plan, &net.alive_list(), state, ticks, observer, ranks)
    }

    /// One host per thread of `plan`, each over its own neurons' slices.
    fn split<'a>(&'a mut self, net: &RuntimeNetwork, plan: &Plan) -> Vec<LearnerHost<'a>> {
        let offsets = &net.topology.offsets;
        let LogisticTeam {
            neurons: _,
            edge_base: _,
            bias,
            input_weight,
            prior,
            prior_rate,
            caught_up,
            grad,
            grad_input,
            weights,
            trace,
            rng,
        } = self;
        let (mut bias, mut input_weight, mut prior, mut prior_rate) = (
            &mut bias[..],
            &mut input_weight[..],
            &mut prior[..],
            &mut prior_rate[..],
        );
        let (mut caught_up, mut grad, mut grad_input) = (&mut caught_up[..], &mut grad[..], &mut grad_input[..]);
        let (mut weights, mut trace, mut rng) = (&mut weights[..], &mut trace[..], &mut rng[..]);
        let mut hosts = Vec::with_capacity(plan.threads);
        for j in 0..plan.threads {
            let agents = plan.thread_agents(j);
            let (m, edges) = (agents.len(), (offsets[agents.end] - offsets[agents.start]) as usize);
            macro_rules! take {
                ($v:ident, $len:expr) => {{
                    let (mine, rest) = std::mem::take(&mut $v).split_at_mut($len);
                    $v = rest;
                    mine
                }};
            }
            hosts.push(LearnerHost {
                first: agents.start,
                edge_base: offsets[agents.start] as usize,
                bias: take!(bias, m),
                input_weight: take!(input_weight, m),
                prior: take!(prior, m),
                prior_rate: take!(prior_rate, m),
                caught_up: take!(caught_up, m),
                grad: take!(grad, m),
                grad_input: take!(grad_input, m),
                weights: take!(weights, edges),
                trace: take!(trace, edges),
                rng: take!(rng, m),
            });
        }
        debug_assert!(weights.is_empty() && rng.is_empty());
        hosts
    }
}

/// One thread's neurons of a [`LogisticTeam`].
struct LearnerHost<'a> {
    first: usize,
    edge_base: usize,
    bias: &'a mut [f64],
    input_weight: &'a mut [f64],
    prior: &'a mut [f64],
    prior_rate: &'a mut [f64],
    caught_up: &'a mut [f64],
    grad: &'a mut [f64],
    grad_input: &'a mut [f64],
    weights: &'a mut [f64],
    trace: &'a mut [u8],
    rng: &'a mut [Stream],
}

impl LearnerHost<'_> {
    /// Neuron k (alive, acting) decides, as [`super::decide`] has a
    /// [`LearningNeuron`] decide: catch up with the broadcast, observe
    /// (one pass: catch-up of the traced weights, the logit, the new trace),
    /// draw, learn. Returns the action and its log-ratio in fixed point.
    #[inline(always)]
    fn decide(&mut self, net: &RuntimeNetwork, k: usize, tick: &Tick, broadcast: Option<&Broadcast>) -> (bool, i64) {
        let i = k - self.first;
        let topo = &net.topology;
        let row = topo.offsets[k] as usize..topo.offsets[k + 1] as usize;
        let pre = &topo.pre[row.clone()];
        let local = row.start - self.edge_base..row.end - self.edge_base;
        let (weights, trace) = (&mut self.weights[local.clone()], &mut self.trace[local]);
        // Catch-up: θ += d·e with d the signal since the last action.
        let d = broadcast.map_or(0.0, |b| b.cumulative - self.caught_up[i]);
        let catch_up = d != 0.0;
        if catch_up {
            self.bias[i] += d * self.grad[i];
            self.input_weight[i] += d * self.grad_input[i];
        }
        if let Some(b) = broadcast {
            self.caught_up[i] = b.cumulative;
        }
        let u = net.receives_input[k].then(|| net.input.values[tick.x]);
        let mut z = self.bias[i] + self.input_weight[i] * u.unwrap_or(0.0);
        let frame = tick.frame;
        let learning = broadcast.is_some();
        // Branch-free (partners spike at random, so a branch would
        // mispredict half the time; LLVM turns a select or a bit mask back
        // into one): `mask(b, v)` is v·b, v where the bit b is 1 and ±0.0
        // where it is 0. The agent adds d·e to every weight, e = g where
        // the trace is set and 0 elsewhere, and sums the spiking partners'
        // weights; adding ±0.0 for the others can only change the sign of a
        // zero, never π (finite weights; a diverged, infinite weight gives
        // NaN here where the agent would skip it while its partner is
        // silent). Measured: 2.2× faster than the branches at N = 10⁴.
        let bit = |j: u32| frame[j as usize / 64] >> (j % 64) & 1;
        let mask = |b: u64, v: f64| v * b as f64;
        let g_old = self.grad[i];
        match (catch_up, learning) {
            (true, _) => {
                for ((w, e), &j) in weights.iter_mut().zip(trace.iter_mut()).zip(pre) {
                    *w += d * mask(*e as u64, g_old);
                    let b = bit(j);
                    z += mask(b, *w);
                    *e = b as u8;
                }
            }
            (false, true) => {
                for ((w, e), &j) in weights.iter().zip(trace.iter_mut()).zip(pre) {
                    let b = bit(j);
                    z += mask(b, *w);
                    *e = b as u8;
                }
            }
            (false, false) => {
                for (w, &j) in weights.iter().zip(pre) {
                    z += mask(bit(j), *w);
                }
            }
        }
        let p = sigmoid(z);
        let fired = self.rng[i].random::<f64>() < p;
        let prior = self.prior[i];
        let lr = super::log_ratio(p, prior, fired);
        if let Some(b) = broadcast {
            // ∇_θ log π(a|o) = (a − π)·∇_θ logit, stored as the agent's
            // trace holds it (0 + g·1, 0 + g·u).
            let g = fired as u8 as f64 - p;
            self.grad[i] = 0.0 + g;
            self.grad_input[i] = u.map_or(0.0, |u| 0.0 + g * u);
            if b.own_cost {
                let coeff = -b.eta * b.lambda * lr * g;
                self.bias[i] += coeff;
                if let Some(u) = u {
                    self.input_weight[i] += coeff * u;
                }
                for (w, &e) in weights.iter_mut().zip(trace.iter()) {
                    if e != 0 {
                        *w += coeff;
                    }
                }
            }
            if self.prior_rate[i] > 0.0 {
                self.prior[i] = (prior + self.prior_rate[i] * (p - prior)).clamp(PRIOR_FLOOR, 1.0 - PRIOR_FLOOR);
            }
        }
        (fired, super::to_fixed(lr))
    }
}

impl Host for LearnerHost<'_> {
    fn step(
        &mut self,
        net: &RuntimeNetwork,
        range: std::ops::Range<usize>,
        tick: &Tick,
        emit: &mut dyn FnMut(usize, u64, u64),
    ) -> (i64, i64) {
        if range.is_empty() {
            return (0, 0);
        }
        super::check_injected_panic(&range, tick);
        let (frame, broadcast) = (tick.frame, tick.broadcast);
        let (mut delta, mut info) = (0i64, 0i64);
        if net.update == UpdateScheme::Asynchronous {
            // Only the actor can change (as the agent engine's shards do).
            for w in range.start / 64..=(range.end - 1) / 64 {
                let (lo, hi) = (range.start.max(w * 64), range.end.min((w + 1) * 64));
                let mask = word_mask(lo % 64, hi - lo);
                let mut word = frame[w] & mask;
                if tick.actor >= lo as i64 && tick.actor < hi as i64 {
                    let k = tick.actor as usize;
                    tick.acting.set(k);
                    let bit = 1u64 << (k % 64);
                    let own = word & bit != 0;
                    let (fired, lr) = self.decide(net, k, tick, broadcast);
                    info += lr;
                    delta += fired as i64 - own as i64;
                    word = if fired { word | bit } else { word & !bit };
                }
                emit(w, word, mask);
            }
            return (delta, info);
        }
        let q = match net.update {
            UpdateScheme::RandomPartial { q } if q < 1.0 => Some(q),
            _ => None,
        };
        let mut k = range.start;
        while k < range.end {
            let w = k / 64;
            let end = ((w + 1) * 64).min(range.end);
            let old = frame[w];
            let mut bits = 0u64;
            for k in k..end {
                let i = k - self.first;
                let own = old >> (k % 64) & 1 == 1;
                let acts = net.alive[k] && q.is_none_or(|q| self.rng[i].random::<f64>() < q);
                let fired = if acts {
                    tick.acting.set(k);
                    let (fired, lr) = self.decide(net, k, tick, broadcast);
                    info += lr;
                    fired
                } else {
                    own && net.alive[k]
                };
                bits |= (fired as u64) << (k % 64);
            }
            let mask = word_mask(k % 64, end - k);
            delta += bits.count_ones() as i64 - (old & mask).count_ones() as i64;
            emit(w, bits, mask);
            k = end;
        }
        (delta, info)
    }
}
