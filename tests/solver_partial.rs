//! Partially observed networks (theory §3): the solver's per-observation
//! policies against an independent dense evaluation of g — they must be a
//! stationary point of g over per-observation policies, and as good as a
//! brute-force search over those policies on tiny networks.
#![allow(clippy::needless_range_loop)]

mod common;
use common::*;
use marlin::model::{CodingCost, Network, Observes, UpdateScheme};
use marlin::solver::{SolveOptions, solve};

/// A tiny network whose neurons see the input and themselves only, except
/// neuron 0, which also sees neuron 1.
fn blind(n: usize, cost: CodingCost, seed: u64) -> Network {
    let mut net = tiny(n, UpdateScheme::Asynchronous, cost, 0.4, seed);
    let mut obs: Vec<Observes> = (0..n)
        .map(|k| Observes {
            input: true,
            mask: 1 << k,
        })
        .collect();
    obs[0].mask |= 1 << 1;
    net.observes = Some(obs);
    net
}

/// Observation classes of each neuron (distinct `Observes::class` values
/// over the states), and the dense per-state policy of per-class logits.
fn classes(net: &Network) -> Vec<Vec<usize>> {
    let obs = net.observes.as_ref().unwrap();
    (0..net.n)
        .map(|k| {
            let mut c: Vec<usize> = (0..net.states()).map(|s| obs[k].class(s, net.n)).collect();
            c.sort();
            c.dedup();
            c
        })
        .collect()
}

fn policy_of(net: &Network, cls: &[Vec<usize>], theta: &[f64]) -> Vec<Vec<f64>> {
    let obs = net.observes.as_ref().unwrap();
    let mut offset = vec![0; net.n];
    for k in 1..net.n {
        offset[k] = offset[k - 1] + cls[k - 1].len();
    }
    (0..net.states())
        .map(|s| {
            (0..net.n)
                .map(|k| {
                    let o = obs[k].class(s, net.n);
                    let i = cls[k].iter().position(|&c| c == o).unwrap();
                    sigmoid(theta[offset[k] + i])
                })
                .collect()
        })
        .collect()
}

/// The solver's policy as per-class logits (checking it is constant per class).
fn logits_of(net: &Network, cls: &[Vec<usize>], fire: &[f64]) -> Vec<f64> {
    let obs = net.observes.as_ref().unwrap();
    let mut theta = Vec::new();
    for k in 0..net.n {
        for &o in &cls[k] {
            let ps: Vec<f64> = (0..net.states())
                .filter(|&s| obs[k].class(s, net.n) == o)
                .map(|s| fire[s * net.n + k])
                .collect();
            assert!(
                ps.iter().all(|p| (p - ps[0]).abs() < 1e-12),
                "neuron {k}'s policy differs within one observation class"
            );
            theta.push((ps[0] / (1.0 - ps[0])).ln());
        }
    }
    theta
}

#[test]
fn the_solution_is_a_stationary_point_of_g_over_observation_policies() {
    for (cost, seed) in [
        (CodingCost::FixedPrior(vec![0.3, 0.5, 0.6]), 3),
        (CodingCost::MutualInformation, 4),
    ] {
        let net = blind(3, cost, seed);
        let sol = solve(&net, &SolveOptions::default()).unwrap();
        assert!(sol.converged, "{:?}", sol.warnings);
        let cls = classes(&net);
        let theta = logits_of(&net, &cls, &sol.policy.fire);
        let g = |t: &[f64]| objective(&net, &policy_of(&net, &cls, t)).0;
        let g0 = g(&theta);
        assert!((g0 - sol.eval.g).abs() < 1e-9, "dense g {g0} vs solver {}", sol.eval.g);
        let eps = 1e-4;
        for i in 0..theta.len() {
            let mut t = theta.clone();
            t[i] += eps;
            let up = g(&t);
            t[i] -= 2.0 * eps;
            let down = g(&t);
            let slope = (up - down) / (2.0 * eps);
            assert!(slope.abs() < 1e-6, "∂g/∂θ_{i} = {slope:e} at the solution");
            assert!(
                up <= g0 + 1e-12 && down <= g0 + 1e-12,
                "not a local maximum along θ_{i}"
            );
        }
    }
}

#[test]
fn partial_solver_matches_a_brute_force_search_over_observation_policies() {
    let net = blind(3, CodingCost::FixedPrior(vec![0.4, 0.5, 0.3]), 7);
    let sol = solve(&net, &SolveOptions::default()).unwrap();
    let cls = classes(&net);
    let dim: usize = cls.iter().map(|c| c.len()).sum();
    let f = |t: &[f64]| -objective(&net, &policy_of(&net, &cls, t)).0;
    let mut best = f64::NEG_INFINITY;
    let mut rng = 11u64;
    for _ in 0..6 {
        let x0: Vec<f64> = (0..dim)
            .map(|_| {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((rng >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 4.0
            })
            .collect();
        best = best.max(-bfgs(&f, x0, 400));
    }
    assert!(
        (sol.eval.g - best).abs() < 1e-6,
        "solver g {} vs brute force {best}",
        sol.eval.g
    );
}

#[test]
fn seeing_less_never_helps() {
    let full = tiny(
        3,
        UpdateScheme::Asynchronous,
        CodingCost::FixedPrior(vec![0.4, 0.5, 0.3]),
        0.4,
        7,
    );
    let part = blind(3, CodingCost::FixedPrior(vec![0.4, 0.5, 0.3]), 7);
    let g_full = solve(&full, &SolveOptions::default()).unwrap().eval.g;
    let g_part = solve(&part, &SolveOptions::default()).unwrap().eval.g;
    assert!(g_part <= g_full + 1e-9, "partial {g_part} > full {g_full}");
    assert!(
        g_full - g_part > 1e-4,
        "the random reward should reward seeing the others"
    );
}

#[test]
fn partially_observed_synchronous_networks_are_refused() {
    let mut net = blind(3, CodingCost::MutualInformation, 1);
    net.update = UpdateScheme::Synchronous;
    let err = solve(&net, &SolveOptions::default()).unwrap_err().to_string();
    assert!(err.contains("asynchronous"), "{err}");
}
