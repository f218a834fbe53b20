//! Learning throughput against a plain single-threaded loop applying the
//! same rule (actor–critic, theory §4) with the same streams and math:
//! - the toy (n = 8, asynchronous), tabular policies, tabular critic;
//! - N = 10⁴, random_in_degree K = 100, synchronous, logistic policies (one
//!   weight per synapse), the (input, count) critic: on the agent engine
//!   against the plain loop of its algorithm (dense traces), and as a
//!   `LogisticTeam` (arrays, one fused pass per update) against the plain
//!   loop of that algorithm.
//!
//! - maze walkers (tabular policies, tabular or goal critic): two walkers
//!   seeing the joint state on the actor runtime against the plain serial
//!   loop of the same walkers (`WalkerTeam::run`), and 4 096 walkers seeing
//!   their own cell on 1 and 2 threads.
//!
//! Throughput: ticks per second (toy, two walkers), neuron-updates per
//! second (10⁴) and walker-steps per second (4 096 walkers).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use marlin::learn::{
    Critic, CriticKind, LearningNeuron, LogisticLearner, Rule, TabularLogits, Teacher, TeacherConfig, sigmoid,
};
use marlin::model::{InputProcess, RewardSpec, UpdateScheme};
use marlin::rng::{Domain, Stream, stream};
use marlin::runtime::learners::LogisticTeam;
use marlin::runtime::{Layout, NoObserver, RunState, RuntimeNetwork, run};
use marlin::scenario::Scenario;
use marlin::topology::{Topology, TopologySpec};
use rand::Rng;
use std::hint::black_box;
use std::path::Path;

const RATE: f64 = 0.1;
const CRITIC_RATE: f64 = 0.1;
const BASELINE_RATE: f64 = 1e-3;
const PRIOR_RATE: f64 = 1e-4;
const LAMBDA: f64 = 0.5;

fn config() -> TeacherConfig {
    TeacherConfig {
        rule: Rule::ActorCritic,
        lambda: LAMBDA,
        own_cost: false,
        rate: RATE,
        decay_ticks: None,
        baseline_rate: BASELINE_RATE,
        critic_rate: CRITIC_RATE,
    }
}

fn neuron<L: marlin::learn::Learnable>(k: usize, params: L, seed: u64) -> LearningNeuron<L> {
    LearningNeuron {
        id: k,
        params,
        prior: 0.5,
        prior_rate: PRIOR_RATE,
        trace_decay: 0.0,
        caught_up: 0.0,
        rng: stream(seed, Domain::Agent, k as u64),
    }
}

fn toy(c: &mut Criterion) {
    let sc = Scenario::load(Path::new("scenarios/toy8.toml")).unwrap();
    let net = sc.runtime_network();
    let n = 8;
    let ticks = 200_000u64;
    let mut g = c.benchmark_group("learning_toy8_actor_critic_tabular");
    g.throughput(Throughput::Elements(ticks));
    g.bench_function("runtime", |b| {
        b.iter(|| {
            let mut agents: Vec<_> = (0..n).map(|k| neuron(k, TabularLogits::new(512, 0.0), 1)).collect();
            let mut st = RunState::initial(&net, 1);
            st.teacher = Some(Teacher::new(config(), Some(Critic::new(CriticKind::Tabular, n, 2))));
            let (st, _) = run(&net, &mut agents, Layout::single(), st, ticks, &mut NoObserver);
            black_box(st.teacher.unwrap().cumulative)
        })
    });
    g.bench_function("plain_loop", |b| {
        b.iter(|| {
            // The same rule by hand: clock draw, catch-up of the acting
            // agent's one-entry trace, its draw and log-ratio, trace and prior
            // updates, reward, input step, TD error and critic update.
            let mut rngs: Vec<Stream> = (0..n).map(|k| stream(1, Domain::Agent, k as u64)).collect();
            let mut clock = stream(1, Domain::Clock, 0);
            let mut env = stream(1, Domain::Environment, 0);
            let mut logits = vec![vec![0.0f64; 512]; n];
            let mut trace = vec![(0usize, 0.0f64); n];
            let mut caught = vec![0.0f64; n];
            let mut prior = vec![0.5f64; n];
            let mut v = vec![0.0f64; 512];
            let (mut x, mut sigma, mut cum, mut g_hat) = (0usize, 0usize, 0.0f64, 0.0f64);
            for _ in 0..ticks {
                let s = (x << n) | sigma;
                let r = if sigma.count_ones() as usize == [2, 6][x] {
                    1.0
                } else {
                    0.0
                };
                let k = clock.random_range(0..n);
                let (i, e) = trace[k];
                logits[k][i] += (cum - caught[k]) * e;
                caught[k] = cum;
                let p = sigmoid(logits[k][s]);
                let fire = rngs[k].random::<f64>() < p;
                let lr = if fire {
                    (p / prior[k]).ln()
                } else {
                    ((1.0 - p) / (1.0 - prior[k])).ln()
                };
                trace[k] = (s, fire as u8 as f64 - p);
                prior[k] += PRIOR_RATE * (p - prior[k]);
                sigma = if fire { sigma | 1 << k } else { sigma & !(1 << k) };
                if env.random::<f64>() < 0.02 {
                    x = 1 - x;
                }
                let net_r = r - LAMBDA * lr;
                let s2 = (x << n) | sigma;
                let delta = net_r - g_hat + v[s2] - v[s];
                v[s] += CRITIC_RATE * delta;
                g_hat += BASELINE_RATE * (net_r - g_hat);
                cum += RATE * delta;
            }
            black_box((cum, sigma))
        })
    });
    g.finish();
}

/// The plain loops' control plane at N = 10⁴ (what the runtime's clock,
/// environment and critic do): input, spike count, the (input, count)
/// critic, the baseline ĝ and the cumulative signal.
struct PlainPlane {
    env: Stream,
    v: Vec<f64>,
    x: usize,
    count: usize,
    g_hat: f64,
    cum: f64,
}

impl PlainPlane {
    fn new(n: usize) -> Self {
        PlainPlane {
            env: stream(7, Domain::Environment, 0),
            v: vec![0.0; 2 * (n + 1)],
            x: 0,
            count: 0,
            g_hat: 0.0,
            cum: 0.0,
        }
    }

    /// r(s_t): 1 at the input's target count.
    fn reward(&self, n: usize) -> f64 {
        if self.count == [n / 4, n / 2][self.x] { 1.0 } else { 0.0 }
    }

    /// After the neurons acted: input step, TD error, critic, baseline, signal.
    fn end_tick(&mut self, n: usize, r: f64, info: f64, new_count: usize) {
        let s = self.x * (n + 1) + self.count;
        if self.env.random::<f64>() < 0.01 {
            self.x = 1 - self.x;
        }
        self.count = new_count;
        let net_r = r - LAMBDA * info;
        let s2 = self.x * (n + 1) + self.count;
        let delta = net_r - self.g_hat + self.v[s2] - self.v[s];
        self.v[s] += CRITIC_RATE * delta;
        self.g_hat += BASELINE_RATE * (net_r - self.g_hat);
        self.cum += RATE * delta;
    }
}

fn large(c: &mut Criterion) {
    let n = 10_000usize;
    let topology = Topology::build(&TopologySpec::RandomInDegree { k: 100 }, n, 7);
    let net = RuntimeNetwork {
        n,
        alive: vec![true; n],
        input: InputProcess::switching(vec![-1.0, 1.0], 0.01),
        reward: RewardSpec::TargetCount {
            targets: vec![n / 4, n / 2],
            value: 1.0,
        },
        update: UpdateScheme::Synchronous,
        topology: topology.clone(),
        receives_input: vec![true; n],
    };
    let ticks = 100u64;
    let mut g = c.benchmark_group("learning_random_in_degree_k100_n10000_synchronous_logistic");
    g.throughput(Throughput::Elements(ticks * n as u64));
    g.sample_size(10);
    for threads in [1usize, 2] {
        g.bench_function(format!("runtime_{threads}_threads"), |b| {
            b.iter(|| {
                let mut agents: Vec<_> = (0..n).map(|k| neuron(k, LogisticLearner::new(100, 0.0), 7)).collect();
                let mut st = RunState::initial(&net, 7);
                st.teacher = Some(Teacher::new(config(), Some(Critic::new(CriticKind::Counts, n, 2))));
                let layout = Layout {
                    shards: threads,
                    threads,
                };
                let (st, _) = run(&net, &mut agents, layout, st, ticks, &mut NoObserver);
                black_box(st.teacher.unwrap().cumulative)
            })
        });
    }
    for threads in [1usize, 2] {
        g.bench_function(format!("team_{threads}_threads"), |b| {
            b.iter(|| {
                let agents: Vec<_> = (0..n).map(|k| neuron(k, LogisticLearner::new(100, 0.0), 7)).collect();
                let mut team = LogisticTeam::from_agents(&net, &agents, 0..n).unwrap();
                let mut st = RunState::initial(&net, 7);
                st.teacher = Some(Teacher::new(config(), Some(Critic::new(CriticKind::Counts, n, 2))));
                let (st, _) = team
                    .run(&net, Layout::threads(threads), st, ticks, &mut NoObserver, None)
                    .unwrap();
                black_box(st.teacher.unwrap().cumulative)
            })
        });
    }
    g.bench_function("plain_fused_loop", |b| {
        b.iter(|| {
            // What the team does, by hand: per neuron one pass over its 100
            // synapses (catch-up of the traced weights, logit, new trace
            // byte), bias and input weight, draw, log-ratio, prior; per
            // tick: reward, input, TD, critic.
            let mut rngs: Vec<Stream> = (0..n).map(|k| stream(7, Domain::Agent, k as u64)).collect();
            let k_in = 100;
            let mut w = vec![0.0f64; n * k_in];
            let mut tr = vec![0u8; n * k_in];
            let (mut bias, mut uw) = (vec![0.0f64; n], vec![0.0f64; n]);
            let (mut grad, mut grad_in) = (vec![0.0f64; n], vec![0.0f64; n]);
            let mut caught = vec![0.0f64; n];
            let mut prior = vec![0.5f64; n];
            let (mut cur, mut next) = (vec![0u64; n.div_ceil(64)], vec![0u64; n.div_ceil(64)]);
            let mut plane = PlainPlane::new(n);
            let values = [-1.0, 1.0];
            for _ in 0..ticks {
                let (r, x, cum) = (plane.reward(n), plane.x, plane.cum);
                next.iter_mut().for_each(|w| *w = 0);
                let (mut info, mut new_count) = (0.0, 0usize);
                for i in 0..n {
                    let d = cum - caught[i];
                    bias[i] += d * grad[i];
                    uw[i] += d * grad_in[i];
                    caught[i] = cum;
                    let mut z = bias[i] + uw[i] * values[x];
                    let (wi, ti) = (&mut w[i * k_in..(i + 1) * k_in], &mut tr[i * k_in..(i + 1) * k_in]);
                    let g_old = grad[i];
                    for ((w, e), &j) in wi.iter_mut().zip(ti.iter_mut()).zip(topology.partners(i)) {
                        *w += d * (g_old * *e as f64);
                        let b = cur[j as usize / 64] >> (j % 64) & 1;
                        z += *w * b as f64;
                        *e = b as u8;
                    }
                    let p = sigmoid(z);
                    let fire = rngs[i].random::<f64>() < p;
                    info += if fire {
                        (p / prior[i]).ln()
                    } else {
                        ((1.0 - p) / (1.0 - prior[i])).ln()
                    };
                    grad[i] = fire as u8 as f64 - p;
                    grad_in[i] = grad[i] * values[x];
                    prior[i] += PRIOR_RATE * (p - prior[i]);
                    if fire {
                        next[i / 64] |= 1 << (i % 64);
                        new_count += 1;
                    }
                }
                std::mem::swap(&mut cur, &mut next);
                plane.end_tick(n, r, info, new_count);
            }
            black_box((plane.cum, plane.count))
        })
    });
    g.bench_function("plain_loop", |b| {
        b.iter(|| {
            // Per neuron: catch up (θ += Δ·e over 102 parameters), logit over
            // its 100 partners and the input, draw, log-ratio, trace (reset,
            // then the gradient), prior; per tick: reward, input, TD, critic.
            let mut rngs: Vec<Stream> = (0..n).map(|k| stream(7, Domain::Agent, k as u64)).collect();
            let k_in = 100;
            let mut theta = vec![0.0f64; n * (k_in + 2)];
            let mut trace = vec![0.0f64; n * (k_in + 2)];
            let mut caught = vec![0.0f64; n];
            let mut prior = vec![0.5f64; n];
            let (mut cur, mut next) = (vec![0u64; n.div_ceil(64)], vec![0u64; n.div_ceil(64)]);
            let mut plane = PlainPlane::new(n);
            let values = [-1.0, 1.0];
            for _ in 0..ticks {
                let (r, x, cum) = (plane.reward(n), plane.x, plane.cum);
                next.iter_mut().for_each(|w| *w = 0);
                let (mut info, mut new_count) = (0.0, 0usize);
                for i in 0..n {
                    let th = &mut theta[i * (k_in + 2)..(i + 1) * (k_in + 2)];
                    let tr = &mut trace[i * (k_in + 2)..(i + 1) * (k_in + 2)];
                    let d = cum - caught[i];
                    if d != 0.0 {
                        th.iter_mut().zip(tr.iter()).for_each(|(t, e)| *t += d * e);
                    }
                    caught[i] = cum;
                    let pre = topology.partners(i);
                    let mut z = th[0] + th[1] * values[x];
                    for (b, &j) in pre.iter().enumerate() {
                        let j = j as usize;
                        if cur[j / 64] >> (j % 64) & 1 == 1 {
                            z += th[2 + b];
                        }
                    }
                    let p = sigmoid(z);
                    let fire = rngs[i].random::<f64>() < p;
                    info += if fire {
                        (p / prior[i]).ln()
                    } else {
                        ((1.0 - p) / (1.0 - prior[i])).ln()
                    };
                    let gl = fire as u8 as f64 - p;
                    tr.iter_mut().for_each(|e| *e = 0.0);
                    tr[0] = gl;
                    tr[1] = gl * values[x];
                    for (b, &j) in pre.iter().enumerate() {
                        let j = j as usize;
                        if cur[j / 64] >> (j % 64) & 1 == 1 {
                            tr[2 + b] = gl;
                        }
                    }
                    prior[i] += PRIOR_RATE * (p - prior[i]);
                    if fire {
                        next[i / 64] |= 1 << (i % 64);
                        new_count += 1;
                    }
                }
                std::mem::swap(&mut cur, &mut next);
                plane.end_tick(n, r, info, new_count);
            }
            black_box((plane.cum, plane.count))
        })
    });
    g.finish();
}

fn walkers(c: &mut Criterion) {
    use marlin::learn::walkers::{WalkerLearning, WalkerTeam, WalkerView};
    use marlin::maze::{Maze, TeamGoal};
    use marlin::runtime::walkers::{self, WalkerTick};
    let maze = Maze::parse("#######\n#S..#G#\n#.#...#\n#S...G#\n#######", &[('G', 1.0)], 0.0).unwrap();
    let spec = |agents: usize, view: WalkerView| WalkerLearning {
        agents,
        view,
        goal: TeamGoal::AllOnGoals,
        ..WalkerLearning::default()
    };
    let ticks = 200_000u64;
    let mut g = c.benchmark_group("learning_maze_team_2_walkers_joint");
    g.throughput(Throughput::Elements(ticks));
    g.bench_function("runtime", |b| {
        b.iter(|| {
            let mut team = WalkerTeam::new(&maze, spec(2, WalkerView::Joint)).unwrap();
            let st = walkers::run(&mut team, Layout::single(), ticks, &mut |_: &WalkerTick| {}, None).unwrap();
            black_box(st.g)
        })
    });
    g.bench_function("plain_loop", |b| {
        b.iter(|| {
            let mut team = WalkerTeam::new(&maze, spec(2, WalkerView::Joint)).unwrap();
            black_box(team.run(ticks).g)
        })
    });
    g.finish();
    let (agents, ticks) = (4096usize, 200u64);
    let mut g = c.benchmark_group("learning_maze_4096_walkers_own");
    g.throughput(Throughput::Elements(agents as u64 * ticks));
    g.sample_size(10);
    for threads in [1, 2] {
        g.bench_function(format!("runtime_{threads}_threads"), |b| {
            b.iter(|| {
                let mut team = WalkerTeam::new(&maze, spec(agents, WalkerView::Own)).unwrap();
                let layout = Layout::threads(threads);
                let st = walkers::run(&mut team, layout, ticks, &mut |_: &WalkerTick| {}, None).unwrap();
                black_box(st.g)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, toy, large, walkers);
criterion_main!(benches);
