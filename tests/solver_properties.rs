//! Properties of the exact solver at its solution: the fixed-point equations
//! of theory §3, stationarity, policy evaluation, and the toy's science.
#![allow(clippy::needless_range_loop)]

mod common;
use common::*;
use marlin::model::{CodingCost, InputProcess, Network, UpdateScheme, rewards, spike_count};
use marlin::scenario::Scenario;
use marlin::solver::{Policy, SolveOptions, evaluate, solve};
use std::path::Path;

fn toy() -> Network {
    Scenario::load(Path::new("scenarios/toy8.toml"))
        .unwrap()
        .network()
        .unwrap()
}

/// A network whose optimum is not symmetric, so Blahut–Arimoto has work to do.
fn lopsided(update: UpdateScheme) -> Network {
    let n = 5;
    Network {
        n,
        alive: vec![true; n],
        input: InputProcess {
            values: vec![0.0, 1.0, 2.0],
            transition: vec![0.9, 0.05, 0.05, 0.1, 0.8, 0.1, 0.3, 0.0, 0.7],
            control: None,
        },
        reward: rewards::target_count(n, &[1, 4, 2], 1.0),
        lambda: 0.3,
        cost: CodingCost::MutualInformation,
        update,
        observes: None,
    }
}

#[test]
fn asynchronous_bellman_equation_holds_at_the_solution() {
    for net in [toy(), lopsided(UpdateScheme::Asynchronous)] {
        let sol = solve(&net, &SolveOptions::default()).unwrap();
        assert!(sol.converged, "{:?}", sol.warnings);
        let c = net.configs();
        let xs = net.input.len();
        let n = net.n;
        let g = sol.g_value;
        let w = |x: usize, sigma: usize| -> f64 { (0..xs).map(|x2| net.input.p(x, x2) * sol.h[x2 * c + sigma]).sum() };
        let mut worst: f64 = 0.0;
        for x in 0..xs {
            for sigma in 0..c {
                let s = x * c + sigma;
                let mut sum_log_z = 0.0;
                for k in 0..n {
                    let p1 = sol.prior[k];
                    let w0 = w(x, sigma & !(1 << k));
                    let w1 = w(x, sigma | 1 << k);
                    let z = (1.0 - p1) * (w0 / net.lambda).exp() + p1 * (w1 / net.lambda).exp();
                    sum_log_z += z.ln();
                    // π_k = p_k e^{W1/λ} / Z_k
                    let pi = p1 * (w1 / net.lambda).exp() / z;
                    assert!((sol.policy.p(s, k) - pi).abs() < 1e-9);
                }
                let rhs = net.reward[s] - g + net.lambda / n as f64 * sum_log_z;
                worst = worst.max((sol.h[s] - rhs).abs());
            }
        }
        assert!(worst < 1e-8, "Bellman residual {worst}");
        // Blahut–Arimoto fixed point: the prior is the policy's marginal.
        for k in 0..n {
            assert!((sol.prior[k] - sol.eval.p_fire[k]).abs() < 1e-7);
        }
    }
}

#[test]
fn synchronous_best_response_equations_hold_at_the_solution() {
    let net = lopsided(UpdateScheme::Synchronous);
    let sol = solve(&net, &SolveOptions::default()).unwrap();
    assert!(sol.converged, "{:?}", sol.warnings);
    let (c, xs, n) = (net.configs(), net.input.len(), net.n);
    let w = |x: usize, a: usize| -> f64 { (0..xs).map(|x2| net.input.p(x, x2) * sol.h[x2 * c + a]).sum() };
    let mut worst: f64 = 0.0;
    for x in 0..xs {
        for sigma in 0..c {
            let s = x * c + sigma;
            let pi: Vec<f64> = (0..n).map(|k| sol.policy.p(s, k)).collect();
            let prob = |a: usize, skip: usize| -> f64 {
                (0..n)
                    .filter(|&j| j != skip)
                    .map(|j| if a >> j & 1 == 1 { pi[j] } else { 1.0 - pi[j] })
                    .product()
            };
            let mut ew = 0.0;
            for a in 0..c {
                ew += prob(a, usize::MAX) * w(x, a);
            }
            for k in 0..n {
                // E[W | a_k = 1] − E[W | a_k = 0] by enumeration.
                let dw: f64 = (0..c)
                    .filter(|a| a >> k & 1 == 1)
                    .map(|a| prob(a, k) * (w(x, a) - w(x, a & !(1 << k))))
                    .sum();
                let p = sol.prior[k];
                let br = sigmoid((p / (1.0 - p)).ln() + dw / net.lambda);
                worst = worst.max((br - pi[k]).abs());
            }
            let kl_sum: f64 = (0..n).map(|k| kl(pi[k], sol.prior[k])).sum();
            let rhs = net.reward[s] - sol.g_value + ew - net.lambda * kl_sum;
            worst = worst.max((sol.h[s] - rhs).abs());
        }
    }
    assert!(worst < 1e-7, "best-response / Bellman residual {worst}");
}

#[test]
fn stationary_distribution_is_stationary_and_normalised() {
    for net in [
        toy(),
        lopsided(UpdateScheme::Asynchronous),
        lopsided(UpdateScheme::Synchronous),
    ] {
        let sol = solve(&net, &SolveOptions::default()).unwrap();
        let rho = &sol.eval.rho;
        assert!((rho.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(rho.iter().all(|&v| v >= 0.0));
        let p = transition_matrix(&net, &policy_rows(&sol.policy, net.states()));
        let mut worst: f64 = 0.0;
        for t in 0..rho.len() {
            let next: f64 = (0..rho.len()).map(|s| rho[s] * p[s][t]).sum();
            worst = worst.max((next - rho[t]).abs());
        }
        assert!(worst < 1e-10, "ρP − ρ = {worst}");
    }
}

/// Per-neuron policies with every `π_k(1|s)` drawn uniformly in [0.2, 0.8]
/// (a fixed-seed LCG), so every state of the chain carries real mass.
fn random_policy(net: &Network, seed: u64) -> Policy {
    let mut r = seed;
    let fire = (0..net.states() * net.n)
        .map(|_| {
            r = r.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            0.2 + 0.6 * ((r >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect();
    Policy { n: net.n, fire }
}

/// ρ of arbitrary policies whose chains put mass everywhere (the optima
/// above leave as little as 1e-49 on some states, too little for an error
/// in the normalisation to show): ρM = ρ against the dense transition
/// matrix, Σρ = 1, and ρ is the dense linear solve's.
#[test]
fn stationary_distribution_of_random_policies_is_stationary_and_normalised() {
    for (i, update) in [
        UpdateScheme::Asynchronous,
        UpdateScheme::Synchronous,
        UpdateScheme::RandomPartial { q: 0.4 },
    ]
    .into_iter()
    .enumerate()
    {
        let net = lopsided(update);
        let policy = random_policy(&net, 7 + i as u64);
        let rows = policy_rows(&policy, net.states());
        assert!(rows.iter().flatten().all(|&p| (0.2..=0.8).contains(&p)));
        let ev = evaluate(&net, &policy, &SolveOptions::default());
        assert!(ev.stationary_converged, "{update:?}: {:?}", ev.warnings);
        let rho = &ev.rho;
        assert_eq!(rho.len(), net.states());
        // The premise: every state carries real mass (96 states, none below 1e-4).
        let least = rho.iter().cloned().fold(f64::INFINITY, f64::min);
        assert!(least > 1e-4, "{update:?}: least mass {least}");
        let total: f64 = rho.iter().sum();
        assert!((total - 1.0).abs() < 1e-12, "{update:?}: Σρ = {total}");
        let m = transition_matrix(&net, &rows);
        let mut worst: f64 = 0.0;
        for t in 0..rho.len() {
            let next: f64 = (0..rho.len()).map(|s| rho[s] * m[s][t]).sum();
            worst = worst.max((next - rho[t]).abs());
        }
        assert!(worst < 1e-12, "{update:?}: ρM − ρ = {worst}");
        let dense = stationary(&net, &m);
        let gap = rho.iter().zip(&dense).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(gap < 1e-10, "{update:?}: ρ differs from the dense solve by {gap}");
    }
}

#[test]
fn evaluating_the_optimal_policy_returns_the_optimum() {
    for net in [
        toy(),
        lopsided(UpdateScheme::Asynchronous),
        lopsided(UpdateScheme::Synchronous),
    ] {
        let opts = SolveOptions::default();
        let sol = solve(&net, &opts).unwrap();
        let ev = evaluate(&net, &sol.policy, &opts);
        assert!((ev.g - sol.eval.g).abs() < 1e-9);
        assert!(
            (ev.g - sol.g_value).abs() < 1e-6,
            "evaluation {} vs value iteration {}",
            ev.g,
            sol.g_value
        );
        // Any other policy does worse.
        let blind = Policy::constant(&net, &vec![0.5; net.n]);
        assert!(evaluate(&net, &blind, &opts).g < sol.eval.g);
    }
}

#[test]
fn toy_optimum_concentrates_on_the_rewarded_counts() {
    let net = toy();
    let sol = solve(&net, &SolveOptions::default()).unwrap();
    let d = sol.eval.count_distribution(&net);
    for (x, target) in [(0, 2), (1, 6)] {
        let argmax = (0..=8).max_by(|&a, &b| d[x][a].total_cmp(&d[x][b])).unwrap();
        assert_eq!(argmax, target);
        assert!(d[x][target] > 0.5, "P(count = {target} | x = {x}) = {}", d[x][target]);
    }
}

#[test]
fn toy_tradeoff_is_monotone_in_lambda() {
    let mut prev: Option<(f64, f64, f64)> = None;
    for lambda in [0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0] {
        let mut net = toy();
        net.lambda = lambda;
        let sol = solve(&net, &SolveOptions::default()).unwrap();
        assert!(sol.converged);
        let cur = (sol.eval.info_nats, sol.eval.mean_reward, sol.eval.g);
        if let Some(p) = prev {
            // Non-increasing; strictly until the network is state-blind
            // (information ≈ 0 at large λ, where only rounding moves it).
            let strict = p.0 > 1e-6;
            let falls = |a: f64, b: f64| if strict { a < b } else { a <= b + 1e-9 };
            assert!(
                falls(cur.0, p.0),
                "information must fall as λ rises: {p:?} → {cur:?} at λ = {lambda}"
            );
            assert!(
                falls(cur.1, p.1),
                "mean reward must fall as λ rises: {p:?} → {cur:?} at λ = {lambda}"
            );
            assert!(cur.2 <= p.2 + 1e-12, "g must fall as λ rises");
        }
        prev = Some(cur);
    }
}

#[test]
fn swapping_the_targets_mirrors_the_solution() {
    let net = toy();
    let mut swapped = net.clone();
    swapped.reward = rewards::target_count(8, &[6, 2], 1.0);
    let a = solve(&net, &SolveOptions::default()).unwrap();
    let b = solve(&swapped, &SolveOptions::default()).unwrap();
    let (da, db) = (a.eval.count_distribution(&net), b.eval.count_distribution(&swapped));
    for c in 0..=8 {
        assert!((da[0][c] - db[1][c]).abs() < 1e-8 && (da[1][c] - db[0][c]).abs() < 1e-8);
    }
    assert!((a.eval.g - b.eval.g).abs() < 1e-9);
    // The toy is symmetric under σ → complement together with x → −x, and
    // so is the Blahut–Arimoto fixed point reached from the symmetric start
    // p = ½ (the best of several starts may break this symmetry: see
    // `several_starts_find_the_symmetry_breaking_toy_optimum`).
    let symmetric = solve(
        &net,
        &SolveOptions {
            starts: Some(1),
            ..SolveOptions::default()
        },
    )
    .unwrap();
    let ds = symmetric.eval.count_distribution(&net);
    for c in 0..=8 {
        assert!((ds[0][c] - ds[1][8 - c]).abs() < 1e-8);
    }
}

#[test]
fn several_starts_find_the_symmetry_breaking_toy_optimum() {
    // From p = ½ Blahut–Arimoto stays at the symmetric fixed point, where
    // every neuron codes the input. Better optima silence or saturate some
    // neurons (they then carry no information) and let the others code: the
    // solver's random starts must find one, and an independent dense
    // evaluation must confirm its g.
    let net = toy();
    let symmetric = solve(
        &net,
        &SolveOptions {
            starts: Some(1),
            ..SolveOptions::default()
        },
    )
    .unwrap();
    let best = solve(&net, &SolveOptions::default()).unwrap();
    assert!(best.converged, "{:?}", best.warnings);
    assert_eq!(best.start_g.len(), 8);
    assert!(
        (best.start_g[0] - symmetric.eval.g).abs() < 1e-9,
        "start 0 is the symmetric start"
    );
    assert!(best.start_g.iter().all(|&g| g <= best.eval.g + 1e-12));
    assert!(
        best.eval.g > symmetric.eval.g + 0.02,
        "best {} vs symmetric {}",
        best.eval.g,
        symmetric.eval.g
    );
    assert!(
        best.prior.iter().any(|&p| !(0.01..=0.99).contains(&p)),
        "some neuron is (nearly) deterministic: {:?}",
        best.prior
    );
    let rows = common::policy_rows(&best.policy, net.states());
    let (g, ..) = common::objective(&net, &rows);
    assert!(
        (g - best.eval.g).abs() < 1e-7,
        "independent g {g} vs solver {}",
        best.eval.g
    );
}

#[test]
fn a_fixed_prior_equal_to_the_optimal_marginals_reproduces_the_solution() {
    for net in [toy(), lopsided(UpdateScheme::Asynchronous)] {
        let mi = solve(&net, &SolveOptions::default()).unwrap();
        let mut fixed = net.clone();
        fixed.cost = CodingCost::FixedPrior(mi.eval.p_fire.clone());
        let fp = solve(&fixed, &SolveOptions::default()).unwrap();
        let diff = mi
            .policy
            .fire
            .iter()
            .zip(&fp.policy.fire)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(diff < 1e-6, "policies differ by {diff}");
        assert!((mi.eval.g - fp.eval.g).abs() < 1e-7);
    }
}

#[test]
fn large_lambda_gives_state_blind_neurons_at_their_prior() {
    let mut net = toy();
    net.lambda = 1e4;
    net.cost = CodingCost::FixedPrior(vec![0.2; 8]);
    let sol = solve(&net, &SolveOptions::default()).unwrap();
    assert!(sol.policy.fire.iter().all(|&p| (p - 0.2).abs() < 1e-3));
}

#[test]
fn dead_neurons_leave_the_survivors_to_compensate() {
    // theory §6: after cell death the optimum still puts 2 / 6 active.
    let mut net = toy();
    net.kill(&[0, 3]);
    let sol = solve(&net, &SolveOptions::default()).unwrap();
    let d = sol.eval.count_distribution(&net);
    let argmax = |x: usize| (0..=8).max_by(|&a, &b| d[x][a].total_cmp(&d[x][b])).unwrap();
    assert_eq!((argmax(0), argmax(1)), (2, 6));
    for s in 0..net.states() {
        if s & 0b1001 != 0 {
            assert_eq!(sol.eval.rho[s], 0.0);
        }
    }
    assert!(spike_count(0b1001) == 2);
}

#[test]
fn refuses_networks_too_large_before_allocating() {
    let mut net = toy();
    net.n = 40;
    assert!(marlin::solver::check_size(&net).is_err());
    net.n = 16;
    net.update = UpdateScheme::Synchronous;
    let err = marlin::solver::check_size(&net).unwrap_err().to_string();
    assert!(err.contains("14"), "{err}");
}

#[test]
fn near_degenerate_synchronous_optimum_converges() {
    // A synchronous 6-neuron toy whose optimum is nearly state-blind: plain
    // Blahut–Arimoto creeps (rate ≈ 1); with acceleration it must converge,
    // to a fixed point where the prior equals the marginals.
    let mut net = lopsided(UpdateScheme::Synchronous);
    net.n = 6;
    net.alive = vec![true; 6];
    net.input = InputProcess::switching(vec![-1.0, 1.0], 0.02);
    net.reward = rewards::target_count(6, &[1, 4], 1.0);
    net.lambda = 0.5;
    let sol = solve(&net, &SolveOptions::default()).unwrap();
    assert!(sol.converged, "{:?}", sol.warnings);
    assert!(sol.iterations < 100, "{} Blahut–Arimoto iterations", sol.iterations);
    for k in 0..6 {
        assert!((sol.prior[k] - sol.eval.p_fire[k]).abs() < 1e-7);
    }
    assert!((sol.g_value - sol.eval.g).abs() < 1e-6);
}

#[test]
fn evaluating_against_an_explicit_prior() {
    // Against its own marginals the optimum scores its g; against any other
    // prior the KL term is larger (the marginal minimises the average KL).
    let net = lopsided(UpdateScheme::Asynchronous);
    let opts = SolveOptions::default();
    let sol = solve(&net, &opts).unwrap();
    let own = marlin::solver::evaluate_with_prior(&net, &sol.policy, &sol.eval.p_fire, &opts);
    assert!((own.g - sol.eval.g).abs() < 1e-9);
    let other = marlin::solver::evaluate_with_prior(&net, &sol.policy, &vec![0.5; net.n], &opts);
    assert!(other.info_nats > own.info_nats);
    assert!((other.mean_reward - own.mean_reward).abs() < 1e-12);
}

/// The size check refuses before anything is allocated, and says why: a
/// product-form scheme past its limit is too slow (X·4ⁿ operations per
/// sweep), the asynchronous scheme is not; past the tabular limit nothing
/// is solved exactly.
#[test]
fn size_check_refuses_product_schemes_past_their_limit() {
    use marlin::solver::{MAX_PRODUCT_NEURONS, SolveError, check_dimensions};
    let n = MAX_PRODUCT_NEURONS + 1;
    for update in [UpdateScheme::Synchronous, UpdateScheme::RandomPartial { q: 0.5 }] {
        match check_dimensions(n, 3, update) {
            Err(SolveError::TooSlow {
                neurons, work, limit, ..
            }) => {
                assert_eq!((neurons, limit), (n, MAX_PRODUCT_NEURONS));
                assert_eq!(work, 3.0 * 4f64.powi(n as i32));
            }
            other => panic!("{update}, {n} neurons: {other:?}"),
        }
        assert!(check_dimensions(MAX_PRODUCT_NEURONS, 3, update).is_ok());
    }
    assert!(check_dimensions(n, 3, UpdateScheme::Asynchronous).is_ok());
    // Memory: up to 80 % of what is available may be asked for. An
    // asynchronous network of n neurons and X inputs needs about
    // 8·X·2ⁿ·(8 + n) bytes (h, W, T h, r, ρ, ρ' and n policies per state);
    // a quarter of the memory passes, twice the memory does not (and the
    // error suggests fewer neurons). Nothing is allocated.
    let avail = marlin::files::available_memory();
    let n = 20;
    let per_input = 8 * (1u64 << n) * (8 + n as u64);
    let quarter = (avail / 4 / per_input).max(1) as usize;
    assert!(check_dimensions(n, quarter, UpdateScheme::Asynchronous).is_ok());
    let twice = (2 * avail / per_input + 1) as usize;
    match check_dimensions(n, twice, UpdateScheme::Asynchronous) {
        Err(SolveError::TooLarge { neurons, suggest, .. }) => assert!(neurons == n && suggest < n),
        other => panic!("{n} neurons × {twice} inputs: {other:?}"),
    }
    let too_many = marlin::model::MAX_TABULAR_NEURONS + 1;
    assert!(matches!(
        check_dimensions(too_many, 1, UpdateScheme::Asynchronous),
        Err(SolveError::Invalid(_))
    ));
}

/// A solve stopped by its iteration cap while the marginals still move does
/// not claim to have converged, and says why.
#[test]
fn a_solve_cut_short_does_not_claim_convergence() {
    let net = lopsided(UpdateScheme::Asynchronous);
    let opts = SolveOptions {
        max_prior_iterations: 2,
        starts: Some(1),
        ..Default::default()
    };
    let sol = solve(&net, &opts).unwrap();
    assert!(
        sol.prior_residual >= opts.prior_tol,
        "precondition: the marginals still move"
    );
    assert!(!sol.converged);
    assert!(
        sol.warnings
            .iter()
            .any(|w| w.contains("Blahut–Arimoto did not converge"))
    );
}
