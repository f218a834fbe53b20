//! The actor runtime: layout independence (bit-identical trajectories for any
//! number of shards and threads), agreement with the exact solver's
//! stationary distribution, and the update schemes' relations.
#![allow(clippy::needless_range_loop)]

use marlin::agents::{ConstantPolicy, FullStatePolicy, LogisticPolicy, Neuron, Policy};
use marlin::model::{CodingCost, UpdateScheme, spike_count};
use marlin::record::Recorder;
use marlin::rng::{Domain, stream};
use marlin::runtime::{Layout, RunState, RuntimeNetwork, run};
use marlin::scenario::Scenario;
use marlin::solver::{Solution, SolveOptions, solve};
use marlin::topology::{Topology, TopologySpec};
use std::path::Path;

fn toy_scenario() -> Scenario {
    Scenario::load(Path::new("scenarios/toy8.toml")).unwrap()
}

fn solver_agents(sol: &Solution, n: usize, seed: u64) -> Vec<Neuron<FullStatePolicy>> {
    Neuron::team(FullStatePolicy::per_neuron(n, &sol.policy.fire), &sol.prior, seed)
}

fn record<P: Policy + Clone>(
    net: &RuntimeNetwork,
    agents: &[Neuron<P>],
    layout: Layout,
    seed: u64,
    ticks: u64,
) -> (Recorder, RunState) {
    let mut agents = agents.to_vec();
    let mut rec = Recorder::new((0..net.n).collect(), ticks);
    let (state, _) = run(net, &mut agents, layout, RunState::initial(net, seed), ticks, &mut rec);
    (rec, state)
}

fn same(a: &Recorder, b: &Recorder) -> bool {
    a.x == b.x && a.spikes == b.spikes && a.actor == b.actor && a.reward == b.reward
}

fn layouts() -> Vec<Layout> {
    vec![
        Layout { shards: 1, threads: 1 },
        Layout { shards: 2, threads: 1 },
        Layout { shards: 2, threads: 2 },
        Layout { shards: 5, threads: 1 },
        Layout { shards: 5, threads: 2 },
        Layout { shards: 8, threads: 3 },
    ]
}

#[test]
fn trajectories_do_not_depend_on_shards_or_threads() {
    let sc = toy_scenario();
    let sol = solve(&sc.network().unwrap(), &SolveOptions::default()).unwrap();
    for update in [
        UpdateScheme::Asynchronous,
        UpdateScheme::Synchronous,
        UpdateScheme::RandomPartial { q: 0.3 },
    ] {
        let mut net = sc.runtime_network();
        net.update = update;
        let agents = solver_agents(&sol, 8, 11);
        let (reference, ref_state) = record(&net, &agents, Layout::single(), 11, 3000);
        for layout in layouts() {
            let (rec, state) = record(&net, &agents, layout, 11, 3000);
            assert!(same(&rec, &reference), "{update:?}: trajectory differs with {layout:?}");
            assert_eq!(state, ref_state);
        }
    }
}

#[test]
fn large_sparse_network_is_layout_independent_across_word_boundaries() {
    // 200 neurons (4 words of 64), ring topology, logistic policies with
    // inhibitory neighbours; shards of 40 split words between shards.
    let n = 200;
    let sc = toy_scenario();
    let mut net = sc.runtime_network();
    net.n = n;
    net.alive = vec![true; n];
    net.alive[77] = false;
    net.receives_input = (0..n).map(|k| k % 3 == 0).collect();
    net.topology = Topology::build(&TopologySpec::Ring { k: 3 }, n, 5);
    net.reward = marlin::model::RewardSpec::TargetCount {
        targets: vec![50, 150],
        value: 1.0,
    };
    let agents: Vec<Neuron<LogisticPolicy>> = (0..n)
        .map(|k| Neuron {
            id: k,
            policy: LogisticPolicy {
                bias: 0.2,
                input_weight: 1.0,
                weights: vec![-0.4; 6],
            },
            prior: 0.5,
            rng: stream(3, Domain::Agent, k as u64),
        })
        .collect();
    for update in [
        UpdateScheme::Asynchronous,
        UpdateScheme::Synchronous,
        UpdateScheme::RandomPartial { q: 0.1 },
    ] {
        net.update = update;
        let (reference, _) = record(&net, &agents, Layout::single(), 3, 400);
        assert!(
            reference.spikes.chunks(n).all(|row| row[77] == 0),
            "a dead neuron never fires"
        );
        for layout in [
            Layout { shards: 5, threads: 2 },
            Layout { shards: 7, threads: 2 },
            Layout {
                shards: 200,
                threads: 2,
            },
        ] {
            let (rec, _) = record(&net, &agents, layout, 3, 400);
            assert!(same(&rec, &reference), "{update:?}: differs with {layout:?}");
        }
    }
}

#[test]
fn resuming_from_the_returned_state_continues_the_same_run() {
    let sc = toy_scenario();
    let net = sc.runtime_network();
    let agents: Vec<_> = (0..8)
        .map(|k| Neuron {
            id: k,
            policy: ConstantPolicy(0.3),
            prior: 0.3,
            rng: stream(1, Domain::Agent, k as u64),
        })
        .collect();
    let (whole, end) = record(&net, &agents, Layout::single(), 1, 2000);
    // Even and odd split points: the frame buffers alternate by tick parity.
    for split in [700u64, 701, 1, 1999] {
        let mut a = agents.clone();
        let mut rec = Recorder::new((0..8).collect(), 2000);
        let (mid, _) = run(
            &net,
            &mut a,
            Layout::single(),
            RunState::initial(&net, 1),
            split,
            &mut rec,
        );
        let (end2, _) = run(
            &net,
            &mut a,
            Layout { shards: 3, threads: 2 },
            mid,
            2000 - split,
            &mut rec,
        );
        assert!(same(&rec, &whole), "resumed at tick {split}");
        assert_eq!(end, end2);
    }
}

fn count_tv(rec: &Recorder, n: usize, expected: &[Vec<f64>]) -> f64 {
    let mut hist = vec![vec![0.0; n + 1]; expected.len()];
    for (t, row) in rec.spikes.chunks(n).enumerate() {
        let c: usize = row.iter().map(|&v| v as usize).sum();
        hist[rec.x[t] as usize][c] += 1.0;
    }
    for h in hist.iter_mut() {
        let z: f64 = h.iter().sum();
        h.iter_mut().for_each(|v| *v /= z);
    }
    worst_tv(&hist, expected)
}

/// The largest total-variation distance between two count distributions
/// over the input values.
fn worst_tv(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(p, q)| p.iter().zip(q).map(|(u, v)| (u - v).abs()).sum::<f64>() / 2.0)
        .fold(0.0f64, f64::max)
}

#[test]
fn simulating_the_optimal_policy_reproduces_the_solver_statistics() {
    // Sampling error of the count distribution at 4·10⁵ correlated ticks is
    // ≈ 0.002 (input dwell time 50 ticks); the bound is 5× that.
    let sc = toy_scenario();
    for update in [UpdateScheme::Asynchronous, UpdateScheme::Synchronous] {
        let mut model = sc.network().unwrap();
        model.update = update;
        let sol = solve(&model, &SolveOptions::default()).unwrap();
        let expected = sol.eval.count_distribution(&model);
        let mut net = sc.runtime_network();
        net.update = update;
        let (rec, _) = record(
            &net,
            &solver_agents(&sol, 8, 5),
            Layout { shards: 2, threads: 2 },
            5,
            400_000,
        );
        let tv = count_tv(&rec, 8, &expected);
        assert!(
            tv < 0.01,
            "{update:?}: total variation {tv} from the solver's count distribution"
        );
        let mean_r = rec.reward.iter().sum::<f64>() / rec.reward.len() as f64;
        assert!(
            (mean_r - sol.eval.mean_reward).abs() < 0.01,
            "{update:?}: ⟨r⟩ {mean_r} vs {}",
            sol.eval.mean_reward
        );
        // The recorded reward is r(s_t) of the recorded state.
        for (t, row) in rec.spikes.chunks(8).enumerate().take(5000) {
            let sigma: usize = row.iter().enumerate().map(|(k, &v)| (v as usize) << k).sum();
            assert_eq!(rec.reward[t], model.reward[(rec.x[t] as usize) << 8 | sigma]);
            let _ = spike_count(sigma);
        }
    }
}

#[test]
fn asynchronous_records_one_actor_per_tick_and_only_it_changes() {
    let sc = toy_scenario();
    let net = sc.runtime_network();
    let agents: Vec<_> = (0..8)
        .map(|k| Neuron {
            id: k,
            policy: ConstantPolicy(0.5),
            prior: 0.5,
            rng: stream(2, Domain::Agent, k as u64),
        })
        .collect();
    let (rec, _) = record(&net, &agents, Layout::single(), 2, 5000);
    let rows: Vec<&[u8]> = rec.spikes.chunks(8).collect();
    let mut drawn = [0usize; 8];
    for t in 0..rows.len() - 1 {
        let k = rec.actor[t] as usize;
        drawn[k] += 1;
        for j in 0..8 {
            if j != k {
                assert_eq!(rows[t][j], rows[t + 1][j], "only the actor may change");
            }
        }
    }
    // Uniform draws: each neuron ≈ 625 times; 5σ ≈ 120.
    assert!(drawn.iter().all(|&d| (d as f64 - 625.0).abs() < 120.0), "{drawn:?}");
}

#[test]
fn random_partial_with_q_one_is_synchronous() {
    let sc = toy_scenario();
    let sol = solve(&sc.network().unwrap(), &SolveOptions::default()).unwrap();
    let agents = solver_agents(&sol, 8, 9);
    let mut a = sc.runtime_network();
    a.update = UpdateScheme::Synchronous;
    let mut b = a.clone();
    b.update = UpdateScheme::RandomPartial { q: 1.0 };
    let (ra, _) = record(&a, &agents, Layout::single(), 9, 5000);
    let (rb, _) = record(&b, &agents, Layout { shards: 3, threads: 2 }, 9, 5000);
    assert!(same(&ra, &rb));
}

#[test]
fn random_partial_with_small_q_approaches_asynchronous() {
    // q = 1/n: on average one neuron acts per tick, as in the asynchronous
    // scheme; the count distributions agree to within a few percent.
    let sc = toy_scenario();
    let model = sc.network().unwrap();
    let sol = solve(&model, &SolveOptions::default()).unwrap();
    let expected = sol.eval.count_distribution(&model);
    let mut net = sc.runtime_network();
    net.update = UpdateScheme::RandomPartial { q: 1.0 / 8.0 };
    let (rec, _) = record(&net, &solver_agents(&sol, 8, 4), Layout::single(), 4, 400_000);
    let tv = count_tv(&rec, 8, &expected);
    assert!(tv < 0.08, "random_partial(1/n) vs asynchronous optimum: TV {tv}");
    let _ = CodingCost::MutualInformation;
}

#[test]
fn the_actor_engine_gives_the_barrier_engines_results_bit_for_bit() {
    use marlin::runtime::Engine;
    use marlin::runtime::actors::ActorLayout;
    let sc = toy_scenario();
    let sol = solve(&sc.network().unwrap(), &SolveOptions::default()).unwrap();
    for update in [UpdateScheme::Asynchronous, UpdateScheme::RandomPartial { q: 0.4 }] {
        let mut net = sc.runtime_network();
        net.update = update;
        net.alive[5] = false;
        let agents = solver_agents(&sol, 8, 13);
        let (reference, ref_state) = record(&net, &agents, Layout::single(), 13, 2000);
        // One actor per neuron on two arbiters, and 3-agent shards on one.
        for layout in [
            ActorLayout {
                agents_per_shard: 1,
                arbiters: 2,
            },
            ActorLayout {
                agents_per_shard: 3,
                arbiters: 1,
            },
        ] {
            let rec = Recorder::new((0..8).collect(), 2000);
            let (_, state, totals, rec) = Engine::Actors(layout)
                .run(&net, agents.clone(), RunState::initial(&net, 13), 2000, rec)
                .unwrap();
            assert!(same(&rec, &reference), "{update:?}: actors ({layout:?}) differ");
            assert_eq!(state, ref_state);
            assert_eq!(totals.ticks, 2000);
        }
    }
    // With learning: the critic actor and the replicated teacher agree, and
    // so do the learned parameters.
    use marlin::learn::{Critic, CriticKind, LearningNeuron, LogisticLearner, Rule, Teacher, TeacherConfig};
    let net = sc.runtime_network();
    let learners: Vec<LearningNeuron<LogisticLearner>> = (0..8)
        .map(|k| LearningNeuron {
            id: k,
            params: LogisticLearner::new(8, 0.0),
            prior: 0.5,
            prior_rate: 1e-3,
            trace_decay: 0.3,
            caught_up: 0.0,
            rng: stream(2, Domain::Agent, k as u64),
        })
        .collect();
    let mut start = RunState::initial(&net, 2);
    start.teacher = Some(Teacher::new(
        TeacherConfig {
            rule: Rule::ActorCritic,
            lambda: 0.5,
            own_cost: false,
            rate: 0.05,
            decay_ticks: Some(1e4),
            baseline_rate: 1e-3,
            critic_rate: 0.1,
        },
        Some(Critic::new(CriticKind::Tabular, 8, 2)),
    ));
    let mut fast = learners.clone();
    let (fast_state, _) = run(
        &net,
        &mut fast,
        Layout::single(),
        start.clone(),
        5000,
        &mut marlin::runtime::NoObserver,
    );
    let (slow, slow_state, _, _) = Engine::Actors(ActorLayout {
        agents_per_shard: 2,
        arbiters: 2,
    })
    .run(&net, learners, start, 5000, marlin::runtime::NoObserver)
    .unwrap();
    assert_eq!(fast_state, slow_state, "clock, environment and teacher");
    for (a, b) in fast.iter().zip(&slow) {
        assert_eq!(a.params, b.params);
        assert_eq!(a.prior, b.prior);
    }
}

#[test]
fn shard_host_actors_run_the_barrier_engine_bit_for_bit() {
    use marlin::runtime::Engine;
    let sc = toy_scenario();
    let sol = solve(&sc.network().unwrap(), &SolveOptions::default()).unwrap();
    for update in [UpdateScheme::Asynchronous, UpdateScheme::Synchronous] {
        let mut net = sc.runtime_network();
        net.update = update;
        let agents = solver_agents(&sol, 8, 17);
        let (reference, ref_state) = record(&net, &agents, Layout::single(), 17, 3001);
        for layout in [
            Layout::single(),
            Layout { shards: 8, threads: 2 },
            Layout { shards: 5, threads: 2 },
        ] {
            // Resume across an odd tick, as simulate's blocks do.
            let rec = Recorder::new((0..8).collect(), 3001);
            let (a, mid, _, rec) = Engine::Hosted(layout)
                .run(&net, agents.clone(), RunState::initial(&net, 17), 1001, rec)
                .unwrap();
            let (_, end, totals, rec) = Engine::Hosted(layout).run(&net, a, mid, 2000, rec).unwrap();
            assert!(same(&rec, &reference), "{update:?}: hosted {layout:?} differs");
            assert_eq!(end, ref_state);
            assert_eq!(totals.ticks, 3001);
        }
    }
}

#[test]
fn random_partial_at_q_one_over_n_against_asynchronous_exactly() {
    // The asynchronous optimum of the toy, evaluated exactly under both
    // schemes: random_partial(q = 1/n) moves the network through a different
    // chain (ticks where none or several neurons act), which changes the
    // stationary count distribution by a small, stated amount; the runtime's
    // random-partial simulation matches the exact random-partial chain.
    use marlin::solver::evaluate;
    let sc = toy_scenario();
    let model = sc.network().unwrap();
    let sol = solve(&model, &SolveOptions::default()).unwrap();
    let asynchronous = sol.eval.count_distribution(&model);
    let mut rp = model.clone();
    rp.update = UpdateScheme::RandomPartial { q: 1.0 / 8.0 };
    let exact_rp = evaluate(&rp, &sol.policy, &SolveOptions::default()).count_distribution(&rp);
    let change = worst_tv(&asynchronous, &exact_rp);
    eprintln!("random_partial(1/8) vs asynchronous, exact: TV {change:.4}");
    assert!(change > 1e-3 && change < 0.05, "TV {change}");
    let mut net = sc.runtime_network();
    net.update = rp.update;
    let (rec, _) = record(&net, &solver_agents(&sol, 8, 4), Layout::single(), 4, 400_000);
    let sampled = count_tv(&rec, 8, &exact_rp);
    assert!(
        sampled < 0.01,
        "simulated random_partial vs its exact chain: TV {sampled}"
    );
}

/// Ranks sharing one machine split its cores: under `mpirun -np R` the
/// default threads per rank are the cores over the ranks on the machine
/// (at least one); explicit threads and small networks are as without MPI.
#[test]
fn ranks_on_one_machine_share_its_cores() {
    use marlin::runtime::transport::Collectives;
    struct OnOneMachine(usize);
    impl Collectives for OnOneMachine {
        fn rank(&self) -> usize {
            0
        }
        fn size(&self) -> usize {
            self.0
        }
        fn all_gather_words(&self, _: &[u64], _: &mut [u64], _: &[usize]) {
            unreachable!("not run")
        }
        fn all_sum(&self, _: [i64; 2]) -> [i64; 2] {
            unreachable!("not run")
        }
        fn local_size(&self) -> usize {
            self.0
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let alone = Layout::for_network(100_000, None, None, None);
    assert_eq!(alone.threads, cores);
    for local in [1, 2, 3, 64] {
        let ranks = OnOneMachine(local);
        let l = Layout::for_network(100_000, None, None, Some(&ranks));
        assert_eq!(l.threads, (cores / local).max(1), "{local} ranks");
        assert_eq!(l.shards, l.threads);
        assert_eq!(Layout::for_network(100_000, None, Some(3), Some(&ranks)).threads, 3);
        assert_eq!(Layout::for_network(100, None, None, Some(&ranks)).threads, 1);
    }
}

/// Every stream domain; adding one to `Domain` fails to compile here until
/// it is listed (the match is exhaustive).
fn all_domains() -> [Domain; 5] {
    let listed = [
        Domain::Agent,
        Domain::Clock,
        Domain::Environment,
        Domain::Topology,
        Domain::Learner,
    ];
    for d in listed {
        match d {
            Domain::Agent | Domain::Clock | Domain::Environment | Domain::Topology | Domain::Learner => {}
        }
    }
    listed
}

/// No two roles share a stream: the first two draws of every (seed,
/// domain, id) over four seeds, every domain and ids 0..64 are pairwise
/// distinct (two streams that coincide would draw the same numbers for,
/// e.g., an agent and the clock).
#[test]
fn streams_of_all_domains_and_ids_are_pairwise_distinct() {
    use rand::Rng;
    use std::collections::HashMap;
    let mut seen: HashMap<(u64, u64), (u64, Domain, u64)> = HashMap::new();
    for seed in [0, 1, 0x5eed_5eed, u64::MAX] {
        for domain in all_domains() {
            for id in 0..64 {
                let mut s = stream(seed, domain, id);
                let first = (s.random::<u64>(), s.random::<u64>());
                if let Some(other) = seen.insert(first, (seed, domain, id)) {
                    panic!(
                        "streams {other:?} and {:?} draw the same first numbers",
                        (seed, domain, id)
                    );
                }
            }
        }
    }
    assert_eq!(seen.len(), 4 * 5 * 64);
}
