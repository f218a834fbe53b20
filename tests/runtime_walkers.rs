//! Maze walkers as actors of the runtime: the same numbers as the plain
//! loop (`WalkerTeam::run`) bit for bit — cells, moves, rewards, learned
//! tables, marginals, critic — for every view, with slips, whatever the
//! shards, threads or ranks; walkers that follow the exact team optimum
//! behave as the solver says; runs resume span by span.

use marlin::learn::walkers::{WalkerLearning, WalkerTeam, WalkerView};
use marlin::maze::{ACTIONS, Maze, TeamGoal};
use marlin::runtime::Layout;
use marlin::runtime::transport::Ranks;
use marlin::runtime::walkers::{self, WalkerTick};
use marlin::solver::SolveOptions;
use marlin::solver::mdp::ActionPrior;
use marlin::solver::team;
use marlin::topology::{Topology, TopologySpec};

mod ranks;
use ranks::on_ranks;

fn maze(slip: f64) -> Maze {
    Maze::parse("#######\n#S..#G#\n#.#...#\n#S...G#\n#######", &[('G', 1.0)], slip).unwrap()
}

fn spec(agents: usize, view: WalkerView, goal: TeamGoal, seed: u64) -> WalkerLearning {
    WalkerLearning {
        agents,
        view,
        topology: (view == WalkerView::Topology).then(|| Topology::build(&TopologySpec::Ring { k: 1 }, agents, seed)),
        goal,
        lambda: 0.2,
        seed,
        ..WalkerLearning::default()
    }
}

/// Everything observable about a run: per tick (cells, moves, reward).
type Log = Vec<(Vec<usize>, Vec<usize>, f64)>;

fn plain(team: &mut WalkerTeam, ticks: u64) -> Log {
    let mut log = Log::new();
    team.run_recorded(ticks, &mut |_, c, a, r| log.push((c.to_vec(), a.to_vec(), r)));
    log
}

fn actors(team: &mut WalkerTeam, layout: Layout, ticks: u64, ranks: Option<&Ranks>) -> Log {
    let mut log = Log::new();
    let mut obs = |t: &WalkerTick| log.push((t.cells.to_vec(), t.actions.to_vec(), t.reward));
    walkers::run(team, layout, ticks, &mut obs, ranks).unwrap();
    log
}

fn same_team(a: &WalkerTeam, b: &WalkerTeam) {
    assert_eq!(a.tick, b.tick);
    assert_eq!(a.cells, b.cells);
    assert_eq!(a.teacher, b.teacher);
    for (x, y) in a.walkers.iter().zip(&b.walkers) {
        assert!(x == y, "walkers differ");
    }
}

#[test]
fn walker_actors_are_the_plain_loop_bit_for_bit_on_any_layout() {
    let m = maze(0.1);
    let cases = [
        (2, WalkerView::Joint, TeamGoal::AllOnGoals),
        (3, WalkerView::Own, TeamGoal::AllOnGoals),
        (3, WalkerView::Topology, TeamGoal::Meet),
    ];
    for (agents, view, goal) in cases {
        let mut reference = WalkerTeam::new(&m, spec(agents, view, goal, 3)).unwrap();
        let want = plain(&mut reference, 4000);
        assert!(
            want.iter().any(|t| t.2 > 0.0),
            "{view:?}: the team is rewarded at least once"
        );
        let layouts = [
            Layout::single(),
            Layout { shards: 2, threads: 1 },
            Layout::threads(2),
            Layout { shards: 5, threads: 3 },
        ];
        for layout in layouts {
            let mut team = WalkerTeam::new(&m, spec(agents, view, goal, 3)).unwrap();
            let got = actors(&mut team, layout, 4000, None);
            assert!(got == want, "{view:?} {layout:?}: trajectories differ");
            same_team(&team, &reference);
        }
    }
}

#[test]
fn ranks_run_their_walkers_and_agree_with_one_process() {
    let m = maze(0.05);
    for size in [2, 3] {
        let mut reference = WalkerTeam::new(&m, spec(4, WalkerView::Own, TeamGoal::AllOnGoals, 9)).unwrap();
        let want = plain(&mut reference, 3000);
        let runs = on_ranks(size, |r| {
            let mut team = WalkerTeam::new(&m, spec(4, WalkerView::Own, TeamGoal::AllOnGoals, 9)).unwrap();
            let log = actors(&mut team, Layout::threads(2), 3000, Some(r as &Ranks));
            (log, team.cells.clone(), team.teacher.clone(), team.walkers.clone())
        });
        for (rank, (log, cells, teacher, learned)) in runs.into_iter().enumerate() {
            assert!(log == want, "rank {rank} of {size} saw another trajectory");
            assert_eq!(cells, reference.cells);
            assert_eq!(teacher, reference.teacher);
            // Each rank advanced its own block of walkers.
            for k in walkers::rank_walkers(4, rank, size) {
                assert!(learned[k] == reference.walkers[k], "rank {rank}: walker {k}");
            }
        }
    }
    assert!(walkers::check_ranks(4, 5).unwrap_err().contains("at most 4"));
}

#[test]
fn spans_resume_where_the_last_one_stopped() {
    let m = maze(0.0);
    let mut whole = WalkerTeam::new(&m, spec(3, WalkerView::Topology, TeamGoal::AllOnGoals, 5)).unwrap();
    let want = actors(&mut whole, Layout::threads(2), 5000, None);
    let mut parts = WalkerTeam::new(&m, spec(3, WalkerView::Topology, TeamGoal::AllOnGoals, 5)).unwrap();
    let mut got = actors(&mut parts, Layout::single(), 1234, None);
    got.extend(actors(&mut parts, Layout::threads(2), 5000 - 1234, None));
    assert!(got == want);
    same_team(&parts, &whole);
}

/// Walkers following the exact team optimum: how often the team is
/// rewarded and how often each walker takes each move match the solver's
/// stationary numbers (a long run, bounds of a few standard errors).
#[test]
fn walkers_following_the_optimum_do_what_the_solver_says() {
    let m = maze(0.0);
    let world = m.team(2, TeamGoal::AllOnGoals).unwrap();
    let sol = team::solve(&world, 0.2, &ActionPrior::Marginal, &SolveOptions::default());
    let mut demo = WalkerTeam::following(
        &m,
        spec(2, WalkerView::Joint, TeamGoal::AllOnGoals, 2),
        &sol.pi,
        &sol.priors,
    )
    .unwrap();
    let ticks = 400_000u64;
    let mut moves = vec![vec![0.0; ACTIONS.len()]; 2];
    let mut rewarded = 0.0;
    let mut obs = |t: &WalkerTick| {
        rewarded += t.reward;
        for k in 0..2 {
            moves[k][t.actions[k]] += 1.0;
        }
    };
    let st = walkers::run(&mut demo, Layout::single(), ticks, &mut obs, None).unwrap();
    let rate = rewarded / ticks as f64;
    assert!((st.mean_reward - rate).abs() < 1e-12);
    // Rewards come in renewal cycles of ≈ 1/rate steps: allow 5 % relative.
    assert!(
        (rate - sol.eval.mean_reward).abs() < 0.05 * sol.eval.mean_reward,
        "team reward rate {rate} vs the solver's {}",
        sol.eval.mean_reward
    );
    for (k, counted) in moves.iter().enumerate() {
        for (a, n) in counted.iter().enumerate() {
            let f = n / ticks as f64;
            assert!(
                (f - sol.eval.marginals[k][a]).abs() < 0.01,
                "walker {k}, move {a}: {f} vs {}",
                sol.eval.marginals[k][a]
            );
        }
    }
    // Following walkers do not learn.
    assert!(demo.teacher.is_none());
    let bad = WalkerTeam::following(
        &m,
        spec(2, WalkerView::Joint, TeamGoal::AllOnGoals, 2),
        &sol.pi[1..],
        &sol.priors,
    );
    assert!(bad.err().unwrap().contains("team policy"));
}

#[test]
fn topology_views_are_checked() {
    let m = maze(0.0);
    let mut s = spec(3, WalkerView::Topology, TeamGoal::AllOnGoals, 1);
    s.topology = None;
    assert!(WalkerTeam::new(&m, s).err().unwrap().contains("needs a topology"));
    let mut s = spec(3, WalkerView::Topology, TeamGoal::AllOnGoals, 1);
    s.topology = Some(Topology::build(&TopologySpec::Ring { k: 1 }, 4, 1));
    assert!(WalkerTeam::new(&m, s).err().unwrap().contains("4 agents for 3 walkers"));
    // A walker seeing 7 others in a 13-cell maze needs 13⁸ rows.
    let mut s = spec(8, WalkerView::Topology, TeamGoal::AllOnGoals, 1);
    s.topology = Some(Topology::build(&TopologySpec::AllToAll, 8, 1));
    let e = WalkerTeam::new(&m, s).err().unwrap();
    assert!(e.contains("sparser topology"), "{e}");
}
