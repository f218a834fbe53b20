//! `marlin simulate`: run a scenario's network on the actor runtime with
//! given policies (the exact solver's, or untrained) and record a trajectory.

use super::BadInput;
use crate::agents::{ConstantPolicy, FullStatePolicy, Neuron, Policy};
use crate::record::stream::Mark;
use crate::record::stream::{Finish, RecorderActor, SpikeForm, StreamingObserver};
use crate::record::{FORMAT, FORMAT_VERSION, TrajectoryMeta};
use crate::rng::Stream;
use crate::runtime::sparse::SparseEngine;
use crate::runtime::transport::Ranks;
use crate::runtime::{Engine, Layout, NoObserver, Observer, RunState, RunTotals, RuntimeNetwork, try_run_on};
use crate::scenario::Scenario;
use actix::Actor;
use anyhow::{Context, Result};
use ndarray::{Array1, Array3};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

#[derive(Clone, Debug, Serialize, Deserialize)]
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
    /// Save a checkpoint at least this often (seconds of wall time; default
    /// [`CHECKPOINT_SECONDS`](super::train::CHECKPOINT_SECONDS)).
    pub checkpoint_every: Option<f64>,
    /// Continue the run whose output folder this is, from its checkpoint.
    pub resume: Option<PathBuf>,
}

impl SimulateArgs {
    /// A study's recording: the solved `policy` run for `ticks` on the
    /// default engine, every neuron recorded densely into `out`, resumed
    /// from `out`'s checkpoint when a resumed study left one there.
    pub fn study_recording(
        scenario: PathBuf,
        policy: PathBuf,
        ticks: u64,
        out: PathBuf,
        resume: bool,
        quiet: bool,
    ) -> Self {
        SimulateArgs {
            scenario,
            policy: Some(policy),
            untrained: false,
            ticks,
            shards: None,
            threads: None,
            record_neurons: None,
            form: SpikeForm::Dense,
            resume: super::study::resumable(resume, &out, "simulate"),
            out: Some(out),
            quiet,
            actors: None,
            checkpoint_every: None,
        }
    }
}

/// What `simulate` saves in its checkpoint: the arguments, the run's state,
/// every neuron's stream, the totals and where the partial recording stood.
#[derive(Serialize, Deserialize)]
struct Saved {
    /// The arguments (paths absolute, out resolved).
    args: SimulateArgs,
    /// SHA-256 of the scenario and of the policy file: a resume refuses
    /// changed inputs.
    inputs_sha256: Vec<String>,
    state: RunState,
    streams: Vec<Stream>,
    totals: RunTotals,
    recording: Mark,
    previous: Vec<u8>,
    /// The trajectory's metadata as the run began (paths as the user gave
    /// them, so a resumed run writes the same bytes), as JSON: its optional
    /// fields are skipped when empty, which postcard (not self-describing)
    /// cannot represent.
    meta: String,
    /// Wall time spent before the checkpoint.
    seconds: f64,
}

/// The files a run reads (scenario, policy), whose digests a checkpoint keeps.
fn input_files(args: &SimulateArgs) -> Vec<PathBuf> {
    std::iter::once(args.scenario.clone())
        .chain(args.policy.clone())
        .collect()
}

/// The saved arguments and state of the run in `dir`, for `--resume`
/// (threads, shards, quiet and the checkpoint interval may change).
fn resume(dir: &Path, given: &SimulateArgs) -> Result<(SimulateArgs, Saved), BadInput> {
    let path = crate::checkpoint::path(dir, "simulate");
    let saved: Saved = crate::checkpoint::load_for_resume(&path, dir, "simulate").map_err(BadInput)?;
    for (p, then) in input_files(&saved.args).iter().zip(&saved.inputs_sha256) {
        if crate::checkpoint::sha256_file(p).map_err(BadInput)? != *then {
            return Err(BadInput(format!(
                "cannot resume from {}: {} changed since the checkpoint was saved; allowed: the same file",
                dir.display(),
                p.display()
            )));
        }
    }
    let mut args = saved.args.clone();
    args.threads = given.threads.or(args.threads);
    args.shards = given.shards.or(args.shards);
    args.checkpoint_every = given.checkpoint_every.or(args.checkpoint_every);
    args.quiet = given.quiet;
    // The folder may have moved since: results go where the checkpoint is.
    args.out = Some(dir.to_path_buf());
    crate::checkpoint::clean_leftovers(dir);
    tracing::info!("resuming {} at tick {}", dir.display(), saved.state.tick);
    Ok((args, saved))
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
    let (fire, prior) = read_fire(path, n, inputs)?;
    Ok((FullStatePolicy::per_neuron(n, &fire), prior))
}

/// The state-major table `fire[s·n + k]` = π_k(1 | s) and the priors of a
/// `policy.npz` (the solver's or `train`'s `learned_policy.npz`), validated.
pub fn read_fire(path: &Path, n: usize, inputs: usize) -> Result<(Vec<f64>, Vec<f64>), BadInput> {
    let bad = |m: String| BadInput(format!("{}: {m}", path.display()));
    crate::files::check_npz_fits(path, 2).map_err(bad)?;
    let mut npz =
        crate::files::open_npz(path, &[crate::files::formats::POLICY], super::params::VERSION, None).map_err(bad)?;
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
    Ok((p.iter().copied().collect(), prior.to_vec()))
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
    crate::checkpoint::check_interval(args.checkpoint_every).map_err(BadInput)?;
    let (args, saved) = match &args.resume {
        Some(dir) => {
            let (a, s) = resume(dir, args)?;
            (a, Some(s))
        }
        None => (args.clone(), None),
    };
    let args = &args;
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
    let layout = Layout::for_network(n, args.shards, args.threads, ranks);
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
                    "{}: {n} neurons; --policy with a solver policy.npz needs a network of at most {} neurons",
                    args.scenario.display(),
                    crate::model::MAX_TABULAR_NEURONS
                ))
                .into());
            }
            check_policy_size(&args.scenario, n, net.input.len())?;
            check_policy_params(path, &scenario)?;
            let (policies, prior) = load_policy(path, n, net.input.len())?;
            (
                Agents::Solver(make_agents(&scenario, policies, &prior)),
                crate::files::outdir::recorded(path),
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
    let meta = match &saved {
        Some(s) => serde_json::from_str(&s.meta).context("the checkpoint's trajectory metadata")?,
        None => meta,
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
        ticks: args.ticks,
        quiet: args.quiet || !writes,
        ranks,
    };
    let start = match &saved {
        Some(s) => Start {
            state: s.state.clone(),
            totals: s.totals.clone(),
            streams: Some(s.streams.clone()),
        },
        None => Start {
            state: RunState::initial(&net, scenario.seed),
            totals: RunTotals::default(),
            streams: None,
        },
    };
    let _saving = crate::checkpoint::Saving::new();
    let system = actix::System::new();
    let every = args.checkpoint_every.unwrap_or(super::train::CHECKPOINT_SECONDS);
    let mut last_save = std::time::Instant::now();
    // After a checkpoint: go on, or stop if one was requested.
    let stopped = |stop: bool, st: &RunState| -> Result<()> {
        match stop {
            true => {
                Err(
                    crate::checkpoint::interrupted("simulate", st.tick, &crate::checkpoint::path(&out, "simulate"))
                        .into(),
                )
            }
            false => Ok(()),
        }
    };
    if !writes {
        // Ranks other than 0 take part in every decision to save and send
        // their streams; rank 0 writes.
        let mut save = |st: &RunState, _: &RunTotals, _: &mut NoObserver, streams: &dyn Fn() -> Vec<Stream>| {
            let (save, stop) = super::agree(ranks, false);
            if save {
                gather_streams(ranks, n, streams());
            }
            stopped(stop, st)
        };
        let checkpoint = crate::checkpoint::path(&out, "simulate");
        let (totals, _) = system
            .block_on(how.run(agents, sparse.as_mut(), NoObserver, start, &mut save))
            .map_err(|e| crate::checkpoint::left_resumable(e, "simulate", &checkpoint))?;
        return Ok(SimulateReport {
            totals,
            out,
            seconds: t0.elapsed().as_secs_f64(),
        });
    }
    // The writer actor appends chunks on its own arbiter while the tick
    // threads run; the trajectory is assembled when the run is over.
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let base = SimulateArgs {
        scenario: absolute(&args.scenario),
        policy: args.policy.as_deref().map(absolute),
        out: Some(absolute(&out)),
        resume: None,
        ..args.clone()
    };
    let inputs_sha256 = match &saved {
        Some(s) => s.inputs_sha256.clone(),
        None => input_files(args)
            .iter()
            .map(|p| crate::checkpoint::sha256_file(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(BadInput)?,
    };
    let checkpoint = crate::checkpoint::path(&out, "simulate");
    if saved.is_none() && checkpoint.exists() {
        tracing::warn!(
            "{} holds the checkpoint of an interrupted run; this run replaces it (`marlin simulate --resume {}` \
             would have continued it)",
            out.display(),
            out.display()
        );
    }
    let before = saved.as_ref().map_or(0.0, |s| s.seconds);
    let mut save = |st: &RunState, totals: &RunTotals, o: &mut StreamingObserver, streams: &dyn Fn() -> Vec<Stream>| {
        let (save, stop) = super::agree(ranks, last_save.elapsed().as_secs_f64() >= every);
        if !save {
            return Ok(());
        }
        let streams = gather_streams(ranks, n, streams());
        let recording = o.sync()?;
        let saved = Saved {
            args: base.clone(),
            inputs_sha256: inputs_sha256.clone(),
            state: st.clone(),
            streams,
            totals: totals.clone(),
            recording,
            previous: o.previous().to_vec(),
            meta: crate::files::canonical_json(&meta),
            seconds: before + t0.elapsed().as_secs_f64(),
        };
        crate::checkpoint::save(&checkpoint, &saved)?;
        tracing::debug!(tick = st.tick, "checkpoint saved");
        last_save = std::time::Instant::now();
        stopped(stop, st)
    };
    let totals = system.block_on(async {
        let arbiter = actix::Arbiter::new();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let writer = match &saved {
            Some(s) => RecorderActor::resume(&out, record.len(), args.form, in_flight.clone(), &s.recording)?,
            None => RecorderActor::new(&out, record.len(), args.form, in_flight.clone())?,
        };
        let addr = RecorderActor::start_in_arbiter(&arbiter.handle(), move |_| writer);
        let mut observer = StreamingObserver::new(record.clone(), args.form, CHUNK_TICKS, addr.clone(), in_flight);
        if let Some(s) = &saved {
            observer.resume_from(s.previous.clone());
        }
        let ran = how.run(agents, sparse.as_mut(), observer, start, &mut save).await;
        let (totals, mut observer) = match ran {
            Ok(r) => r,
            Err(e) => {
                arbiter.stop();
                return Err(crate::checkpoint::left_resumable(e, "simulate", &checkpoint));
            }
        };
        observer.flush();
        let finish = Finish {
            meta: meta.clone(),
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
    crate::checkpoint::remove(&out);
    Ok(SimulateReport {
        totals,
        out,
        seconds: before + t0.elapsed().as_secs_f64(),
    })
}

/// The agents a simulation runs: the solver's policies, untrained ones, or
/// the scenario's fixed `[neurons]` (held by the sparse engine).
enum Agents {
    Solver(Vec<Neuron<FullStatePolicy>>),
    Untrained(Vec<Neuron<ConstantPolicy>>),
    Logistic,
}

/// Where a simulation starts: the scenario's tick 0, or a checkpoint.
struct Start {
    state: RunState,
    totals: RunTotals,
    /// Every neuron's random stream at the checkpoint.
    streams: Option<Vec<Stream>>,
}

/// Called after every block but the last with the state, the totals so far,
/// the observer and the neurons' streams: saves a checkpoint when one is due,
/// and returns [`Interrupted`](crate::checkpoint::Interrupted) on Ctrl-C.
type AfterBlock<'h, O> = &'h mut dyn FnMut(&RunState, &RunTotals, &mut O, &dyn Fn() -> Vec<Stream>) -> Result<()>;

/// A simulation's neurons on whichever engine runs them, a block of ticks
/// at a time.
trait Blocks<O: Observer> {
    async fn step(&mut self, state: RunState, ticks: u64, observer: O) -> Result<(RunState, RunTotals, O)>;
    /// The random streams of the neurons this process runs (all of them,
    /// or this MPI rank's block), in neuron order.
    fn streams(&self) -> Vec<Stream>;
    /// Continue with every neuron's stream (n of them, in neuron order).
    fn set_streams(&mut self, streams: &[Stream]) -> Result<(), String>;
}

fn set_agent_streams<P: Policy>(agents: &mut [Neuron<P>], streams: &[Stream]) -> Result<(), String> {
    if streams.len() != agents.len() {
        return Err(format!("{} random streams for {} neurons", streams.len(), agents.len()));
    }
    for (a, s) in agents.iter_mut().zip(streams) {
        a.rng = s.clone();
    }
    Ok(())
}

/// Every neuron's stream, from this process's block `mine` (all n in one
/// process; under MPI each rank's block, gathered in rank order).
fn gather_streams(ranks: Option<&Ranks>, n: usize, mine: Vec<Stream>) -> Vec<Stream> {
    let Some(r) = ranks else {
        return mine;
    };
    let counts: Vec<usize> = (0..r.size())
        .map(|k| 4 * crate::runtime::transport::rank_neurons(n, k, r.size()).len())
        .collect();
    let words: Vec<u64> = mine.iter().flat_map(crate::rng::to_words).collect();
    assert_eq!(words.len(), counts[r.rank()], "a rank sends its own block's streams");
    let mut all = vec![0u64; 4 * n];
    r.all_gather_words(&words, &mut all, &counts);
    all.chunks_exact(4)
        .map(|w| crate::rng::from_words(w.try_into().expect("4 words")))
        .collect()
}

/// Agents on the barrier or actor engine (one process).
struct OnEngine<'a, P: Policy> {
    net: &'a RuntimeNetwork,
    agents: Option<Vec<Neuron<P>>>,
    engine: Engine,
}

impl<P: Policy + Clone + Unpin + 'static, O: Observer + Unpin + 'static> Blocks<O> for OnEngine<'_, P> {
    async fn step(&mut self, state: RunState, ticks: u64, observer: O) -> Result<(RunState, RunTotals, O)> {
        let agents = self.agents.take().expect("agents are back after every block");
        let (a, next, totals, o) = self
            .engine
            .run_async(self.net, agents, state, ticks, observer)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        self.agents = Some(a);
        Ok((next, totals, o))
    }
    fn streams(&self) -> Vec<Stream> {
        self.agents.iter().flatten().map(|a| a.rng.clone()).collect()
    }
    fn set_streams(&mut self, streams: &[Stream]) -> Result<(), String> {
        set_agent_streams(self.agents.as_mut().expect("agents"), streams)
    }
}

/// Agents as one MPI rank's block, on this thread's barrier engine (so the
/// collectives stay on this thread).
struct OnRanks<'a, P: Policy> {
    net: &'a RuntimeNetwork,
    agents: Vec<Neuron<P>>,
    layout: Layout,
    ranks: &'a Ranks,
}

impl<P: Policy + Clone + 'static, O: Observer> Blocks<O> for OnRanks<'_, P> {
    async fn step(&mut self, state: RunState, ticks: u64, mut observer: O) -> Result<(RunState, RunTotals, O)> {
        let (next, totals) = try_run_on(
            self.net,
            &mut self.agents,
            self.layout,
            state,
            ticks,
            &mut observer,
            Some(self.ranks),
        )
        .map_err(|f| anyhow::anyhow!("the run stopped on MPI rank {}: {f}", self.ranks.rank()))?;
        Ok((next, totals, observer))
    }
    fn streams(&self) -> Vec<Stream> {
        let block = crate::runtime::transport::rank_neurons(self.net.n, self.ranks.rank(), self.ranks.size());
        self.agents[block].iter().map(|a| a.rng.clone()).collect()
    }
    fn set_streams(&mut self, streams: &[Stream]) -> Result<(), String> {
        set_agent_streams(&mut self.agents, streams)
    }
}

impl<O: Observer> Blocks<O> for SparseEngine<'_> {
    async fn step(&mut self, state: RunState, ticks: u64, mut observer: O) -> Result<(RunState, RunTotals, O)> {
        let (next, totals) = self.run(state, ticks, &mut observer);
        Ok((next, totals, observer))
    }
    fn streams(&self) -> Vec<Stream> {
        SparseEngine::streams(self)
    }
    fn set_streams(&mut self, streams: &[Stream]) -> Result<(), String> {
        SparseEngine::set_streams(self, streams)
    }
}

/// How a simulation runs.
struct How<'a> {
    net: &'a RuntimeNetwork,
    layout: Layout,
    engine: Engine,
    ticks: u64,
    quiet: bool,
    ranks: Option<&'a Ranks>,
}

impl How<'_> {
    /// Run the simulation from `start` with `observer`: agents on the chosen
    /// engine (the barrier engine's threads directly under MPI), fixed
    /// neurons on the sparse engine.
    async fn run<O: Observer + Unpin + 'static>(
        &self,
        agents: Agents,
        sparse: Option<&mut SparseEngine<'_>>,
        observer: O,
        start: Start,
        after: AfterBlock<'_, O>,
    ) -> Result<(RunTotals, O)> {
        match agents {
            Agents::Logistic => {
                let engine = sparse.expect("fixed neurons come with their engine");
                self.in_blocks(engine, observer, start, after).await
            }
            Agents::Solver(a) => self.agents(a, observer, start, after).await,
            Agents::Untrained(a) => self.agents(a, observer, start, after).await,
        }
    }

    /// Agents on this rank's threads under MPI, else on the chosen engine.
    async fn agents<P: Policy + Clone + Unpin + 'static, O: Observer + Unpin + 'static>(
        &self,
        agents: Vec<Neuron<P>>,
        observer: O,
        start: Start,
        after: AfterBlock<'_, O>,
    ) -> Result<(RunTotals, O)> {
        let (net, layout) = (self.net, self.layout);
        match self.ranks {
            Some(ranks) => {
                let mut b = OnRanks {
                    net,
                    agents,
                    layout,
                    ranks,
                };
                self.in_blocks(&mut b, observer, start, after).await
            }
            None => {
                let mut b = OnEngine {
                    net,
                    agents: Some(agents),
                    engine: self.engine,
                };
                self.in_blocks(&mut b, observer, start, after).await
            }
        }
    }

    /// Run from `start` to the last tick in blocks of a fixed grid (1 % of
    /// the run, at most 2²⁰ ticks: a progress bar follows, checkpoints fall
    /// on block ends, and a resumed run adds its totals block by block
    /// exactly as an uninterrupted one).
    async fn in_blocks<O: Observer, B: Blocks<O>>(
        &self,
        b: &mut B,
        observer: O,
        start: Start,
        after: AfterBlock<'_, O>,
    ) -> Result<(RunTotals, O)> {
        in_blocks(b, start, self.ticks, self.quiet, observer, after).await
    }
}

async fn in_blocks<O: Observer, B: Blocks<O>>(
    b: &mut B,
    start: Start,
    ticks: u64,
    quiet: bool,
    mut observer: O,
    after: AfterBlock<'_, O>,
) -> Result<(RunTotals, O)> {
    if let Some(s) = &start.streams {
        b.set_streams(s)
            .map_err(|e| anyhow::anyhow!("the checkpoint does not fit this network: {e}"))?;
    }
    let (mut state, mut totals) = (start.state, start.totals);
    let bar = crate::progress::Task::start("simulating", "ticks", Some(ticks), quiet);
    bar.set_position(state.tick);
    let block = (ticks / 100).clamp(1, 1 << 20);
    while state.tick < ticks {
        let todo = block.min(ticks - state.tick);
        let (next, t, o) = b.step(state, todo, observer).await?;
        (state, observer) = (next, o);
        totals.absorb(&t);
        bar.set_position(state.tick);
        if state.tick < ticks
            && let Err(e) = after(&state, &totals, &mut observer, &|| b.streams())
        {
            bar.abandon();
            return Err(e);
        }
    }
    bar.finish();
    Ok((totals, observer))
}

/// Refuse a network whose tables would not fit in memory, before building
/// anything, with the estimate.
/// Refuse a network whose policy table (`p_fire` [X, 2ⁿ, n], read, copied
/// and split per neuron) would not fit in memory, before reading any of it.
fn check_policy_size(scenario_file: &Path, n: usize, inputs: usize) -> Result<(), BadInput> {
    let bytes = |n: usize| 3 * 8 * ((inputs as u64) << n) * n as u64;
    let budget = crate::memory::MemoryBudget::now();
    if !budget.fits(bytes(n)) {
        let fits = (1..n).rev().find(|&k| budget.fits(bytes(k))).unwrap_or(0);
        return Err(BadInput(format!(
            "{}: {n} neurons with {inputs} input values: a solver policy's table has {} entries \
             (X·2^n·n) and needs about {} MiB to read and run; {}, {fits} neurons here — simulate it \
             --untrained or with fixed [neurons] instead",
            scenario_file.display(),
            ((inputs as u64) << n) * n as u64,
            bytes(n) >> 20,
            budget.describe()
        )));
    }
    Ok(())
}

/// Refuse a policy solved for another world than the scenario's (or
/// written by an older marlin that did not record it).
pub fn check_policy_params(path: &Path, scenario: &Scenario) -> Result<(), BadInput> {
    use super::params::{self, NetworkParams};
    let bad = |m: String| BadInput(format!("{}: {m}", path.display()));
    let solve_with = format!("marlin solve {}", scenario.path.display());
    let (_, sealed) =
        params::open::<NetworkParams>(path, &[crate::files::formats::POLICY], &solve_with).map_err(bad)?;
    let Some(sealed) = sealed else {
        params::unchecked(path);
        return Ok(());
    };
    let net = scenario.tabular_network().map_err(BadInput::from)?;
    params::check(path, &sealed, &scenario.path, &NetworkParams::of(&net), &solve_with)
}

fn check_memory(scenario: &Scenario, args: &SimulateArgs) -> Result<(), BadInput> {
    let n = scenario.neurons as u64;
    let synapses = scenario.topology.expected_edges(scenario.neurons) as u64;
    let per_synapse = matches!(
        scenario.logistic.as_ref().map(|l| &l.weights),
        Some(crate::scenario::WeightRule::EdgeList)
    );
    let shards = args.shards.or(args.threads).unwrap_or(2) as u64;
    let need = crate::runtime::sparse::estimate_bytes(n, synapses, per_synapse, shards, scenario.update);
    let budget = crate::memory::MemoryBudget::now();
    if !budget.fits(need) {
        return Err(BadInput(format!(
            "{}: {} neurons with about {synapses} synapses need about {} MiB to simulate; {} — use fewer \
             neurons or synapses (every MPI rank holds the whole topology, so ranks do not lower this)",
            args.scenario.display(),
            n,
            need >> 20,
            budget.describe()
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
    agents: Vec<Neuron<P>>,
    engine: Engine,
    seed: u64,
    ticks: u64,
    observer: O,
    quiet: bool,
) -> Result<(RunTotals, O)> {
    let mut b = OnEngine {
        net,
        agents: Some(agents),
        engine,
    };
    let start = Start {
        state: RunState::initial(net, seed),
        totals: RunTotals::default(),
        streams: None,
    };
    in_blocks(&mut b, start, ticks, quiet, observer, &mut |_, _, _, _| Ok(())).await
}
