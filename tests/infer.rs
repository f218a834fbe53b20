//! Inverse RL: exact policies in, the exact reward out (modulo the
//! identifiable part), and recovery from simulated records.

mod common;

use marlin::agents::{FullStatePolicy, Neuron};
use marlin::infer::{
    EdgeCounts, TabularOptions, centred_correlation, invert_from_logits, invert_tabular, project_on_counts,
};
use marlin::model::{CodingCost, InputProcess, Network, UpdateScheme, rewards};
use marlin::record::Recorder;
use marlin::runtime::{Layout, RunState, run};
use marlin::scenario::Scenario;
use marlin::solver::{Solution, SolveOptions, solve};
use std::path::Path;

/// `v` with each input's mean over the states `keep` accepts removed.
fn centred_on(v: &[f64], n: usize, inputs: usize, keep: impl Fn(usize) -> bool) -> Vec<f64> {
    let c = 1usize << n;
    let mut out = v.to_vec();
    for x in 0..inputs {
        let states: Vec<usize> = (x * c..(x + 1) * c).filter(|&s| keep(s)).collect();
        let m = states.iter().map(|&s| v[s]).sum::<f64>() / states.len() as f64;
        out[x * c..(x + 1) * c].iter_mut().for_each(|a| *a -= m);
    }
    out
}

fn exact_edges(sol: &Solution, n: usize, inputs: usize) -> Vec<(f64, f64)> {
    let c = 1usize << n;
    let mut e = vec![(0.0, 0.0); inputs * c * n];
    for x in 0..inputs {
        for s0 in 0..c {
            for k in 0..n {
                if s0 >> k & 1 == 0 {
                    let pi = sol.policy.p(x * c + s0, k);
                    e[(x * c + s0) * n + k] = (1.0, pi.ln() - (1.0 - pi).ln());
                }
            }
        }
    }
    e
}

#[test]
fn exact_policies_give_back_the_exact_reward_and_value() {
    let toy = Scenario::load(Path::new("scenarios/toy8.toml"))
        .unwrap()
        .network()
        .unwrap();
    let n = 4;
    let three_inputs = Network {
        n,
        alive: vec![true; n],
        input: InputProcess {
            values: vec![0.0, 1.0, 2.0],
            transition: vec![0.9, 0.05, 0.05, 0.1, 0.8, 0.1, 0.3, 0.0, 0.7],
            control: None,
        },
        reward: common::random_reward(3 << n, 17),
        lambda: 0.7,
        cost: CodingCost::MutualInformation,
        update: UpdateScheme::Asynchronous,
        observes: None,
    };
    // Cell death (theory §6): two of five neurons dead; they never act, and
    // the soft-Bellman sum runs over the three living ones.
    let n = 5;
    let with_dead = Network {
        n,
        alive: vec![true, false, true, true, false],
        input: InputProcess {
            values: vec![-1.0, 1.0],
            transition: vec![0.95, 0.05, 0.1, 0.9],
            control: None,
        },
        reward: common::random_reward(2 << n, 23),
        lambda: 3.0,
        cost: CodingCost::MutualInformation,
        update: UpdateScheme::Asynchronous,
        observes: None,
    };
    // Tight solver tolerances: the inversion is exact, so what remains is the
    // solver's own error. One (symmetric) start: the toy's best optimum has
    // saturated neurons (π within 1e-10 of 1), whose logits floating point
    // carries only to ≈ 1e-6; the symmetric fixed point is an exact
    // soft-optimal policy too, with logits known to ≈ 1e-9.
    let tight = SolveOptions {
        value_tol: 1e-14,
        starts: Some(1),
        ..SolveOptions::default()
    };
    for net in [toy, three_inputs, with_dead] {
        let sol = solve(&net, &tight).unwrap();
        assert!(sol.converged, "{:?}", sol.warnings);
        let (n, xs) = (net.n, net.input.len());
        let mut edges = exact_edges(&sol, n, xs);
        // Only the reachable states (dead neurons silent) say anything, and
        // dead neurons have no edges.
        let c = 1usize << n;
        let dead_mask: usize = (0..n).filter(|&k| !net.alive[k]).map(|k| 1 << k).sum();
        let reachable = |s: usize| (s % c) & dead_mask == 0;
        for (i, e) in edges.iter_mut().enumerate() {
            let (s, k) = (i / n, i % n);
            if !reachable(s) || !net.alive[k] {
                *e = (0.0, 0.0);
            }
        }
        let keep = |v: &[f64]| -> Vec<f64> { (0..v.len()).filter(|&s| reachable(s)).map(|s| v[s]).collect() };
        let inv = invert_from_logits(
            n,
            xs,
            &edges,
            &sol.prior,
            &net.alive,
            &net.input.transition,
            Some(net.lambda),
            vec![1; xs << n],
        )
        .unwrap();
        let (r_true, r_hat) = (
            keep(&centred_on(&net.reward, n, xs, reachable)),
            keep(&centred_on(&inv.r, n, xs, reachable)),
        );
        let worst = r_true
            .iter()
            .zip(&r_hat)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        // π near 0 or 1 carries its logit to only ≈ 1e-16 / min(π, 1 − π)
        // (≈ 1e-7 on the toy at λ = 0.5): that is the precision floor.
        let least = (0..xs << n)
            .filter(|&s| reachable(s))
            .flat_map(|s| (0..n).filter(|&k| net.alive[k]).map(move |k| (s, k)))
            .map(|(s, k)| sol.policy.p(s, k).min(1.0 - sol.policy.p(s, k)))
            .fold(1.0, f64::min);
        eprintln!("least π or 1 − π: {least:e}; worst reward error {worst:e}");
        assert!(worst < 1e-6, "reward recovered to {worst}");
        let (h_true, h_hat) = (
            keep(&centred_on(&sol.h, n, xs, reachable)),
            keep(&centred_on(&inv.h, n, xs, reachable)),
        );
        let worst = h_true
            .iter()
            .zip(&h_hat)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-6, "value recovered to {worst}");
        assert!(inv.residual_rms < 1e-6);
        // λ unknown: the same up to the factor λ.
        let scale_free = invert_from_logits(
            n,
            xs,
            &edges,
            &sol.prior,
            &net.alive,
            &net.input.transition,
            None,
            vec![1; xs << n],
        )
        .unwrap();
        for (a, b) in keep(&centred_on(&scale_free.r, n, xs, reachable)).iter().zip(&r_hat) {
            assert!((a * net.lambda - b).abs() < 1e-7);
        }
    }
}

fn simulate_toy(ticks: u64, seed: u64) -> (Network, Recorder) {
    let sc = Scenario::load(Path::new("scenarios/toy8.toml")).unwrap();
    let model = sc.network().unwrap();
    let sol = solve(&model, &SolveOptions::default()).unwrap();
    let net = sc.runtime_network();
    let mut agents = Neuron::team(FullStatePolicy::per_neuron(8, &sol.policy.fire), &sol.prior, seed);
    let mut rec = Recorder::new((0..8).collect(), ticks);
    run(
        &net,
        &mut agents,
        Layout::single(),
        RunState::initial(&net, seed),
        ticks,
        &mut rec,
    );
    (model, rec)
}

fn counts_of(rec: &Recorder) -> EdgeCounts {
    let x: Vec<usize> = rec.x.iter().map(|&v| v as usize).collect();
    let sigma: Vec<usize> = rec.spikes.chunks(8).map(marlin::record::state_index).collect();
    EdgeCounts::from_record(8, 2, &x, &sigma, &rec.actor)
}

#[test]
fn toy_reward_is_recovered_from_a_simulated_record() {
    // Acceptance: centred correlation ≥ 0.90 from 10⁵ recorded ticks.
    let (model, rec) = simulate_toy(100_000, 21);
    let counts = counts_of(&rec);
    let inv = invert_tabular(
        &counts,
        &model.input.transition,
        &TabularOptions {
            lambda: Some(0.5),
            ..TabularOptions::default()
        },
    )
    .unwrap();
    let corr = centred_correlation(&inv.r, &model.reward, 8, 2, |s| counts.visits[s] > 0);
    assert!(corr >= 0.90, "centred correlation {corr}");
    // The (input, count) projection puts its maximum on the rewarded counts.
    let by_count = project_on_counts(&inv);
    for (x, target) in [(0, 2), (1, 6)] {
        let best = (0..=8)
            .filter(|&c| by_count[x][c].is_finite())
            .max_by(|&a, &b| by_count[x][a].total_cmp(&by_count[x][b]))
            .unwrap();
        assert_eq!(best, target, "x = {x}: {:?}", by_count[x]);
    }
}

#[test]
fn counting_a_record_is_consistent() {
    let (_, rec) = simulate_toy(5_000, 3);
    let counts = counts_of(&rec);
    assert_eq!(counts.visits.iter().sum::<u64>(), 5_000);
    assert_eq!(counts.drawn.iter().sum::<u64>(), 4_999);
    assert_eq!(counts.drawn_total.iter().sum::<u64>(), 4_999);
    assert!(counts.fired.iter().zip(&counts.drawn).all(|(f, d)| f <= d));
    let _ = rewards::target_count(1, &[0], 1.0);
}
