//! Decentralised learning (theory §4) against exact references: the
//! policy-gradient estimate against finite differences of the exact g, the
//! critic against the exact relative value, the effect of a large λ, and
//! determinism across layouts.

mod common;

use marlin::agents::{Agent, FullStatePolicy, Neuron};
use marlin::learn::{Critic, CriticKind, LearningNeuron, LogisticLearner, Rule, TabularLogits, Teacher, TeacherConfig};
use marlin::model::{CodingCost, Network, RewardSpec, UpdateScheme, rewards};
use marlin::rng::{Domain, stream};
use marlin::runtime::{Layout, NoObserver, RunState, RuntimeNetwork, run, tabulate};
use marlin::solver::{Policy, SolveOptions, evaluate, solve};
use marlin::topology::{Topology, TopologySpec};

fn runtime(net: &Network) -> RuntimeNetwork {
    RuntimeNetwork {
        n: net.n,
        alive: net.alive.clone(),
        input: net.input.clone(),
        reward: RewardSpec::Table(net.reward.clone()),
        update: net.update,
        topology: Topology::build(&TopologySpec::AllToAll, net.n, 0),
        receives_input: vec![true; net.n],
    }
}

fn teacher(rule: Rule, lambda: f64, rate: f64, critic_rate: f64, net: &Network) -> Teacher {
    Teacher::new(
        TeacherConfig {
            rule,
            lambda,
            own_cost: false,
            rate,
            decay_ticks: None,
            baseline_rate: 1e-3,
            critic_rate,
        },
        Some(Critic::new(CriticKind::Tabular, net.n, net.input.len())),
    )
}

/// Logistic parameters θ = [b, u, w_0..w_{n-1}] per neuron → π table rows,
/// computed here independently of the library.
fn logistic_rows(net: &Network, theta: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let c = 1usize << net.n;
    (0..net.input.len() * c)
        .map(|s| {
            let (x, sigma) = (s / c, s % c);
            (0..net.n)
                .map(|k| {
                    let t = &theta[k];
                    let mut z = t[0] + t[1] * net.input.values[x];
                    for j in 0..net.n {
                        if j != k && sigma >> j & 1 == 1 {
                            z += t[2 + j];
                        }
                    }
                    common::sigmoid(z)
                })
                .collect()
        })
        .collect()
}

fn params(a: &LearningNeuron<LogisticLearner>) -> Vec<f64> {
    let u = &a.params.unit;
    let mut v = vec![u.bias, u.input_weight];
    v.extend(&u.weights);
    v
}

#[test]
fn policy_gradient_agrees_with_finite_differences_of_the_exact_g() {
    // A tiny asynchronous network with a fixed prior (so g is a function of
    // the policies alone) and state-dependent random logistic policies.
    let prior = vec![0.3, 0.6];
    let net = common::tiny(
        2,
        UpdateScheme::Asynchronous,
        CodingCost::FixedPrior(prior.clone()),
        0.4,
        5,
    );
    let rnet = runtime(&net);
    let theta0: Vec<Vec<f64>> = vec![vec![0.3, -0.8, 0.0, 1.1], vec![-0.5, 0.6, -1.3, 0.0]];
    let mut agents: Vec<LearningNeuron<LogisticLearner>> = (0..2)
        .map(|k| {
            let mut p = LogisticLearner::new(2, theta0[k][0]);
            p.unit.input_weight = theta0[k][1];
            p.unit.weights = theta0[k][2..].to_vec();
            LearningNeuron {
                id: k,
                params: p,
                prior: prior[k],
                prior_rate: 0.0,
                trace_decay: 0.0,
                caught_up: 0.0,
                rng: stream(9, Domain::Agent, k as u64),
            }
        })
        .collect();
    // Phase 1: the actors are frozen (η = 0) while the critic learns V̂ ≈ h.
    let mut state = RunState::initial(&rnet, 9);
    state.teacher = Some(teacher(Rule::ActorCritic, net.lambda, 0.0, 0.02, &net));
    let (mut state, _) = run(&rnet, &mut agents, Layout::single(), state, 400_000, &mut NoObserver);
    // Phase 2: η so small that θ barely moves; Δθ / (η·T) estimates ∇g.
    let eta = 1e-8;
    let ticks = 3_000_000u64;
    {
        let t = state.teacher.as_mut().unwrap();
        t.config.rate = eta;
        t.config.critic_rate = 0.002;
    }
    let before: Vec<Vec<f64>> = agents.iter().map(params).collect();
    let (state, _) = run(&rnet, &mut agents, Layout::single(), state, ticks, &mut NoObserver);
    let b = state.teacher.as_ref().unwrap().broadcast(state.tick);
    agents.iter_mut().for_each(|a| a.catch_up(&b));
    let estimate: Vec<f64> = agents
        .iter()
        .zip(&before)
        .flat_map(|(a, p0)| {
            params(a)
                .into_iter()
                .zip(p0)
                .map(|(p, q)| (p - q) / (eta * ticks as f64))
        })
        .collect();
    // Central differences of the exact g (independent dense evaluator).
    let g = |theta: &[Vec<f64>]| common::objective(&net, &logistic_rows(&net, theta)).0;
    let h = 1e-5;
    let mut fd = Vec::new();
    for k in 0..2 {
        for i in 0..4 {
            if i == 2 + k {
                fd.push(0.0); // the self-weight never enters
                continue;
            }
            let (mut up, mut dn) = (theta0.clone(), theta0.clone());
            up[k][i] += h;
            dn[k][i] -= h;
            fd.push((g(&up) - g(&dn)) / (2.0 * h));
        }
    }
    let dot: f64 = estimate.iter().zip(&fd).map(|(a, b)| a * b).sum();
    let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
    let cosine = dot / (norm(&estimate) * norm(&fd));
    let scale = norm(&estimate) / norm(&fd);
    assert!(
        cosine > 0.95,
        "cosine {cosine}: estimate {estimate:?} vs finite differences {fd:?}"
    );
    assert!(
        (0.8..1.25).contains(&scale),
        "magnitude ratio {scale}: {estimate:?} vs {fd:?}"
    );
    let big = fd.iter().fold(0.0f64, |a, b| a.max(b.abs()));
    for (e, f) in estimate.iter().zip(&fd) {
        if f.abs() > 0.2 * big {
            assert_eq!(e.signum(), f.signum(), "sign: {estimate:?} vs {fd:?}");
        }
    }
}

#[test]
fn the_critic_learns_the_exact_relative_value_of_fixed_policies() {
    let net = common::tiny(3, UpdateScheme::Asynchronous, CodingCost::MutualInformation, 0.5, 11);
    let sol = solve(&net, &SolveOptions::default()).unwrap();
    let rnet = runtime(&net);
    let mut agents = Neuron::team(FullStatePolicy::per_neuron(3, &sol.policy.fire), &sol.prior, 4);
    let mut state = RunState::initial(&rnet, 4);
    let mut t = teacher(Rule::ActorCritic, net.lambda, 0.0, 0.05, &net);
    t.config.decay_ticks = Some(2e5);
    state.teacher = Some(t);
    let (state, _) = run(&rnet, &mut agents, Layout::single(), state, 4_000_000, &mut NoObserver);
    let v = &state.teacher.as_ref().unwrap().critic.as_ref().unwrap().values;
    let rho = &sol.eval.rho;
    let mean = |f: &[f64]| f.iter().zip(rho).map(|(a, p)| a * p).sum::<f64>();
    let (mv, mh) = (mean(v), mean(&sol.h));
    let span =
        sol.h.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b)) - sol.h.iter().fold(f64::INFINITY, |a, &b| a.min(b));
    let mut worst = 0.0f64;
    for s in 0..v.len() {
        if rho[s] > 1e-3 {
            worst = worst.max(((v[s] - mv) - (sol.h[s] - mh)).abs());
        }
    }
    assert!(span > 0.1, "a non-trivial value function (span {span})");
    assert!(worst < 0.05 * span, "V̂ − h off by {worst} (span of h {span})");
    // The baseline tracks the exact g.
    let g_hat = state.teacher.as_ref().unwrap().baseline;
    assert!((g_hat - sol.eval.g).abs() < 0.02, "ĝ {g_hat} vs g {}", sol.eval.g);
}

/// Train tabular actor–critic agents on `net` and return the exact
/// evaluation of what they learned.
fn train_tabular(net: &Network, ticks: u64, seed: u64) -> marlin::solver::Evaluation {
    let rnet = runtime(net);
    let len = net.input.len() << net.n;
    let mut agents: Vec<LearningNeuron<TabularLogits>> = (0..net.n)
        .map(|k| LearningNeuron {
            id: k,
            params: TabularLogits::new(len, 0.0),
            prior: 0.5,
            prior_rate: 1e-3,
            trace_decay: 0.0,
            caught_up: 0.0,
            rng: stream(seed, Domain::Agent, k as u64),
        })
        .collect();
    let mut state = RunState::initial(&rnet, seed);
    let mut t = teacher(Rule::ActorCritic, net.lambda, 0.5, 0.1, net);
    t.config.decay_ticks = Some(2e5);
    state.teacher = Some(t);
    let (state, _) = run(&rnet, &mut agents, Layout::single(), state, ticks, &mut NoObserver);
    let b = state.teacher.as_ref().unwrap().broadcast(state.tick);
    agents.iter_mut().for_each(|a| a.catch_up(&b));
    let fire = tabulate(&rnet, &agents);
    evaluate(net, &Policy { n: net.n, fire }, &SolveOptions::default())
}

#[test]
fn a_large_lambda_drives_learned_policies_toward_state_independent_firing() {
    let mut net = common::tiny(3, UpdateScheme::Asynchronous, CodingCost::MutualInformation, 0.1, 0);
    net.reward = rewards::target_count(3, &[0, 3], 1.0);
    net.input.transition = vec![0.98, 0.02, 0.02, 0.98]; // slow enough to be worth coding
    let cheap = train_tabular(&net, 1_000_000, 2);
    // Learning gets close to the exact optimum here.
    let opt = solve(&net, &SolveOptions::default()).unwrap();
    assert!(
        cheap.g > 0.9 * opt.eval.g,
        "learned g {} vs optimum {}",
        cheap.g,
        opt.eval.g
    );
    net.lambda = 5.0;
    let dear = train_tabular(&net, 1_000_000, 2);
    // Information (nats per tick) is what λ prices: at λ = 5 the learned
    // neurons nearly ignore the state.
    assert!(cheap.info_nats > 0.05, "λ = 0.05 learns to code: {}", cheap.info_nats);
    assert!(
        dear.info_nats < 0.01,
        "λ = 5 learns state-blind firing: {}",
        dear.info_nats
    );
    assert!(dear.info_nats < 0.1 * cheap.info_nats);
}

#[test]
fn learning_is_bit_identical_for_any_shards_and_threads() {
    let sc = marlin::scenario::Scenario::load(std::path::Path::new("scenarios/toy8.toml")).unwrap();
    let rnet = sc.runtime_network();
    let net = sc.network().unwrap();
    let go = |layout: Layout| {
        let mut agents: Vec<LearningNeuron<LogisticLearner>> = (0..8)
            .map(|k| LearningNeuron {
                id: k,
                params: LogisticLearner::new(8, 0.0),
                prior: 0.5,
                prior_rate: 1e-3,
                trace_decay: 0.5,
                caught_up: 0.0,
                rng: stream(3, Domain::Agent, k as u64),
            })
            .collect();
        let mut state = RunState::initial(&rnet, 3);
        state.teacher = Some(teacher(Rule::ActorCritic, 0.5, 0.05, 0.1, &net));
        let (state, totals) = run(&rnet, &mut agents, layout, state, 100_000, &mut NoObserver);
        let p: Vec<Vec<f64>> = agents.iter().map(params).collect();
        let priors: Vec<f64> = agents.iter().map(|a| a.prior).collect();
        (p, priors, state, totals.reward)
    };
    let reference = go(Layout::single());
    assert!(reference.0.iter().flatten().any(|&v| v != 0.0), "something was learned");
    for (shards, threads) in [(2, 1), (5, 1), (2, 2), (8, 2), (3, 3)] {
        let other = go(Layout { shards, threads });
        assert_eq!(reference.0, other.0, "parameters, {shards} shards on {threads} threads");
        assert_eq!(reference.1, other.1, "priors");
        assert_eq!(reference.2, other.2, "run state incl. the teacher");
        assert_eq!(reference.3, other.3);
    }
    // Synchronous updates too (every agent acts and learns every tick).
    let mut sync = sc.clone();
    sync.update = UpdateScheme::Synchronous;
    let rnet = sync.runtime_network();
    let go = |layout: Layout| {
        let mut agents: Vec<LearningNeuron<TabularLogits>> = (0..8)
            .map(|k| LearningNeuron {
                id: k,
                params: TabularLogits::new(512, 0.0),
                prior: 0.5,
                prior_rate: 1e-3,
                trace_decay: 0.0,
                caught_up: 0.0,
                rng: stream(3, Domain::Agent, k as u64),
            })
            .collect();
        let mut state = RunState::initial(&rnet, 3);
        state.teacher = Some(teacher(Rule::Reinforce, 0.5, 0.1, 0.1, &net));
        let (state, _) = run(&rnet, &mut agents, layout, state, 20_000, &mut NoObserver);
        (
            agents.iter().map(|a| a.params.logits.clone()).collect::<Vec<_>>(),
            state,
        )
    };
    let reference = go(Layout::single());
    for (shards, threads) in [(3, 1), (2, 2), (8, 2)] {
        assert!(
            reference == go(Layout { shards, threads }),
            "synchronous, {shards} shards, {threads} threads"
        );
    }
}
