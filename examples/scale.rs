//! The scale issue's benchmark network on the sparse engine, measured once:
//! topology build time, memory, and neuron-updates per second.
//!
//! `cargo run --release --example scale -- N UPDATE THREADS TICKS [learn]`
//! (UPDATE: synchronous, random_partial:Q, asynchronous; the environment
//! variable `SHARDS=S` runs S shards on the THREADS threads instead of one
//! per thread, fixed neurons only). Built with
//! `--features mpi` and started by `mpirun -np R`, every rank runs its block
//! of neurons and rank 0 prints (its own peak resident size).
use marlin::learn::{Critic, CriticKind, Rule, Teacher, TeacherConfig};
use marlin::model::UpdateScheme;
use marlin::runtime::learners::LogisticTeam;
use marlin::runtime::sparse::{LogisticNeurons, SparseEngine, benchmark_network};
use marlin::runtime::transport::{Ranks, rank_neurons};
use marlin::runtime::{Layout, NoObserver, RunState, RuntimeNetwork};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(10_000, |s| s.parse().unwrap());
    let update = match args.get(2).map_or("synchronous", |s| s.as_str()) {
        "asynchronous" => UpdateScheme::Asynchronous,
        "synchronous" => UpdateScheme::Synchronous,
        s => UpdateScheme::RandomPartial {
            q: s.trim_start_matches("random_partial:").parse().unwrap(),
        },
    };
    let threads: usize = args.get(3).map_or(1, |s| s.parse().unwrap());
    let ticks: u64 = args.get(4).map_or(100, |s| s.parse().unwrap());
    #[cfg(feature = "mpi")]
    let world = marlin::runtime::mpi::MpiWorld::from_launcher().unwrap();
    #[cfg(feature = "mpi")]
    let ranks = world.as_ref().map(|w| w as &Ranks).filter(|r| r.size() > 1);
    #[cfg(not(feature = "mpi"))]
    let ranks: Option<&Ranks> = None;
    let t0 = Instant::now();
    let (net, ln) = benchmark_network(n, update, 1);
    let build = t0.elapsed().as_secs_f64();
    if args.get(5).is_some_and(|a| a == "learn") {
        return learn(&net, &ln, update, threads, ticks, build, ranks);
    }
    let t1 = Instant::now();
    let layout = match std::env::var("SHARDS") {
        Ok(s) => Layout {
            shards: s.parse().expect("SHARDS is a number of shards"),
            threads,
        },
        Err(_) => Layout::threads(threads),
    };
    let mut engine = SparseEngine::new_on(&net, &ln, layout, 1, ranks).unwrap();
    let setup = t1.elapsed().as_secs_f64();
    let (state, _) = engine.run(RunState::initial(&net, 1), ticks / 10 + 1, &mut NoObserver);
    let t2 = Instant::now();
    let (_, totals) = engine.run(state, ticks, &mut NoObserver);
    let secs = t2.elapsed().as_secs_f64();
    let updates = updates(update, ticks, n);
    let activity = totals.spikes as f64 / (ticks as f64 * n as f64);
    // Per synapse: its id in the topology (CSR by target) and in the push
    // table (CSR by source, one shard when asynchronous); per-source
    // weights add nothing per synapse.
    let synapses = net.topology.pre.len() as u64;
    let total = net.topology.bytes() + ln.bytes() + engine.bytes();
    let per_synapse = 8;
    let per_neuron = (total - synapses * per_synapse) as f64 / n as f64;
    let peak = peak_mib();
    if ranks.is_some_and(|r| r.rank() > 0) {
        return;
    }
    println!(
        "N {n} {update:?} threads {threads}{}: topology {build:.2} s, engine {setup:.2} s, {:.3e} neuron-updates/s, \
         {:.3e} synaptic events/s, activity {activity:.3}; tables {:.1} MiB = {per_neuron:.1} B/neuron + \
         {per_synapse} B/synapse; peak RSS {peak:.0} MiB",
        on_ranks(ranks),
        updates / secs,
        updates * activity * 100.0 / secs,
        total as f64 / (1 << 20) as f64,
    );
}

/// Peak resident size of this process, MiB.
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The same network learning (actor–critic, count critic, λ = 0.1 against
/// the fixed prior 0.27, η = 0.02): every neuron a logistic learner with one
/// weight per synapse, starting from the benchmark's weights.
fn learn(
    net: &RuntimeNetwork,
    ln: &LogisticNeurons,
    update: UpdateScheme,
    threads: usize,
    ticks: u64,
    build: f64,
    ranks: Option<&Ranks>,
) {
    let n = net.n;
    let t1 = Instant::now();
    let block = ranks.map_or(0..n, |r| rank_neurons(n, r.rank(), r.size()));
    let mut team = LogisticTeam::from_neurons(net, ln, 1, block, 0.0).unwrap();
    let setup = t1.elapsed().as_secs_f64();
    let mut state = RunState::initial(net, 1);
    state.teacher = Some(Teacher::new(
        TeacherConfig {
            rule: Rule::ActorCritic,
            lambda: 0.1,
            own_cost: false,
            rate: 0.02,
            decay_ticks: None,
            baseline_rate: 1e-3,
            critic_rate: 0.1,
        },
        Some(Critic::new(CriticKind::Counts, n, 1)),
    ));
    let layout = Layout::threads(threads);
    let (state, _) = team
        .run(net, layout, state, ticks / 10 + 1, &mut NoObserver, ranks)
        .unwrap();
    let t2 = Instant::now();
    let (_, totals) = team.run(net, layout, state, ticks, &mut NoObserver, ranks).unwrap();
    let secs = t2.elapsed().as_secs_f64();
    let updates = updates(update, ticks, n);
    let activity = totals.spikes as f64 / (ticks as f64 * n as f64);
    let bytes = net.topology.bytes() + team.bytes();
    if ranks.is_some_and(|r| r.rank() > 0) {
        return;
    }
    println!(
        "N {n} {update:?} threads {threads}{}, learning: topology {build:.2} s, learners {setup:.2} s, \
         {:.3e} neuron-updates/s, {:.3e} synaptic events/s, activity {activity:.3}; {:.1} MiB of topology and \
         learners; peak RSS {:.0} MiB",
        on_ranks(ranks),
        updates / secs,
        updates * activity * 100.0 / secs,
        bytes as f64 / (1 << 20) as f64,
        peak_mib(),
    );
}

/// ", R MPI ranks" under MPI.
fn on_ranks(ranks: Option<&Ranks>) -> String {
    ranks.map_or(String::new(), |r| format!(", {} MPI ranks", r.size()))
}

/// Neuron-updates in `ticks` ticks of `n` neurons (expected, for random-partial).
fn updates(update: UpdateScheme, ticks: u64, n: usize) -> f64 {
    match update {
        UpdateScheme::Asynchronous => ticks as f64,
        UpdateScheme::Synchronous => (ticks * n as u64) as f64,
        UpdateScheme::RandomPartial { q } => q * (ticks * n as u64) as f64,
    }
}
