//! Efficient sensory coding (theory §8): the lumped input against the full
//! pixel input, the alternation's ascent and fixed point, the measurements
//! against brute-force references, the paper's qualitative results on the
//! shipped scenario, and the exact inverse of the solved code.
#![allow(clippy::needless_range_loop)]

use marlin::coding::{self, CodingOptions, CodingTask};
use marlin::scenario::World;
use marlin::solver::SolveOptions;
use rand::{Rng, SeedableRng};
use std::path::Path;

fn opts(starts: usize) -> CodingOptions {
    CodingOptions {
        starts,
        solve: SolveOptions {
            starts: Some(1),
            ..SolveOptions::default()
        },
        ..CodingOptions::default()
    }
}

fn shipped() -> marlin::scenario::CodingScenario {
    match World::load(Path::new("scenarios/efficient_coding.toml")).expect("shipped scenario") {
        World::Coding(c) => *c,
        _ => panic!("efficient_coding.toml is not a coding scenario"),
    }
}

/// Neurons that see every pixel solve to the same code as neurons that see
/// only the pixel count: same objective, and at every image the policy of
/// the count's lumped state.
#[test]
fn lumped_input_gives_the_pixel_inputs_code() {
    let task = CodingTask {
        pixels: 4,
        threshold: 1,
        pixel_probability: 0.4,
        change_probability: 0.3,
        neurons: 3,
        lambda: 0.1,
    };
    let (pixel_input, pixel_y) = task.pixel_input();
    let lumped = coding::alternate(
        &task,
        &task.input(),
        &task.feature(),
        &coding::initial_posterior(3, 0.5, 0.75),
        vec![0.3, 0.5, 0.7],
        &opts(1),
    )
    .unwrap();
    // The starting posterior must be the same function of σ: p(y = +1) of
    // both inputs is the same number.
    let mu = pixel_input.stationary();
    let prior_on: f64 = pixel_y.iter().zip(&mu).filter(|(b, _)| **b).map(|(_, m)| m).sum();
    let mu_l = task.input().stationary();
    let prior_l: f64 = task
        .feature()
        .iter()
        .zip(&mu_l)
        .filter(|(b, _)| **b)
        .map(|(_, m)| m)
        .sum();
    assert!((prior_on - prior_l).abs() < 1e-12);
    let full = coding::alternate(
        &task,
        &pixel_input,
        &pixel_y,
        &coding::initial_posterior(3, 0.5, 0.75),
        vec![0.3, 0.5, 0.7],
        &opts(1),
    )
    .unwrap();
    assert!(lumped.converged && full.converged);
    assert!(
        (lumped.objective() - full.objective()).abs() < 1e-7,
        "objective lumped {} vs pixels {}",
        lumped.objective(),
        full.objective()
    );
    let c = 8;
    for img in 0..16usize {
        let m = img.count_ones() as usize;
        for sigma in 0..c {
            for k in 0..3 {
                let a = full.solution.policy.p(img * c + sigma, k);
                let b = lumped.solution.policy.p(m * c + sigma, k);
                assert!(
                    (a - b).abs() < 1e-5,
                    "image {img:04b} σ {sigma:03b} neuron {k}: {a} vs {b}"
                );
            }
        }
    }
}

/// Each alternation step cannot lower ⟨log p(y|σ)⟩ − λ I: the solve is
/// optimal for the previous decoder and the true posterior is the best
/// decoder (Gibbs' inequality). At the fixed point the solve's g is the
/// objective.
#[test]
fn the_alternation_ascends_to_a_self_consistent_code() {
    for (lambda, change, q) in [(0.1, 0.3, 0.5), (0.2, 0.05, 0.3), (0.05, 0.2, 0.5)] {
        let task = CodingTask {
            pixels: 7,
            threshold: 3,
            pixel_probability: q,
            change_probability: change,
            neurons: 5,
            lambda,
        };
        for seed in 0..3u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let prior: Vec<f64> = (0..5).map(|_| rng.random_range(0.1..0.9)).collect();
            let sol = coding::alternate(
                &task,
                &task.input(),
                &task.feature(),
                &coding::initial_posterior(5, 0.5, 0.75),
                prior,
                &opts(1),
            )
            .unwrap();
            assert!(sol.converged, "λ {lambda} change {change} q {q}: {:?}", sol.warnings);
            for w in sol.history.windows(2) {
                assert!(
                    w[1].objective >= w[0].objective - 1e-7,
                    "objective fell from {} to {} (λ {lambda}, change {change}, q {q}, start {seed})",
                    w[0].objective,
                    w[1].objective
                );
            }
            let last = sol.history.last().unwrap();
            assert!(
                (last.g_solved - last.objective).abs() < 1e-6,
                "fixed point: g {} vs objective {}",
                last.g_solved,
                last.objective
            );
            // The network's reward is its own log-posterior.
            let post = coding::posterior(5, &sol.y, &sol.solution.eval.rho);
            let r = coding::log_posterior_reward(5, &sol.y, &post);
            let dev = r
                .iter()
                .zip(&sol.network.reward)
                .zip(&sol.solution.eval.rho)
                .filter(|(_, p)| **p > 1e-12)
                .map(|((a, b), _)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(dev < 1e-4, "reward is not the code's log-posterior: {dev}");
        }
    }
}

/// Posterior, information and the independent baseline against direct
/// sums over a random joint distribution.
#[test]
fn measurements_match_brute_force() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (n, xs) = (3usize, 4usize);
    let c = 1usize << n;
    let y = vec![false, true, false, true];
    for _ in 0..20 {
        let mut rho: Vec<f64> = (0..xs * c).map(|_| rng.random::<f64>()).collect();
        let z: f64 = rho.iter().sum();
        rho.iter_mut().for_each(|p| *p /= z);
        // p(y = 1 | σ).
        let post = coding::posterior(n, &y, &rho);
        for sigma in 0..c {
            let on: f64 = (0..xs).filter(|&x| y[x]).map(|x| rho[x * c + sigma]).sum();
            let all: f64 = (0..xs).map(|x| rho[x * c + sigma]).sum();
            assert!((post[sigma] - on / all).abs() < 1e-12);
        }
        // I(Y;Σ) = H(Y) − H(Y|Σ).
        let h = |p: f64| {
            if p > 0.0 && p < 1.0 {
                -p * p.ln() - (1.0 - p) * (1.0 - p).ln()
            } else {
                0.0
            }
        };
        let py: f64 = (0..xs)
            .filter(|&x| y[x])
            .map(|x| rho[x * c..(x + 1) * c].iter().sum::<f64>())
            .sum();
        let h_cond: f64 = (0..c)
            .map(|s| (0..xs).map(|x| rho[x * c + s]).sum::<f64>() * h(post[s]))
            .sum();
        let info = coding::information(n, &y, &rho);
        assert!((info - (h(py) - h_cond)).abs() < 1e-12, "{info} vs {}", h(py) - h_cond);
        // The independent code: rebuild its joint explicitly.
        let mut ind = vec![0.0; xs * c];
        for x in 0..xs {
            let px: f64 = rho[x * c..(x + 1) * c].iter().sum();
            let rate: Vec<f64> = (0..n)
                .map(|k| (0..c).filter(|s| s >> k & 1 == 1).map(|s| rho[x * c + s]).sum::<f64>() / px)
                .collect();
            for s in 0..c {
                ind[x * c + s] = px
                    * (0..n)
                        .map(|k| if s >> k & 1 == 1 { rate[k] } else { 1.0 - rate[k] })
                        .product::<f64>();
            }
        }
        let ii = coding::independent_information(n, &y, &rho);
        assert!((ii - coding::information(n, &y, &ind)).abs() < 1e-12);
        // By count.
        let bc = coding::posterior_by_count(n, &y, &rho);
        for k in 0..=n {
            let states: Vec<usize> = (0..c).filter(|s| s.count_ones() as usize == k).collect();
            let on: f64 = states
                .iter()
                .map(|&s| (0..xs).filter(|&x| y[x]).map(|x| rho[x * c + s]).sum::<f64>())
                .sum();
            let all: f64 = states
                .iter()
                .map(|&s| (0..xs).map(|x| rho[x * c + s]).sum::<f64>())
                .sum();
            assert!((bc[k] - on / all).abs() < 1e-12);
        }
    }
}

#[test]
fn cell_types_and_rate_error_ignore_neuron_labels() {
    let rates = vec![vec![0.1, 0.9], vec![0.5, 0.5], vec![0.105, 0.895], vec![0.5, 0.51]];
    assert_eq!(coding::cell_types(&rates, 0.02), vec![vec![0, 2], vec![1, 3]]);
    let permuted = vec![rates[3].clone(), rates[2].clone(), rates[1].clone(), rates[0].clone()];
    let w = [0.5, 0.5];
    assert!(marlin::commands::coding::rate_error(&rates, &permuted, &w) < 1e-15);
    let other = vec![vec![0.1, 0.9]; 4];
    assert!((marlin::commands::coding::rate_error(&rates, &other, &w) - 0.4).abs() < 0.02);
}

/// The paper's figure 4 on the shipped scenario: identical tuning curves,
/// a posterior that rises with the spike count, more information about y
/// than independent neurons with the same rates; and two cell types when
/// pixels are on less often.
#[test]
fn the_shipped_scenario_shows_the_papers_results() {
    let sc = shipped();
    let sol = coding::solve(&sc.task, sc.task.input(), &sc.task.feature(), &sc.options).unwrap();
    assert!(sol.converged, "{:?}", sol.warnings);
    let n = sc.task.neurons;
    let rho = &sol.solution.eval.rho;
    let rates = coding::rates(n, sol.y.len(), rho);
    for k in 1..n {
        for m in 0..rates[k].len() {
            assert!(
                (rates[k][m] - rates[0][m]).abs() < 1e-5,
                "neuron {k} differs at m = {m}"
            );
        }
    }
    let tuning = coding::tuning(&sol.network, &sol.solution.policy, rho);
    for k in 1..n {
        for m in 0..tuning[k].len() {
            for o in 0..n {
                let (a, b) = (tuning[k][m][o], tuning[0][m][o]);
                assert!(!(a.is_finite() && b.is_finite()) || (a - b).abs() < 1e-5);
            }
        }
    }
    let post = coding::posterior_by_count(n, &sol.y, rho);
    for w in post.windows(2) {
        assert!(w[1] > w[0], "p(y = +1 | count) not increasing: {post:?}");
    }
    let info = coding::information(n, &sol.y, rho);
    let ind = coding::independent_information(n, &sol.y, rho);
    assert!(info > 2.0 * ind, "I = {info} nats vs independent {ind}");
    // Every start reaches the same objective: the symmetric code is the
    // optimum found, not an artefact of the symmetric start.
    let best = sol.objective();
    assert!(
        sol.start_objective.iter().all(|o| (o - best).abs() < 1e-6),
        "{:?}",
        sol.start_objective
    );

    let mut low = sc.task.clone();
    low.pixel_probability = 0.2;
    let split = coding::solve(&low, low.input(), &low.feature(), &sc.options).unwrap();
    let rates = coding::rates(n, split.y.len(), &split.solution.eval.rho);
    let types = coding::cell_types(&rates, 0.02);
    assert_eq!(types.len(), 2, "types at q = 0.2: {types:?}");
    let mean = |g: &Vec<usize>| g.iter().map(|&k| split.solution.eval.p_fire[k]).sum::<f64>() / g.len() as f64;
    assert!(
        (mean(&types[0]) - mean(&types[1])).abs() > 0.5,
        "rates of the two types too close"
    );
}

/// With exact responses (infinite data) the tabular inverse of the solved
/// code returns its reward: r = log p(y | σ) up to a function of the input.
#[test]
fn exact_inverse_of_the_code_is_its_log_posterior() {
    let mut sc = shipped();
    sc.task.neurons = 5;
    let sol = coding::solve(&sc.task, sc.task.input(), &sc.task.feature(), &opts(1)).unwrap();
    let net = &sol.network;
    let (n, c, xs) = (net.n, net.configs(), net.input.len());
    let rho = &sol.solution.eval.rho;
    let mut edges = vec![(0.0, 0.0); xs * c * n];
    for x in 0..xs {
        for s0 in 0..c {
            for k in 0..n {
                if s0 >> k & 1 == 0 {
                    let s = x * c + s0;
                    let p = sol.solution.policy.p(s, k);
                    edges[s * n + k] = (rho[s] + rho[s | 1 << k], (p / (1.0 - p)).ln());
                }
            }
        }
    }
    let inv = marlin::infer::invert_from_logits(
        n,
        xs,
        &edges,
        &sol.solution.prior,
        &net.alive,
        &net.input.transition,
        Some(sc.task.lambda),
        vec![1; xs * c],
    )
    .unwrap();
    let corr = marlin::infer::centred_correlation(&inv.r, &net.reward, n, xs, |s| rho[s] > 1e-9);
    assert!(corr > 0.9999, "correlation {corr}");
    // Same units: after removing each input's mean, r̂ = r.
    for x in 0..xs {
        let (a, b) = (&inv.r[x * c..(x + 1) * c], &net.reward[x * c..(x + 1) * c]);
        let (ma, mb) = (a.iter().sum::<f64>() / c as f64, b.iter().sum::<f64>() / c as f64);
        for s in 0..c {
            assert!(
                ((a[s] - ma) - (b[s] - mb)).abs() < 1e-4,
                "x {x} σ {s}: {} vs {}",
                a[s] - ma,
                b[s] - mb
            );
        }
    }
}
