//! Acceptance measurements for the single maze (docs/mazes.md): inverse RL
//! from demonstrations against the true reward, a null row from uniformly
//! random demonstrations with the goal at several places, and predictions
//! of raised λ and moved walls.
//!
//! `cargo run --release --example maze_accuracy` (prints markdown tables;
//! the inference and null tables take about 15 minutes on 2 cores, the
//! prediction table longer: forecasts of λ = 1 from the maximum-likelihood
//! maps converge slowly).

use marlin::commands::maze::{demonstrated_information, estimate, forecast, score};
use marlin::infer::mdp::ActionCounts;
use marlin::maze::{ACTIONS, Maze};
use marlin::rng::{Domain, stream};
use marlin::scenario::{MazeScenario, World};
use marlin::solver::mdp::{self, ActionPrior};
use rand::Rng;
use std::path::Path;
use std::time::Instant;

const STEPS: usize = 50;
const SEEDS: u64 = 3;

/// Per method: (name, correlations, goal hits, goal ranks, mean seconds).
type Row = (String, Vec<f64>, usize, Vec<usize>, f64);

fn demonstrations(maze: &Maze, pi: &[f64], n: usize, seed: u64) -> ActionCounts {
    let world = maze.mdp();
    let mut c = ActionCounts::new(maze.states(), ACTIONS.len());
    for i in 0..n {
        let mut rng = stream(seed, Domain::Agent, i as u64);
        let start = maze.state_of[maze.starts[rng.random_range(0..maze.starts.len())]].unwrap();
        let (s, a) = mdp::sample(&world, pi, start, STEPS, &mut rng);
        c.add_trajectory(&s, &a);
    }
    c
}

fn load() -> MazeScenario {
    match World::load(Path::new("scenarios/maze.toml")).unwrap() {
        World::Maze(m) => *m,
        _ => unreachable!("scenarios/maze.toml is a maze"),
    }
}

/// The scenario's map with its goal moved to `cell`.
fn with_goal_at(sc: &MazeScenario, cell: usize) -> Maze {
    let mut rows: Vec<Vec<char>> = marlin::record::demos::map_rows(&sc.maze, &sc.goals)
        .iter()
        .map(|r| r.replace('G', ".").chars().collect())
        .collect();
    rows[cell / sc.maze.width][cell % sc.maze.width] = 'G';
    let text: Vec<String> = rows.iter().map(|r| r.iter().collect()).collect();
    Maze::parse(&text.join("\n"), &sc.goals, sc.maze.slip).unwrap()
}

fn main() {
    let sc = load();
    let maze = &sc.maze;
    println!(
        "## Inverse RL on scenarios/maze.toml ({} free cells), {STEPS}-step demonstrations, seeds 1–{SEEDS}\n",
        maze.states()
    );
    println!(
        "| λ | I(S;A) bits (demonstrator) | trajectories | I(S;A) bits (estimated) | method | correlation | argmax = goal | goal rank | seconds |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for lambda in [0.05, 0.2, 1.0] {
        let sol = mdp::solve(&maze.mdp(), lambda, &ActionPrior::Marginal, &sc.solver);
        let true_bits = sol.eval.info_nats / std::f64::consts::LN_2;
        for n in [10, 100, 1000] {
            let mut rows: Vec<Row> = Vec::new();
            let mut est_bits = 0.0;
            for seed in 1..=SEEDS {
                let counts = demonstrations(maze, &sol.pi, n, seed);
                est_bits += demonstrated_information(&counts).1 / SEEDS as f64;
                for (model, _, m) in estimate(maze, &counts, lambda, None) {
                    let row = match rows.iter_mut().find(|r| r.0 == model) {
                        Some(r) => r,
                        None => {
                            rows.push((model.to_string(), Vec::new(), 0, Vec::new(), 0.0));
                            rows.last_mut().unwrap()
                        }
                    };
                    row.1.push(m.correlation_with_truth.unwrap_or(f64::NAN));
                    row.2 += usize::from(m.argmax_is_goal);
                    row.3.push(m.goal_rank.unwrap_or(0));
                    row.4 += m.seconds / SEEDS as f64;
                }
            }
            for (model, corr, hits, ranks, secs) in rows {
                let mean = corr.iter().sum::<f64>() / corr.len() as f64;
                println!(
                    "| {lambda} | {true_bits:.3} | {n} | {est_bits:.3} | {model} | {mean:.3} ({}) | {hits}/{SEEDS} | {} | {secs:.2} |",
                    corr.iter().map(|c| format!("{c:.2}")).collect::<Vec<_>>().join(", "),
                    ranks.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", ")
                );
            }
        }
    }

    // Null: uniformly random moves, the goal at several places (the goal's
    // reset changes the dynamics, so each placement is its own record).
    println!("\n## Null: uniformly random demonstrations (λ unknown, rewards in units of λ), seeds 1–5\n");
    let uniform = vec![1.0 / ACTIONS.len() as f64; maze.states() * ACTIONS.len()];
    let walk = maze.mdp().evaluate(&uniform, 1.0, None, &sc.solver);
    let most_visited = (0..maze.states())
        .filter(|&s| !maze.is_goal(s))
        .max_by(|&a, &b| walk.rho[a].total_cmp(&walk.rho[b]))
        .unwrap();
    let least_visited = (0..maze.states())
        .filter(|&s| !maze.is_goal(s))
        .min_by(|&a, &b| walk.rho[a].total_cmp(&walk.rho[b]))
        .unwrap();
    let mut rng = stream(99, Domain::Environment, 0);
    let mut places = vec![
        ("the scenario's G".to_string(), maze.goals[0].0),
        ("most-visited cell".to_string(), maze.cells[most_visited]),
        ("least-visited cell".to_string(), maze.cells[least_visited]),
    ];
    for i in 0..3 {
        let s = rng.random_range(0..maze.states());
        places.push((format!("random cell {}", i + 1), maze.cells[s]));
    }
    println!(
        "| goal at | cell | trajectories | method | argmax = goal | mean goal rank when visited (of visited cells) |"
    );
    println!("|---|---|---|---|---|---|");
    for (label, cell) in &places {
        let m = with_goal_at(&sc, *cell);
        for n in [100, 1000] {
            let mut tally: Vec<(String, usize, f64, f64, usize)> = Vec::new();
            for seed in 1..=5 {
                let counts = demonstrations(&m, &uniform, n, seed);
                let visited: Vec<bool> = (0..m.states()).map(|s| counts.visits(s) > 0.0).collect();
                for (model, r, _) in estimate(&m, &counts, 1.0, None) {
                    if model == "ml_marginal" {
                        continue; // slow on flat records, and no different here
                    }
                    let (_, hit, rank, _) = score(&m, &r, &visited);
                    let cells = visited.iter().filter(|v| **v).count() as f64;
                    let t = match tally.iter_mut().find(|t| t.0 == model) {
                        Some(t) => t,
                        None => {
                            tally.push((model.to_string(), 0, 0.0, 0.0, 0));
                            tally.last_mut().unwrap()
                        }
                    };
                    t.1 += usize::from(hit);
                    if let Some(r) = rank {
                        t.2 += r as f64;
                        t.4 += 1;
                    }
                    t.3 += cells / 5.0;
                }
            }
            for (model, hits, rank, cells, seen) in tally {
                let rank = if seen > 0 {
                    format!("{:.1} of {cells:.0} ({seen}/5 visited)", rank / seen as f64)
                } else {
                    "never visited".into()
                };
                println!(
                    "| {label} | {:?} | {n} | {model} | {hits}/5 | {rank} |",
                    (cell / m.width, cell % m.width)
                );
            }
        }
    }

    // Predictions from λ = 0.2 demonstrations.
    println!(
        "\n## Predictions from demonstrations at λ = 0.2 (mean TV per state over the true visit density; seeds 1–{SEEDS})\n"
    );
    let walls = sc.read_map(Path::new("scenarios/maze_walls.txt")).unwrap();
    let sol = mdp::solve(&maze.mdp(), 0.2, &ActionPrior::Marginal, &sc.solver);
    println!(
        "| trajectories | method | perturbation | TV prediction | TV naive | baseline TV | goal rate truth / predicted / naive |"
    );
    println!("|---|---|---|---|---|---|---|");
    for n in [100, 1000] {
        let t0 = Instant::now();
        let mut acc: Vec<(String, String, [f64; 6])> = Vec::new();
        for seed in 1..=SEEDS {
            let counts = demonstrations(maze, &sol.pi, n, seed);
            for (model, r, _) in estimate(maze, &counts, 0.2, None) {
                if model == "ml_marginal" {
                    continue; // its λ = 1 forecast alone takes minutes (docs/mazes.md)
                }
                for (label, new, l) in [
                    ("lambda:0.05", maze, 0.05),
                    ("lambda:1.0", maze, 1.0),
                    ("walls:maze_walls.txt", &walls, 0.2),
                ] {
                    let f = forecast(maze, new, &r, 0.2, l, &ActionPrior::Marginal, &sc.solver);
                    let v = [
                        f.tv_pred_truth,
                        f.tv_naive_truth,
                        f.tv_baseline,
                        f.truth.eval.mean_reward,
                        f.goal_rate_pred,
                        f.goal_rate_naive,
                    ];
                    match acc.iter_mut().find(|a| a.0 == model && a.1 == label) {
                        Some(a) => a.2.iter_mut().zip(v).for_each(|(x, y)| *x += y / SEEDS as f64),
                        None => acc.push((model.to_string(), label.to_string(), v.map(|y| y / SEEDS as f64))),
                    }
                }
            }
        }
        for (model, label, v) in acc {
            println!(
                "| {n} | {model} | {label} | {:.4} | {:.4} | {:.4} | {:.4} / {:.4} / {:.4} |",
                v[0], v[1], v[2], v[3], v[4], v[5]
            );
        }
        eprintln!("predictions from {n} trajectories: {:.1} s", t0.elapsed().as_secs_f64());
    }
}
