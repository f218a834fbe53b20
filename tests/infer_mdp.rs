//! Inverse RL on mazes: the direct inversion and the maximum-likelihood fits
//! recover a known reward map from expected demonstrations, the exact
//! gradient matches finite differences, and sampled demonstrations put the
//! goal on top.

#![allow(clippy::needless_range_loop)]

use marlin::infer::mdp::{ActionCounts, FitOptions, Marginal, fit, invert, mean_log_likelihood_and_gradient};
use marlin::maze::Maze;
use marlin::rng::{Domain, stream};
use marlin::solver::SolveOptions;
use marlin::solver::mdp::{ActionPrior, sample, solve};

fn maze(slip: f64) -> Maze {
    Maze::parse(
        "#######\n\
         #S..#.#\n\
         #.#...#\n\
         #...#G#\n\
         #######",
        &[('G', 1.0)],
        slip,
    )
    .unwrap()
}

/// Expected counts of `total` steps from the stationary distribution.
fn expected_counts(m: &Maze, lambda: f64, total: f64) -> (ActionCounts, Vec<f64>) {
    expected_counts_with(m, lambda, total, &ActionPrior::Marginal)
}

fn expected_counts_with(m: &Maze, lambda: f64, total: f64, prior: &ActionPrior) -> (ActionCounts, Vec<f64>) {
    let mdp = m.mdp();
    let sol = solve(&mdp, lambda, prior, &SolveOptions::default());
    assert!(sol.converged);
    let mut c = ActionCounts::new(mdp.states, 5);
    for s in 0..mdp.states {
        for a in 0..5 {
            c.n[s * 5 + a] = total * sol.eval.rho[s] * sol.pi[s * 5 + a];
        }
    }
    (c, m.reward())
}

fn corr(a: &[f64], b: &[f64]) -> f64 {
    let idx: Vec<usize> = (0..a.len()).filter(|&i| a[i].is_finite() && b[i].is_finite()).collect();
    let ma = idx.iter().map(|&i| a[i]).sum::<f64>() / idx.len() as f64;
    let mb = idx.iter().map(|&i| b[i]).sum::<f64>() / idx.len() as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for &i in &idx {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma).powi(2);
        sbb += (b[i] - mb).powi(2);
    }
    sab / (saa * sbb).sqrt()
}

fn argmax(v: &[f64]) -> usize {
    (0..v.len())
        .filter(|&i| v[i].is_finite())
        .max_by(|&i, &j| v[i].total_cmp(&v[j]))
        .unwrap()
}

#[test]
fn direct_inversion_recovers_the_reward_from_expected_demonstrations() {
    // A fixed prior: the inversion's algebra is then exact. (Under the
    // mutual-information cost, actions the optimum nearly abandons have
    // marginals that Blahut–Arimoto leaves a few per cent from its fixed
    // point in relative terms, which biases their log-odds; see below.)
    let prior = [0.1, 0.3, 0.2, 0.15, 0.25];
    for slip in [0.0, 0.1] {
        let m = maze(slip);
        let lambda = 0.3;
        let (counts, truth) = expected_counts_with(&m, lambda, 1e12, &ActionPrior::Fixed(prior.to_vec()));
        let inv = invert(&m.mdp(), &counts, lambda, Some(&prior)).unwrap();
        assert!(inv.reward.iter().all(|r| r.is_finite()), "{:?}", inv.notes);
        let mut t = truth.clone();
        marlin::infer::mdp::centre(&mut t);
        for s in 0..t.len() {
            assert!(
                (inv.reward[s] - t[s]).abs() < 1e-3,
                "slip {slip}, state {s}: {} vs {}",
                inv.reward[s],
                t[s]
            );
        }
    }
    // Mutual-information cost, p = the empirical marginal.
    for lambda in [0.3, 1.0] {
        let m = maze(0.0);
        let (counts, truth) = expected_counts(&m, lambda, 1e12);
        let inv = invert(&m.mdp(), &counts, lambda, None).unwrap();
        // The optimum abandons some moves entirely (their marginal is 0), so
        // differences only those moves would reveal rest on the weak
        // equal-neighbours prior: close, not exact.
        let c = corr(&inv.reward, &truth);
        assert!(c > 0.99, "λ = {lambda}: correlation {c}");
        assert_eq!(argmax(&inv.reward), argmax(&truth));
    }
}

#[test]
fn exact_gradient_matches_central_differences() {
    let m = maze(0.1);
    let (counts, _) = expected_counts(&m, 0.5, 1e4);
    for marginal in [Marginal::Empirical, Marginal::Model] {
        gradient_check(
            &m,
            &counts,
            &FitOptions {
                marginal,
                ..FitOptions::default()
            },
        );
    }
}

fn gradient_check(m: &Maze, counts: &ActionCounts, opts: &FitOptions) {
    let theta: Vec<f64> = (0..m.states()).map(|s| ((s * 7 % 5) as f64 - 2.0) * 0.3).collect();
    let (_, g) = mean_log_likelihood_and_gradient(&m.mdp(), counts, 0.5, &theta, opts);
    for j in [0, 3, 7, m.states() - 1] {
        let h = 1e-5;
        let mut tp = theta.clone();
        tp[j] += h;
        let mut tm = theta.clone();
        tm[j] -= h;
        let fp = mean_log_likelihood_and_gradient(&m.mdp(), counts, 0.5, &tp, opts).0;
        let fm = mean_log_likelihood_and_gradient(&m.mdp(), counts, 0.5, &tm, opts).0;
        let fd = (fp - fm) / (2.0 * h);
        assert!(
            (fd - g[j]).abs() < 1e-6 * (1.0 + fd.abs()) + 1e-8,
            "{:?} parameter {j}: adjoint {} vs central difference {fd}",
            opts.marginal,
            g[j]
        );
    }
}

#[test]
fn maximum_likelihood_recovers_the_reward_with_either_marginal() {
    let m = maze(0.0);
    let lambda = 0.5;
    let (counts, truth) = expected_counts(&m, lambda, 1e7);
    for marginal in [Marginal::Empirical, Marginal::Model] {
        let opts = FitOptions {
            marginal,
            prior_sd: 1e3,
            ..FitOptions::default()
        };
        let f = fit(&m.mdp(), &counts, lambda, None, &opts).unwrap();
        let c = corr(&f.reward, &truth);
        assert!(c > 0.999, "{marginal:?}: correlation {c}");
        assert_eq!(argmax(&f.reward), argmax(&truth));
    }
}

#[test]
fn sampled_demonstrations_put_the_goal_on_top() {
    let m = maze(0.0);
    let mdp = m.mdp();
    let lambda = 0.1;
    let sol = solve(&mdp, lambda, &ActionPrior::Marginal, &SolveOptions::default());
    let goal = argmax(&m.reward());
    let mut counts = ActionCounts::new(mdp.states, 5);
    for i in 0..100 {
        let mut rng = stream(3, Domain::Agent, i);
        let start = m.state_of[m.starts[0]].unwrap();
        let (s, a) = sample(&mdp, &sol.pi, start, 50, &mut rng);
        counts.add_trajectory(&s, &a);
    }
    let inv = invert(&mdp, &counts, lambda, None).unwrap();
    assert_eq!(argmax(&inv.reward), goal, "direct inversion {:?}", inv.reward);
    let f = fit(&mdp, &counts, lambda, None, &FitOptions::default()).unwrap();
    assert_eq!(argmax(&f.reward), goal, "maximum likelihood {:?}", f.reward);
    assert!(counts.information() > 0.0);
}

#[test]
fn mismatched_demonstrations_are_refused() {
    let m = maze(0.0);
    let counts = ActionCounts::new(m.states() + 1, 5);
    assert!(invert(&m.mdp(), &counts, 1.0, None).unwrap_err().contains("states"));
    assert!(fit(&m.mdp(), &counts, 1.0, None, &FitOptions::default()).is_err());
    let empty = ActionCounts::new(m.states(), 5);
    assert!(
        fit(&m.mdp(), &empty, 1.0, None, &FitOptions::default())
            .unwrap_err()
            .contains("no step")
    );
}
