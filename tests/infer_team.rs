//! Inverse RL for teams of walkers: from exact (infinite-data) counts of
//! the team optimum the inversion returns the true shared reward, on the
//! true scale; from a finite record of walkers run on the runtime it ranks
//! the rewarded joint states first; moves never demonstrated are reported;
//! bad inputs are refused.

use marlin::infer::correlation;
use marlin::infer::team::{TeamCounts, invert};
use marlin::learn::walkers::{WalkerLearning, WalkerTeam, WalkerView};
use marlin::maze::{ACTIONS, Maze, TeamGoal};
use marlin::runtime::Layout;
use marlin::runtime::walkers::{self, WalkerTick};
use marlin::solver::SolveOptions;
use marlin::solver::mdp::ActionPrior;
use marlin::solver::team::{self, Team, TeamSolution};

fn maze() -> Maze {
    Maze::parse("#######\n#S..#G#\n#.#...#\n#S...G#\n#######", &[('G', 1.0)], 0.0).unwrap()
}

const UNIFORM: [f64; 5] = [0.2; 5];

fn solve(world: &Team, lambda: f64, cost: &ActionPrior) -> TeamSolution {
    let opts = SolveOptions {
        max_prior_iterations: 100_000,
        ..SolveOptions::default()
    };
    team::solve(world, lambda, cost, &opts)
}

/// n_k(s, a) = N ρ(s) π_k(a|s) with N so large the pseudo-count vanishes.
fn exact_counts(world: &Team, sol: &TeamSolution) -> TeamCounts {
    let (ns, na) = (world.joint.states, ACTIONS.len());
    let big = 1e12;
    let mut counts = TeamCounts::new(ns, 2, na);
    for s in 0..ns {
        counts.visits[s] = big * sol.eval.rho[s];
        for i in 0..2 * na {
            counts.n[s * 2 * na + i] = big * sol.eval.rho[s] * sol.pi[s * 2 * na + i];
        }
    }
    counts
}

#[test]
fn exact_counts_of_the_optimum_give_back_the_true_reward() {
    let m = maze();
    for goal in [TeamGoal::AllOnGoals, TeamGoal::Meet] {
        for lambda in [0.2, 1.0] {
            let world = m.team(2, goal).unwrap();
            let sol = solve(&world, lambda, &ActionPrior::Fixed(UNIFORM.to_vec()));
            let inv = invert(&world, &exact_counts(&world, &sol), lambda, Some(&UNIFORM)).unwrap();
            let visited: Vec<usize> = (0..world.joint.states).filter(|&s| sol.eval.rho[s] > 1e-9).collect();
            let pick = |v: &[f64]| visited.iter().map(|&s| v[s]).collect::<Vec<_>>();
            let c = correlation(&pick(&inv.reward), &pick(&world.joint.reward));
            assert!(c > 0.999, "{goal:?}, λ {lambda}: correlation {c}");
            // λ known: the rewarded states stand 1 above the rest.
            let mean = |want: f64| {
                let v: Vec<f64> = visited
                    .iter()
                    .filter(|&&s| world.joint.reward[s] == want)
                    .map(|&s| inv.reward[s])
                    .collect();
                v.iter().sum::<f64>() / v.len() as f64
            };
            let gap = mean(1.0) - mean(0.0);
            assert!((gap - 1.0).abs() < 0.01, "{goal:?}, λ {lambda}: reward gap {gap}");
            assert!(inv.notes.iter().all(|n| !n.contains("never demonstrated")));
        }
    }
}

#[test]
fn a_recorded_team_points_at_the_rewarded_joint_states() {
    let m = maze();
    let world = m.team(2, TeamGoal::AllOnGoals).unwrap();
    let lambda = 0.5;
    let sol = solve(&world, lambda, &ActionPrior::Fixed(UNIFORM.to_vec()));
    let spec = WalkerLearning {
        agents: 2,
        view: WalkerView::Joint,
        goal: TeamGoal::AllOnGoals,
        lambda,
        seed: 4,
        ..WalkerLearning::default()
    };
    let mut demo = WalkerTeam::following(&m, spec, &sol.pi, &sol.priors).unwrap();
    let ns = m.states();
    let mut counts = TeamCounts::new(ns * ns, 2, ACTIONS.len());
    let mut obs = |t: &WalkerTick| counts.add(t.cells[0] + ns * t.cells[1], t.actions);
    walkers::run(&mut demo, Layout::single(), 200_000, &mut obs, None).unwrap();
    let inv = invert(&world, &counts, lambda, Some(&UNIFORM)).unwrap();
    let c = correlation(&inv.reward, &world.joint.reward);
    assert!(c > 0.9, "correlation {c}");
    let rewarded = world.joint.reward.iter().filter(|&&r| r > 0.0).count();
    let mut order: Vec<usize> = (0..ns * ns).filter(|&s| inv.reward[s].is_finite()).collect();
    order.sort_by(|&a, &b| inv.reward[b].total_cmp(&inv.reward[a]));
    for &s in &order[..rewarded] {
        assert!(
            world.joint.reward[s] > 0.0,
            "joint state {s} ranked among the top {rewarded}"
        );
    }
}

/// The mutual-information optimum of this maze uses two moves (E and S):
/// the inversion says which moves it never saw.
#[test]
fn moves_never_demonstrated_are_reported() {
    let m = maze();
    let world = m.team(2, TeamGoal::AllOnGoals).unwrap();
    let sol = solve(&world, 0.2, &ActionPrior::Marginal);
    let spec = WalkerLearning {
        agents: 2,
        view: WalkerView::Joint,
        seed: 5,
        ..WalkerLearning::default()
    };
    let mut demo = WalkerTeam::following(&m, spec, &sol.pi, &sol.priors).unwrap();
    let ns = m.states();
    let mut counts = TeamCounts::new(ns * ns, 2, ACTIONS.len());
    let mut obs = |t: &WalkerTick| counts.add(t.cells[0] + ns * t.cells[1], t.actions);
    walkers::run(&mut demo, Layout::single(), 20_000, &mut obs, None).unwrap();
    let inv = invert(&world, &counts, 0.2, None).unwrap();
    let note = inv
        .notes
        .iter()
        .find(|n| n.contains("never demonstrated"))
        .expect("a note");
    assert!(
        note.contains("agent 0 move 0") && note.contains("agent 1 move 3"),
        "{note}"
    );
}

#[test]
fn bad_inputs_are_refused() {
    let m = maze();
    let world = m.team(2, TeamGoal::AllOnGoals).unwrap();
    let ns = world.joint.states;
    let empty = TeamCounts::new(ns, 2, ACTIONS.len());
    assert!(invert(&world, &empty, 1.0, None).unwrap_err().contains("no step"));
    let wrong = TeamCounts::new(ns, 3, ACTIONS.len());
    assert!(invert(&world, &wrong, 1.0, None).unwrap_err().contains("3 agents"));
    let mut one = TeamCounts::new(ns, 2, ACTIONS.len());
    one.add(0, &[0, 1]);
    assert!(
        invert(&world, &one, 1.0, Some(&[0.5, 0.5]))
            .unwrap_err()
            .contains("prior")
    );
}

/// One agent's view of a team record is a one-agent record with the same
/// steps and the same move counts.
#[test]
fn an_agents_moves_alone_are_a_one_agent_record() {
    let mut counts = TeamCounts::new(4, 2, ACTIONS.len());
    for (s, moves) in [(0, [1, 2]), (0, [1, 4]), (3, [0, 2]), (2, [1, 1])] {
        counts.add(s, &moves);
    }
    for k in 0..2 {
        let one = counts.agent(k);
        assert_eq!(one.total(), 4.0);
        let na = ACTIONS.len();
        let raw: Vec<f64> = (0..na)
            .map(|a| (0..4).map(|s| one.n[s * na + a]).sum::<f64>() / 4.0)
            .collect();
        assert_eq!(raw, counts.marginal(k));
        assert_eq!((0..4).map(|s| one.visits(s)).collect::<Vec<_>>(), counts.visits);
    }
    assert_eq!(counts.agent(0).n[ACTIONS.len() + 1], 0.0);
    assert_eq!(counts.agent(0).n[1], 2.0);
    assert_eq!(counts.agent(1).n[2 * ACTIONS.len() + 1], 1.0);
}
