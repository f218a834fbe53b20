//! Neurons driving a maze walker (theory §7): the network solver with an
//! input the network moves, against a dense evaluation of the (cell, σ)
//! chain written here from the definitions and a quasi-Newton search over
//! the neurons' policies.

#![allow(clippy::needless_range_loop)]

mod common;

use marlin::maze::Maze;
use marlin::model::InputControl;
use marlin::solver::{self, Policy, SolveOptions};

/// Two cells, start then goal to the east: the network must switch on the
/// E neuron alone to move.
fn corridor() -> Maze {
    Maze::parse("####\n#SG#\n####", &[('G', 1.0)], 0.0).unwrap()
}

/// g of per-neuron policies `fire[s][k]` on the (cell, σ) chain of the
/// corridor with one neuron per direction (N, E, S, W = neurons 0..3),
/// asynchronous updates, the walker moving after the update by the group
/// with the most spikes, from the goal back to the start.
fn dense_g(fire: &[Vec<f64>], lambda: f64) -> f64 {
    let (cells, c, n) = (2usize, 16usize, 4usize);
    let states = cells * c;
    let mut a = vec![vec![0.0; states + 1]; states];
    for s in 0..states {
        let (x, sigma) = (s / c, s % c);
        for k in 0..n {
            for act in 0..2 {
                let p = if act == 1 { fire[s][k] } else { 1.0 - fire[s][k] } / n as f64;
                let next_sigma = if act == 1 { sigma | 1 << k } else { sigma & !(1 << k) };
                // Counts per group are the bits themselves (one neuron each).
                let on: Vec<usize> = (0..4).filter(|&d| next_sigma >> d & 1 == 1).collect();
                let east_alone = on == [1];
                let next_x = if x == 1 {
                    0 // the goal resets to the start
                } else if east_alone {
                    1
                } else {
                    0 // N, S, W into walls, or a tie: stay
                };
                a[next_x * c + next_sigma][s] += p;
            }
        }
    }
    for i in 0..states {
        a[i][i] -= 1.0;
    }
    for j in 0..states {
        a[states - 1][j] = 1.0;
    }
    a[states - 1][states] = 1.0;
    let rho = common::gauss(a);
    let mut g: f64 = (0..c).map(|sigma| rho[c + sigma]).sum(); // reward 1 on the goal cell
    for k in 0..n {
        let p: f64 = (0..states).map(|s| rho[s] * fire[s][k]).sum();
        for s in 0..states {
            g -= lambda / n as f64 * rho[s] * common::kl(fire[s][k], p);
        }
    }
    g
}

fn control(per_group: usize) -> InputControl {
    InputControl {
        per_group,
        transitions: vec![vec![]; 5],
        start: vec![],
    }
}

#[test]
fn motor_commands_follow_the_most_active_group() {
    // Two neurons per direction: bits 0–1 N, 2–3 E, 4–5 S, 6–7 W; 8–9 hidden.
    let c = control(2);
    assert_eq!(c.command(&[0]), 4);
    assert_eq!(c.command(&[0b0000_1100]), 1);
    assert_eq!(c.command(&[0b0100_1100]), 1);
    assert_eq!(c.command(&[0b1100_1100]), 4);
    assert_eq!(c.command(&[0b0011_0001]), 2);
    assert_eq!(c.command(&[0b11_0000_0000]), 4, "hidden neurons command nothing");
    assert_eq!(c.command(&[0b11_1000_0000]), 3);
}

#[test]
fn commands_of_wide_frames_count_across_words() {
    // 40 neurons per group: group boundaries fall inside 64-bit words.
    let c = control(40);
    let mut rng = 7u64;
    for _ in 0..500 {
        let mut frame = [0u64; 3];
        for w in frame.iter_mut() {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *w = rng & rng.rotate_left(17);
        }
        frame[2] &= (1 << (160 - 128)) - 1;
        let counts: Vec<usize> = (0..4)
            .map(|g| {
                (g * 40..(g + 1) * 40)
                    .filter(|&k| frame[k / 64] >> (k % 64) & 1 == 1)
                    .count()
            })
            .collect();
        let top = *counts.iter().max().unwrap();
        let winners: Vec<usize> = (0..4).filter(|&g| counts[g] == top).collect();
        let want = if top == 0 || winners.len() > 1 { 4 } else { winners[0] };
        assert_eq!(c.command(&frame), want, "{counts:?}");
    }
}

#[test]
fn the_solver_is_exact_on_the_cell_and_spike_chain_and_beats_a_direct_search() {
    let maze = corridor();
    for lambda in [0.1, 0.4] {
        let net = maze.motor_network(1, 4, lambda);
        let sol = solver::solve(&net, &SolveOptions::default()).unwrap();
        assert!(sol.converged, "{:?}", sol.warnings);
        let fire: Vec<Vec<f64>> = (0..net.states())
            .map(|s| (0..4).map(|k| sol.policy.p(s, k)).collect())
            .collect();
        let dense = dense_g(&fire, lambda);
        assert!(
            (dense - sol.eval.g).abs() < 1e-8,
            "λ {lambda}: dense {dense} vs solver {}",
            sol.eval.g
        );
        // The network reaches the goal: more than a walker that never moves.
        assert!(sol.eval.mean_reward > 0.05, "goal rate {}", sol.eval.mean_reward);
        let f = |theta: &[f64]| {
            let fire: Vec<Vec<f64>> = theta
                .chunks(4)
                .map(|t| t.iter().map(|&v| common::sigmoid(v)).collect())
                .collect();
            -dense_g(&fire, lambda)
        };
        let mut best = f64::NEG_INFINITY;
        for start in 0..2u64 {
            let x0: Vec<f64> = common::random_reward(net.states() * 4, 90 + start)
                .iter()
                .map(|v| 4.0 * (v - 0.5))
                .collect();
            best = best.max(-common::bfgs(&f, x0, 150));
        }
        assert!(
            sol.eval.g >= best - 1e-6,
            "λ {lambda}: solver {} below search {best}",
            sol.eval.g
        );
        // A policy that never fires stays at the start: g = 0.
        let silent = Policy::constant(&net, &[1e-9; 4]);
        let e = solver::evaluate(&net, &silent, &SolveOptions::default());
        assert!(e.mean_reward < 1e-6);
    }
}
