//! Exact solve time on a toy-like task (targets n/4 and 3n/4, x switching
//! with probability 0.02, λ = 0.5, mutual-information cost).
//! - `solve_asynchronous`: one Blahut–Arimoto start (p = ½), the unit cost;
//!   n = 20 takes about a minute per solve, so it runs only with
//!   `MARLIN_BENCH_N20=1` (criterion needs 10 samples);
//! - `solve_asynchronous_default_starts`: the default multi-start search
//!   (8 starts at n ≤ 12), n = 8 only — larger sizes take tens of seconds
//!   per solve and are timed once with `marlin solve` (docs/performance.md);
//! - `solve_synchronous`: default options.

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use marlin::model::{CodingCost, InputProcess, Network, UpdateScheme, rewards};
use marlin::solver::{SolveOptions, solve};
use std::hint::black_box;
use std::time::Duration;

fn toy_like(n: usize, update: UpdateScheme) -> Network {
    Network {
        n,
        alive: vec![true; n],
        input: InputProcess::switching(vec![-1.0, 1.0], 0.02),
        reward: rewards::target_count(n, &[n / 4, 3 * n / 4], 1.0),
        lambda: 0.5,
        cost: CodingCost::MutualInformation,
        update,
        observes: None,
    }
}

fn asynchronous(c: &mut Criterion) {
    let mut group = c.benchmark_group("solve_asynchronous");
    // Flat sampling: every sample runs the same number of solves (slow ones once).
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    let mut sizes = vec![8, 12, 16];
    if std::env::var("MARLIN_BENCH_N20").is_ok() {
        sizes.push(20);
    }
    for n in sizes {
        let net = toy_like(n, UpdateScheme::Asynchronous);
        group.measurement_time(Duration::from_secs(if n >= 16 { 30 } else { 5 }));
        let one = SolveOptions {
            starts: Some(1),
            ..SolveOptions::default()
        };
        group.bench_function(format!("n={n}"), |b| {
            b.iter(|| black_box(solve(&net, &one).unwrap().eval.g))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("solve_asynchronous_default_starts");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    let net = toy_like(8, UpdateScheme::Asynchronous);
    group.bench_function("n=8", |b| {
        b.iter(|| black_box(solve(&net, &SolveOptions::default()).unwrap().eval.g))
    });
    group.finish();
}

fn synchronous(c: &mut Criterion) {
    let mut group = c.benchmark_group("solve_synchronous");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for n in [4, 6, 8] {
        let net = toy_like(n, UpdateScheme::Synchronous);
        group.bench_function(format!("n={n}"), |b| {
            b.iter(|| black_box(solve(&net, &SolveOptions::default()).unwrap().eval.g))
        });
    }
    group.finish();
}

criterion_group!(benches, asynchronous, synchronous);
criterion_main!(benches);
