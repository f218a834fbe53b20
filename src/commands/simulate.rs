//! `marlin simulate`: run a scenario's network on the actor runtime with
//! given policies (the exact solver's, or untrained) and record a trajectory.

use super::BadInput;
use crate::agents::{ConstantPolicy, FullStatePolicy, Neuron, Policy};
use crate::record::stream::{Finish, RecorderActor, SpikeForm, StreamingObserver};
use crate::record::{FORMAT, FORMAT_VERSION, TrajectoryMeta};
use crate::runtime::sparse::SparseEngine;
use crate::runtime::transport::Ranks;
use crate::runtime::{Engine, Layout, NoObserver, Observer, RunState, RunTotals, RuntimeNetwork, run_on};
use crate::scenario::Scenario;
use actix::Actor;
use anyhow::{Context, Result};
use ndarray::{Array1, Array3};
use ndarray_npy::NpzReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

#[derive(Clone, Debug)]
pub struct SimulateArgs {
    pub scenario: PathBuf,
    /// policy.npz written by `marlin solve`.
    pub policy: Option<PathBuf>,
    /// State-blind neurons at their prior. Without it and without a policy,
    /// the scenario's `[neurons]` run on the sparse engine.
    pub untrained: bool,
    pub ticks: u64,
    pub shards: Option<usize>,
    pub threads: Option<usize>,
    pub record_neurons: Option<Vec<usize>>,
    pub form: SpikeForm,
    pub out: Option<PathBuf>,
    pub quiet: bool,
    /// `Some(k)`: run on the actor engine with k agents per shard actor
    /// (1 = one actor per neuron); `None`: the barrier engine (fast).
    pub actors: Option<usize>,
}

/// Ticks per recorded chunk handed to the writer actor.
pub const CHUNK_TICKS: usize = 1 << 16;

/// What a simulation did.
#[derive(Clone, Debug)]
pub struct SimulateReport {
    pub totals: RunTotals,
    pub out: PathBuf,
    pub seconds: f64,
}

/// Per-neuron full-state policies and priors from a solver `policy.npz`.
pub fn load_policy(path: &Path, n: usize, inputs: usize) -> Result<(Vec<FullStatePolicy>, Vec<f64>), BadInput> {
    let bad = |m: String| BadInput(format!("{}: {m}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
    let mut npz = NpzReader::new(file).map_err(|e| bad(format!("not a readable .npz archive ({e})")))?;
    let p: Array3<f64> = npz
        .by_name("p_fire")
        .map_err(|e| bad(format!("no float64 array `p_fire` of shape [X, 2^n, n] ({e})")))?;
    let c = 1usize << n;
    if p.shape() != [inputs, c, n] {
        return Err(bad(format!(
            "`p_fire` has shape {:?}; the scenario needs [{inputs}, {c}, {n}] (input values, 2^n states, neurons)",
            p.shape()
        )));
    }
    if let Some(v) = p.iter().find(|v| !(v.is_finite() && (0.0..=1.0).contains(*v))) {
        return Err(bad(format!("`p_fire` contains {v}; allowed: probabilities in [0, 1]")));
    }
    let prior: Array1<f64> = npz
        .by_name("prior")
        .map_err(|e| bad(format!("no float64 array `prior` of shape [n] ({e})")))?;
    if prior.len() != n {
        return Err(bad(format!("`prior` has {} entries; allowed: {n}", prior.len())));
    }
    let fire: Vec<f64> = p.iter().copied().collect();
    let policies = FullStatePolicy::per_neuron(n, &fire);
    Ok((policies, prior.to_vec()))
}

pub fn run_simulate(args: &SimulateArgs) -> Result<SimulateReport> {
    run_simulate_on(args, None)
}

/// [`run_simulate`] as one rank of an MPI job (`ranks`): every rank runs its
/// block of neurons and follows the whole run; rank 0 alone writes the
/// trajectory (the others write nothing and report the same totals).
pub fn run_simulate_on(args: &SimulateArgs, ranks: Option<&Ranks>) -> Result<SimulateReport> {
    let ranks = ranks.filter(|r| r.size() > 1);
    let writes = ranks.is_none_or(|r| r.rank() == 0);
    let scenario = Scenario::load(&args.scenario).map_err(BadInput::from)?;
    check_memory(&scenario, args)?;
    let t_build = std::time::Instant::now();
    let net = scenario.runtime_network();
    tracing::info!(
        "topology: {} synapses in {:.2} s",
        net.topology.edges(),
        t_build.elapsed().as_secs_f64()
    );
    let n = net.n;
    if let Some(r) = ranks {
        crate::runtime::transport::check_ranks(n, r.size())
            .map_err(|e| BadInput(format!("{}: {e}", args.scenario.display())))?;
    }
    if args.ticks == 0 {
        return Err(BadInput("--ticks must be at least 1".into()).into());
    }
    let record: Vec<usize> = match &args.record_neurons {
        Some(list) => {
            if let Some(k) = list.iter().find(|&&k| k >= n) {
                return Err(BadInput(format!(
                    "--record-neurons: neuron {k} is out of range; allowed: 0 to {}",
                    n - 1
                ))
                .into());
            }
            list.clone()
        }
        None => (0..n).collect(),
    };
    let layout = Layout::for_network(n, args.shards, args.threads);
    let out = args.out.clone().unwrap_or_else(|| scenario.output.join("simulate"));
    let t0 = std::time::Instant::now();
    // Validate everything (the policy file included) before writing anything.
    if ranks.is_some() && args.actors.is_some() {
        return Err(BadInput(
            "--actors runs the actor engine in one process; under MPI the ranks run the barrier engine: drop --actors"
                .into(),
        )
        .into());
    }
    let mut logistic = None;
    let (agents, policy_name) = match &args.policy {
        None if !args.untrained => {
            let Some(ln) = scenario.logistic_neurons(&net) else {
                return Err(BadInput(format!(
                    "{}: simulate needs --policy POLICY.npz (from `marlin solve`) or --untrained, since the \
                     scenario fixes no [neurons]",
                    args.scenario.display()
                ))
                .into());
            };
            if args.actors.is_some() {
                return Err(BadInput(
                    "--actors runs agents that answer one observation at a time; a scenario's fixed [neurons] \
                     run on the sparse engine: drop --actors (or pass --untrained)"
                        .into(),
                )
                .into());
            }
            logistic = Some(ln);
            (Agents::Logistic, "logistic [neurons] of the scenario".to_string())
        }
        Some(path) => {
            // The table is over the full state; for partially observed
            // networks the solver's policies are constant over what a neuron
            // does not see, so reading the full state changes nothing.
            if n > crate::model::MAX_TABULAR_NEURONS {
                return Err(BadInput(format!(
                    "--policy with a solver policy.npz needs a network of at most {} neurons",
                    crate::model::MAX_TABULAR_NEURONS
                ))
                .into());
            }
            let (policies, prior) = load_policy(path, n, net.input.len())?;
            (
                Agents::Solver(make_agents(&scenario, policies, &prior)),
                path.display().to_string(),
            )
        }
        None => {
            let p = match &scenario.cost {
                crate::model::CodingCost::FixedPrior(p) => p.clone(),
                crate::model::CodingCost::MutualInformation => vec![0.5; n],
            };
            let agents = make_agents(&scenario, p.iter().map(|&v| ConstantPolicy(v)).collect(), &p);
            (Agents::Untrained(agents), "untrained".to_string())
        }
    };
    let meta = TrajectoryMeta {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        scenario: scenario.name.clone(),
        scenario_file: scenario.path.display().to_string(),
        n,
        inputs: net.input.len(),
        input_values: net.input.values.clone(),
        transition: net
            .input
            .transition
            .chunks(net.input.len())
            .map(|r| r.to_vec())
            .collect(),
        update: scenario.update.name().into(),
        act_probability: scenario
            .update
            .act_probability(net.alive.iter().filter(|a| **a).count()),
        lambda: Some(scenario.lambda),
        seed: scenario.seed,
        ticks: args.ticks,
        recorded_neurons: record.clone(),
        dead: scenario.dead.clone(),
        policy: policy_name,
        state_indexing: "spikes[t, j] is σ_t of neuron neurons[j]; for full records, σ's index has bit k = neuron k"
            .into(),
        controlled_input: scenario.motor.as_ref().map(|m| m.describe()),
    };
    let t_engine = std::time::Instant::now();
    let mut sparse = match &logistic {
        Some(ln) => Some(
            SparseEngine::new_on(&net, ln, layout, scenario.seed, ranks)
                .map_err(|e| BadInput(format!("{}: [neurons]: {e}", args.scenario.display())))?,
        ),
        None => None,
    };
    if let Some(e) = &sparse {
        tracing::info!(
            "sparse engine: {:.1} MiB of tables in {:.2} s",
            (e.bytes() + net.topology.bytes()) as f64 / (1 << 20) as f64,
            t_engine.elapsed().as_secs_f64()
        );
    }
    let how = How {
        net: &net,
        layout,
        engine: Engine::new(layout, args.actors),
        seed: scenario.seed,
        ticks: args.ticks,
        quiet: args.quiet || !writes,
        ranks,
    };
    let system = actix::System::new();
    if !writes {
        let (totals, _) = system.block_on(how.run(agents, sparse.as_mut(), NoObserver))?;
        return Ok(SimulateReport {
            totals,
            out,
            seconds: t0.elapsed().as_secs_f64(),
        });
    }
    // The writer actor appends chunks on its own arbiter while the tick
    // threads run; the trajectory is assembled when the run is over.
    let totals = system.block_on(async {
        let arbiter = actix::Arbiter::new();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let writer = RecorderActor::new(&out, record.len(), args.form, in_flight.clone())?;
        let addr = RecorderActor::start_in_arbiter(&arbiter.handle(), move |_| writer);
        let observer = StreamingObserver::new(record.clone(), args.form, CHUNK_TICKS, addr.clone(), in_flight);
        let (totals, mut observer) = how.run(agents, sparse.as_mut(), observer).await?;
        observer.flush();
        let finish = Finish {
            meta,
            input_values: net.input.values.clone(),
            initial_spikes: RunState::initial(&net, scenario.seed).frame_bits(&record),
        };
        let written = addr
            .send(finish)
            .await
            .map_err(|e| anyhow::anyhow!("the recorder stopped: {e}"))?;
        arbiter.stop();
        written.with_context(|| format!("writing the trajectory to {}", out.display()))?;
        anyhow::Ok(totals)
    })?;
    Ok(SimulateReport {
        totals,
        out,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The agents a simulation runs: the solver's policies, untrained ones, or
/// the scenario's fixed `[neurons]` (held by the sparse engine).
enum Agents {
    Solver(Vec<Neuron<FullStatePolicy>>),
    Untrained(Vec<Neuron<ConstantPolicy>>),
    Logistic,
}

/// How a simulation runs.
struct How<'a> {
    net: &'a RuntimeNetwork,
    layout: Layout,
    engine: Engine,
    seed: u64,
    ticks: u64,
    quiet: bool,
    ranks: Option<&'a Ranks>,
}

impl How<'_> {
    /// Run the whole simulation with `observer`: agents on the chosen engine
    /// (the barrier engine's threads directly under MPI, so collectives stay
    /// on this thread), fixed neurons on the sparse engine.
    async fn run<O: Observer + Unpin + 'static>(
        &self,
        agents: Agents,
        sparse: Option<&mut SparseEngine<'_>>,
        observer: O,
    ) -> Result<(RunTotals, O)> {
        let (net, layout, ranks) = (self.net, self.layout, self.ranks);
        match (agents, ranks) {
            (Agents::Logistic, _) => {
                let engine = sparse.expect("fixed neurons come with their engine");
                Ok(self.in_blocks(observer, |st, k, o| engine.run(st, k, o)))
            }
            (Agents::Solver(mut a), Some(r)) => {
                Ok(self.in_blocks(observer, |st, k, o| run_on(net, &mut a, layout, st, k, o, Some(r))))
            }
            (Agents::Untrained(mut a), Some(r)) => {
                Ok(self.in_blocks(observer, |st, k, o| run_on(net, &mut a, layout, st, k, o, Some(r))))
            }
            (Agents::Solver(a), None) => {
                simulate(net, a, self.engine, self.seed, self.ticks, observer, self.quiet).await
            }
            (Agents::Untrained(a), None) => {
                simulate(net, a, self.engine, self.seed, self.ticks, observer, self.quiet).await
            }
        }
    }

    /// Run from the scenario's start in blocks (so a progress bar can
    /// follow) with `step(state, ticks, observer)`, on this thread.
    fn in_blocks<O: Observer>(
        &self,
        mut observer: O,
        mut step: impl FnMut(RunState, u64, &mut dyn Observer) -> (RunState, RunTotals),
    ) -> (RunTotals, O) {
        let mut state = RunState::initial(self.net, self.seed);
        let mut totals = RunTotals::default();
        let bar = super::progress_bar(Some(self.ticks), self.quiet, TICKS_BAR);
        let block = (self.ticks / 100).clamp(1, 1 << 20);
        while state.tick < self.ticks {
            let todo = block.min(self.ticks - state.tick);
            let (next, t) = step(state, todo, &mut observer);
            state = next;
            totals.absorb(&t);
            bar.set_position(state.tick);
        }
        bar.finish_and_clear();
        (totals, observer)
    }
}

const TICKS_BAR: &str = "{bar:40} {pos}/{len} ticks [{elapsed_precise} < {eta_precise}] {per_sec}";

/// Refuse a network whose tables would not fit in memory, before building
/// anything, with the estimate.
fn check_memory(scenario: &Scenario, args: &SimulateArgs) -> Result<(), BadInput> {
    let n = scenario.neurons as u64;
    let synapses = scenario.topology.expected_edges(scenario.neurons) as u64;
    let per_synapse = matches!(
        scenario.logistic.as_ref().map(|l| &l.weights),
        Some(crate::scenario::WeightRule::EdgeList)
    );
    let shards = args.shards.or(args.threads).unwrap_or(2) as u64;
    let need = crate::runtime::sparse::estimate_bytes(
        n,
        synapses,
        per_synapse,
        shards,
        scenario.update == crate::model::UpdateScheme::Asynchronous,
    );
    let avail = crate::files::available_memory();
    if need > avail / 10 * 8 {
        return Err(BadInput(format!(
            "{}: {} neurons with about {synapses} synapses need about {} MiB to simulate; this machine has \
             {} MiB available (allowed: at most 80 % of it) — use fewer neurons or synapses (every MPI rank \
             holds the whole topology, so ranks do not lower this)",
            args.scenario.display(),
            n,
            need >> 20,
            avail >> 20
        )));
    }
    Ok(())
}

fn make_agents<P: Policy>(scenario: &Scenario, policies: Vec<P>, prior: &[f64]) -> Vec<Neuron<P>> {
    Neuron::team(policies, prior, scenario.seed)
}

/// Run `ticks` ticks from the scenario's start in blocks (so a progress bar
/// can follow), inside the running actix system; the observer comes back.
pub async fn simulate<P: Policy + Clone + Unpin + 'static, O: Observer + Unpin + 'static>(
    net: &RuntimeNetwork,
    mut agents: Vec<Neuron<P>>,
    engine: Engine,
    seed: u64,
    ticks: u64,
    mut observer: O,
    quiet: bool,
) -> Result<(RunTotals, O)> {
    let mut state = RunState::initial(net, seed);
    let mut totals = RunTotals::default();
    let bar = super::progress_bar(Some(ticks), quiet, TICKS_BAR);
    let block = (ticks / 100).clamp(1, 1 << 20);
    while state.tick < ticks {
        let todo = block.min(ticks - state.tick);
        let (a, next, t, o) = engine
            .run_async(net, agents, state, todo, observer)
            .await
            .map_err(|e| anyhow::anyhow!("a runtime actor stopped: {e}"))?;
        (agents, state, observer) = (a, next, o);
        totals.absorb(&t);
        bar.set_position(state.tick);
    }
    bar.finish_and_clear();
    Ok((totals, observer))
}
