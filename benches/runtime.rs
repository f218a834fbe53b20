//! Runtime throughput against a plain single-threaded loop doing identical
//! work (same topology, same per-neuron random streams, same policy math):
//! - the toy (n = 8, asynchronous, the exact solver's full-state policy);
//! - random_in_degree K = 100, N = 10³ and 10⁴, synchronous logistic neurons
//!   with 80 % excitatory (+0.2) and 20 % inhibitory (−1.0) partners and bias
//!   −0.6 (the scale issue's benchmark network).
//!
//! - the sparse engine (fixed logistic neurons as plain arrays) on that
//!   network at N = 10⁴ and 10⁵: synchronous on 1 and 2 threads against its
//!   plain loop, random-partial, and asynchronous (one neuron per tick).
//!
//! Throughput is reported in neuron-updates per second. `hosted_2_threads`
//! runs the same loop with its threads as shard-host actors (the CLI's default).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use marlin::agents::{FullStatePolicy, LogisticPolicy, Neuron};
use marlin::model::UpdateScheme;
use marlin::rng::{Domain, Stream, stream};
use marlin::runtime::{Layout, NoObserver, RunState, RuntimeNetwork, run};
use marlin::scenario::Scenario;
use marlin::solver::{SolveOptions, solve};
use marlin::topology::Topology;
use rand::Rng;
use std::hint::black_box;
use std::path::Path;

fn toy(c: &mut Criterion) {
    let sc = Scenario::load(Path::new("scenarios/toy8.toml")).unwrap();
    let model = sc.network().unwrap();
    let sol = solve(&model, &SolveOptions::default()).unwrap();
    let net = sc.runtime_network();
    let n = 8;
    let tables: Vec<Vec<f64>> = (0..n)
        .map(|k| (0..2 << n).map(|s| sol.policy.p(s, k)).collect())
        .collect();
    let agents = Neuron::team(FullStatePolicy::per_neuron(n, &sol.policy.fire), &sol.prior, 1);
    let ticks = 100_000u64;
    let mut g = c.benchmark_group("toy8_asynchronous");
    g.throughput(Throughput::Elements(ticks));
    g.bench_function("runtime", |b| {
        b.iter(|| {
            let mut a = agents.clone();
            let (st, _) = run(
                &net,
                &mut a,
                Layout::single(),
                RunState::initial(&net, 1),
                ticks,
                &mut NoObserver,
            );
            black_box(st.frame[0])
        })
    });
    g.bench_function("plain_loop", |b| {
        b.iter(|| {
            // Identical work: clock draw, table look-up, the agent's draw, its
            // log-ratio (the information term), reward, input step, each from
            // the same kind of stream.
            let mut rngs: Vec<Stream> = (0..n).map(|k| stream(1, Domain::Agent, k as u64)).collect();
            let mut clock = stream(1, Domain::Clock, 0);
            let mut env = stream(1, Domain::Environment, 0);
            let (mut x, mut sigma, mut total, mut info) = (0usize, 0usize, 0.0f64, 0.0f64);
            let prior = &sol.prior;
            for _ in 0..ticks {
                total += if sigma.count_ones() as usize == [2, 6][x] {
                    1.0
                } else {
                    0.0
                };
                let k = clock.random_range(0..n);
                let p = tables[k][(x << n) | sigma];
                let fire = rngs[k].random::<f64>() < p;
                info += if fire {
                    (p / prior[k]).ln()
                } else {
                    ((1.0 - p) / (1.0 - prior[k])).ln()
                };
                sigma = if fire { sigma | 1 << k } else { sigma & !(1 << k) };
                if env.random::<f64>() < 0.02 {
                    x = 1 - x;
                }
            }
            black_box((sigma, total, info))
        })
    });
    g.finish();
}

/// The benchmark network, its neurons as the agent engine's logistic agents.
fn ei_network(n: usize) -> (RuntimeNetwork, Vec<Neuron<LogisticPolicy>>) {
    let (net, ln) = marlin::runtime::sparse::benchmark_network(n, UpdateScheme::Synchronous, 7);
    let w = |j: u32| match &ln.weights {
        marlin::runtime::sparse::Weights::PerSource(w) => w[j as usize] as f64,
        marlin::runtime::sparse::Weights::PerSynapse(_) => unreachable!("Dale weights are per source"),
    };
    let agents = (0..n)
        .map(|i| Neuron {
            id: i,
            policy: LogisticPolicy {
                bias: ln.bias[i],
                input_weight: 0.0,
                weights: net.topology.partners(i).iter().map(|&j| w(j)).collect(),
            },
            prior: ln.prior[i],
            rng: stream(7, Domain::Agent, i as u64),
        })
        .collect();
    (net, agents)
}

/// The plain loop: CSR by postsynaptic neuron, a bit frame, per-neuron streams.
fn plain_synchronous(topo: &Topology, weights: &[f64], ticks: u64, seed: u64) -> u64 {
    let n = topo.n;
    let mut rngs: Vec<Stream> = (0..n).map(|k| stream(seed, Domain::Agent, k as u64)).collect();
    let mut cur = vec![0u64; n.div_ceil(64)];
    let mut next = vec![0u64; n.div_ceil(64)];
    let mut spikes = 0u64;
    let mut info = 0.0f64;
    for _ in 0..ticks {
        next.iter_mut().for_each(|w| *w = 0);
        for i in 0..n {
            let (a, b) = (topo.offsets[i] as usize, topo.offsets[i + 1] as usize);
            let mut z: f64 = -0.6;
            for (&j, &w) in topo.pre[a..b].iter().zip(&weights[a..b]) {
                let j = j as usize;
                if cur[j / 64] >> (j % 64) & 1 == 1 {
                    z += w;
                }
            }
            let p = 1.0 / (1.0 + (-z).exp());
            let fire = rngs[i].random::<f64>() < p;
            info += if fire {
                (p / 0.27f64).ln()
            } else {
                ((1.0 - p) / 0.73f64).ln()
            };
            if fire {
                next[i / 64] |= 1 << (i % 64);
                spikes += 1;
            }
        }
        std::mem::swap(&mut cur, &mut next);
    }
    spikes + info.is_nan() as u64
}

fn ei(c: &mut Criterion) {
    for n in [1_000usize, 10_000] {
        let (net, agents) = ei_network(n);
        let weights: Vec<f64> = agents.iter().flat_map(|a| a.policy.weights.iter().copied()).collect();
        let ticks = (1_000_000 / n as u64).max(20);
        let mut g = c.benchmark_group(format!("ei_random_in_degree_k100_n{n}_synchronous"));
        g.throughput(Throughput::Elements(ticks * n as u64));
        g.sample_size(20);
        for threads in [1usize, 2] {
            g.bench_function(format!("runtime_{threads}_threads"), |b| {
                b.iter(|| {
                    let mut a = agents.clone();
                    let layout = Layout {
                        shards: threads,
                        threads,
                    };
                    let (st, _) = run(&net, &mut a, layout, RunState::initial(&net, 7), ticks, &mut NoObserver);
                    black_box(st.frame[0])
                })
            });
        }
        g.bench_function("hosted_2_threads", |b| {
            b.iter(|| {
                let layout = Layout { shards: 2, threads: 2 };
                let (_, st, _, _) = marlin::runtime::Engine::Hosted(layout)
                    .run(&net, agents.clone(), RunState::initial(&net, 7), ticks, NoObserver)
                    .unwrap();
                black_box(st.frame[0])
            })
        });
        g.bench_function("plain_loop", |b| {
            b.iter(|| black_box(plain_synchronous(&net.topology, &weights, ticks, 7)))
        });
        g.finish();
    }
}

/// The plain loops of the sparse engine's work (the table built once, by
/// `push_table`): the same push table by presynaptic neuron, exact
/// fixed-point sums, per-neuron streams, sigmoid, the neuron's draw and its
/// log-ratio — no shards, barrier, observer or (unless asked) prefetching (the
/// asynchronous loop sums each tick's reward and spike count, one comparison
/// per update; once per tick of N updates, the synchronous loop need not).
fn push_table(n: usize, topo: &Topology) -> (Vec<usize>, Vec<u32>) {
    let mut offsets = vec![0usize; n + 1];
    for &j in &topo.pre {
        offsets[j as usize + 1] += 1;
    }
    for j in 0..n {
        offsets[j + 1] += offsets[j];
    }
    let mut fill = offsets.clone();
    let mut targets = vec![0u32; topo.pre.len()];
    for i in 0..n {
        for &j in topo.partners(i) {
            targets[fill[j as usize]] = i as u32;
            fill[j as usize] += 1;
        }
    }
    (offsets, targets)
}

/// `prefetch`: ask for the rows of the spiking neurons 4 ahead, as the
/// engine does past 12 MiB of table (the fair limit on large networks).
fn plain_push(
    n: usize,
    (offsets, targets): &(Vec<usize>, Vec<u32>),
    (w_src, inverse): (&[i32], f64),
    ticks: u64,
    seed: u64,
    prefetch: bool,
) -> u64 {
    let mut rngs: Vec<Stream> = (0..n).map(|k| stream(seed, Domain::Agent, k as u64)).collect();
    let mut cur = vec![0u64; n.div_ceil(64)];
    let mut next = vec![0u64; n.div_ceil(64)];
    let mut acc = vec![0i32; n];
    let mut spiking: Vec<usize> = Vec::with_capacity(n);
    let mut memo = Memo::new();
    let (mut spikes, mut info) = (0u64, 0i64);
    for _ in 0..ticks {
        acc.fill(0);
        spiking.clear();
        for (wi, &word) in cur.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                spiking.push(wi * 64 + bits.trailing_zeros() as usize);
                bits &= bits - 1;
            }
        }
        for (s, &j) in spiking.iter().enumerate() {
            if prefetch && let Some(&k) = spiking.get(s + 4) {
                for line in targets[offsets[k]..offsets[k + 1]].chunks(16) {
                    prefetch_line(&line[0]);
                }
            }
            for &t in &targets[offsets[j]..offsets[j + 1]] {
                acc[t as usize] += w_src[j];
            }
        }
        next.fill(0);
        for i in 0..n {
            let fire = act(&mut rngs[i], acc[i], (&mut memo, inverse), &mut info);
            if fire {
                next[i / 64] |= 1 << (i % 64);
                spikes += 1;
            }
        }
        std::mem::swap(&mut cur, &mut next);
    }
    spikes + (info == i64::MIN) as u64
}

#[inline(always)]
fn prefetch_line<T>(at: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; the address is a live reference.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(at as *const T as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// One benchmark neuron acts on its synaptic sum `acc` (fixed point, 2^−b
/// per unit): it fires with sigmoid(−0.6 + input), drawn from its stream,
/// and adds its log-ratio against the prior 0.27 to `info` in fixed point.
/// The transfer function is remembered by sum ([`Memo`]), as the engine
/// does.
#[inline]
fn act(rng: &mut Stream, acc: i32, (memo, inverse): (&mut Memo, f64), info: &mut i64) -> bool {
    let (p, ratio) = memo.get(acc, inverse);
    let fire = rng.random::<f64>() < p;
    *info += ratio[fire as usize];
    fire
}

/// The plain loops' memo of the transfer function, direct-mapped by the
/// synaptic sum (the benchmark's neurons share bias and prior): what the
/// engine's memo does without its generality (it keys on logit and prior),
/// so that the loops stay the limit of the engine's work.
struct Memo {
    keys: Vec<i32>,
    values: Vec<(f64, [i64; 2])>,
}

impl Memo {
    fn new() -> Self {
        Memo {
            keys: vec![i32::MIN; 4096],
            values: vec![(0.0, [0; 2]); 4096],
        }
    }

    #[inline]
    fn get(&mut self, acc: i32, inverse: f64) -> (f64, [i64; 2]) {
        let h = ((acc as u32).wrapping_mul(0x9E37_79B9) >> 20) as usize;
        if self.keys[h] == acc {
            return self.values[h];
        }
        let p = 1.0 / (1.0 + (-(-0.6 + acc as f64 * inverse)).exp());
        let fixed = |lr: f64| (lr * 4_294_967_296.0) as i64;
        let value = (p, [fixed(((1.0 - p) / 0.73f64).ln()), fixed((p / 0.27f64).ln())]);
        self.keys[h] = acc;
        self.values[h] = value;
        value
    }
}

/// The asynchronous work as a plain loop: the tick's reward (n/4 active)
/// and spike count are summed, the clock draws a neuron, which reads its
/// running sum, draws, and on a change adds ± its weight at its targets.
fn plain_async(
    n: usize,
    (offsets, targets): &(Vec<usize>, Vec<u32>),
    (w_src, inverse): (&[i32], f64),
    updates: u64,
    seed: u64,
) -> u64 {
    let mut rngs: Vec<Stream> = (0..n).map(|k| stream(seed, Domain::Agent, k as u64)).collect();
    let mut clock = stream(seed, Domain::Clock, 0);
    let mut frame = vec![0u64; n.div_ceil(64)];
    let mut acc = vec![0i32; n];
    let mut memo = Memo::new();
    let (mut count, mut spikes, mut info, mut reward) = (0u64, 0u64, 0i64, 0.0);
    for _ in 0..updates {
        // The tick's reward and spike count, as the engine's totals hold.
        reward += if count as usize == n / 4 { 1.0 } else { 0.0 };
        spikes += count;
        let k = clock.random_range(0..n);
        let fire = act(&mut rngs[k], acc[k], (&mut memo, inverse), &mut info);
        let own = frame[k / 64] >> (k % 64) & 1 == 1;
        if fire != own {
            frame[k / 64] ^= 1 << (k % 64);
            count = if fire { count + 1 } else { count - 1 };
            let w = if fire { w_src[k] } else { -w_src[k] };
            for &t in &targets[offsets[k]..offsets[k + 1]] {
                acc[t as usize] += w;
            }
        }
    }
    spikes + (info == i64::MIN) as u64 + (reward < 0.0) as u64
}

/// The sparse engine on the scale issue's benchmark network: synchronous
/// (1 and 2 threads, against the plain loop), random-partial q = ½, 0.1 and 0.01, and
/// asynchronous (one neuron per tick), N = 10⁴ and 10⁵.
fn sparse(c: &mut Criterion) {
    use marlin::runtime::sparse::{SparseEngine, benchmark_network};
    for n in [10_000usize, 100_000] {
        let (mut net, ln) = benchmark_network(n, UpdateScheme::Synchronous, 7);
        let marlin::runtime::sparse::Weights::PerSource(w_src) = ln.weights.clone() else {
            unreachable!("the benchmark's Dale weights are per source")
        };
        let fixed = ln.scale(&net).unwrap();
        let w_src: Vec<i32> = w_src.iter().map(|&w| fixed.weight(w)).collect();
        let inverse = 2f64.powi(-fixed.bits());
        let ticks = (2_000_000 / n as u64).max(10);
        let mut g = c.benchmark_group(format!("sparse_ei_k100_n{n}"));
        g.sample_size(10);
        g.throughput(Throughput::Elements(ticks * n as u64));
        for threads in [1usize, 2] {
            let mut engine = SparseEngine::new(&net, &ln, Layout::threads(threads), 7).unwrap();
            let warm = engine.run(RunState::initial(&net, 7), 20, &mut NoObserver).0;
            g.bench_function(format!("synchronous_{threads}_threads"), |b| {
                b.iter(|| black_box(engine.run(warm.clone(), ticks, &mut NoObserver).1.spikes))
            });
        }
        let table = push_table(n, &net.topology);
        g.bench_function("synchronous_plain_loop", |b| {
            b.iter(|| black_box(plain_push(n, &table, (&w_src, inverse), ticks, 7, false)))
        });
        g.bench_function("synchronous_plain_loop_prefetching", |b| {
            b.iter(|| black_box(plain_push(n, &table, (&w_src, inverse), ticks, 7, true)))
        });
        // (At q = 0.1 few neurons change per tick: the shards add the
        // changes, not every spike; at q = 0.01 they keep a calendar of
        // actors rather than scan every coin.)
        for (q, name) in [(0.5, "half"), (0.1, "tenth"), (0.01, "hundredth")] {
            net.update = UpdateScheme::RandomPartial { q };
            let ticks = (ticks as f64 / q) as u64;
            g.throughput(Throughput::Elements((ticks as f64 * n as f64 * q) as u64));
            let mut engine = SparseEngine::new(&net, &ln, Layout::single(), 7).unwrap();
            let warm = engine.run(RunState::initial(&net, 7), 20, &mut NoObserver).0;
            g.bench_function(format!("random_partial_{name}_1_thread"), |b| {
                b.iter(|| black_box(engine.run(warm.clone(), ticks, &mut NoObserver).1.spikes))
            });
        }
        net.update = UpdateScheme::Asynchronous;
        let updates = 2_000_000u64;
        g.throughput(Throughput::Elements(updates));
        let mut engine = SparseEngine::new(&net, &ln, Layout::single(), 7).unwrap();
        let warm = engine.run(RunState::initial(&net, 7), 20 * n as u64, &mut NoObserver).0;
        g.bench_function("asynchronous_1_thread", |b| {
            b.iter(|| black_box(engine.run(warm.clone(), updates, &mut NoObserver).1.spikes))
        });
        g.bench_function("asynchronous_plain_loop", |b| {
            b.iter(|| black_box(plain_async(n, &table, (&w_src, inverse), updates, 7)))
        });
        g.finish();
    }
}

criterion_group!(benches, toy, ei, sparse);
criterion_main!(benches);
