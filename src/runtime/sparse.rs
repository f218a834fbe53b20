//! The sparse engine: large networks of fixed logistic neurons (10⁴–10⁶
//! neurons, hundreds of synapses each) executed as plain per-shard arrays.
//!
//! The agent engine asks every agent for its firing probability through the
//! [`Agent`](crate::agents::Agent) trait, one observation at a time, which is
//! what learning and tabular policies need. A network whose neurons are
//! fixed logistic units — `logit_i = b_i + u_i·x + Σ_j w_ij σ_j` — needs
//! none of that, and at scale the synaptic sum is all the work. Here:
//!
//! - **Synchronous and random-partial updates push**: each shard keeps the
//!   synapses onto its own neurons as a table by *presynaptic* neuron
//!   (CSR by source), and every tick adds the weights of the neurons that
//!   spiked into one accumulator per neuron — about activity × K additions
//!   per neuron instead of K bit tests. When fewer neurons *changed* since
//!   the last tick than spike (random-partial updates with small q), the
//!   shard adds ± the weights of the changed ones to the sums it holds
//!   instead (`PushShard::catch_up`). At q ≤ 0.02 a shard does not scan
//!   every neuron's coin each tick: each neuron walks its own coins ahead
//!   to the tick it next acts and a calendar lists each tick's actors
//!   (`runtime::random_partial`; the same draws per stream, so the same run).
//!   Past 12 MiB of table the push asks for the rows of the neurons a few
//!   ahead while it adds one (a row's start is otherwise a cache miss;
//!   1.4–1.7× from 5·10⁴ neurons up). No allocation per tick once the
//!   calendar's lists have grown, no locks; shards meet at the runtime's
//!   barrier.
//! - **Asynchronous updates are event-driven**: one neuron acts per tick,
//!   so the engine runs on one thread with a single frame flipped in place
//!   and keeps every neuron's synaptic sum up to date: when the acting
//!   neuron changes state it adds or removes its weight at its targets
//!   (the same table by source, over the whole network). A tick reads one
//!   sum; a change costs the neuron's out-degree.
//!
//! - **The transfer function is remembered**: neurons are grouped into
//!   classes of equal bias, input weight and prior, and `(class, input,
//!   synaptic sum) ↦ (σ, both log-ratios)` sits in a small direct-mapped
//!   memo per thread (`TransferMemo`): neurons with shared parameters see
//!   few distinct sums, so most updates skip an `exp` and a `ln`. It
//!   returns exactly what it would compute, and turns itself off where it
//!   does not pay.
//!
//! Synaptic sums are **exact**: a weight w is held in fixed point as
//! round(w·2^b) and sums are 32-bit integers ([`SynapticScale`]: b is the
//! largest, up to 48, with max |w| × max in-degree × 2^b ≤ 2³⁰, so no sum
//! can overflow — b = 23 for the benchmark network, a resolution of
//! 1.2·10⁻⁷), so every order of addition — push, pull, incremental — gives
//! the same number, converted once to `f64` for the logit
//! ([`LogisticNeurons::logit`]). A run's trajectory is therefore
//! bit-identical for any number of shards, threads and MPI ranks, and
//! whichever way the sums are formed; 4-byte sums keep the tables small.
//! Randomness is drawn exactly as the agent engine draws it (the acting
//! neuron's own stream: its act-or-not draw under random-partial updates,
//! then its action), and the control plane — clock, environment, observer —
//! is the agent engine's.

use super::random_partial::Schedule;
use super::transport::{Ranks, check_ranks, rank_neurons};
use super::{
    FIXED, Host, Layout, Observer, Plan, RunState, RunTotals, RuntimeNetwork, Tick, TickRecord, drive_on, word_mask,
};
use crate::learn::sigmoid;
use crate::model::UpdateScheme;
use crate::rng::{Domain, Stream, stream};
use rand::Rng;
use rayon::prelude::*;

/// The fixed point of a network's synaptic weights and sums: w is held as
/// the 32-bit integer round(w·2^b), with b the largest (up to 48) such that
/// max |w| × max in-degree × 2^b ≤ 2³⁰, so that a sum of rounded weights
/// stays below 2³¹ in magnitude.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SynapticScale {
    bits: i32,
    scale: f64,
    inverse: f64,
}

impl SynapticScale {
    /// The scale for weights up to `max_w` in magnitude on up to `max_in`
    /// synapses per neuron; `None` when even b = 1 could overflow.
    pub fn for_range(max_w: f64, max_in: usize) -> Option<Self> {
        let m = max_w * max_in as f64;
        let mut bits = 48;
        while bits > 0 && m * 2f64.powi(bits) > 2f64.powi(30) {
            bits -= 1;
        }
        (bits > 0).then(|| SynapticScale {
            bits,
            scale: 2f64.powi(bits),
            inverse: 2f64.powi(-bits),
        })
    }

    /// b: weights are multiples of 2^−b.
    pub fn bits(self) -> i32 {
        self.bits
    }

    /// A weight in fixed point.
    #[inline]
    pub fn weight(self, w: f32) -> i32 {
        (w as f64 * self.scale).round() as i32
    }

    /// A fixed-point sum as a number (exact: a power-of-two scaling).
    #[inline]
    pub fn value(self, sum: i32) -> f64 {
        sum as f64 * self.inverse
    }
}

/// How the synaptic weights are stored.
#[derive(Clone, Debug, PartialEq)]
pub enum Weights {
    /// One weight per presynaptic neuron: every synapse from neuron j weighs
    /// `w[j]` (Dale's law, e.g. excitatory/inhibitory networks). 4 bytes per
    /// neuron instead of 4 per synapse.
    PerSource(Vec<f32>),
    /// One weight per synapse, aligned with the topology's `pre` (CSR by
    /// postsynaptic neuron).
    PerSynapse(Vec<f32>),
}

impl Weights {
    /// Dale's law with two populations: neurons `0..excitatory` project with
    /// `w_exc`, the others with `w_inh`.
    pub fn dale(n: usize, excitatory: usize, w_exc: f32, w_inh: f32) -> Self {
        Weights::PerSource((0..n).map(|j| if j < excitatory { w_exc } else { w_inh }).collect())
    }
}

/// Fixed logistic neurons as plain data: neuron i fires with probability
/// `sigmoid(b_i + u_i·x_t + Σ_{j ∈ pre(i)} w_ij σ_j)` (the input term only
/// for neurons that receive the input), and pays its coding cost against
/// the prior `p_i`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogisticNeurons {
    pub bias: Vec<f64>,
    pub input_weight: Vec<f64>,
    pub prior: Vec<f64>,
    pub weights: Weights,
}

impl LogisticNeurons {
    /// The scale issue's benchmark neurons (and any Dale network of two
    /// populations): neurons `0..excitatory` project with weight `w_exc`,
    /// the rest with `w_inh`; every neuron has bias `bias` and prior `prior`.
    pub fn excitatory_inhibitory(n: usize, excitatory: usize, w_exc: f32, w_inh: f32, bias: f64, prior: f64) -> Self {
        LogisticNeurons {
            bias: vec![bias; n],
            input_weight: vec![0.0; n],
            prior: vec![prior; n],
            weights: Weights::dale(n, excitatory, w_exc, w_inh),
        }
    }

    /// Whether these neurons fit `net`: one entry per neuron, weights
    /// aligned with its topology, which must list partners (not all-to-all),
    /// and sums that fit their fixed point ([`Self::scale`], returned).
    pub fn check(&self, net: &RuntimeNetwork) -> Result<SynapticScale, String> {
        let n = net.n;
        if net.topology.all_to_all {
            return Err(
                "the sparse engine needs explicit presynaptic partners; allowed: any topology but all_to_all \
                 (all-to-all networks are small: they run on the agent engine)"
                    .into(),
            );
        }
        for (what, len) in [
            ("bias", self.bias.len()),
            ("input_weight", self.input_weight.len()),
            ("prior", self.prior.len()),
        ] {
            if len != n {
                return Err(format!("{what} has {len} entries; allowed: one per neuron ({n})"));
            }
        }
        match &self.weights {
            Weights::PerSource(w) if w.len() != n => {
                Err(format!("{} per-source weights; allowed: one per neuron ({n})", w.len()))
            }
            Weights::PerSynapse(w) if w.len() != net.topology.pre.len() => Err(format!(
                "{} synaptic weights; allowed: one per synapse of the topology ({})",
                w.len(),
                net.topology.pre.len()
            )),
            _ => Ok(()),
        }?;
        self.scale(net)
    }

    /// The fixed point of these neurons' synaptic sums on `net`: finite
    /// weights whose sums fit.
    pub fn scale(&self, net: &RuntimeNetwork) -> Result<SynapticScale, String> {
        let (Weights::PerSource(w) | Weights::PerSynapse(w)) = &self.weights;
        if let Some(v) = w.iter().find(|v| !v.is_finite()) {
            return Err(format!("a synaptic weight is {v}; allowed: finite weights"));
        }
        let max_w = w.iter().fold(0.0f64, |m, &v| m.max((v as f64).abs()));
        let max_in = (0..net.n).map(|i| net.topology.partners(i).len()).max().unwrap_or(0);
        SynapticScale::for_range(max_w, max_in).ok_or_else(|| {
            format!(
                "synaptic weights up to {max_w} on up to {max_in} synapses per neuron could sum to {:.3e}; \
                 allowed: |w| × in-degree up to 2²⁹ (sums are exact 32-bit fixed point)",
                max_w * max_in as f64
            )
        })
    }

    /// Neuron i's synaptic input `Σ_{j ∈ pre(i)} w_ij σ_j` in the fixed
    /// point `scale` (exact, so in any order) — the definition every update
    /// path implements.
    pub fn synaptic_sum(&self, net: &RuntimeNetwork, scale: SynapticScale, i: usize, frame: &[u64]) -> i32 {
        let spike = |j: u32| (frame[j as usize / 64] >> (j % 64) & 1) as i32;
        let pre = net.topology.partners(i);
        match &self.weights {
            Weights::PerSource(w) => pre.iter().map(|&j| scale.weight(w[j as usize]) * spike(j)).sum(),
            Weights::PerSynapse(w) => {
                let lo = net.topology.offsets[i] as usize;
                let row = pre.iter().zip(&w[lo..lo + pre.len()]);
                row.map(|(&j, &wj)| scale.weight(wj) * spike(j)).sum()
            }
        }
    }

    /// The weights of the topology's synapses `edges` (indices into its
    /// `pre`), widened to `f64` — where learners start from these neurons.
    pub fn synapse_weights(&self, net: &RuntimeNetwork, edges: std::ops::Range<usize>) -> Vec<f64> {
        match &self.weights {
            Weights::PerSource(w) => net.topology.pre[edges].iter().map(|&j| w[j as usize] as f64).collect(),
            Weights::PerSynapse(w) => w[edges].iter().map(|&v| v as f64).collect(),
        }
    }

    /// Every neuron's weight in fixed point, for per-source weights.
    fn fixed_per_source(&self, scale: SynapticScale) -> Option<Vec<i32>> {
        match &self.weights {
            Weights::PerSource(w) => Some(w.iter().map(|&v| scale.weight(v)).collect()),
            Weights::PerSynapse(_) => None,
        }
    }

    /// `logit π_i(1 | x, σ)` from neuron i's synaptic sum (its value,
    /// [`SynapticScale::value`]).
    #[inline]
    pub fn logit(&self, net: &RuntimeNetwork, i: usize, x: usize, synaptic: f64) -> f64 {
        let input = if net.receives_input[i] {
            self.input_weight[i] * net.input.values[x]
        } else {
            0.0
        };
        logit(self.bias[i], input, synaptic)
    }

    /// σ(logit) of neuron i and its two log-ratios in fixed point (what
    /// [`TransferMemo`] remembers).
    #[inline]
    fn transfer(&self, net: &RuntimeNetwork, i: usize, x: usize, synaptic: f64) -> (f64, [i64; 2]) {
        transfer(self.logit(net, i, x, synaptic), self.prior[i])
    }

    /// Bytes held by the parameters.
    pub fn bytes(&self) -> u64 {
        let w = match &self.weights {
            Weights::PerSource(w) | Weights::PerSynapse(w) => w.len() * 4,
        };
        (self.bias.len() * 24 + w) as u64
    }
}

/// The logit from its three terms, added in this order by every update
/// path.
#[inline]
fn logit(bias: f64, input: f64, synaptic: f64) -> f64 {
    bias + input + synaptic
}

/// The synapses onto one shard's neurons, by presynaptic neuron.
struct PushShard {
    /// The shard's first neuron.
    start: usize,
    /// `offsets[j]..offsets[j+1]` indexes neuron j's synapses onto this shard.
    offsets: Vec<u32>,
    /// Postsynaptic neuron, as an index within the shard.
    targets: Vec<u32>,
    /// Weights aligned with `targets`, in fixed point (empty for
    /// per-source weights).
    weights: Vec<i32>,
    /// The synaptic sums of the shard's neurons (fixed point): this tick's,
    /// or under asynchronous updates the running sums.
    acc: Vec<i32>,
    /// The frame `acc` holds the sums of, when `seen_valid` (synchronous
    /// and random-partial updates; see [`PushShard::catch_up`]).
    seen: Vec<u64>,
    seen_valid: bool,
    /// Whether the engine's tables exceed [`ROWS_FAR`].
    far: bool,
}

impl PushShard {
    /// Transpose the topology's rows `range` into a table by source, keeping
    /// targets ascending within each source.
    fn build(
        net: &RuntimeNetwork,
        neurons: &LogisticNeurons,
        scale: SynapticScale,
        range: std::ops::Range<usize>,
    ) -> Result<Self, String> {
        let topo = &net.topology;
        let (lo, hi) = (topo.offsets[range.start] as usize, topo.offsets[range.end] as usize);
        if hi - lo > u32::MAX as usize {
            return Err(format!(
                "a shard of {} neurons holds {} synapses; allowed: at most {} per shard (use more shards)",
                range.len(),
                hi - lo,
                u32::MAX
            ));
        }
        let mut offsets = vec![0u32; net.n + 1];
        for &j in &topo.pre[lo..hi] {
            offsets[j as usize + 1] += 1;
        }
        for j in 0..net.n {
            offsets[j + 1] += offsets[j];
        }
        let mut fill = offsets.clone();
        let mut targets = huge_zeroed::<u32>(hi - lo);
        let per_synapse = match &neurons.weights {
            Weights::PerSynapse(w) => Some(w),
            Weights::PerSource(_) => None,
        };
        let mut weights = vec![0i32; if per_synapse.is_some() { hi - lo } else { 0 }];
        for i in range.clone() {
            let row = topo.offsets[i] as usize..topo.offsets[i + 1] as usize;
            for e in row {
                let j = topo.pre[e] as usize;
                let at = fill[j] as usize;
                fill[j] += 1;
                targets[at] = (i - range.start) as u32;
                if let Some(w) = per_synapse {
                    weights[at] = scale.weight(w[e]);
                }
            }
        }
        Ok(PushShard {
            start: range.start,
            offsets,
            targets,
            weights,
            acc: huge_zeroed(range.len()),
            seen: vec![0; net.n.div_ceil(64)],
            seen_valid: false,
            far: false,
        })
    }

    /// Add `sign` × neuron j's weights to its targets' sums.
    #[inline(always)]
    fn spread(&mut self, j: usize, sign: i32, per_source: Option<&[i32]>) {
        let (a, b) = (self.offsets[j] as usize, self.offsets[j + 1] as usize);
        let targets = &self.targets[a..b];
        let acc = &mut self.acc[..];
        match per_source {
            Some(ws) => {
                let wj = sign * ws[j];
                for &t in targets {
                    // SAFETY: `build` stores only targets below the shard's length.
                    unsafe { *acc.get_unchecked_mut(t as usize) += wj };
                }
            }
            None => {
                for (&t, &wt) in targets.iter().zip(&self.weights[a..b]) {
                    // SAFETY: as above.
                    unsafe { *acc.get_unchecked_mut(t as usize) += sign * wt };
                }
            }
        }
    }

    /// The synaptic sums of `frame`, from those of the frame the shard saw
    /// last: when fewer neurons changed state since than spike now, each
    /// change adds ± its weights (random-partial updates with small q
    /// change few neurons per tick); else afresh. Both are exact integer
    /// sums, so the choice never changes a result (and no partial sum
    /// leaves the range of a full one: each is a sum over a subset of the
    /// synapses).
    fn catch_up(&mut self, frame: &[u64], per_source: Option<&[i32]>) {
        if self.seen_valid {
            let changes: u32 = frame.iter().zip(&self.seen).map(|(a, b)| (a ^ b).count_ones()).sum();
            let spikes: u32 = frame.iter().map(|w| w.count_ones()).sum();
            if changes < spikes {
                let seen = std::mem::take(&mut self.seen);
                self.push(frame, |w| frame[w] ^ seen[w], true, per_source);
                self.seen = seen;
                self.seen.copy_from_slice(frame);
                return;
            }
        }
        self.accumulate(frame, per_source);
        self.seen.copy_from_slice(frame);
        self.seen_valid = true;
    }

    /// The synaptic sums of `frame`: every spiking neuron adds its weight
    /// to its targets in this shard.
    fn accumulate(&mut self, frame: &[u64], per_source: Option<&[i32]>) {
        self.seen_valid = false;
        self.acc.fill(0);
        self.push(frame, |w| frame[w], false, per_source);
    }

    /// Spread every neuron whose bit is set in `words` (word w = `words(w)`,
    /// for the words of `frame`; `sparse` when few are): + its weights if
    /// it spikes in `frame`, − if not. Past [`ROWS_FAR`] of table, the rows
    /// of the neurons a few ahead are fetched while this one spreads.
    #[inline]
    fn push(&mut self, frame: &[u64], words: impl Fn(usize) -> u64 + Copy, sparse: bool, per_source: Option<&[i32]>) {
        match self.far {
            true => self.push_far(frame, words, sparse, per_source),
            false => self.push_near(frame, words, per_source),
        }
    }

    /// [`PushShard::push`] asking for rows ahead (kept apart so that the
    /// near loop stays as tight as it was: inlined together, the near
    /// loop ran 13 % slower at N = 10⁴).
    #[inline(never)]
    fn push_far(
        &mut self,
        frame: &[u64],
        words: impl Fn(usize) -> u64 + Copy,
        sparse: bool,
        per_source: Option<&[i32]>,
    ) {
        // Rows ROWS_AHEAD neurons ahead; when the neurons are few and
        // far apart (changes), their bounds 2·ROWS_AHEAD ahead as well
        // (a row's address is its bounds; dense bounds are read in
        // order, which the hardware follows: fetching them cost 5 %).
        let mut bounds = ones(frame.len(), words).skip(2 * ROWS_AHEAD);
        let mut rows = ones(frame.len(), words).skip(ROWS_AHEAD);
        for j in ones(frame.len(), words) {
            if sparse && let Some(k) = bounds.next() {
                prefetch(&self.offsets[k]);
            }
            if let Some(k) = rows.next() {
                prefetch_targets(self, k);
            }
            let sign = if frame[j / 64] >> (j % 64) & 1 == 1 { 1 } else { -1 };
            self.spread(j, sign, per_source);
        }
    }

    /// [`PushShard::push`] in order, without asking for rows.
    #[inline]
    fn push_near(&mut self, frame: &[u64], words: impl Fn(usize) -> u64 + Copy, per_source: Option<&[i32]>) {
        for (w, &now) in frame.iter().enumerate() {
            let mut bits = words(w);
            while bits != 0 {
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                let sign = if now >> b & 1 == 1 { 1 } else { -1 };
                self.spread(w * 64 + b as usize, sign, per_source);
            }
        }
    }
}

/// Neurons ahead of the one spreading whose rows [`PushShard::push`] asks
/// for (2–32 measured alike at N = 5·10⁴, 10⁵ and 10⁶).
const ROWS_AHEAD: usize = 4;

/// Bytes of push table (all of the engine's shards) from which
/// [`PushShard::push`] fetches rows ahead: measured synchronous with
/// `examples/scale.rs` on this project's 2-core EPYC VM (1 MiB L2 per core),
/// fetching cost 5 % at N = 10⁴ and 2·10⁴ (4 and 8 MiB of targets), was even
/// at 3·10⁴ and gained 1.45× at 5·10⁴, 1.7× at 10⁵ and 1.4× at 10⁶: the
/// hardware follows a row once it has started, but a row's start is a miss.
const ROWS_FAR: usize = 12 << 20;

/// The set bits of `words(0..len)`, ascending.
fn ones(len: usize, words: impl Fn(usize) -> u64 + Copy) -> impl Iterator<Item = usize> {
    (0..len).flat_map(move |w| {
        let mut bits = words(w);
        std::iter::from_fn(move || {
            (bits != 0).then(|| {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                w * 64 + b
            })
        })
    })
}

/// A zeroed vector that the kernel may back with 2 MiB pages: a random
/// access into tables of many megabytes otherwise misses the TLB as well
/// as the cache (no effect on results).
fn huge_zeroed<T: Clone + Default>(len: usize) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(len);
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let bytes = len * std::mem::size_of::<T>();
        let (from, to) = (
            (v.as_ptr() as usize).next_multiple_of(PAGE),
            (v.as_ptr() as usize + bytes) / PAGE * PAGE,
        );
        if to > from + (4 << 20) {
            // SAFETY: advice on pages inside this vector's own allocation,
            // before they are touched; it cannot change their contents.
            unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE) };
        }
    }
    v.resize(len, T::default());
    v
}

/// One thread's shards and its neurons' random streams.
struct SparseHost<'a> {
    neurons: &'a LogisticNeurons,
    /// Per-source weights in fixed point (`None`: per synapse, in the tables).
    per_source: Option<std::sync::Arc<[i32]>>,
    scale: SynapticScale,
    /// The thread's first neuron (its streams start there).
    first: usize,
    rng: Vec<Stream>,
    shards: Vec<PushShard>,
    /// Random-partial updates with q ≤ 0.02: each shard's calendar of actors.
    schedules: Vec<Option<Schedule>>,
    classes: std::sync::Arc<Classes>,
    memo: TransferMemo,
}

impl Host for SparseHost<'_> {
    fn step(
        &mut self,
        net: &RuntimeNetwork,
        range: std::ops::Range<usize>,
        tick: &Tick,
        emit: &mut dyn FnMut(usize, u64, u64),
    ) -> (i64, i64) {
        let (x, frame) = (tick.x, tick.frame);
        if range.is_empty() {
            return (0, 0);
        }
        let (neurons, scale) = (self.neurons, self.scale);
        let per_source = self.per_source.as_deref();
        let at = self
            .shards
            .iter()
            .position(|s| s.start == range.start)
            .expect("the host owns the shard it steps");
        let shard = &mut self.shards[at];
        shard.catch_up(frame, per_source);
        if let Some(schedule) = self.schedules[at].as_mut() {
            let rngs = &mut self.rng[range.start - self.first..range.end - self.first];
            let acc = &shard.acc[..];
            let (memo, classes) = (&mut self.memo, &*self.classes);
            return step_partial(
                net,
                neurons,
                range,
                tick,
                (acc, scale),
                (memo, classes),
                (schedule, rngs),
                emit,
            );
        }
        let q = match net.update {
            UpdateScheme::RandomPartial { q } if q < 1.0 => Some(q),
            _ => None,
        };
        // Word by word: the new bits of a word are assembled in a register,
        // and the spike-count change is a difference of popcounts (dead
        // neurons are 0 in every frame).
        let (lo, hi) = (range.start, range.end);
        let alive = &net.alive[lo..hi];
        let rngs = &mut self.rng[lo - self.first..hi - self.first];
        let acc = &shard.acc[..];
        let (memo, classes) = (&mut self.memo, &*self.classes);
        let (mut delta, mut info) = (0i64, 0i64);
        let mut k = lo;
        while k < hi {
            let w = k / 64;
            let end = ((w + 1) * 64).min(hi);
            let old = frame[w];
            let mut bits = 0u64;
            for i in k - lo..end - lo {
                let shift = (lo + i) % 64;
                let rng = &mut rngs[i];
                let fired = if alive[i] && q.is_none_or(|q| rng.random::<f64>() < q) {
                    let (p, ratio) = memo.transfer(classes.key(lo + i, x, acc[i]), || {
                        neurons.transfer(net, lo + i, x, scale.value(acc[i]))
                    });
                    let fired = rng.random::<f64>() < p;
                    info += ratio[fired as usize];
                    fired
                } else {
                    old >> shift & 1 == 1
                };
                bits |= (fired as u64) << shift;
            }
            let mask = word_mask(k % 64, end - k);
            delta += bits.count_ones() as i64 - (old & mask).count_ones() as i64;
            emit(w, bits, mask);
            k = end;
        }
        (delta, info)
    }
}

/// The largest q at which random-partial shards keep a calendar
/// ([`super::partial`]) rather than draw every neuron's coin in a scan:
/// measured with `examples/scale.rs` at N = 10⁴ and 10⁵, the calendar
/// was 10–25 % slower at q = 0.1, even at 0.03, 1.25–1.9× faster at 0.01
/// and 2.2× at 0.001 (its streams are read out of order; the scan's in
/// order).
const SCHEDULE_AT_MOST: f64 = 0.02;

/// One shard's random-partial tick: the neurons its calendar lists act
/// (their coins were drawn ahead, see [`super::partial`]), the others keep
/// their bits; returns (change in spike count, Σ log-ratios in fixed
/// point) as [`Host::step`] does.
#[allow(clippy::too_many_arguments)]
fn step_partial(
    net: &RuntimeNetwork,
    neurons: &LogisticNeurons,
    range: std::ops::Range<usize>,
    tick: &Tick,
    (acc, scale): (&[i32], SynapticScale),
    (memo, classes): (&mut TransferMemo, &Classes),
    (schedule, rngs): (&mut Schedule, &mut [Stream]),
    emit: &mut dyn FnMut(usize, u64, u64),
) -> (i64, i64) {
    let (t, x, frame) = (tick.t, tick.x, tick.frame);
    let (lo, hi) = (range.start, range.end);
    schedule.start(t, rngs, &net.alive[lo..hi]);
    let (w0, w1) = (lo / 64, (hi - 1) / 64);
    let mut words = std::mem::take(&mut schedule.words);
    words.clear();
    words.extend_from_slice(&frame[w0..=w1]);
    let (mut delta, mut info) = (0i64, 0i64);
    let due = schedule.take(t);
    for (j, &e) in due.iter().enumerate() {
        // (The actors' streams are scattered: ask for those a few
        // entries on while this one acts.)
        if let Some(&soon) = due.get(j + 8) {
            let (s, _) = Schedule::entry(soon);
            prefetch(&rngs[s]);
            prefetch(&acc[s]);
            schedule.prefetch(s);
        }
        let (i, resumes) = Schedule::entry(e);
        let rng = &mut rngs[i];
        if resumes && !schedule.walk(i, t, rng) {
            continue;
        }
        let (p, ratio) = memo.transfer(classes.key(lo + i, x, acc[i]), || {
            neurons.transfer(net, lo + i, x, scale.value(acc[i]))
        });
        let fired = rng.random::<f64>() < p;
        info += ratio[fired as usize];
        let (w, bit) = ((lo + i) / 64 - w0, 1u64 << ((lo + i) % 64));
        if (words[w] & bit != 0) != fired {
            words[w] ^= bit;
            delta += if fired { 1 } else { -1 };
        }
        schedule.walk_after(i, t, rng);
    }
    schedule.done(t, due);
    let mut k = lo;
    while k < hi {
        let w = k / 64;
        let end = ((w + 1) * 64).min(hi);
        let mask = word_mask(k % 64, end - k);
        emit(w, words[w - w0] & mask, mask);
        k = end;
    }
    schedule.words = words;
    (delta, info)
}

/// Ask the cache for what neuron `k` reads when it acts: its synaptic sum,
/// stream, class and the bounds of its targets (a hint; no effect on
/// results; its parameters are read only when the memo misses).
#[inline(always)]
fn prefetch_actor(field: &PushShard, classes: &Classes, k: usize, rng: &Stream) {
    prefetch(&field.acc[k]);
    prefetch(rng);
    prefetch(&field.offsets[k]);
    if !classes.single {
        prefetch(&classes.of[k]);
    }
}

/// Bytes of push table below which asynchronous runs do not prefetch the
/// coming actors' targets: measured on this project's 2-core EPYC VM (1 MiB
/// L2 per core), prefetching cost 13 % at N = 10⁴ (4 MiB of targets) and
/// gained 25 % at 3·10⁴ (12 MiB); around 1.5–2·10⁴ it was even.
const TARGETS_NEAR: usize = 6 << 20;

/// Ask the cache for neuron `k`'s targets and, when per synapse, weights
/// (best once its bounds are cached, see [`prefetch_actor`]).
#[inline(always)]
fn prefetch_targets(field: &PushShard, k: usize) {
    let row = field.offsets[k] as usize..field.offsets[k + 1] as usize;
    for line in field.targets[row.clone()].chunks(16) {
        prefetch(&line[0]);
    }
    if !field.weights.is_empty() {
        for line in field.weights[row].chunks(16) {
            prefetch(&line[0]);
        }
    }
}

#[inline(always)]
pub(super) fn prefetch<T>(at: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; the address is a live reference.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(at as *const T as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// `log(π(a)/p(a))` in the runtime's fixed point, as the agent engine forms it.
#[inline]
fn log_ratio_fixed(p: f64, prior: f64, fired: bool) -> i64 {
    super::to_fixed(super::log_ratio(p, prior, fired))
}

/// Neurons grouped by what their transfer function depends on besides
/// the synaptic sum: bias, input weight (for those that receive the
/// input) and prior. Two neurons of one class with the same sum (and
/// input) act with the same probability and the same log-ratios, so
/// `(class, input, sum)` is an exact key for [`TransferMemo`].
struct Classes {
    /// Each neuron's class (all 0 when `single`).
    of: Vec<u8>,
    /// One class: the key skips reading `of`.
    single: bool,
    /// Some neuron receives the input: the key holds it.
    input: bool,
    /// At most [`MAX_CLASSES`] classes and fewer than 2²⁴ − 1 inputs: else
    /// no memo.
    keyed: bool,
}

/// The most classes a key holds (one byte).
const MAX_CLASSES: usize = 256;

impl Classes {
    fn new(net: &RuntimeNetwork, neurons: &LogisticNeurons) -> Self {
        let mut ids = std::collections::HashMap::new();
        let mut of = Vec::with_capacity(net.n);
        for k in 0..net.n {
            let input = if net.receives_input[k] {
                Some(neurons.input_weight[k].to_bits())
            } else {
                None
            };
            let key = (neurons.bias[k].to_bits(), input, neurons.prior[k].to_bits());
            let next = ids.len();
            of.push(*ids.entry(key).or_insert(next));
        }
        let keyed = ids.len() <= MAX_CLASSES && net.input.len() < (1 << 24) - 1;
        Classes {
            of: if keyed {
                of.iter().map(|&c| c as u8).collect()
            } else {
                vec![0; net.n]
            },
            single: ids.len() == 1,
            input: net.receives_input.iter().any(|&r| r),
            keyed,
        }
    }

    /// Neuron k's key at input x with synaptic sum `acc` (fixed point):
    /// the sum's 32 bits, the class's 8 and the input's 24 (never all
    /// ones, [`EMPTY`]).
    #[inline]
    fn key(&self, k: usize, x: usize, acc: i32) -> u64 {
        let class = if self.single { 0 } else { self.of[k] as u64 };
        let x = if self.input { x as u64 } else { 0 };
        acc as u32 as u64 | class << 32 | x << 40
    }
}

/// The key of an empty memo slot (its input field is 2²⁴ − 1, which no
/// key holds).
const EMPTY: u64 = u64::MAX;

/// A memo of the transfer function: a neuron's key ([`Classes::key`]) ↦
/// (σ(logit), the fixed-point log ratios of staying silent and of firing),
/// direct-mapped by a hash of the key. Fixed neurons with shared
/// parameters and per-source weights see a few hundred distinct synaptic
/// sums (the benchmark network: 0.2·e − 1.0·i over the numbers e, i of
/// active excitatory and inhibitory inputs), so most updates skip an
/// `exp` and a `ln` — about a third of an update's time — and the loads
/// of the neuron's parameters. An entry holds exactly what the
/// computation gives, so no result changes. One memo per thread (no
/// sharing); it turns itself off when fewer than half of its first
/// [`MEMO_TRIAL`] lookups hit (every sum distinct: per-synapse weights),
/// leaving one predictable branch per update.
struct TransferMemo {
    keys: Box<[u64]>,
    values: Box<[(f64, [i64; 2])]>,
    /// Lookups left in the trial (0: decided).
    trial: u32,
    misses: u32,
    on: bool,
}

/// log₂ of the memo's slots (8 B of key and 24 of value each: 128 KiB).
const MEMO_BITS: u32 = 12;
/// Lookups after which the memo decides whether it pays.
const MEMO_TRIAL: u32 = 1 << 16;

impl TransferMemo {
    /// A memo, or a stand-in that always computes when `on` is false.
    fn new(on: bool) -> Self {
        let slots = if on { 1 << MEMO_BITS } else { 0 };
        TransferMemo {
            keys: vec![EMPTY; slots].into_boxed_slice(),
            values: vec![(0.0, [0; 2]); slots].into_boxed_slice(),
            trial: MEMO_TRIAL,
            misses: 0,
            on,
        }
    }

    /// `(σ(logit), [log_ratio(silent), log_ratio(fired)])` of the neuron
    /// whose key is `key`, from the memo or from `compute`.
    #[inline]
    fn transfer(&mut self, key: u64, compute: impl FnOnce() -> (f64, [i64; 2])) -> (f64, [i64; 2]) {
        if !self.on {
            return compute();
        }
        if self.trial > 0 {
            self.trial -= 1;
            if self.trial == 0 && self.misses > MEMO_TRIAL / 2 {
                self.on = false;
            }
        }
        let h = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - MEMO_BITS)) as usize;
        if self.keys[h] == key {
            return self.values[h];
        }
        self.misses += 1;
        let value = compute();
        self.keys[h] = key;
        self.values[h] = value;
        value
    }
}

/// The transfer function itself (what [`TransferMemo`] remembers).
#[inline]
fn transfer(logit: f64, prior: f64) -> (f64, [i64; 2]) {
    let p = sigmoid(logit);
    (p, [log_ratio_fixed(p, prior, false), log_ratio_fixed(p, prior, true)])
}

/// The scale benchmark's network (`scenarios/ei_network.toml` at n = 10 000):
/// `n` neurons with exactly 100 distinct presynaptic partners each (drawn
/// among all others, no self-loops), neurons `0..0.8n` excitatory (+0.2),
/// the rest inhibitory (−1.0), bias −0.6, prior 0.27, no input, rewarded
/// at n/4 active; topology from `seed`.
pub fn benchmark_network(n: usize, update: UpdateScheme, seed: u64) -> (RuntimeNetwork, LogisticNeurons) {
    let net = RuntimeNetwork {
        n,
        alive: vec![true; n],
        input: crate::model::InputProcess::switching(vec![0.0], 0.0),
        reward: crate::model::RewardSpec::TargetCount {
            targets: vec![n / 4],
            value: 1.0,
        },
        update,
        topology: crate::topology::Topology::build(&crate::topology::TopologySpec::RandomInDegree { k: 100 }, n, seed),
        receives_input: vec![false; n],
    };
    let neurons = LogisticNeurons::excitatory_inhibitory(n, n * 8 / 10, 0.2, -1.0, -0.6, 0.27);
    (net, neurons)
}

/// Bytes a network of `n` neurons and `synapses` synapses takes to run on
/// the sparse engine with `shards` shards, before anything is built: the
/// topology (8 B per neuron, 4 per synapse, 4 more with edge-list weights),
/// the parameters (24 B per neuron; weights 4 B per neuron, or per synapse),
/// each neuron's stream (32 B), the fixed-point weights (4 B per neuron, or
/// per synapse in the push tables), the push tables (4 B and a bit per
/// neuron per shard — one shard when asynchronous —, 4 per synapse, and a
/// 4 B sum per neuron), each neuron's class (1 B, for the memo of the
/// transfer function) and, under random-partial updates with q ≤ 0.02, its
/// walk (a 32 B stream and an 8 B tick, `runtime::random_partial`) and per shard
/// a calendar of 2·span empty lists (filling, they add about 4 B per
/// neuron). Matches [`SparseEngine::bytes`] +
/// [`LogisticNeurons::bytes`] + the topology's; the memo itself is a fixed
/// 128 KiB per thread.
pub fn estimate_bytes(n: u64, synapses: u64, per_synapse_weights: bool, shards: u64, update: UpdateScheme) -> u64 {
    let w = if per_synapse_weights { 4 * synapses } else { 4 * n };
    let topology = 8 * (n + 1) + 4 * synapses + if per_synapse_weights { 4 * synapses } else { 0 };
    let shards = if update == UpdateScheme::Asynchronous {
        1
    } else {
        shards
    };
    let fixed = if per_synapse_weights { 4 * synapses } else { 4 * n };
    let push = shards * (4 * (n + 1) + 8 * n.div_ceil(64)) + 4 * synapses + fixed + 4 * n;
    let schedule = match update {
        UpdateScheme::RandomPartial { q } if q <= SCHEDULE_AT_MOST => {
            Schedule::BYTES_PER_NEURON * n + shards * Schedule::calendar_bytes(q)
        }
        _ => 0,
    };
    topology + 24 * n + w + 32 * n + push + n + schedule
}

/// A sparse network ready to run: its push tables are built once for a
/// layout and kept across runs (a simulation runs in many short spans).
pub struct SparseEngine<'a> {
    net: &'a RuntimeNetwork,
    neurons: &'a LogisticNeurons,
    plan: Plan,
    hosts: Vec<SparseHost<'a>>,
    alive_list: Vec<usize>,
    ranks: Option<&'a Ranks>,
    /// Asynchronous updates: the frame whose synaptic sums the (single)
    /// shard holds, so the next run continues from them when it starts
    /// there (any other start rebuilds them).
    synced: Option<Vec<u64>>,
}

impl<'a> SparseEngine<'a> {
    /// Build the engine for `net` with `neurons`, their streams seeded by
    /// `seed` (the agent engine's `(seed, Agent, k)` streams). Asynchronous
    /// networks run on one thread whatever the layout (one neuron acts per
    /// tick); the results do not depend on the layout in any case.
    pub fn new(
        net: &'a RuntimeNetwork,
        neurons: &'a LogisticNeurons,
        layout: Layout,
        seed: u64,
    ) -> Result<Self, String> {
        Self::new_on(net, neurons, layout, seed, None)
    }

    /// [`SparseEngine::new`] as one rank of a distributed run: this process
    /// builds and runs only its block of neurons
    /// ([`super::transport::rank_neurons`]), and every rank ends each run with
    /// the same state and totals as a single process would.
    pub fn new_on(
        net: &'a RuntimeNetwork,
        neurons: &'a LogisticNeurons,
        layout: Layout,
        seed: u64,
        ranks: Option<&'a Ranks>,
    ) -> Result<Self, String> {
        let scale = neurons.check(net)?;
        let asynchronous = net.update == UpdateScheme::Asynchronous;
        let ranks = ranks.filter(|r| r.size() > 1);
        if let Some(r) = ranks {
            if asynchronous {
                return Err(
                    "asynchronous updates change one neuron per tick, so several MPI ranks would only add \
                     a collective per tick; allowed: one rank, or update = \"synchronous\" / \"random_partial\""
                        .into(),
                );
            }
            check_ranks(net.n, r.size())?;
        }
        let block = ranks.map_or(0..net.n, |r| rank_neurons(net.n, r.rank(), r.size()));
        let plan = Plan::within(block, if asynchronous { Layout::single() } else { layout });
        let per_source: Option<std::sync::Arc<[i32]>> = neurons.fixed_per_source(scale).map(Into::into);
        let classes = std::sync::Arc::new(Classes::new(net, neurons));
        let mut hosts = Vec::with_capacity(plan.threads);
        for j in 0..plan.threads {
            let agents = plan.thread_agents(j);
            // (Asynchronous: one shard, the whole network.)
            let shards = plan.thread_shards[j]
                .clone()
                .into_par_iter()
                .map(|s| PushShard::build(net, neurons, scale, plan.shard(s)))
                .collect::<Result<Vec<_>, _>>()?;
            let rng: Vec<Stream> = agents.clone().map(|k| stream(seed, Domain::Agent, k as u64)).collect();
            let schedules = shards
                .iter()
                .map(|s| match net.update {
                    UpdateScheme::RandomPartial { q } if q <= SCHEDULE_AT_MOST => {
                        let from = s.start - agents.start;
                        Some(Schedule::new(q, &rng[from..from + s.acc.len()]))
                    }
                    _ => None,
                })
                .collect();
            hosts.push(SparseHost {
                neurons,
                per_source: per_source.clone(),
                scale,
                first: agents.start,
                rng,
                shards,
                schedules,
                memo: TransferMemo::new(classes.keyed),
                classes: classes.clone(),
            });
        }
        let table: usize = hosts
            .iter()
            .flat_map(|h| &h.shards)
            .map(|s| 4 * (s.targets.len() + s.weights.len()))
            .sum();
        for s in hosts.iter_mut().flat_map(|h| &mut h.shards) {
            s.far = table > ROWS_FAR;
        }
        Ok(SparseEngine {
            net,
            neurons,
            plan,
            hosts,
            alive_list: net.alive_list(),
            ranks,
            synced: None,
        })
    }

    /// Bytes held by the engine's tables and state (push tables, streams,
    /// accumulators, classes), beside the topology, the parameters and a
    /// fixed 128 KiB memo per thread.
    pub fn bytes(&self) -> u64 {
        let mut b = 0usize;
        for h in &self.hosts {
            b += h.rng.len() * std::mem::size_of::<Stream>();
            for s in &h.shards {
                b += s.offsets.len() * 4 + s.targets.len() * 4 + s.weights.len() * 4 + s.acc.len() * 4;
                b += s.seen.len() * 8;
            }
            b += h.schedules.iter().flatten().map(|s| s.bytes() as usize).sum::<usize>();
        }
        // The per-source weights in fixed point and the neurons' classes,
        // shared by the threads.
        b += self.hosts[0].per_source.as_ref().map_or(0, |w| w.len() * 4);
        b += self.hosts[0].classes.of.len();
        b as u64
    }

    /// The neurons this engine runs: all of them, or this rank's block.
    pub fn neurons(&self) -> std::ops::Range<usize> {
        self.plan.agents.clone()
    }

    /// The random streams of this engine's neurons ([`Self::neurons`]), in
    /// neuron order (what a checkpoint saves).
    pub fn streams(&self) -> Vec<Stream> {
        let mut all = Vec::with_capacity(self.plan.agents.len());
        for h in &self.hosts {
            let mut rng = h.rng.clone();
            // (Random-partial streams run ahead of the tick: as they stand at it.)
            for (s, schedule) in h.shards.iter().zip(&h.schedules) {
                if let Some(schedule) = schedule {
                    let from = s.start - h.first;
                    schedule.settle(&mut rng[from..from + s.acc.len()]);
                }
            }
            all.extend(rng);
        }
        all
    }

    /// Continue with `streams`: this engine's neurons' (from
    /// [`Self::streams`] of the same network and ranks, in any layout) or
    /// every neuron's, of which it takes its own.
    pub fn set_streams(&mut self, streams: &[Stream]) -> Result<(), String> {
        let have: usize = self.hosts.iter().map(|h| h.rng.len()).sum();
        let streams = match streams.len() == self.net.n {
            true => &streams[self.neurons()],
            false => streams,
        };
        if streams.len() != have {
            return Err(format!("{} random streams for {have} neurons", streams.len()));
        }
        let mut rest = streams;
        for h in &mut self.hosts {
            let (mine, after) = rest.split_at(h.rng.len());
            h.rng.clone_from_slice(mine);
            h.schedules.iter_mut().flatten().for_each(Schedule::reset);
            rest = after;
        }
        Ok(())
    }

    /// Run `ticks` ticks from `state`, calling `observer` for each tick.
    /// Returns the state after the last tick and the run's totals.
    pub fn run(&mut self, state: RunState, ticks: u64, observer: &mut dyn Observer) -> (RunState, RunTotals) {
        assert!(
            state.teacher.is_none(),
            "the sparse engine runs fixed neurons (no learning)"
        );
        if self.net.update == UpdateScheme::Asynchronous {
            return self.run_asynchronous(state, ticks, observer);
        }
        let (net, plan, alive) = (self.net, &self.plan, &self.alive_list);
        drive_on(net, &mut self.hosts, plan, alive, state, ticks, observer, self.ranks)
            .unwrap_or_else(|f| panic!("{f}"))
    }

    /// One neuron per tick: the clock draws it, it reads its synaptic sum
    /// and acts; the frame is flipped in place, and a neuron that changes
    /// state updates its targets' sums.
    fn run_asynchronous(&mut self, mut st: RunState, ticks: u64, observer: &mut dyn Observer) -> (RunState, RunTotals) {
        let (net, neurons) = (self.net, self.neurons);
        let host = &mut self.hosts[0];
        let (per_source, scale) = (host.per_source.clone(), host.scale);
        let per_source = per_source.as_deref();
        let (field, memo, rngs) = (&mut host.shards[0], &mut host.memo, &mut host.rng);
        let classes = &*host.classes;
        if self.synced.as_deref() != Some(&st.frame[..]) {
            field.accumulate(&st.frame, per_source);
        }
        let mut count: u64 = st.frame.iter().map(|w| w.count_ones() as u64).sum();
        let mut totals = RunTotals::default();
        let end = st.tick + ticks;
        // The clock's draws are the agent engine's, taken a few ticks early
        // so the coming actors' sums, streams and targets are fetched while
        // this one acts (cache misses on large networks).
        const AHEAD: u64 = 16;
        let alive_list = &self.alive_list;
        let all_alive = alive_list.len() == net.n;
        let draw = |clock: &mut Stream, rngs: &[Stream], field: &PushShard| {
            // (With every neuron alive the list is the identity: skip
            // reading it, a cache miss on large networks.)
            let a = match all_alive {
                true => clock.random_range(0..alive_list.len()) as i64,
                false => super::draw_actor(net, alive_list, clock),
            };
            prefetch_actor(field, classes, a as usize, &rngs[a as usize]);
            a
        };
        // The actor of tick t sits at `coming[t % AHEAD]` from AHEAD ticks
        // before it acts.
        let mut coming = [0i64; AHEAD as usize];
        for t in st.tick..end.min(st.tick + AHEAD) {
            coming[(t % AHEAD) as usize] = draw(&mut st.clock, rngs, field);
        }
        let watching = observer.watches();
        // Fetching targets that only changing actors (≈ 40 %) read pays
        // once the table leaves the near caches.
        let far = field.targets.len() * 4 > TARGETS_NEAR;
        while st.tick < end {
            let t = st.tick;
            let actor = coming[(t % AHEAD) as usize];
            if t + AHEAD < end {
                coming[(t % AHEAD) as usize] = draw(&mut st.clock, rngs, field);
            }
            if far && t + AHEAD / 2 < end {
                prefetch_targets(field, coming[((t + AHEAD / 2) % AHEAD) as usize] as usize);
            }
            let reward = super::reward_at(net, &mut st.decoder, st.x, &st.frame, count as usize);
            if watching {
                observer.record(&TickRecord {
                    t,
                    x: st.x,
                    frame: &st.frame,
                    actor,
                    reward,
                });
            }
            totals.reward += reward;
            totals.spikes += count;
            let k = actor as usize;
            let (acc, x) = (field.acc[k], st.x);
            let (p, ratio) = memo.transfer(classes.key(k, x, acc), || neurons.transfer(net, k, x, scale.value(acc)));
            let fired = rngs[k].random::<f64>() < p;
            totals.info += ratio[fired as usize] as f64 / FIXED;
            let bit = 1u64 << (k % 64);
            let own = st.frame[k / 64] & bit != 0;
            if fired != own {
                st.frame[k / 64] ^= bit;
                count = if fired { count + 1 } else { count - 1 };
                field.spread(k, if fired { 1 } else { -1 }, per_source);
            }
            st.x = super::next_input(net, st.x, &st.frame, &mut st.environment);
            st.tick += 1;
        }
        totals.ticks = st.tick;
        match &mut self.synced {
            Some(f) => f.clone_from(&st.frame),
            None => self.synced = Some(st.frame.clone()),
        }
        (st, totals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key's transfer function in these tests: logit and prior from the
    /// key alone, as the engine's are from (class, input, sum).
    fn computed(key: u64) -> (f64, [i64; 2]) {
        let prior = if key.is_multiple_of(3) { 0.27 } else { 0.5 };
        transfer(-3.0 + 0.01 * (key >> 2) as f64, prior)
    }

    /// What the memo returns is what the transfer function gives, bit for
    /// bit, whether the key was seen before or collides with another.
    #[test]
    fn the_memo_returns_the_transfer_function_exactly() {
        let mut memo = TransferMemo::new(true);
        for round in 0..3u64 {
            for k in 0..1200u64 {
                let key = (k * 7 + round) % 1200;
                assert_eq!(memo.transfer(key, || computed(key)), computed(key), "key {key}");
            }
        }
        assert!(memo.on, "1200 keys in 4096 slots repeat often enough to pay");
        assert!(
            memo.misses < 1800,
            "{} misses in 3600 lookups of 1200 keys",
            memo.misses
        );
    }

    /// Every key new (per-synapse weights): the memo turns itself off after
    /// its trial and keeps answering exactly.
    #[test]
    fn a_memo_that_never_hits_turns_itself_off() {
        let mut memo = TransferMemo::new(true);
        for key in 0..MEMO_TRIAL as u64 + 10 {
            assert_eq!(memo.transfer(key, || computed(key)), computed(key));
        }
        assert!(!memo.on);
        assert_eq!(memo.transfer(5, || computed(5)), computed(5));
    }

    /// A shard's sums after any sequence of frames are the definition's
    /// (`synaptic_sum`), whether it fetches rows ahead or not, catching up
    /// by changes or afresh, with per-source and per-synapse weights.
    #[test]
    fn pushed_sums_are_the_definitions_whether_rows_are_fetched_ahead_or_not() {
        use rand::{Rng, SeedableRng};
        let (net, dale) = benchmark_network(300, UpdateScheme::Synchronous, 3);
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut per_synapse = dale.clone();
        per_synapse.weights = Weights::PerSynapse(
            (0..net.topology.pre.len())
                .map(|_| rng.random_range(-1.0..1.0f32))
                .collect(),
        );
        for neurons in [&dale, &per_synapse] {
            let scale = neurons.scale(&net).unwrap();
            let per_source = neurons.fixed_per_source(scale);
            for far in [false, true] {
                for range in [0..300, 64..200] {
                    let mut shard = PushShard::build(&net, neurons, scale, range.clone()).unwrap();
                    shard.far = far;
                    let mut frame = vec![0u64; 5];
                    for step in 0..40 {
                        // Dense frames, then frames that flip a few bits.
                        for j in 0..300 {
                            let flip = if step % 10 == 0 { 0.5 } else { 0.02 };
                            if rng.random::<f64>() < flip {
                                frame[j / 64] ^= 1 << (j % 64);
                            }
                        }
                        shard.catch_up(&frame, per_source.as_deref());
                        for i in range.clone() {
                            let want = neurons.synaptic_sum(&net, scale, i, &frame);
                            assert_eq!(shard.acc[i - range.start], want, "far {far}, step {step}, neuron {i}");
                        }
                    }
                }
            }
        }
    }

    /// Classes: equal parameters share one; a different bias, prior or
    /// input weight (of a neuron that receives the input) makes another;
    /// an input weight that is not received does not; too many classes
    /// leave the memo off.
    #[test]
    fn neurons_share_a_class_exactly_when_their_transfer_functions_agree() {
        let (mut net, mut ln) = benchmark_network(200, UpdateScheme::Synchronous, 1);
        let one = Classes::new(&net, &ln);
        assert!(one.keyed && one.single && !one.input);
        assert_eq!(one.key(3, 0, -5), (-5i32) as u32 as u64);
        ln.input_weight[10] = 0.7; // not received: same class
        ln.bias[20] = 0.1;
        ln.prior[30] = 0.4;
        net.receives_input[40] = true;
        net.receives_input[41] = true;
        ln.input_weight[41] = 0.7;
        let c = Classes::new(&net, &ln);
        assert!(c.keyed && !c.single && c.input);
        let class = |k: usize| c.of[k];
        assert_eq!(class(10), class(0));
        let distinct = [class(0), class(20), class(30), class(40), class(41)];
        for a in 0..distinct.len() {
            for b in a + 1..distinct.len() {
                assert_ne!(distinct[a], distinct[b], "{distinct:?}");
            }
        }
        // The key tells inputs and sums apart, and is never the empty key.
        assert_ne!(c.key(40, 0, 7), c.key(40, 1, 7));
        assert_ne!(c.key(40, 0, 7), c.key(40, 0, 8));
        assert_ne!(c.key(41, 0, 7), c.key(40, 0, 7));
        assert_ne!(c.key(199, 0, -1), EMPTY);
        for k in 0..200 {
            ln.bias[k] = k as f64 * 1e-3;
        }
        let many = Classes::new(&net, &ln);
        assert!(many.keyed, "200 classes fit a byte");
        let (net, mut ln) = benchmark_network(300, UpdateScheme::Synchronous, 1);
        for k in 0..300 {
            ln.bias[k] = k as f64 * 1e-3;
        }
        assert!(!Classes::new(&net, &ln).keyed, "300 classes do not");
    }
}
