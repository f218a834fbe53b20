//! Decentralised learning of maze walkers (theory §4 with §7's teams):
//! learners scored exactly against the team solver's optimum, one walker
//! against the single-agent solver, and runs that depend only on the seed.

use marlin::learn::walkers::{MAX_TABLE, WalkerLearning, WalkerTeam, WalkerView};
use marlin::maze::{Maze, TeamGoal};
use marlin::solver::SolveOptions;
use marlin::solver::mdp::{self, ActionPrior};
use marlin::solver::team;

const TEAM_MAP: &str = "#######\n#S..#G#\n#.#...#\n#S...G#\n#######";

fn team_maze() -> Maze {
    Maze::parse(TEAM_MAP, &[('G', 1.0)], 0.0).unwrap()
}

fn learn(maze: &Maze, agents: usize, view: WalkerView, lambda: f64, ticks: u64, seed: u64) -> WalkerTeam<'_> {
    let spec = WalkerLearning {
        agents,
        view,
        lambda,
        ticks,
        seed,
        goal: TeamGoal::AllOnGoals,
        ..WalkerLearning::default()
    };
    let mut t = WalkerTeam::new(maze, spec).unwrap();
    t.run(ticks);
    t
}

#[test]
fn two_walkers_learn_close_to_the_team_optimum() {
    let maze = team_maze();
    let world = maze.team(2, TeamGoal::AllOnGoals).unwrap();
    let opts = SolveOptions {
        max_prior_iterations: 100_000,
        ..SolveOptions::default()
    };
    for lambda in [0.05, 0.2] {
        let g_star = team::solve(&world, lambda, &ActionPrior::Marginal, &opts).eval.g;
        for (view, bound) in [(WalkerView::Joint, 0.97), (WalkerView::Own, 0.9)] {
            let learned = learn(&maze, 2, view, lambda, 1_000_000, 7);
            let g = world
                .evaluate(&learned.joint_policy(), lambda, &ActionPrior::Marginal, &opts)
                .g;
            assert!(
                g >= bound * g_star && g <= g_star + 1e-9,
                "λ {lambda}, view {view:?}: learned g {g} vs optimum {g_star}"
            );
        }
    }
}

#[test]
fn one_walker_learns_the_single_agent_optimum() {
    let maze = Maze::parse(
        "#########\n#S..#...#\n#.#.#.#.#\n#.#...#G#\n#########",
        &[('G', 1.0)],
        0.0,
    )
    .unwrap();
    let lambda = 0.1;
    let opts = SolveOptions {
        max_prior_iterations: 100_000,
        ..SolveOptions::default()
    };
    let g_star = mdp::solve(&maze.mdp(), lambda, &ActionPrior::Marginal, &opts).eval.g;
    let learned = learn(&maze, 1, WalkerView::Own, lambda, 1_000_000, 3);
    let world = maze.team(1, TeamGoal::AllOnGoals).unwrap();
    let g = world
        .evaluate(&learned.joint_policy(), lambda, &ActionPrior::Marginal, &opts)
        .g;
    assert!(g >= 0.95 * g_star, "learned g {g} vs optimum {g_star}");
}

#[test]
fn a_run_depends_only_on_its_seed() {
    let maze = team_maze();
    let a = learn(&maze, 3, WalkerView::Own, 0.2, 50_000, 11);
    let b = learn(&maze, 3, WalkerView::Own, 0.2, 50_000, 11);
    let c = learn(&maze, 3, WalkerView::Own, 0.2, 50_000, 12);
    for k in 0..3 {
        assert_eq!(a.walkers[k].logits, b.walkers[k].logits);
        assert_eq!(a.walkers[k].prior, b.walkers[k].prior);
    }
    assert_ne!(a.walkers[0].logits, c.walkers[0].logits);
    // Learning in two stretches is learning in one.
    let mut d = WalkerTeam::new(
        &maze,
        WalkerLearning {
            agents: 3,
            view: WalkerView::Own,
            lambda: 0.2,
            ticks: 50_000,
            seed: 11,
            ..WalkerLearning::default()
        },
    )
    .unwrap();
    d.run(20_000);
    d.run(30_000);
    assert_eq!(a.walkers[2].logits, d.walkers[2].logits);
}

#[test]
fn tables_too_large_are_refused() {
    let maze = team_maze();
    let spec = WalkerLearning {
        agents: 8,
        view: WalkerView::Joint,
        ..WalkerLearning::default()
    };
    let err = WalkerTeam::new(&maze, spec).err().expect("13^8 rows must be refused");
    // The maze's free cells (everything but walls): 13.
    let cells = TEAM_MAP.chars().filter(|c| !matches!(c, '#' | '\n')).count();
    assert_eq!(cells, 13);
    // What is refused (walker 0's joint view: 8 walkers, 13^8 rows), the
    // limit, and the way out.
    for says in [
        "walker 0 sees 8 walker(s)".to_string(),
        format!("{cells} cells"),
        format!("{cells}^8 rows"),
        format!("allowed: at most {MAX_TABLE} entries"),
        "use view = \"own\"".to_string(),
    ] {
        assert!(err.contains(&says), "{err:?} should say {says:?}");
    }
}
