//! Learning at scale ([`LogisticTeam`]) against the agent engine running
//! [`LearningNeuron`]`<`[`LogisticLearner`]`>`: the same learners, the same
//! streams and signal must give the same bits — trajectory, run state
//! (teacher included), learned parameters, traces, priors and streams —
//! for every update scheme, with inputs, dead neurons, the own-cost rule and
//! any layout. Also the conversions and what the arrays refuse.

use marlin::learn::{Critic, CriticKind, LearningNeuron, LogisticLearner, Rule, Teacher, TeacherConfig};
use marlin::model::{InputProcess, RewardSpec, UpdateScheme};
use marlin::rng::{Domain, stream};
use marlin::runtime::learners::LogisticTeam;
use marlin::runtime::{Layout, Observer, RunState, RuntimeNetwork, TickRecord, run};
use marlin::topology::{Topology, TopologySpec};
use rand::Rng;

/// Every tick's (x, actor, reward, frame), to compare trajectories.
#[derive(Default)]
struct Trail(Vec<(usize, i64, u64, Vec<u64>)>);

impl Observer for Trail {
    fn record(&mut self, r: &TickRecord) {
        self.0.push((r.x, r.actor, r.reward.to_bits(), r.frame.to_vec()));
    }
}

fn network(n: usize, update: UpdateScheme, dead: &[usize]) -> RuntimeNetwork {
    let mut alive = vec![true; n];
    for &k in dead {
        alive[k] = false;
    }
    RuntimeNetwork {
        n,
        alive,
        input: InputProcess::switching(vec![-1.0, 1.0], 0.05),
        reward: RewardSpec::TargetCount {
            targets: vec![n / 4, n / 2],
            value: 1.0,
        },
        update,
        topology: Topology::build(&TopologySpec::RandomInDegree { k: 12 }, n, 5),
        // every third neuron sees the input
        receives_input: (0..n).map(|k| k % 3 == 0).collect(),
    }
}

/// Learners with random starting parameters (so the network is active).
fn learners(net: &RuntimeNetwork, seed: u64) -> Vec<LearningNeuron<LogisticLearner>> {
    let mut r = stream(seed, Domain::Topology, 99);
    (0..net.n)
        .map(|k| {
            let mut params = LogisticLearner::new(net.topology.in_degree(k), r.random_range(-1.0..0.5));
            params.unit.input_weight = r.random_range(-1.0..1.0);
            params
                .unit
                .weights
                .iter_mut()
                .for_each(|w| *w = r.random_range(-0.6..0.6));
            LearningNeuron {
                id: k,
                params,
                prior: 0.3,
                prior_rate: if k % 2 == 0 { 1e-3 } else { 0.0 },
                trace_decay: 0.0,
                caught_up: 0.0,
                rng: stream(seed, Domain::Agent, k as u64),
            }
        })
        .collect()
}

fn start(net: &RuntimeNetwork, seed: u64, rule: Rule, own_cost: bool) -> RunState {
    let mut st = RunState::initial(net, seed);
    st.teacher = Some(Teacher::new(
        TeacherConfig {
            rule,
            lambda: 0.3,
            own_cost,
            rate: 0.05,
            decay_ticks: Some(500.0),
            baseline_rate: 1e-2,
            critic_rate: 0.1,
        },
        Some(Critic::new(CriticKind::Counts, net.n, 2)),
    ));
    st
}

fn bytes<T: serde::Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).unwrap()
}

/// Run the agents and the team from the same start; assert equal bits.
fn compare(net: &RuntimeNetwork, rule: Rule, own_cost: bool, ticks: u64, layouts: &[(usize, usize)]) {
    let seed = 11;
    let mut agents = learners(net, seed);
    let before = bytes(&agents);
    let mut trail = Trail::default();
    let (state, totals) = run(
        net,
        &mut agents,
        Layout::single(),
        start(net, seed, rule, own_cost),
        ticks,
        &mut trail,
    );
    assert_ne!(bytes(&agents), before, "the agents learned something");
    for &(shards, threads) in layouts {
        let what = format!(
            "{:?}, {rule:?}, own cost {own_cost}, {shards} shards on {threads} threads",
            net.update
        );
        let mut team = LogisticTeam::from_agents(net, &learners(net, seed), 0..net.n).unwrap();
        let mut other = Trail::default();
        let (st, tot) = team
            .run(
                net,
                Layout { shards, threads },
                start(net, seed, rule, own_cost),
                ticks,
                &mut other,
                None,
            )
            .unwrap();
        assert!(trail.0 == other.0, "trajectory, {what}");
        assert_eq!(state, st, "run state, {what}");
        assert_eq!(
            (totals.reward.to_bits(), totals.info.to_bits(), totals.spikes),
            (tot.reward.to_bits(), tot.info.to_bits(), tot.spikes),
            "totals, {what}"
        );
        assert!(bytes(&agents) == bytes(&team.to_agents(net)), "learners, {what}");
    }
}

#[test]
fn synchronous_learning_on_arrays_is_the_agent_engines_bit_for_bit() {
    let net = network(150, UpdateScheme::Synchronous, &[4, 77]);
    for (rule, own) in [(Rule::ActorCritic, false), (Rule::Reinforce, true)] {
        compare(&net, rule, own, 400, &[(1, 1), (3, 1), (4, 2), (7, 2)]);
    }
}

#[test]
fn random_partial_learning_on_arrays_is_the_agent_engines_bit_for_bit() {
    let net = network(130, UpdateScheme::RandomPartial { q: 0.3 }, &[0]);
    compare(&net, Rule::ActorCritic, false, 600, &[(1, 1), (5, 2)]);
    compare(&net, Rule::Reinforce, true, 600, &[(2, 2)]);
}

#[test]
fn asynchronous_learning_on_arrays_is_the_agent_engines_bit_for_bit() {
    let net = network(90, UpdateScheme::Asynchronous, &[3, 50]);
    compare(&net, Rule::ActorCritic, false, 30_000, &[(1, 1), (3, 2)]);
    compare(&net, Rule::Reinforce, true, 30_000, &[(1, 1)]);
}

#[test]
fn a_run_in_several_spans_equals_one_span() {
    let net = network(100, UpdateScheme::Synchronous, &[]);
    let seed = 2;
    let mut whole = LogisticTeam::from_agents(&net, &learners(&net, seed), 0..net.n).unwrap();
    let (a, _) = whole
        .run(
            &net,
            Layout::threads(2),
            start(&net, seed, Rule::ActorCritic, false),
            300,
            &mut Trail::default(),
            None,
        )
        .unwrap();
    let mut parts = LogisticTeam::from_agents(&net, &learners(&net, seed), 0..net.n).unwrap();
    let mut st = start(&net, seed, Rule::ActorCritic, false);
    for ticks in [1, 99, 200] {
        // through the agent form between spans, as a checkpoint goes
        st = parts
            .run(&net, Layout::single(), st, ticks, &mut Trail::default(), None)
            .unwrap()
            .0;
        parts = LogisticTeam::from_agents(&net, &parts.to_agents(&net), 0..net.n).unwrap();
    }
    assert_eq!(a, st);
    assert_eq!(whole, parts);
}

#[test]
fn conversions_round_trip_and_refuse_what_arrays_cannot_hold() {
    let net = network(70, UpdateScheme::Synchronous, &[]);
    let agents = learners(&net, 4);
    let team = LogisticTeam::from_agents(&net, &agents, 0..net.n).unwrap();
    assert!(bytes(&team.to_agents(&net)) == bytes(&agents));
    // a block of neurons, as an MPI rank holds
    let block = LogisticTeam::from_agents(&net, &agents[64..], 64..70).unwrap();
    assert_eq!(block.neurons(), 64..70);
    assert!(bytes(&block.to_agents(&net)) == bytes(&agents[64..].to_vec()));

    let mut decaying = agents.clone();
    decaying[5].trace_decay = 0.5;
    let e = LogisticTeam::from_agents(&net, &decaying, 0..net.n).unwrap_err();
    assert!(e.contains("neuron 5") && e.contains("γ_e"), "{e}");
    let mut short = agents.clone();
    short[9].params.unit.weights.pop();
    let e = LogisticTeam::from_agents(&net, &short, 0..net.n).unwrap_err();
    assert!(e.contains("neuron 9") && e.contains("11 weights for 12"), "{e}");
    let e = LogisticTeam::from_agents(&net, &agents[..69], 0..net.n).unwrap_err();
    assert!(e.contains("69 learners"), "{e}");
    let all = RuntimeNetwork {
        topology: Topology::build(&TopologySpec::AllToAll, 70, 0),
        ..net.clone()
    };
    let e = LogisticTeam::from_agents(&all, &agents, 0..70).unwrap_err();
    assert!(e.contains("all-to-all"), "{e}");
}
