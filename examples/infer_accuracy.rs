//! Inverse-RL accuracy against data size on the paper's toy: simulate the
//! exact optimal policy for T ticks (three seeds each), invert the record
//! with λ known, and print the centred correlation with the true reward and
//! where the (input, count) projection peaks.
//!
//! `cargo run --release --example infer_accuracy`

use marlin::agents::{FullStatePolicy, Neuron};
use marlin::infer::{EdgeCounts, TabularOptions, centred_correlation, invert_tabular, project_on_counts};
use marlin::record::Recorder;
use marlin::runtime::{Layout, RunState, run};
use marlin::scenario::Scenario;
use marlin::solver::{SolveOptions, solve};
use std::path::Path;

fn main() {
    let sc = Scenario::load(Path::new("scenarios/toy8.toml")).expect("run from the repository root");
    let model = sc.network().unwrap();
    let sol = solve(&model, &SolveOptions::default()).unwrap();
    let net = sc.runtime_network();
    println!("ticks     seed  correlation  argmax(count | x)  visited  identified  inversion");
    for ticks in [1_000u64, 10_000, 100_000, 1_000_000] {
        for seed in [1u64, 2, 3] {
            let mut agents = Neuron::team(FullStatePolicy::per_neuron(8, &sol.policy.fire), &sol.prior, seed);
            let mut rec = Recorder::new((0..8).collect(), ticks);
            run(
                &net,
                &mut agents,
                Layout::single(),
                RunState::initial(&net, seed),
                ticks,
                &mut rec,
            );
            let x: Vec<usize> = rec.x.iter().map(|&v| v as usize).collect();
            let sigma: Vec<usize> = rec.spikes.chunks(8).map(marlin::record::state_index).collect();
            let counts = EdgeCounts::from_record(8, 2, &x, &sigma, &rec.actor);
            let t = std::time::Instant::now();
            let inv = invert_tabular(
                &counts,
                &model.input.transition,
                &TabularOptions {
                    lambda: Some(0.5),
                    ..TabularOptions::default()
                },
            )
            .unwrap();
            let dt = t.elapsed();
            let corr = centred_correlation(&inv.r, &model.reward, 8, 2, |s| counts.visits[s] > 0);
            let by_count = project_on_counts(&inv);
            let argmax: Vec<usize> = (0..2)
                .map(|x| {
                    (0..=8)
                        .filter(|&c| by_count[x][c].is_finite())
                        .max_by(|&a, &b| by_count[x][a].total_cmp(&by_count[x][b]))
                        .unwrap()
                })
                .collect();
            let visited = counts.visits.iter().filter(|&&v| v > 0).count();
            // r(s) needs W at all n neighbours of s: with little data few
            // visited states are identified, and the correlation may be
            // undefined (all identified states share one true reward).
            let identified = (0..512)
                .filter(|&s| counts.visits[s] > 0 && inv.r[s].is_finite())
                .count();
            let argmax = format!("{argmax:?}");
            let corr = if corr.is_finite() {
                format!("{corr:.4}")
            } else {
                "n/a".into()
            };
            println!("{ticks:<9} {seed:<5} {corr:<12} {argmax:<18} {visited:<8} {identified:<11} {dt:.2?}");
        }
    }
}
