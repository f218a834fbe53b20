//! The exact solver against brute force on networks of n ≤ 3: a direct
//! numerical maximisation of g over all per-neuron policies, evaluated with an
//! independent dense implementation of theory §1–2.

mod common;
use common::*;
use marlin::model::{CodingCost, UpdateScheme};
use marlin::solver::{SolveOptions, solve};

fn check(n: usize, update: UpdateScheme, cost: CodingCost, lambda: f64, seed: u64) {
    let net = tiny(n, update, cost.clone(), lambda, seed);
    let opts = SolveOptions::default();
    let sol = solve(&net, &opts).expect("solve");
    assert!(sol.converged, "not converged: {:?}", sol.warnings);
    // Converged means at the tolerances asked for: the last value-iteration
    // span (relative to the largest |reward|, at least 1) and the last move
    // of a marginal, not at the looser ones of intermediate iterations.
    let scale = net.reward.iter().fold(1.0f64, |a, r| a.max(r.abs()));
    assert!(
        sol.value_residual < opts.value_tol * scale,
        "{update:?} {cost:?} n={n}: converged at span {:.1e}",
        sol.value_residual
    );
    assert!(sol.prior_residual < opts.prior_tol);
    assert!(sol.iterations < opts.max_prior_iterations);
    // The solver's own evaluation agrees with the dense reference.
    let rows = policy_rows(&sol.policy, net.states());
    let (g_ref, r_ref, info_ref, _) = objective(&net, &rows);
    assert!(
        (sol.eval.g - g_ref).abs() < 1e-8,
        "{update:?} n={n}: evaluation g {} vs dense {}",
        sol.eval.g,
        g_ref
    );
    assert!((sol.eval.mean_reward - r_ref).abs() < 1e-8);
    assert!((sol.eval.info_nats - info_ref).abs() < 1e-8);
    if cost == CodingCost::MutualInformation {
        // Precondition: an interior optimum whose policy depends on the
        // state, so the soft (log-sum-exp) part of the Bellman update is
        // exercised; a state-blind optimum (information ≈ 1e-10 nats) would
        // hide errors in it.
        assert!(
            sol.eval.info_nats > 1e-3,
            "{update:?} n={n} λ={lambda} seed {seed}: state-blind optimum, information {} nats",
            sol.eval.info_nats
        );
    }
    // Value iteration's gain equals the evaluated objective at the fixed point.
    assert!(
        (sol.g_value - sol.eval.g).abs() < 1e-6,
        "g from VI {} vs eval {}",
        sol.g_value,
        sol.eval.g
    );
    // No policy does better, and the optimiser finds the same optimum.
    let g_bf = brute_force_max(&net, 4, seed);
    assert!(
        sol.eval.g >= g_bf - 1e-6,
        "{update:?} {cost:?} n={n}: solver g {} < brute force {}",
        sol.eval.g,
        g_bf
    );
    assert!(
        sol.eval.g - g_bf < 1e-4,
        "{update:?} {cost:?} n={n}: brute force {} far below solver {} (optimiser failed?)",
        g_bf,
        sol.eval.g
    );
}

#[test]
fn asynchronous_mutual_information_matches_brute_force() {
    // (n, λ, seed) with interior optima (information > 1e-3 nats).
    for (n, lambda, seed) in [(1, 0.3, 101), (2, 0.3, 22), (3, 0.2, 238)] {
        check(
            n,
            UpdateScheme::Asynchronous,
            CodingCost::MutualInformation,
            lambda,
            seed,
        );
    }
}

#[test]
fn asynchronous_fixed_prior_matches_brute_force() {
    for n in 1..=3 {
        check(
            n,
            UpdateScheme::Asynchronous,
            CodingCost::FixedPrior(vec![0.2; n]),
            0.3,
            10 + n as u64,
        );
    }
}

#[test]
fn synchronous_mutual_information_matches_brute_force() {
    // (n, λ, seed) with interior optima (information > 1e-3 nats).
    for (n, lambda, seed) in [(1, 0.1, 21), (2, 0.3, 22), (3, 0.3, 3)] {
        check(
            n,
            UpdateScheme::Synchronous,
            CodingCost::MutualInformation,
            lambda,
            seed,
        );
    }
}

#[test]
fn synchronous_fixed_prior_matches_brute_force() {
    for n in 1..=3 {
        check(
            n,
            UpdateScheme::Synchronous,
            CodingCost::FixedPrior(vec![0.3, 0.6, 0.4][..n].to_vec()),
            0.3,
            30 + n as u64,
        );
    }
}

#[test]
fn random_partial_matches_brute_force() {
    check(
        2,
        UpdateScheme::RandomPartial { q: 0.6 },
        CodingCost::MutualInformation,
        0.3,
        22,
    );
    check(
        3,
        UpdateScheme::RandomPartial { q: 0.7 },
        CodingCost::FixedPrior(vec![0.25; 3]),
        0.3,
        42,
    );
}

#[test]
fn dead_neuron_matches_brute_force() {
    for update in [UpdateScheme::Asynchronous, UpdateScheme::Synchronous] {
        let mut net = tiny(3, update, CodingCost::MutualInformation, 0.3, 51);
        net.kill(&[1]);
        let sol = solve(&net, &SolveOptions::default()).unwrap();
        assert!(sol.converged);
        // Precondition, as in `check`: an interior optimum.
        assert!(
            sol.eval.info_nats > 1e-3,
            "{update:?}: state-blind optimum, information {} nats",
            sol.eval.info_nats
        );
        // Value iteration's gain equals the evaluated objective.
        assert!(
            (sol.g_value - sol.eval.g).abs() < 1e-6,
            "{update:?}: g from VI {} vs eval {}",
            sol.g_value,
            sol.eval.g
        );
        // Dead neurons never fire and states with them on carry no mass.
        for s in 0..net.states() {
            assert_eq!(sol.policy.p(s, 1), 0.0);
            if s & 2 != 0 {
                assert_eq!(sol.eval.rho[s], 0.0);
            }
        }
        let g_bf = brute_force_max(&net, 3, 51);
        assert!(
            sol.eval.g >= g_bf - 1e-6 && sol.eval.g - g_bf < 1e-4,
            "{update:?}: {} vs {}",
            sol.eval.g,
            g_bf
        );
    }
}
