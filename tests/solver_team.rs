//! The team solver (product policies over a joint state) against
//! independent references: one agent is the single-agent solver; two agents
//! with separate rewards and dynamics are two single-agent problems; a
//! quasi-Newton search over product policies with a dense evaluation does
//! not beat it on a tiny world; the joint maze world is built as written.

#![allow(clippy::needless_range_loop)]

mod common;

use marlin::maze::{Maze, TeamGoal};
use marlin::solver::SolveOptions;
use marlin::solver::mdp::{self, ActionPrior, Mdp};
use marlin::solver::team::{self, Team};

fn corridor() -> Maze {
    Maze::parse("#####\n#S.G#\n#####", &[('G', 1.0)], 0.0).unwrap()
}

fn small_maze() -> Maze {
    Maze::parse("######\n#S..G#\n#.##.#\n#....#\n######", &[('G', 1.0)], 0.1).unwrap()
}

#[test]
fn one_agent_team_is_the_single_agent_problem() {
    let maze = small_maze();
    let t = maze.team(1, TeamGoal::AllOnGoals).unwrap();
    let single = maze.mdp();
    assert_eq!(t.joint.reward, single.reward);
    for i in 0..single.next.len() {
        let mut a = t.joint.next[i].clone();
        let mut b = single.next[i].clone();
        a.sort_by_key(|x| x.0);
        b.sort_by_key(|x| x.0);
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.0, y.0);
            assert!((x.1 - y.1).abs() < 1e-15);
        }
    }
    for lambda in [0.05, 0.3] {
        let opts = SolveOptions::default();
        let ts = team::solve(&t, lambda, &ActionPrior::Marginal, &opts);
        let ss = mdp::solve(&single, lambda, &ActionPrior::Marginal, &opts);
        assert!(ts.converged, "{:?}", ts.warnings);
        assert!(
            (ts.eval.g - ss.eval.g).abs() < 1e-6,
            "λ {lambda}: team g {} vs single {}",
            ts.eval.g,
            ss.eval.g
        );
    }
}

/// Two agents that do not interact: the joint optimum is the sum of the two
/// single-agent optima, and neither policy depends on the other's state.
#[test]
fn independent_agents_add_up() {
    let a = small_maze().mdp();
    let b = corridor().mdp();
    let (na, nb, k) = (a.states, b.states, a.actions);
    let mut next = Vec::new();
    let mut reward = Vec::new();
    for j in 0..na * nb {
        let (sa, sb) = (j % na, j / na);
        reward.push(a.reward[sa] + b.reward[sb]);
        for ja in 0..k * k {
            let (x, y) = (ja % k, ja / k);
            let mut row = Vec::new();
            for &(ta, pa) in &a.next[sa * k + x] {
                for &(tb, pb) in &b.next[sb * k + y] {
                    row.push((ta + tb * na, pa * pb));
                }
            }
            next.push(row);
        }
    }
    let t = Team::new(
        Mdp {
            states: na * nb,
            actions: k * k,
            next,
            reward,
        },
        2,
        k,
    )
    .unwrap();
    let lambda = 0.2;
    let opts = SolveOptions::default();
    let ts = team::solve(&t, lambda, &ActionPrior::Marginal, &opts);
    let ga = mdp::solve(&a, lambda, &ActionPrior::Marginal, &opts).eval.g;
    let gb = mdp::solve(&b, lambda, &ActionPrior::Marginal, &opts).eval.g;
    assert!(ts.converged, "{:?}", ts.warnings);
    assert!(
        (ts.eval.g - (ga + gb)).abs() < 1e-5,
        "team {} vs {ga} + {gb}",
        ts.eval.g
    );
    // Agent 0's policy does not depend on agent 1's state.
    for sa in 0..na {
        for sb in 1..nb {
            for x in 0..k {
                let p0 = ts.pi[(sa * 2) * k + x];
                let p1 = ts.pi[((sa + sb * na) * 2) * k + x];
                assert!(
                    (p0 - p1).abs() < 1e-4,
                    "agent 0 at {sa} looks at agent 1 ({sb}): {p0} vs {p1}"
                );
            }
        }
    }
}

/// g of per-agent policies by a dense linear solve of the joint chain
/// (written from theory §2–3 for a synchronous team, not from src/).
fn dense_team_g(t: &Team, pi: &[Vec<Vec<f64>>], lambda: f64, fixed: Option<&[f64]>) -> f64 {
    let (ns, m, k) = (t.joint.states, t.agents, t.actions);
    let mut a = vec![vec![0.0; ns + 1]; ns];
    for s in 0..ns {
        for ja in 0..t.joint.actions {
            let mut w = 1.0;
            let mut rest = ja;
            for agent in 0..m {
                w *= pi[s][agent][rest % k];
                rest /= k;
            }
            for &(u, p) in &t.joint.next[s * t.joint.actions + ja] {
                a[u][s] += w * p;
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
    let mut g = 0.0;
    for s in 0..ns {
        g += rho[s] * t.joint.reward[s];
    }
    for agent in 0..m {
        let marg: Vec<f64> = (0..k)
            .map(|x| (0..ns).map(|s| rho[s] * pi[s][agent][x]).sum())
            .collect();
        let p = fixed.map_or(marg, |f| f.to_vec());
        for s in 0..ns {
            for x in 0..k {
                let q = pi[s][agent][x];
                if q > 0.0 {
                    g -= lambda * rho[s] * q * (q / p[x]).ln();
                }
            }
        }
    }
    g
}

#[test]
fn quasi_newton_search_over_product_policies_does_not_beat_the_solver() {
    let maze = corridor();
    let t = maze.team(2, TeamGoal::AllOnGoals).unwrap();
    let (ns, k) = (t.joint.states, t.actions);
    for (lambda, cost) in [
        (0.1, ActionPrior::Marginal),
        (0.3, ActionPrior::Fixed(vec![0.3, 0.2, 0.1, 0.2, 0.2])),
    ] {
        let fixed = match &cost {
            ActionPrior::Fixed(p) => Some(p.clone()),
            ActionPrior::Marginal => None,
        };
        let sol = team::solve(&t, lambda, &cost, &SolveOptions::default());
        assert!(sol.converged, "{:?}", sol.warnings);
        let table = |pi: &[f64]| -> Vec<Vec<Vec<f64>>> {
            (0..ns)
                .map(|s| {
                    (0..2)
                        .map(|a| pi[(s * 2 + a) * k..(s * 2 + a + 1) * k].to_vec())
                        .collect()
                })
                .collect()
        };
        let ours = dense_team_g(&t, &table(&sol.pi), lambda, fixed.as_deref());
        assert!(
            (ours - sol.eval.g).abs() < 1e-8,
            "dense {ours} vs solver {}",
            sol.eval.g
        );
        let f = |x: &[f64]| {
            let pi: Vec<f64> = x
                .chunks(k)
                .flat_map(|row| {
                    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    e.into_iter().map(move |v| v / z)
                })
                .collect();
            -dense_team_g(&t, &table(&pi), lambda, fixed.as_deref())
        };
        let mut best = f64::NEG_INFINITY;
        for start in 0..3u64 {
            let x0: Vec<f64> = common::random_reward(ns * 2 * k, 40 + start)
                .iter()
                .map(|v| 4.0 * (v - 0.5))
                .collect();
            best = best.max(-common::bfgs(&f, x0, 300));
        }
        assert!(
            sol.eval.g >= best - 1e-6,
            "λ {lambda}: solver {} below search {best}",
            sol.eval.g
        );
    }
}

#[test]
fn joint_maze_world_rewards_and_resets_as_written() {
    let maze = small_maze();
    let ns = maze.states();
    let goal = maze.state_of[maze.goals[0].0].unwrap();
    for (goal_kind, rewarded) in [
        (TeamGoal::AllOnGoals, vec![(goal, goal)]),
        (TeamGoal::Meet, (0..ns).map(|s| (s, s)).collect::<Vec<_>>()),
    ] {
        let t = maze.team(2, goal_kind).unwrap();
        for j in 0..ns * ns {
            let (a, b) = (j % ns, j / ns);
            let want = rewarded.contains(&(a, b));
            assert_eq!(t.joint.reward[j] != 0.0, want, "{goal_kind:?} at ({a}, {b})");
            if !want {
                // Each walker moves on its own: the joint row is the product.
                for ja in [0, 7, 24] {
                    let (x, y) = (ja % 5, ja / 5);
                    for &(u, p) in &t.joint.next[j * 25 + ja] {
                        let pa = maze.move_row(a, x).iter().find(|e| e.0 == u % ns).map_or(0.0, |e| e.1);
                        let pb = maze.move_row(b, y).iter().find(|e| e.0 == u / ns).map_or(0.0, |e| e.1);
                        assert!((p - pa * pb).abs() < 1e-12);
                    }
                }
            } else {
                let total: f64 = t.joint.next[j * 25].iter().map(|e| e.1).sum();
                assert!((total - 1.0).abs() < 1e-12);
                for &(u, _) in &t.joint.next[j * 25] {
                    let (sa, sb) = (maze.cells[u % ns], maze.cells[u / ns]);
                    assert!(maze.starts.contains(&sa) && maze.starts.contains(&sb));
                }
            }
        }
    }
    let err = maze.team(9, TeamGoal::Meet).unwrap_err();
    assert!(err.contains("learning"), "{err}");
}
