//! Using marlin as a library: build the paper's toy network in code, solve it
//! exactly, and print the optimal spike-count distributions.
//!
//! Run with `cargo run --release --example solve_toy [n]` (default n = 8).

use marlin::model::{CodingCost, InputProcess, Network, UpdateScheme, rewards};
use marlin::solver::{SolveOptions, solve};

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(8);
    let targets = if n == 8 { vec![2, 6] } else { vec![n / 4, 3 * n / 4] };
    let net = Network {
        n,
        alive: vec![true; n],
        input: InputProcess::switching(vec![-1.0, 1.0], 0.02),
        reward: rewards::target_count(n, &targets, 1.0),
        lambda: 0.5,
        cost: CodingCost::MutualInformation,
        update: UpdateScheme::Asynchronous,
        observes: None,
    };
    let t = std::time::Instant::now();
    let sol = solve(&net, &SolveOptions::default()).expect("solvable");
    println!(
        "n = {n}: g = {:.6}, ⟨r⟩ = {:.6}, information = {:.6} nats/tick, converged = {} ({} Blahut–Arimoto iterations, {:.2?})",
        sol.eval.g,
        sol.eval.mean_reward,
        sol.eval.info_nats,
        sol.converged,
        sol.iterations,
        t.elapsed()
    );
    for (x, d) in sol.eval.count_distribution(&net).iter().enumerate() {
        let row: Vec<String> = d.iter().map(|p| format!("{p:.3}")).collect();
        println!("P(count | x = {:+}) = [{}]", net.input.values[x], row.join(", "));
    }
}
