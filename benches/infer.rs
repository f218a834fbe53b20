//! Cost of maximum-likelihood inverse RL on the toy (scenarios/toy8.toml,
//! 18 (input, count) parameters), from the expected responses of its
//! optimal network over 10⁵ ticks:
//! - `likelihood/value_and_implicit_gradient`: one likelihood evaluation
//!   (an exact fixed-prior solve) plus the adjoint gradient;
//! - `likelihood/value_and_finite_differences`: the same with forward
//!   differences (one more solve per parameter), what partially observed,
//!   synchronous and random-partial models use;
//! - `likelihood/fit`: the whole L-BFGS fit from θ = 0.
//!
//! Each evaluation here starts cold (no warm start); inside a fit, solves
//! are warm-started from the previous point.

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use marlin::infer::likelihood::{
    Features, FitOptions, GradientMethod, Responses, fit, mean_log_likelihood_and_gradient,
};
use marlin::model::{CodingCost, Network};
use marlin::scenario::Scenario;
use marlin::solver::{SolveOptions, solve};
use std::hint::black_box;
use std::path::Path;

fn toy() -> (Network, Responses) {
    let net = Scenario::load(Path::new("scenarios/toy8.toml"))
        .unwrap()
        .network()
        .unwrap();
    let sol = solve(&net, &SolveOptions::default()).unwrap();
    let (n, states, ticks) = (net.n, net.states(), 1e5);
    let mut data = Responses::acting(n, 2, &[0], &[0], &[-1]);
    data.visits = sol.eval.rho.iter().map(|r| (r * ticks).round() as u64).collect();
    for s in 0..states {
        for k in 0..n {
            let t = sol.eval.rho[s] * ticks / n as f64;
            data.trials[s * n + k] = t;
            data.ones[s * n + k] = t * sol.policy.p(s, k);
        }
    }
    data.p_fire = sol.eval.p_fire.iter().map(|p| p.clamp(1e-6, 1.0 - 1e-6)).collect();
    let mut model = net;
    model.cost = CodingCost::FixedPrior(data.p_fire.clone());
    (model, data)
}

fn likelihood(c: &mut Criterion) {
    let (model, data) = toy();
    let features = Features::counts(8, 2);
    let theta: Vec<f64> = (0..18).map(|j| if j == 2 || j == 15 { 1.0 } else { 0.0 }).collect();
    let mut group = c.benchmark_group("likelihood");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.bench_function("value_and_implicit_gradient", |b| {
        b.iter(|| {
            black_box(
                mean_log_likelihood_and_gradient(&model, &data, &features, &theta, &FitOptions::default()).unwrap(),
            )
        })
    });
    let fd = FitOptions {
        gradient: GradientMethod::FiniteDifference,
        ..FitOptions::default()
    };
    group.bench_function("value_and_finite_differences", |b| {
        b.iter(|| black_box(mean_log_likelihood_and_gradient(&model, &data, &features, &theta, &fd).unwrap()))
    });
    group.bench_function("fit", |b| {
        b.iter(|| black_box(fit(&model, &data, &features, None, &FitOptions::default()).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, likelihood);
criterion_main!(benches);
