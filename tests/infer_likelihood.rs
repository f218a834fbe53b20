//! Maximum-likelihood inverse RL (theory §5): the implicit gradient against
//! finite differences, and exact recovery of the reward from the expected
//! responses of a network optimal for a known reward (the infinite-data
//! limit), for every update scheme and for partially observed neurons.
#![allow(clippy::needless_range_loop)]

mod common;
use common::*;
use marlin::infer::likelihood::{
    Features, FitOptions, GradientMethod, Responses, fit, mean_log_likelihood_and_gradient,
};
use marlin::model::{CodingCost, Network, Observes, UpdateScheme};
use marlin::solver::{SolveOptions, solve};

/// Expected responses of `net`'s optimal policies over `ticks` ticks.
fn expected(net: &Network, ticks: f64) -> (Network, Responses) {
    let sol = solve(net, &SolveOptions::default()).unwrap();
    assert!(sol.converged, "{:?}", sol.warnings);
    let (n, states) = (net.n, net.states());
    let q = match net.update {
        UpdateScheme::Asynchronous => 1.0,
        UpdateScheme::Synchronous => 1.0,
        UpdateScheme::RandomPartial { q } => q,
    };
    let acting = if net.update == UpdateScheme::Asynchronous {
        1.0 / n as f64
    } else {
        1.0
    };
    let mut r = Responses {
        n,
        inputs: net.input.len(),
        trials: vec![0.0; states * n],
        ones: vec![0.0; states * n],
        q,
        visits: vec![0; states],
        p_fire: sol.eval.p_fire.clone(),
        acting: net.update == UpdateScheme::Asynchronous,
    };
    for s in 0..states {
        r.visits[s] = (sol.eval.rho[s] * ticks).round() as u64;
        for k in 0..n {
            let t = sol.eval.rho[s] * ticks * acting;
            let on = ((s % net.configs()) >> k & 1) as f64;
            r.trials[s * n + k] = t;
            r.ones[s * n + k] = t * (q * sol.policy.p(s, k) + (1.0 - q) * on);
        }
    }
    let mut model = net.clone();
    model.cost = CodingCost::FixedPrior(sol.prior.iter().map(|p| p.clamp(1e-9, 1.0 - 1e-9)).collect());
    (model, r)
}

/// Largest difference of two rewards over states with data, after removing
/// each input's mean (the identifiable part).
fn centred_gap(a: &[f64], b: &[f64], net: &Network, data: &Responses) -> f64 {
    let c = net.configs();
    let mut worst: f64 = 0.0;
    for x in 0..net.input.len() {
        let idx: Vec<usize> = (x * c..(x + 1) * c).filter(|&s| data.visits[s] > 0).collect();
        let ma = idx.iter().map(|&s| a[s]).sum::<f64>() / idx.len() as f64;
        let mb = idx.iter().map(|&s| b[s]).sum::<f64>() / idx.len() as f64;
        for &s in &idx {
            worst = worst.max(((a[s] - ma) - (b[s] - mb)).abs());
        }
    }
    worst
}

fn with_count_reward(mut net: Network, theta: &[f64]) -> Network {
    net.reward = Features::counts(net.n, net.input.len()).reward(theta);
    net
}

#[test]
fn implicit_gradient_matches_finite_differences() {
    let net = tiny(4, UpdateScheme::Asynchronous, CodingCost::MutualInformation, 0.4, 2);
    let (model, data) = expected(&net, 1e5);
    // Perturb the data away from the model so the gradient is not zero.
    let mut data = data;
    for (i, o) in data.ones.iter_mut().enumerate() {
        *o *= 0.8 + 0.4 * ((i * 7919 % 13) as f64 / 13.0);
        *o = o.min(data.trials[i]);
    }
    let features = Features::pattern(4, 2);
    let theta: Vec<f64> = (0..features.len())
        .map(|j| ((j * 37 % 11) as f64 - 5.0) / 10.0)
        .collect();
    let implicit = mean_log_likelihood_and_gradient(&model, &data, &features, &theta, &FitOptions::default()).unwrap();
    let fd_opts = FitOptions {
        gradient: GradientMethod::FiniteDifference,
        ..FitOptions::default()
    };
    let fd = mean_log_likelihood_and_gradient(&model, &data, &features, &theta, &fd_opts).unwrap();
    assert!((implicit.0 - fd.0).abs() < 1e-12);
    let norm = implicit.1.iter().map(|g| g * g).sum::<f64>().sqrt();
    assert!(norm > 1e-3, "a non-trivial gradient ({norm})");
    // Central differences of the likelihood itself (truncation error O(ε²)).
    let value = |t: &[f64]| {
        mean_log_likelihood_and_gradient(&model, &data, &features, t, &FitOptions::default())
            .unwrap()
            .0
    };
    let eps = 1e-4;
    for j in 0..theta.len() {
        let mut t = theta.clone();
        t[j] += eps;
        let up = value(&t);
        t[j] -= 2.0 * eps;
        let down = value(&t);
        let central = (up - down) / (2.0 * eps);
        let a = implicit.1[j];
        assert!(
            (a - central).abs() < 2e-6 * norm.max(1.0),
            "θ_{j}: implicit {a} vs central differences {central}"
        );
        // The library's own forward differences (truncation error O(ε)).
        let b = fd.1[j];
        assert!(
            (a - b).abs() < 1e-3 * norm.max(1.0),
            "θ_{j}: implicit {a} vs forward differences {b}"
        );
    }
}

/// The count reward of a tiny network: x = 0 wants one neuron on, x = 1 three.
fn target_theta(n: usize) -> Vec<f64> {
    let mut theta = vec![0.0; 2 * (n + 1)];
    theta[1] = 1.0;
    theta[0] = 0.3;
    theta[n + 1 + 3] = 1.0;
    theta[n + 1 + 2] = 0.4;
    theta
}

fn recovers(net: Network, max_gap: f64) {
    let (model, data) = expected(&net, 1e6);
    let features = Features::counts(net.n, net.input.len());
    let f = fit(&model, &data, &features, None, &FitOptions::default()).unwrap();
    assert!(f.converged, "{:?}", f.warnings);
    let gap = centred_gap(&f.reward, &net.reward, &net, &data);
    assert!(
        gap < max_gap,
        "{}: recovered reward off by {gap} ({} iterations, {})",
        net.update,
        f.iterations,
        f.gradient
    );
    // The fit cannot beat the saturated model, and here it reaches it.
    let sat = data.saturated_log_likelihood();
    assert!(f.log_likelihood <= sat + 1e-6 * data.total());
    assert!((sat - f.log_likelihood) / data.total() < 1e-8);
    // The fit's policy and relative values are those of its reward: the
    // model re-solved with r_θ̂ gives them again (h(x=0, σ=0) = 0 in both).
    let mut at_fit = model.clone();
    at_fit.reward = f.reward.clone();
    let sol = solve(&at_fit, &SolveOptions::default()).unwrap();
    assert_eq!(f.h.len(), sol.h.len());
    let h_gap = f.h.iter().zip(&sol.h).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    let p_gap = f
        .policy
        .fire
        .iter()
        .zip(&sol.policy.fire)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        h_gap < 1e-6 && p_gap < 1e-6,
        "{}: h off by {h_gap}, π by {p_gap}",
        net.update
    );
}

#[test]
fn asynchronous_count_reward_is_recovered_from_expected_responses() {
    let net = tiny(5, UpdateScheme::Asynchronous, CodingCost::MutualInformation, 0.4, 1);
    recovers(with_count_reward(net, &target_theta(5)), 1e-4);
}

#[test]
fn synchronous_and_random_partial_rewards_are_recovered() {
    for update in [UpdateScheme::Synchronous, UpdateScheme::RandomPartial { q: 0.3 }] {
        let net = tiny(4, update, CodingCost::MutualInformation, 0.5, 1);
        recovers(with_count_reward(net, &target_theta(4)), 1e-3);
    }
}

#[test]
fn partially_observed_reward_is_recovered() {
    let mut net = tiny(4, UpdateScheme::Asynchronous, CodingCost::MutualInformation, 0.4, 1);
    net.observes = Some(
        (0..4)
            .map(|k| Observes {
                input: true,
                mask: 1 << k,
            })
            .collect(),
    );
    recovers(with_count_reward(net, &target_theta(4)), 1e-3);
}
