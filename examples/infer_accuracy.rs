//! Inverse-RL accuracy against data size on the paper's toy: simulate the
//! exact optimal policy for T ticks (three seeds each), infer the reward by
//! tabular inversion and by maximum likelihood of the (input, count) model,
//! each with λ known and unknown, and report the centred correlation with
//! the true reward, the slope of inferred on true reward (the scale: 1 with
//! λ known, 1/λ = 2 without it) and where the count reward peaks. Writes
//! docs/toy8_infer_vs_ticks.svg and docs/toy8_infer_scale.svg.
//!
//! `cargo run --release --example infer_accuracy`

use marlin::agents::{FullStatePolicy, Neuron};
use marlin::infer::likelihood::{Features, FitOptions, Responses, fit};
use marlin::infer::{EdgeCounts, TabularOptions, argmax_count, centred_correlation, invert_tabular, project_on_counts};
use marlin::model::CodingCost;
use marlin::record::Recorder;
use marlin::runtime::{Layout, RunState, run};
use marlin::scenario::Scenario;
use marlin::solver::{SolveOptions, solve};
use std::path::Path;

/// Least-squares slope of `a` on `b` over `mask`, each input's mean removed.
fn slope(a: &[f64], b: &[f64], mask: impl Fn(usize) -> bool) -> f64 {
    let (mut sab, mut sbb) = (0.0, 0.0);
    for x in 0..2 {
        let idx: Vec<usize> = (x * 256..(x + 1) * 256)
            .filter(|&s| mask(s) && a[s].is_finite())
            .collect();
        let ma = idx.iter().map(|&s| a[s]).sum::<f64>() / idx.len().max(1) as f64;
        let mb = idx.iter().map(|&s| b[s]).sum::<f64>() / idx.len().max(1) as f64;
        for &s in &idx {
            sab += (a[s] - ma) * (b[s] - mb);
            sbb += (b[s] - mb) * (b[s] - mb);
        }
    }
    sab / sbb
}

fn main() {
    let sc = Scenario::load(Path::new("scenarios/toy8.toml")).expect("run from the repository root");
    let model = sc.network().unwrap();
    let sol = solve(&model, &SolveOptions::default()).unwrap();
    let net = sc.runtime_network();
    let min_visits = TabularOptions::default().min_visits;
    let methods = [
        "tabular, λ known",
        "tabular, λ unknown",
        "ML count, λ known",
        "ML count, λ unknown",
    ];
    let sizes = [1_000u64, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000];
    // [method][size] → per-seed (correlation, slope)
    let mut results = vec![vec![Vec::new(); sizes.len()]; methods.len()];
    println!("ticks     seed  method               correlation  slope    argmax(count | x)  scored  time");
    for (si, &ticks) in sizes.iter().enumerate() {
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
            let data = Responses::acting(8, 2, &x, &sigma, &rec.actor);
            let mask = |s: usize| counts.visits[s] >= min_visits;
            for (mi, method) in methods.iter().enumerate() {
                let lambda = (mi % 2 == 0).then_some(0.5);
                let t = std::time::Instant::now();
                let (r, by_count) = if mi < 2 {
                    let inv = invert_tabular(
                        &counts,
                        &model.input.transition,
                        &TabularOptions {
                            lambda,
                            ..TabularOptions::default()
                        },
                    )
                    .unwrap();
                    let by_count = project_on_counts(&inv);
                    (inv.r, by_count)
                } else {
                    let mut m = model.clone();
                    m.lambda = lambda.unwrap_or(1.0);
                    m.cost = CodingCost::FixedPrior(data.p_fire.clone());
                    let features = Features::counts(8, 2);
                    let f = fit(&m, &data, &features, None, &FitOptions::default()).unwrap();
                    let by_count = (0..2).map(|x| f.theta[x * 9..(x + 1) * 9].to_vec()).collect();
                    (f.reward, by_count)
                };
                let dt = t.elapsed();
                let corr = centred_correlation(&r, &model.reward, 8, 2, mask);
                // States the correlation runs over (tabular: identified ones only).
                let scored = (0..512).filter(|&s| mask(s) && r[s].is_finite()).count();
                let k = slope(&r, &model.reward, mask);
                results[mi][si].push((corr, k));
                let shown = if corr.is_finite() {
                    format!("{corr:.4}")
                } else {
                    "n/a".into()
                };
                println!(
                    "{ticks:<9} {seed:<5} {method:<20} {shown:<12} {k:<8.3} {:<18} {scored:<7} {dt:.2?}",
                    format!("{:?}", argmax_count(&by_count))
                );
            }
        }
    }
    // Mean over seeds (seeds with an undefined correlation left out).
    let series = |what: usize| -> Vec<(String, Vec<(f64, f64)>)> {
        methods
            .iter()
            .enumerate()
            .map(|(mi, m)| {
                let pts = sizes
                    .iter()
                    .enumerate()
                    .filter_map(|(si, &t)| {
                        let v: Vec<f64> = results[mi][si]
                            .iter()
                            .map(|p| if what == 0 { p.0 } else { p.1 })
                            .filter(|v| v.is_finite())
                            .collect();
                        (!v.is_empty()).then(|| (t as f64, v.iter().sum::<f64>() / v.len() as f64))
                    })
                    .collect();
                (m.to_string(), pts)
            })
            .collect()
    };
    let svg = marlin::report::lines_log_x(
        "toy8: inferred vs true reward against data size (mean of 3 seeds)",
        "recorded ticks (log scale)",
        "centred correlation with the true reward",
        &series(0),
        Some((1.0, "perfect")),
    )
    .unwrap();
    std::fs::write("docs/toy8_infer_vs_ticks.svg", svg).unwrap();
    let svg = marlin::report::lines_log_x(
        "toy8: scale of the inferred reward (slope on the true reward)",
        "recorded ticks (log scale)",
        "slope (1: reward units; 2 = 1/λ: units of λ)",
        &series(1),
        Some((1.0, "λ known: 1")),
    )
    .unwrap();
    std::fs::write("docs/toy8_infer_scale.svg", svg).unwrap();
    println!("wrote docs/toy8_infer_vs_ticks.svg and docs/toy8_infer_scale.svg");
}
