//! The toy's whole study through the library alone — no files written, no
//! command run: solve the network exactly, simulate the optimum on the
//! runtime, infer its reward from the recording, and predict how it adapts
//! to a larger coding cost, against the truth.
//!
//! Run with `cargo run --release --example toy_tour` (about a second).

use marlin::agents::{FullStatePolicy, Neuron};
use marlin::infer::{EdgeCounts, TabularOptions, count_table, invert_tabular, project_on_counts};
use marlin::record::{Recorder, state_index};
use marlin::runtime::{Layout, RunState, run};
use marlin::scenario::Scenario;
use marlin::solver::{SolveOptions, solve};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The scenario, as a network the exact solver takes.
    let scenario = Scenario::load(std::path::Path::new("scenarios/toy8.toml"))?;
    let net = scenario.network()?;
    let (n, inputs) = (net.n, net.input.len());

    // 1. Solve: the optimal policies at the scenario's λ.
    let sol = solve(&net, &SolveOptions::default())?;
    println!(
        "solve     g = {:.4}, ⟨r⟩ = {:.4}, information = {:.4} nats/tick",
        sol.eval.g, sol.eval.mean_reward, sol.eval.info_nats
    );

    // 2. Simulate: every neuron an agent holding its optimal policy.
    let ticks = 100_000;
    let runtime_net = scenario.runtime_network();
    let mut agents = Neuron::team(
        FullStatePolicy::per_neuron(n, &sol.policy.fire),
        &sol.prior,
        scenario.seed,
    );
    let mut record = Recorder::new((0..n).collect(), ticks);
    let (_, totals) = run(
        &runtime_net,
        &mut agents,
        Layout::single(),
        RunState::initial(&runtime_net, scenario.seed),
        ticks,
        &mut record,
    );
    println!("simulate  {ticks} ticks, ⟨r⟩ = {:.4}", totals.reward / ticks as f64);

    // 3. Infer: the reward, from the record alone (λ known).
    let x: Vec<usize> = record.x.iter().map(|&v| v as usize).collect();
    let sigma: Vec<usize> = record.spikes.chunks(n).map(state_index).collect();
    let counts = EdgeCounts::from_record(n, inputs, &x, &sigma, &record.actor);
    let options = TabularOptions {
        lambda: Some(net.lambda),
        ..TabularOptions::default()
    };
    let inferred = invert_tabular(&counts, &net.input.transition, &options)?;
    let by_count = project_on_counts(&inferred);
    for (xi, row) in by_count.iter().enumerate() {
        let best = (0..row.len())
            .filter(|&c| row[c].is_finite())
            .max_by(|&a, &b| row[a].total_cmp(&row[b]));
        println!(
            "infer     x = {:+}: the inferred reward peaks at {} active",
            net.input.values[xi],
            best.map_or("?".into(), |c| c.to_string())
        );
    }

    // 4. Predict: re-solve the inferred reward at λ = 1 and compare the
    // predicted spike-count distributions with the true optimum's there.
    let mut predicted_net = net.clone();
    predicted_net.reward = count_table(n, &by_count).0;
    predicted_net.lambda = 1.0;
    let mut true_net = net.clone();
    true_net.lambda = 1.0;
    let predicted = solve(&predicted_net, &SolveOptions::default())?;
    let truth = solve(&true_net, &SolveOptions::default())?;
    for (xi, (p, t)) in predicted
        .eval
        .count_distribution(&predicted_net)
        .iter()
        .zip(truth.eval.count_distribution(&true_net))
        .enumerate()
    {
        let tv: f64 = p.iter().zip(&t).map(|(a, b)| (a - b).abs()).sum::<f64>() / 2.0;
        println!(
            "predict   λ → 1, x = {:+}: total variation to the truth {tv:.4}",
            net.input.values[xi]
        );
    }
    Ok(())
}
