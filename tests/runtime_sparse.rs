//! The sparse engine (fixed logistic neurons as plain per-shard arrays):
//! bit-identical to the agent engine running agents that compute the same
//! logit from their own observation, for every update scheme; independent
//! of the layout; resumable span by span; clear errors on networks it
//! cannot run.

use marlin::agents::{Agent, Observation};
use marlin::model::{InputProcess, RewardSpec, UpdateScheme};
use marlin::record::Recorder;
use marlin::rng::{Domain, Stream, stream};
use marlin::runtime::sparse::{LogisticNeurons, SparseEngine, Weights};
use marlin::runtime::transport::Ranks;
use marlin::runtime::{Layout, NoObserver, RunState, RuntimeNetwork, run, run_on};
use marlin::topology::{Topology, TopologySpec};

mod ranks;
use ranks::on_ranks;

/// An agent of the agent engine that computes the sparse engine's logit
/// from its own observation, written independently: bias, input term, then
/// its spiking partners' weights summed exactly in fixed point (each weight
/// rounded to a multiple of 2^−b, summed as integers; b the largest up to
/// 48 with max |w| × max in-degree × 2^b ≤ 2³⁰).
#[derive(Clone)]
struct FixedLogistic {
    bias: f64,
    input_weight: f64,
    /// 2^b.
    scale: f64,
    /// Weight of each partner, aligned with the observation's `pre`.
    weights: Vec<f32>,
    prior: f64,
    rng: Stream,
}

impl Agent for FixedLogistic {
    fn fire_probability(&self, obs: &Observation) -> f64 {
        let mut acc = 0i64;
        for (&j, &w) in obs.pre.iter().zip(&self.weights) {
            if obs.spike(j as usize) {
                acc += (w as f64 * self.scale).round() as i64;
            }
        }
        let z = self.bias + obs.input.map_or(0.0, |u| self.input_weight * u) + acc as f64 / self.scale;
        1.0 / (1.0 + (-z).exp())
    }
    fn rng(&mut self) -> &mut Stream {
        &mut self.rng
    }
    fn prior(&self) -> f64 {
        self.prior
    }
}

/// 300 neurons (five words, the last one partial), random in-degree 20,
/// a third of them seeing a switching input, one dead neuron, varied biases.
fn network(update: UpdateScheme) -> RuntimeNetwork {
    let n = 300;
    let mut alive = vec![true; n];
    alive[131] = false;
    RuntimeNetwork {
        n,
        alive,
        input: InputProcess::switching(vec![-1.0, 1.0], 0.05),
        reward: RewardSpec::TargetCount {
            targets: vec![60, 120],
            value: 1.0,
        },
        update,
        topology: Topology::build(&TopologySpec::RandomInDegree { k: 20 }, n, 4),
        receives_input: (0..n).map(|k| k % 3 == 0).collect(),
    }
}

fn neurons(net: &RuntimeNetwork, per_synapse: bool) -> LogisticNeurons {
    let n = net.n;
    let mut ln = LogisticNeurons::excitatory_inhibitory(n, n * 8 / 10, 0.21, -0.93, -0.6, 0.27);
    for k in 0..n {
        ln.bias[k] = -0.6 + 0.01 * (k % 7) as f64;
        ln.input_weight[k] = 0.8;
    }
    if per_synapse {
        let w = (0..net.topology.pre.len())
            .map(|e| ((e * 37 % 101) as f32 - 60.0) / 97.0)
            .collect();
        ln.weights = Weights::PerSynapse(w);
    }
    ln
}

fn agents(net: &RuntimeNetwork, ln: &LogisticNeurons, seed: u64) -> Vec<FixedLogistic> {
    let (Weights::PerSource(w) | Weights::PerSynapse(w)) = &ln.weights;
    let max_w = w.iter().map(|v| v.abs() as f64).fold(0.0, f64::max);
    let max_in = (0..net.n).map(|k| net.topology.partners(k).len()).max().unwrap() as f64;
    let b = (0..=48)
        .rev()
        .find(|&b| max_w * max_in * 2f64.powi(b) <= 2f64.powi(30))
        .unwrap();
    (0..net.n)
        .map(|k| {
            let lo = net.topology.offsets[k] as usize;
            let pre = net.topology.partners(k);
            FixedLogistic {
                bias: ln.bias[k],
                input_weight: ln.input_weight[k],
                scale: 2f64.powi(b),
                weights: match &ln.weights {
                    Weights::PerSource(w) => pre.iter().map(|&j| w[j as usize]).collect(),
                    Weights::PerSynapse(w) => w[lo..lo + pre.len()].to_vec(),
                },
                prior: ln.prior[k],
                rng: stream(seed, Domain::Agent, k as u64),
            }
        })
        .collect()
}

fn sparse_record(
    net: &RuntimeNetwork,
    ln: &LogisticNeurons,
    layout: Layout,
    seed: u64,
    spans: &[u64],
) -> (Recorder, RunState, f64) {
    let mut engine = SparseEngine::new(net, ln, layout, seed).unwrap();
    let mut rec = Recorder::new((0..net.n).collect(), spans.iter().sum());
    let mut state = RunState::initial(net, seed);
    let mut info = 0.0;
    for &ticks in spans {
        let (s, totals) = engine.run(state, ticks, &mut rec);
        state = s;
        info += totals.info;
    }
    (rec, state, info)
}

fn same(a: &Recorder, b: &Recorder) -> bool {
    a.x == b.x && a.spikes == b.spikes && a.actor == b.actor && a.reward == b.reward
}

/// (Random-partial with q = 0.05 changes few neurons per tick: the push
/// tables then add the changes rather than every spike; with q = 0.01 the
/// shards keep a calendar of actors instead of scanning coins.)
const SCHEMES: [UpdateScheme; 5] = [
    UpdateScheme::Synchronous,
    UpdateScheme::RandomPartial { q: 0.3 },
    UpdateScheme::RandomPartial { q: 0.05 },
    UpdateScheme::RandomPartial { q: 0.01 },
    UpdateScheme::Asynchronous,
];

#[test]
fn the_sparse_engine_is_the_agent_engine_bit_for_bit() {
    for update in SCHEMES {
        for per_synapse in [false, true] {
            let net = network(update);
            let ln = neurons(&net, per_synapse);
            let ticks = if update == UpdateScheme::Asynchronous {
                20_000
            } else {
                400
            };
            let mut reference = Recorder::new((0..net.n).collect(), ticks);
            let mut a = agents(&net, &ln, 9);
            let (ref_state, ref_totals) = run(
                &net,
                &mut a,
                Layout::single(),
                RunState::initial(&net, 9),
                ticks,
                &mut reference,
            );
            // Not a silent network: the test compares real dynamics.
            let rate = reference.spikes.iter().map(|&s| s as f64).sum::<f64>() / reference.spikes.len() as f64;
            assert!(rate > 0.05 && rate < 0.95, "{update:?}: activity {rate}");
            assert!(
                reference.spikes.chunks(net.n).all(|row| row[131] == 0),
                "the dead neuron never fires"
            );
            // On one thread and on several threads and shards (whose
            // neurons' streams must still be their global ids').
            for layout in [
                Layout::single(),
                Layout { shards: 2, threads: 2 },
                Layout { shards: 3, threads: 1 },
                Layout { shards: 5, threads: 2 },
            ] {
                let (rec, state, info) = sparse_record(&net, &ln, layout, 9, &[ticks]);
                assert!(
                    same(&rec, &reference),
                    "{update:?}, per synapse {per_synapse}, {layout:?}"
                );
                assert_eq!(state, ref_state, "{update:?}, {layout:?}");
                assert_eq!(info, ref_totals.info, "{update:?}, {layout:?}");
            }
        }
    }
}

#[test]
fn sparse_runs_do_not_depend_on_the_layout_or_on_spans() {
    for update in SCHEMES {
        let net = network(update);
        let ln = neurons(&net, true);
        let (reference, ref_state, ref_info) = sparse_record(&net, &ln, Layout::single(), 5, &[300]);
        for layout in [
            Layout { shards: 2, threads: 1 },
            Layout { shards: 2, threads: 2 },
            Layout { shards: 7, threads: 2 },
            Layout {
                shards: 300,
                threads: 2,
            },
        ] {
            let (rec, state, info) = sparse_record(&net, &ln, layout, 5, &[300]);
            assert!(same(&rec, &reference), "{update:?}: differs with {layout:?}");
            assert_eq!((state, info), (ref_state.clone(), ref_info));
        }
        // One engine, several spans (odd and even split points): the same run.
        let (rec, state, _) = sparse_record(&net, &ln, Layout { shards: 3, threads: 2 }, 5, &[1, 150, 149]);
        assert!(same(&rec, &reference), "{update:?}: differs when run in spans");
        assert_eq!(state, ref_state);
    }
}

#[test]
fn the_benchmark_network_fires_at_its_stated_activity() {
    // N = 2 000, K = 100, 80 % excitatory (+0.2), inhibitory (−1.0), bias
    // −0.6: the benchmark network settles near activity 0.27.
    let n = 2000;
    let (net, ln) = marlin::runtime::sparse::benchmark_network(n, UpdateScheme::Synchronous, 1);
    assert!((0..n).all(|i| net.topology.in_degree(i) == 100));
    let mut engine = SparseEngine::new(&net, &ln, Layout { shards: 2, threads: 2 }, 1).unwrap();
    let (state, _) = engine.run(RunState::initial(&net, 1), 100, &mut marlin::runtime::NoObserver);
    let (_, totals) = engine.run(state, 1000, &mut marlin::runtime::NoObserver);
    let activity = totals.spikes as f64 / (1000.0 * n as f64);
    assert!((activity - 0.27).abs() < 0.03, "activity {activity}");
}

#[test]
fn networks_the_engine_cannot_run_are_refused_clearly() {
    let mut net = network(UpdateScheme::Synchronous);
    let ln = neurons(&net, true);
    let mut short = ln.clone();
    short.weights = Weights::PerSynapse(vec![0.0; 10]);
    let e = SparseEngine::new(&net, &short, Layout::single(), 1).err().unwrap();
    assert!(e.contains("10 synaptic weights") && e.contains("6000"), "{e}");
    let mut short = ln.clone();
    short.bias.pop();
    let e = SparseEngine::new(&net, &short, Layout::single(), 1).err().unwrap();
    assert!(e.contains("bias has 299 entries") && e.contains("300"), "{e}");
    // Sums are exact 32-bit fixed point: weights that could overflow them
    // even at a resolution of ½, or that are not numbers, are refused.
    for (w, says) in [(f32::NAN, "is NaN"), (f32::INFINITY, "is inf"), (3.0e7, "up to 2²⁹")] {
        let mut bad = ln.clone();
        bad.weights = Weights::PerSource(vec![0.1; net.n]);
        if let Weights::PerSource(v) = &mut bad.weights {
            v[7] = w;
        }
        let e = SparseEngine::new(&net, &bad, Layout::single(), 1).err().unwrap();
        assert!(e.contains(says), "{e}");
    }
    let mut big = ln.clone();
    big.weights = Weights::PerSource(vec![2.5e7; net.n]);
    assert!(
        SparseEngine::new(&net, &big, Layout::single(), 1).is_ok(),
        "20 synapses of 2.5·10⁷ fit"
    );
    net.topology = Topology::build(&TopologySpec::AllToAll, net.n, 1);
    let e = SparseEngine::new(&net, &ln, Layout::single(), 1).err().unwrap();
    assert!(e.contains("all_to_all"), "{e}");
}

#[test]
fn ranks_give_the_single_process_run_bit_for_bit() {
    for update in [UpdateScheme::Synchronous, UpdateScheme::RandomPartial { q: 0.3 }] {
        let net = network(update);
        let ln = neurons(&net, true);
        let (reference, ref_state, ref_info) = sparse_record(&net, &ln, Layout::single(), 5, &[300]);
        for (size, layout) in [
            (2, Layout::single()),
            (3, Layout { shards: 2, threads: 2 }),
            (5, Layout::single()),
        ] {
            let runs = on_ranks(size, |r| {
                let mut engine = SparseEngine::new_on(&net, &ln, layout, 5, Some(r as &Ranks)).unwrap();
                let mut rec = Recorder::new((0..net.n).collect(), 300);
                let (s1, t1) = engine.run(RunState::initial(&net, 5), 120, &mut rec);
                let (s2, t2) = engine.run(s1, 180, &mut rec);
                (rec, s2, t1.info + t2.info)
            });
            for (rank, (rec, state, info)) in runs.iter().enumerate() {
                assert!(
                    same(rec, &reference),
                    "{update:?}: rank {rank} of {size} saw another run"
                );
                assert_eq!((state, *info), (&ref_state, ref_info), "rank {rank} of {size}");
            }
        }
        // The agent engine over ranks: the same run as in one process.
        let agents_all = agents(&net, &ln, 7);
        let mut whole = Recorder::new((0..net.n).collect(), 200);
        let (end, _) = run(
            &net,
            &mut agents_all.clone(),
            Layout::single(),
            RunState::initial(&net, 7),
            200,
            &mut whole,
        );
        let runs = on_ranks(2, |r| {
            let mut a = agents_all.clone();
            let mut rec = Recorder::new((0..net.n).collect(), 200);
            let layout = Layout { shards: 3, threads: 2 };
            let (s, _) = run_on(
                &net,
                &mut a,
                layout,
                RunState::initial(&net, 7),
                200,
                &mut rec,
                Some(r as &Ranks),
            );
            (rec, s)
        });
        for (rec, s) in &runs {
            assert!(same(rec, &whole), "{update:?}: the agent engine over 2 ranks differs");
            assert_eq!(s, &end);
        }
    }
}

#[test]
fn ranks_refuse_what_they_cannot_split() {
    let net = network(UpdateScheme::Asynchronous);
    let ln = neurons(&net, false);
    let errs = on_ranks(2, |r| {
        SparseEngine::new_on(&net, &ln, Layout::single(), 1, Some(r as &Ranks)).err()
    });
    assert!(
        errs.iter()
            .all(|e| e.as_deref().is_some_and(|e| e.contains("one rank"))),
        "{errs:?}"
    );
    let net = network(UpdateScheme::Synchronous);
    let errs = on_ranks(6, |r| {
        SparseEngine::new_on(&net, &ln, Layout::single(), 1, Some(r as &Ranks)).err()
    });
    assert!(
        errs.iter()
            .all(|e| e.as_deref().is_some_and(|e| e.contains("at most 5 MPI ranks"))),
        "{errs:?}"
    );
}

#[test]
fn the_memory_estimate_is_what_the_engine_holds() {
    use marlin::runtime::sparse::estimate_bytes;
    for update in SCHEMES {
        let net = network(update);
        let ln = neurons(&net, false);
        let engine = SparseEngine::new(&net, &ln, Layout { shards: 3, threads: 2 }, 1).unwrap();
        let held = engine.bytes() + ln.bytes() + net.topology.bytes();
        let e = estimate_bytes(net.n as u64, net.topology.pre.len() as u64, false, 3, update);
        assert_eq!(e, held, "{update:?}");
    }
}

/// Random-partial streams (at q ≤ 0.02 walked ahead of the tick by the
/// shards' calendars): the streams a checkpoint takes are still the agent
/// engine's at that tick, a run resumed from them on another layout
/// continues bit for bit, and so does a run restarted from another tick —
/// also at a q so small that walks pause and resume (q = 10⁻⁴: most of
/// 4 096 coins fail).
#[test]
fn random_partial_streams_stand_at_the_tick_whatever_the_walks_drew() {
    for (q, ticks) in [(0.05, 600u64), (0.01, 1_500), (1e-4, 9_000)] {
        let net = network(UpdateScheme::RandomPartial { q });
        let ln = neurons(&net, false);
        let mut a = agents(&net, &ln, 3);
        let mut reference = Recorder::new((0..net.n).collect(), ticks);
        let (ref_state, _) = run(
            &net,
            &mut a,
            Layout::single(),
            RunState::initial(&net, 3),
            ticks,
            &mut reference,
        );
        // Not a frozen network: neurons change state along the run.
        let rows: Vec<&[u8]> = reference.spikes.chunks(net.n).collect();
        let changes = rows.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(changes > 50, "q = {q}: {changes} ticks change the state");
        // First part on one layout, then a fresh engine on another from the
        // first one's streams.
        let cut = ticks / 3 + 1;
        let mut rec = Recorder::new((0..net.n).collect(), ticks);
        let mut first = SparseEngine::new(&net, &ln, Layout { shards: 3, threads: 2 }, 3).unwrap();
        let (mid, _) = first.run(RunState::initial(&net, 3), cut, &mut rec);
        let at_cut: Vec<Stream> = first.streams();
        let mut second = SparseEngine::new(&net, &ln, Layout::single(), 99).unwrap();
        second.set_streams(&at_cut).unwrap();
        let (end, _) = second.run(mid.clone(), ticks - cut, &mut rec);
        assert!(same(&rec, &reference), "q = {q}: a resumed run differs");
        assert_eq!(end, ref_state);
        let agent_streams: Vec<Stream> = a.iter().map(|x| x.rng.clone()).collect();
        assert!(
            second.streams() == agent_streams,
            "q = {q}: streams at the end differ from the agent engine's"
        );
        // The first engine, asked to run from the cut again (another tick
        // than where its calendar stands after a further span), starts
        // from its streams as they stand: the same as the second engine's
        // run from the cut with those streams.
        first.run(mid.clone(), 50, &mut NoObserver);
        let later = first.streams();
        let mut third = SparseEngine::new(&net, &ln, Layout::single(), 7).unwrap();
        third.set_streams(&later).unwrap();
        let (x, tx) = first.run(mid.clone(), 200, &mut NoObserver);
        let (y, ty) = third.run(mid, 200, &mut NoObserver);
        assert_eq!(
            (x, tx.info, tx.spikes),
            (y, ty.info, ty.spikes),
            "q = {q}: a restart differs"
        );
        assert!(first.streams() == third.streams());
    }
}

/// The weights of a range of synapses, widened to f64 (where learners start
/// from fixed neurons), are the topology's: each synapse's presynaptic
/// neuron's weight, or the synapse's own, as the agents above read them.
#[test]
fn synapse_weights_are_the_topologys_in_synapse_order() {
    let net = network(UpdateScheme::Synchronous);
    let offsets = &net.topology.offsets;
    for per_synapse in [false, true] {
        let ln = neurons(&net, per_synapse);
        let fixed = agents(&net, &ln, 0);
        let of = |ks: std::ops::Range<usize>| -> Vec<f64> {
            ks.flat_map(|k| fixed[k].weights.iter().map(|&w| w as f64)).collect()
        };
        for ks in [0..1, 7..8, 3..6, net.n - 1..net.n] {
            let edges = offsets[ks.start] as usize..offsets[ks.end] as usize;
            assert!(!edges.is_empty());
            assert_eq!(ln.synapse_weights(&net, edges), of(ks), "per synapse: {per_synapse}");
        }
    }
}
