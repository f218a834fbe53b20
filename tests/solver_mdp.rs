//! The single-agent world solver (mazes) against independent references: a
//! dense evaluation and quasi-Newton search over policies, the network
//! solver on a one-neuron network (the same problem written twice), shortest
//! paths at small λ and state-blindness at large λ.

#![allow(clippy::needless_range_loop)]

mod common;

use marlin::maze::Maze;
use marlin::model::{CodingCost, InputProcess, Network, UpdateScheme};
use marlin::rng::{Domain, stream};
use marlin::solver::SolveOptions;
use marlin::solver::mdp::{ActionPrior, Mdp, sample, solve};

/// g of a policy by a dense linear solve (written from theory §2, not src/).
fn dense_g(mdp: &Mdp, pi: &[Vec<f64>], lambda: f64, fixed: Option<&[f64]>) -> f64 {
    let (ns, na) = (mdp.states, mdp.actions);
    let mut a = vec![vec![0.0; ns + 1]; ns];
    for s in 0..ns {
        for act in 0..na {
            for &(t, p) in &mdp.next[s * na + act] {
                a[t][s] += pi[s][act] * p;
            }
        }
    }
    for i in 0..ns {
        a[i][i] -= 1.0;
    }
    for j in 0..ns {
        a[ns - 1][j] = 1.0;
    }
    a[ns - 1][ns] = 1.0;
    let rho = common::gauss(a);
    let mut marg = vec![0.0; na];
    for s in 0..ns {
        for act in 0..na {
            marg[act] += rho[s] * pi[s][act];
        }
    }
    let p = fixed.map_or(marg, |f| f.to_vec());
    let mut g = 0.0;
    for s in 0..ns {
        g += rho[s] * mdp.reward[s];
        for act in 0..na {
            if pi[s][act] > 0.0 {
                g -= lambda * rho[s] * pi[s][act] * (pi[s][act] / p[act]).ln();
            }
        }
    }
    g
}

fn random_mdp(states: usize, actions: usize, seed: u64) -> Mdp {
    let u = common::random_reward(states * actions * states + states, seed);
    let mut next = Vec::new();
    for i in 0..states * actions {
        let w: Vec<f64> = (0..states).map(|t| u[i * states + t].powi(3)).collect();
        let total: f64 = w.iter().sum();
        next.push((0..states).map(|t| (t, w[t] / total)).collect());
    }
    Mdp {
        states,
        actions,
        next,
        reward: u[states * actions * states..].to_vec(),
    }
}

fn softmax_rows(x: &[f64], states: usize, actions: usize) -> Vec<Vec<f64>> {
    (0..states)
        .map(|s| {
            let row = &x[s * actions..(s + 1) * actions];
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
            let z: f64 = e.iter().sum();
            e.iter().map(|v| v / z).collect()
        })
        .collect()
}

fn rows(pi: &[f64], states: usize, actions: usize) -> Vec<Vec<f64>> {
    (0..states)
        .map(|s| pi[s * actions..(s + 1) * actions].to_vec())
        .collect()
}

#[test]
fn optimum_beats_a_quasi_newton_search_over_policies() {
    for (seed, cost) in [
        (1, ActionPrior::Marginal),
        (2, ActionPrior::Marginal),
        (3, ActionPrior::Fixed(vec![0.2, 0.3, 0.5])),
    ] {
        let mdp = random_mdp(4, 3, seed);
        mdp.validate().unwrap();
        let lambda = 0.1;
        let sol = solve(&mdp, lambda, &cost, &SolveOptions::default());
        assert!(sol.converged, "{:?}", sol.warnings);
        let fixed = match &cost {
            ActionPrior::Fixed(p) => Some(p.as_slice()),
            ActionPrior::Marginal => None,
        };
        let ours = dense_g(&mdp, &rows(&sol.pi, 4, 3), lambda, fixed);
        assert!(
            (ours - sol.eval.g).abs() < 1e-8,
            "dense g {ours} vs solver {}",
            sol.eval.g
        );
        let mut best = f64::NEG_INFINITY;
        for start in 0..4u64 {
            let x0 = common::random_reward(12, 100 + start + 10 * seed)
                .iter()
                .map(|v| 4.0 * (v - 0.5))
                .collect();
            let f = |x: &[f64]| -dense_g(&mdp, &softmax_rows(x, 4, 3), lambda, fixed);
            best = best.max(-common::bfgs(&f, x0, 300));
        }
        assert!(
            sol.eval.g >= best - 1e-6,
            "seed {seed}: solver g {} below a direct search's {best}",
            sol.eval.g
        );
    }
}

#[test]
fn one_neuron_network_is_the_same_problem() {
    let input = InputProcess {
        values: vec![-1.0, 1.0],
        transition: vec![0.8, 0.2, 0.3, 0.7],
        control: None,
    };
    let reward = vec![0.1, 0.9, 0.7, 0.2]; // s = x·2 + σ
    for cost in [CodingCost::MutualInformation, CodingCost::FixedPrior(vec![0.2])] {
        let net = Network {
            n: 1,
            alive: vec![true],
            input: input.clone(),
            reward: reward.clone(),
            lambda: 0.4,
            cost: cost.clone(),
            update: UpdateScheme::Asynchronous,
            observes: None,
        };
        let opts = SolveOptions {
            starts: Some(1),
            ..SolveOptions::default()
        };
        let reference = marlin::solver::solve(&net, &opts).unwrap();
        // The same world as an MDP: state (x, σ), action = the new σ.
        let mut next = Vec::new();
        for x in 0..2 {
            for _sigma in 0..2 {
                for a in 0..2 {
                    next.push((0..2).map(|x2| (x2 * 2 + a, input.p(x, x2))).collect());
                }
            }
        }
        let mdp = Mdp {
            states: 4,
            actions: 2,
            next,
            reward: reward.clone(),
        };
        let prior = match &cost {
            CodingCost::MutualInformation => ActionPrior::Marginal,
            CodingCost::FixedPrior(p) => ActionPrior::Fixed(vec![1.0 - p[0], p[0]]),
        };
        let sol = solve(&mdp, 0.4, &prior, &SolveOptions::default());
        assert!(sol.converged);
        assert!(
            (sol.eval.g - reference.eval.g).abs() < 1e-8,
            "{cost:?}: {} vs network solver {}",
            sol.eval.g,
            reference.eval.g
        );
        for s in 0..4 {
            assert!((sol.pi[s * 2 + 1] - reference.policy.p(s, 0)).abs() < 1e-6);
        }
    }
}

#[test]
fn bellman_equation_and_blahut_arimoto_fixed_point_hold() {
    let mdp = random_mdp(6, 4, 7);
    let lambda = 0.3;
    let sol = solve(&mdp, lambda, &ActionPrior::Marginal, &SolveOptions::default());
    assert!(sol.converged);
    let (_, v) = mdp.soft_policy(&sol.h, lambda, &sol.prior);
    for s in 0..6 {
        let lhs = sol.h[s] + sol.eval.g;
        assert!((lhs - mdp.reward[s] - v[s]).abs() < 1e-7, "Bellman residual at {s}");
    }
    for a in 0..4 {
        assert!((sol.prior[a] - sol.eval.marginal[a]).abs() < 1e-6);
    }
    assert!((sol.eval.g - (sol.eval.mean_reward - lambda * sol.eval.info_nats)).abs() < 1e-12);
}

fn corridor_maze() -> Maze {
    Maze::parse(
        "#########\n\
         #S..#...#\n\
         #.#.#.#.#\n\
         #.#...#G#\n\
         #########",
        &[('G', 1.0)],
        0.0,
    )
    .unwrap()
}

#[test]
fn small_lambda_takes_shortest_paths_and_large_lambda_ignores_the_state() {
    let maze = corridor_maze();
    let mdp = maze.mdp();
    let dist = maze.distance_to_goal();
    let sol = solve(&mdp, 0.01, &ActionPrior::Marginal, &SolveOptions::default());
    assert!(sol.converged, "{:?}", sol.warnings);
    for s in 0..maze.states() {
        if maze.is_goal(s) {
            continue;
        }
        let d = dist[s].unwrap();
        let cell = maze.cells[s];
        let closer: f64 = (0..5)
            .filter(|&a| dist[maze.state_of[maze.step(cell, a)].unwrap()] == Some(d - 1))
            .map(|a| sol.pi[s * 5 + a])
            .sum();
        assert!(closer > 0.95, "state {s} at distance {d}: P(a step closer) = {closer}");
    }
    // From S the path to G is 12 moves, then one reset step: g → 1/13.
    let d_start = dist[maze.state_of[maze.starts[0]].unwrap()].unwrap();
    assert_eq!(d_start, 12);
    assert!(
        (sol.eval.mean_reward - 1.0 / 13.0).abs() < 0.01,
        "{}",
        sol.eval.mean_reward
    );

    let blind = solve(&mdp, 100.0, &ActionPrior::Marginal, &SolveOptions::default());
    assert!(blind.eval.info_nats < 1e-3, "I(S;A) = {}", blind.eval.info_nats);
    assert!(blind.eval.mean_reward < sol.eval.mean_reward / 2.0);
    // Information falls as λ grows.
    let mid = solve(&mdp, 0.2, &ActionPrior::Marginal, &SolveOptions::default());
    assert!(sol.eval.info_nats > mid.eval.info_nats && mid.eval.info_nats > blind.eval.info_nats);
}

#[test]
fn sampled_visits_match_the_stationary_distribution() {
    let maze = Maze::parse("#######\n#S...G#\n#.###.#\n#.....#\n#######", &[('G', 1.0)], 0.2).unwrap();
    let mdp = maze.mdp();
    let sol = solve(&mdp, 0.3, &ActionPrior::Marginal, &SolveOptions::default());
    let mut rng = stream(5, Domain::Agent, 0);
    let (states, _) = sample(&mdp, &sol.pi, 0, 200_000, &mut rng);
    let mut freq = vec![0.0; mdp.states];
    for &s in &states {
        freq[s] += 1.0 / states.len() as f64;
    }
    let tv: f64 = freq.iter().zip(&sol.eval.rho).map(|(a, b)| (a - b).abs()).sum::<f64>() / 2.0;
    assert!(tv < 0.02, "total variation {tv}");
}
