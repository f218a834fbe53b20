//! The actor runtime: agents exchange spikes every tick under a clock.
//!
//! Agents are the model and the API ([`crate::agents::Agent`]); they are
//! executed by **shards** — contiguous blocks of agents — and shards by a
//! team of threads that meet at a spinning barrier once per tick (one actix
//! message per neuron per tick costs 330–910× a plain loop on our 2-vCPU VM,
//! see docs/measurements.md). Spikes travel through a double-buffered bit frame:
//! during tick t every shard reads frame t and writes its own agents' bits of
//! frame t+1 (plain stores for whole words, atomic and/or on words shared with
//! another shard). Per-tick aggregates (change of the spike count, the
//! acting agents' log-ratios in fixed point) go through per-shard slots.
//!
//! The control plane — the clock (draws the acting neuron), the environment
//! (input chain, reward) and the observer (records) — is tiny per tick, so
//! every thread replays the clock and environment from their own RNG streams
//! (bit-identical everywhere) and thread 0 hosts the observer. Every agent
//! draws only from its own stream. Hence the invariant: **a run's trajectory
//! does not depend on the number of shards or threads**.

pub mod actors;
mod barrier;
pub mod hosted;
pub mod learners;
#[cfg(feature = "mpi")]
pub mod mpi;
mod random_partial;
pub mod sparse;
pub mod transport;
pub mod walkers;

use crate::agents::{Agent, Broadcast, Observation};
use crate::learn::Teacher;
use crate::learn::decoder::OnlineDecoder;
use crate::model::{InputProcess, RewardSpec, UpdateScheme};
use crate::rng::{Domain, Stream, stream};
use crate::topology::Topology;
use rand::Rng;
use transport::{SharedMemory, Transport};

pub(crate) use crate::agents::{FIXED, to_fixed};

/// What the runtime needs to know about a network (no tabulation: any size).
#[derive(Clone, Debug)]
pub struct RuntimeNetwork {
    pub n: usize,
    pub alive: Vec<bool>,
    pub input: InputProcess,
    pub reward: RewardSpec,
    pub update: UpdateScheme,
    pub topology: Topology,
    /// Which neurons observe the input.
    pub receives_input: Vec<bool>,
}

impl RuntimeNetwork {
    /// What agent k observes at tick t in state (x, frame).
    #[inline]
    pub fn observation<'a>(&'a self, k: usize, t: u64, x: usize, frame: &'a [u64], own: bool) -> Observation<'a> {
        Observation {
            tick: t,
            x,
            input: self.receives_input[k].then(|| self.input.values[x]),
            own,
            id: k,
            n: self.n,
            all_to_all: self.topology.all_to_all,
            pre: self.topology.partners(k),
            frame,
        }
    }
}

/// Every agent's π_k(1 | s) at every global state `s = x·2ⁿ + σ`, as the
/// solver's state-major table `fire[s·n + k]` (dead neurons: 0), so any
/// agents — learned, logistic, partially observing — can be evaluated
/// exactly. For networks of at most [`crate::model::MAX_TABULAR_NEURONS`].
pub fn tabulate<A: Agent>(net: &RuntimeNetwork, agents: &[A]) -> Vec<f64> {
    assert!(
        net.n <= crate::model::MAX_TABULAR_NEURONS,
        "tabulating {} neurons",
        net.n
    );
    let c = 1usize << net.n;
    let mut fire = vec![0.0; net.input.len() * c * net.n];
    for x in 0..net.input.len() {
        for sigma in 0..c {
            let frame = [sigma as u64];
            let row = &mut fire[(x * c + sigma) * net.n..(x * c + sigma + 1) * net.n];
            for (k, agent) in agents.iter().enumerate() {
                if net.alive[k] {
                    let obs = net.observation(k, 0, x, &frame, sigma >> k & 1 == 1);
                    row[k] = agent.fire_probability(&obs);
                }
            }
        }
    }
    fire
}

/// How agents are laid out for execution. Results do not depend on it.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// Number of shards (blocks of agents), 1 ≤ shards ≤ n.
    pub shards: usize,
    /// Number of threads executing the shards.
    pub threads: usize,
}

impl Layout {
    pub fn single() -> Self {
        Layout { shards: 1, threads: 1 }
    }

    /// `threads` threads with one shard each.
    pub fn threads(threads: usize) -> Self {
        Layout {
            shards: threads,
            threads,
        }
    }

    /// The command line's layout for `n` neurons: `threads` (default one
    /// below 4096 neurons, where a tick is too short to share, else every
    /// core of this process) and `shards` (default one per thread).
    ///
    /// Under MPI (`ranks`) the machine's cores are shared by the ranks on
    /// it: each takes its share (at least one), so `mpirun -np R` on one
    /// machine does not start R times as many spinning threads as cores.
    pub fn for_network(
        n: usize,
        shards: Option<usize>,
        threads: Option<usize>,
        ranks: Option<&transport::Ranks>,
    ) -> Self {
        let machine = std::thread::available_parallelism().map_or(1, |c| c.get());
        let cores = (machine / ranks.map_or(1, |r| r.local_size().max(1))).max(1);
        let threads = threads.unwrap_or(if n >= 4096 { cores } else { 1 }).max(1);
        let layout = Layout {
            shards: shards.unwrap_or(threads).max(1),
            threads,
        };
        tracing::info!(
            agents = n,
            threads = layout.threads,
            shards = layout.shards,
            rank = ranks.map_or(0, |r| r.rank()),
            ranks = ranks.map_or(1, |r| r.size()),
            "layout"
        );
        layout
    }
}

/// One tick as the observer sees it: the state at tick t and what happened.
pub struct TickRecord<'a> {
    pub t: u64,
    /// Input index x_t.
    pub x: usize,
    /// σ_t as a bit frame.
    pub frame: &'a [u64],
    /// Asynchronous: the neuron drawn at tick t (its action sets σ_{t+1});
    /// −1 when several or all act.
    pub actor: i64,
    /// r(s_t).
    pub reward: f64,
}

/// Receives every tick, on one thread, in order.
pub trait Observer: Send {
    fn record(&mut self, rec: &TickRecord);
    /// Whether [`Observer::record`] does anything: an engine may skip
    /// calling an observer that does not.
    fn watches(&self) -> bool {
        true
    }
}

/// An observer that records nothing.
pub struct NoObserver;

impl Observer for NoObserver {
    fn record(&mut self, _: &TickRecord) {}
    fn watches(&self) -> bool {
        false
    }
}

/// Where a run starts (and where it ended).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunState {
    pub tick: u64,
    pub x: usize,
    pub frame: Vec<u64>,
    pub clock: Stream,
    pub environment: Stream,
    /// The learning control plane (ĝ, critic, broadcast signal), when agents learn.
    pub teacher: Option<Teacher>,
    /// The environment's online decoder, when the reward is the code's own
    /// log-posterior (it replaces `net.reward`; see `reward_at`).
    #[serde(default)]
    pub decoder: Option<OnlineDecoder>,
}

impl RunState {
    /// Tick 0: all neurons silent, x₀ drawn from the input's stationary
    /// distribution (a controlled input's start) with the environment's stream.
    pub fn initial(net: &RuntimeNetwork, seed: u64) -> Self {
        let mut environment = stream(seed, Domain::Environment, 0);
        let mu = net.input.initial();
        let x = sample(&mu, environment.random());
        RunState {
            tick: 0,
            x,
            frame: vec![0; net.n.div_ceil(64)],
            clock: stream(seed, Domain::Clock, 0),
            environment,
            teacher: None,
            decoder: None,
        }
    }
}

impl RunState {
    /// The states (0/1) of `neurons` in this state's frame.
    pub fn frame_bits(&self, neurons: &[usize]) -> Vec<u8> {
        neurons
            .iter()
            .map(|&k| (self.frame[k / 64] >> (k % 64) & 1) as u8)
            .collect()
    }
}

/// Totals of a run.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct RunTotals {
    pub ticks: u64,
    pub reward: f64,
    /// Σ over ticks of Σ_{acting k} log(π_k(a|o)/p_k(a)), nats.
    pub info: f64,
    pub spikes: u64,
}

impl RunTotals {
    /// Add the totals of the next segment of the same run (`ticks` is the
    /// tick count reached, so it is taken, not added).
    pub fn absorb(&mut self, next: &RunTotals) {
        self.ticks = next.ticks;
        self.reward += next.reward;
        self.info += next.info;
        self.spikes += next.spikes;
    }
}

/// Which engine executes a run that owns its agents (results are identical
/// bit for bit; see `hosted` and `actors`).
#[derive(Clone, Copy, Debug)]
pub enum Engine {
    /// Shard-host actors, one per thread, meeting at a barrier (fast).
    Hosted(Layout),
    /// Shard actors exchanging messages every tick with clock, environment,
    /// critic and observer actors.
    Actors(actors::ActorLayout),
}

impl Engine {
    /// The hosted engine with `layout`, or the actor engine with
    /// `agents_per_shard` agents per shard actor on `layout.threads` arbiters.
    pub fn new(layout: Layout, agents_per_shard: Option<usize>) -> Self {
        match agents_per_shard {
            None => Engine::Hosted(layout),
            Some(k) => Engine::Actors(actors::ActorLayout {
                agents_per_shard: k,
                arbiters: layout.threads,
            }),
        }
    }

    /// Run `ticks` ticks in a new actix system; agents and observer come back.
    pub fn run<A, O>(
        self,
        net: &RuntimeNetwork,
        agents: Vec<A>,
        state: RunState,
        ticks: u64,
        observer: O,
    ) -> Result<hosted::HostedRun<A, O>, RunError>
    where
        A: Agent + Unpin + 'static,
        O: Observer + Unpin + 'static,
    {
        actix::System::new().block_on(self.run_async(net, agents, state, ticks, observer))
    }

    /// [`Engine::run`] inside an actix system that is already running.
    pub async fn run_async<A, O>(
        self,
        net: &RuntimeNetwork,
        agents: Vec<A>,
        state: RunState,
        ticks: u64,
        observer: O,
    ) -> Result<hosted::HostedRun<A, O>, RunError>
    where
        A: Agent + Unpin + 'static,
        O: Observer + Unpin + 'static,
    {
        match self {
            Engine::Hosted(layout) => hosted::run_hosted(net, agents, layout, state, ticks, observer).await,
            Engine::Actors(layout) => Ok(actors::run_actors(net, agents, layout, state, ticks, observer).await?),
        }
    }
}

/// Run `ticks` ticks from `state`, calling `observer` for each tick. Returns
/// the state after the last tick and the run's totals.
///
/// # Panics
/// When an agent panics: after every thread has stopped (none is left
/// waiting), with the [`Fault`] (agent and tick) as the message. The hosted
/// engine ([`Engine::run`]) returns the fault as an error instead.
pub fn run<A: Agent>(
    net: &RuntimeNetwork,
    agents: &mut [A],
    layout: Layout,
    state: RunState,
    ticks: u64,
    observer: &mut dyn Observer,
) -> (RunState, RunTotals) {
    run_on(net, agents, layout, state, ticks, observer, None)
}

/// [`run`] as one of several processes (MPI ranks, `ranks`): this process
/// runs the agents of its block ([`transport::rank_neurons`]) — `agents`
/// holds all n, the others are left untouched — and exchanges each tick's
/// spikes and aggregates with the other ranks. Every rank ends with the
/// same state and totals; the observer sees every tick on every rank.
/// Panics as [`run`] does.
pub fn run_on<A: Agent>(
    net: &RuntimeNetwork,
    agents: &mut [A],
    layout: Layout,
    state: RunState,
    ticks: u64,
    observer: &mut dyn Observer,
    ranks: Option<&transport::Ranks>,
) -> (RunState, RunTotals) {
    try_run_on(net, agents, layout, state, ticks, observer, ranks).unwrap_or_else(|f| panic!("{f}"))
}

/// [`run_on`], returning a panicking agent's [`Fault`] instead of panicking
/// (after every thread of this process stopped; under MPI the other ranks
/// still wait for this one, so the caller must end the job).
pub fn try_run_on<A: Agent>(
    net: &RuntimeNetwork,
    agents: &mut [A],
    layout: Layout,
    state: RunState,
    ticks: u64,
    observer: &mut dyn Observer,
    ranks: Option<&transport::Ranks>,
) -> Result<(RunState, RunTotals), Fault> {
    assert_eq!(agents.len(), net.n, "one agent per neuron");
    let block = ranks.map_or(0..net.n, |r| transport::rank_neurons(net.n, r.rank(), r.size()));
    assert!(
        !block.is_empty(),
        "more ranks than words of 64 neurons (see transport::check_ranks)"
    );
    let plan = Plan::within(block.clone(), layout);
    let agents = &mut agents[block];
    let mut parts: Vec<&mut [A]> = Vec::with_capacity(plan.threads);
    let mut rest = agents;
    for j in 0..plan.threads {
        let (a, b) = rest.split_at_mut(plan.thread_agents(j).len());
        parts.push(a);
        rest = b;
    }
    let mut hosts: Vec<AgentHost<A>> = parts
        .into_iter()
        .enumerate()
        .map(|(j, part)| AgentHost::new(part, plan.thread_agents(j).start))
        .collect();
    drive_on(net, &mut hosts, &plan, &net.alive_list(), state, ticks, observer, ranks)
}

/// [`drive`] over this process's transport: shared memory alone, or one
/// rank's share of a distributed run.
#[allow(clippy::too_many_arguments)]
fn drive_on<H: Host + Send>(
    net: &RuntimeNetwork,
    hosts: &mut [H],
    plan: &Plan,
    alive_list: &[usize],
    state: RunState,
    ticks: u64,
    observer: &mut dyn Observer,
    ranks: Option<&transport::Ranks>,
) -> Result<(RunState, RunTotals), Fault> {
    match ranks {
        None => {
            let transport = SharedMemory::new(&state.frame, state.tick, plan.shards, plan.threads);
            drive(net, hosts, plan, &transport, alive_list, state, ticks, observer)
        }
        Some(r) => {
            let transport = transport::ClusterTransport::new(&state.frame, state.tick, plan.shards, plan.threads, r);
            drive(net, hosts, plan, &transport, alive_list, state, ticks, observer)
        }
    }
}

/// Run the plan's threads (one per host; the first on the calling thread,
/// with the observer) from `state` for `ticks` ticks over `transport`.
#[allow(clippy::too_many_arguments)]
fn drive<H: Host + Send, T: Transport>(
    net: &RuntimeNetwork,
    hosts: &mut [H],
    plan: &Plan,
    transport: &T,
    alive_list: &[usize],
    state: RunState,
    ticks: u64,
    observer: &mut dyn Observer,
) -> Result<(RunState, RunTotals), Fault> {
    let start_count: u64 = state.frame.iter().map(|w| w.count_ones() as u64).sum();
    let ctx = Ctx {
        net,
        transport,
        plan,
        alive_list,
    };
    let end = state.tick + ticks;
    let (lead, others) = hosts.split_first_mut().expect("at least one thread");
    std::thread::scope(|scope| {
        let ctx = &ctx;
        let workers: Vec<_> = others
            .iter_mut()
            .enumerate()
            .map(|(i, host)| {
                let st = state.clone();
                let shards = plan.thread_shards[i + 1].clone();
                scope.spawn(move || ctx.team_loop(host, shards, st, start_count, end, &mut NoObserver, false))
            })
            .collect();
        let result = ctx.team_loop(
            lead,
            plan.thread_shards[0].clone(),
            state.clone(),
            start_count,
            end,
            observer,
            true,
        );
        settle(result, workers)
    })
}

/// The leading thread's result once the workers are joined, or the fault
/// that stopped the run (a panic rather than the threads it stopped).
pub(crate) fn settle<T>(
    lead: Result<T, Fault>,
    workers: Vec<std::thread::ScopedJoinHandle<'_, Result<T, Fault>>>,
) -> Result<T, Fault> {
    // Workers catch their panics, so joining cannot fail.
    let workers: Vec<_> = workers
        .into_iter()
        .map(|w| w.join().expect("tick threads catch their panics"))
        .collect();
    let all: Vec<_> = std::iter::once(&lead).chain(&workers).collect();
    match first_fault(&all) {
        Some(f) => Err(f),
        None => lead,
    }
}

/// How a layout splits the agents this process runs (all n, or an MPI
/// rank's block): shards of `per_shard` agents, threads that own contiguous
/// runs of shards (hence contiguous agent ranges).
#[derive(Clone, Debug)]
struct Plan {
    /// The agents this process runs.
    agents: std::ops::Range<usize>,
    shards: usize,
    threads: usize,
    per_shard: usize,
    thread_shards: Vec<std::ops::Range<usize>>,
}

impl Plan {
    fn new(n: usize, layout: Layout) -> Self {
        Self::within(0..n, layout)
    }

    /// The plan for the agents `agents` (non-empty).
    fn within(agents: std::ops::Range<usize>, layout: Layout) -> Self {
        let len = agents.len();
        let shards = layout.shards.clamp(1, len);
        let threads = layout.threads.clamp(1, shards);
        Plan {
            agents,
            shards,
            threads,
            per_shard: len.div_ceil(shards),
            thread_shards: (0..threads)
                .map(|j| (j * shards / threads)..((j + 1) * shards / threads))
                .collect(),
        }
    }

    /// The agents of shard `s` (empty for trailing shards of short plans).
    fn shard(&self, s: usize) -> std::ops::Range<usize> {
        let at = |s: usize| (self.agents.start + s * self.per_shard).min(self.agents.end);
        at(s)..at(s + 1)
    }

    /// The agents of thread `j`.
    fn thread_agents(&self, j: usize) -> std::ops::Range<usize> {
        let shards = &self.thread_shards[j];
        let at = |s: usize| (self.agents.start + s * self.per_shard).min(self.agents.end);
        at(shards.start)..at(shards.end)
    }
}

impl RuntimeNetwork {
    /// The living neurons, in order (the clock draws from them).
    fn alive_list(&self) -> Vec<usize> {
        (0..self.n).filter(|&k| self.alive[k]).collect()
    }
}

struct Ctx<'a, T: Transport> {
    net: &'a RuntimeNetwork,
    transport: &'a T,
    plan: &'a Plan,
    alive_list: &'a [usize],
}

impl<T: Transport> Ctx<'_, T> {
    /// The tick loop of one thread of the team. A panic in any tick is
    /// caught: the transport is abandoned (the other threads stop at their
    /// next exchange instead of waiting forever) and the fault names the
    /// tick and the agent deciding.
    #[allow(clippy::too_many_arguments)]
    fn team_loop<H: Host>(
        &self,
        host: &mut H,
        my_shards: std::ops::Range<usize>,
        mut st: RunState,
        mut count: u64,
        end: u64,
        observer: &mut dyn Observer,
        leader: bool,
    ) -> Result<(RunState, RunTotals), Fault> {
        let mut totals = RunTotals::default();
        let acting = std::cell::Cell::new(usize::MAX);
        if let Some(teacher) = st.teacher.as_mut() {
            teacher.start(st.x, self.transport.frame(st.tick), count as usize);
        }
        while st.tick < end {
            let t = st.tick;
            let ticked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.tick(
                    host,
                    &my_shards,
                    &mut st,
                    &mut count,
                    &mut totals,
                    observer,
                    leader,
                    &acting,
                )
            }));
            match ticked {
                Ok(true) => {}
                Ok(false) => return Err(Fault::Abandoned),
                Err(payload) => {
                    self.transport.abandon();
                    let agent = Some(acting.get()).filter(|&k| k != usize::MAX);
                    return Err(Fault::Panic {
                        tick: t,
                        agent,
                        message: panic_message(&*payload),
                    });
                }
            }
        }
        totals.ticks = st.tick;
        st.frame = self.transport.final_frame(st.tick);
        Ok((st, totals))
    }

    /// One tick of one thread; false when the run was abandoned.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn tick<H: Host>(
        &self,
        host: &mut H,
        my_shards: &std::ops::Range<usize>,
        st: &mut RunState,
        count: &mut u64,
        totals: &mut RunTotals,
        observer: &mut dyn Observer,
        leader: bool,
        acting: &std::cell::Cell<usize>,
    ) -> bool {
        let net = self.net;
        let t = st.tick;
        let actor = draw_actor(net, self.alive_list, &mut st.clock);
        let transport = self.transport;
        let frame = transport.frame(t);
        let broadcast = st.teacher.as_ref().map(|te| te.broadcast(t));
        let reward = reward_at(net, &mut st.decoder, st.x, frame, *count as usize);
        if leader {
            observer.record(&TickRecord {
                t,
                x: st.x,
                frame,
                actor,
                reward,
            });
        }
        totals.reward += reward;
        totals.spikes += *count;
        for s in my_shards.clone() {
            let range = self.plan.shard(s);
            let mut emit = |w, bits, mask| transport.publish_bits(t, w, bits, mask);
            let tick = Tick {
                t,
                x: st.x,
                frame,
                actor,
                broadcast: broadcast.as_ref(),
                acting,
            };
            let (delta, info) = host.step(net, range, &tick, &mut emit);
            acting.set(usize::MAX);
            transport.publish_totals(t, s, delta, info);
        }
        // Replicated control plane: every thread computes the same values.
        let Some((delta, info)) = transport.exchange(t) else {
            return false;
        };
        *count = (*count as i64 + delta) as u64;
        let info = info as f64 / FIXED;
        totals.info += info;
        st.x = next_input(net, st.x, transport.frame(t + 1), &mut st.environment);
        if let Some(teacher) = st.teacher.as_mut() {
            // Frame t+1 is complete (exchanged) and stays unwritten
            // until the exchange of tick t+1.
            teacher.step(t, reward, info, st.x, transport.frame(t + 1), *count as usize);
        }
        st.tick += 1;
        true
    }
}

/// The reward of state (x, σ): the scenario's, or — when the environment
/// holds an online decoder — the decoder's log-posterior, after which the
/// decoder learns from the state. Every engine computes rewards here.
#[inline]
pub(crate) fn reward_at(
    net: &RuntimeNetwork,
    decoder: &mut Option<OnlineDecoder>,
    x: usize,
    frame: &[u64],
    count: usize,
) -> f64 {
    match decoder {
        Some(d) => d.step(x, frame),
        None => net.reward.evaluate(net.n, x, frame, count),
    }
}

/// What one thread of the tick team executes, a shard at a time: a slice
/// of agents ([`AgentHost`]) or plain per-shard arrays ([`sparse`]).
pub(crate) trait Host {
    /// Advance the agents `range` (one shard) through `tick`, handing each
    /// word of their new bits to `emit(word, bits, mask)`; returns (change
    /// in spike count, Σ log-ratios in fixed point).
    fn step(
        &mut self,
        net: &RuntimeNetwork,
        range: std::ops::Range<usize>,
        tick: &Tick,
        emit: &mut dyn FnMut(usize, u64, u64),
    ) -> (i64, i64);
}

/// What every shard reads during tick t.
#[derive(Clone, Copy)]
pub(crate) struct Tick<'a> {
    pub t: u64,
    /// The input index x_t.
    pub x: usize,
    /// σ_t.
    pub frame: &'a [u64],
    /// The neuron the clock drew (asynchronous), or −1.
    pub actor: i64,
    /// The learning signal, when agents learn.
    pub broadcast: Option<&'a Broadcast>,
    /// The agent deciding now (set before each decision), so a panic can
    /// be blamed on it; `usize::MAX` outside decisions.
    pub acting: &'a std::cell::Cell<usize>,
}

/// Why an actor-hosted run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the run stopped: {0}")]
    Fault(#[from] Fault),
    #[error("a runtime actor stopped: {0}")]
    Mailbox(#[from] actix::MailboxError),
}

/// Why a run stopped before its last tick.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Fault {
    /// An agent (or the runtime around it) panicked.
    #[error("{} panicked at tick {tick}: {message}", agent.map_or("the runtime (outside any agent)".to_string(), |k| format!("agent {k}")))]
    Panic {
        tick: u64,
        agent: Option<usize>,
        message: String,
    },
    /// Another thread of the run failed first.
    #[error("stopped because another thread of the run failed")]
    Abandoned,
}

/// The text of a panic's payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// The fault to report among several threads' results: the panic, rather
/// than the threads it stopped.
pub(crate) fn first_fault<T>(results: &[&Result<T, Fault>]) -> Option<Fault> {
    let faults = results.iter().filter_map(|r| r.as_ref().err());
    faults
        .clone()
        .find(|f| matches!(f, Fault::Panic { .. }))
        .or_else(|| faults.clone().next())
        .cloned()
}

/// A thread's contiguous run of agents, the first of which is agent `first`.
pub(crate) struct AgentHost<'a, A> {
    agents: &'a mut [A],
    first: usize,
}

impl<'a, A> AgentHost<'a, A> {
    pub(crate) fn new(agents: &'a mut [A], first: usize) -> Self {
        AgentHost { agents, first }
    }
}

impl<A: Agent> Host for AgentHost<'_, A> {
    #[inline]
    fn step(
        &mut self,
        net: &RuntimeNetwork,
        range: std::ops::Range<usize>,
        tick: &Tick,
        emit: &mut dyn FnMut(usize, u64, u64),
    ) -> (i64, i64) {
        check_injected_panic(&range, tick);
        let local = &mut self.agents[range.start - self.first..range.end - self.first];
        step_shard(net, local, range, tick, emit)
    }
}

/// Panics as agent k would if the fault injection ([`injected_panic`])
/// names one of the shard's agents at this tick.
#[inline]
pub(crate) fn check_injected_panic(range: &std::ops::Range<usize>, tick: &Tick) {
    if let Some((k, t)) = injected_panic()
        && t == tick.t
        && range.contains(&k)
    {
        tick.acting.set(k);
        panic!("injected fault (MARLIN_FAULT_PANIC_AT={k}:{t})");
    }
}

/// Fault injection for the tests: with `MARLIN_FAULT_PANIC_AT=k:t` in the
/// environment, agent k panics at tick t wherever it runs (any engine,
/// thread or rank), as a bug in an agent would. Read once; one comparison
/// per shard and tick otherwise.
fn injected_panic() -> Option<(usize, u64)> {
    static AT: std::sync::OnceLock<Option<(usize, u64)>> = std::sync::OnceLock::new();
    *AT.get_or_init(|| {
        let v = std::env::var("MARLIN_FAULT_PANIC_AT").ok()?;
        let (k, t) = v.split_once(':')?;
        Some((k.trim().parse().ok()?, t.trim().parse().ok()?))
    })
}

/// The clock's draw: the acting neuron (asynchronous) or −1 (all may act).
fn draw_actor(net: &RuntimeNetwork, alive_list: &[usize], clock: &mut Stream) -> i64 {
    match net.update {
        UpdateScheme::Asynchronous => alive_list[clock.random_range(0..alive_list.len())] as i64,
        _ => -1,
    }
}

/// The environment's draw of x_{t+1}, after the neurons reached the state
/// `next` (which moves the input when the network drives it).
#[inline]
fn next_input(net: &RuntimeNetwork, x: usize, next: &[u64], env: &mut Stream) -> usize {
    match net.input.len() {
        1 => 0,
        _ => draw_input(net, x, next, env),
    }
}

/// [`next_input`] when there is a choice.
#[inline(never)]
fn draw_input(net: &RuntimeNetwork, x: usize, next: &[u64], env: &mut Stream) -> usize {
    let xs = net.input.len();
    let row = &net.input.chain_after(next)[x * xs..(x + 1) * xs];
    sample(row, env.random())
}

/// Advance one shard's agents by one tick, handing each word of their new
/// bits to `emit(word, bits, mask)`; returns (change in spike count, Σ
/// log-ratios in fixed point).
fn step_shard<A: Agent>(
    net: &RuntimeNetwork,
    agents: &mut [A],
    range: std::ops::Range<usize>,
    tick: &Tick,
    emit: &mut dyn FnMut(usize, u64, u64),
) -> (i64, i64) {
    let (frame, actor) = (tick.frame, tick.actor);
    let mut delta = 0i64;
    let mut info = 0i64;
    if net.update == UpdateScheme::Asynchronous {
        // Only the actor can change: copy this shard's bits word by word
        // and let the actor (if it is ours) decide its own.
        for w in range.start / 64..=(range.end - 1) / 64 {
            let lo = range.start.max(w * 64);
            let hi = range.end.min((w + 1) * 64);
            let mask = word_mask(lo % 64, hi - lo);
            let mut word = frame[w] & mask;
            if actor >= lo as i64 && actor < hi as i64 {
                let k = actor as usize;
                let bit = 1u64 << (k % 64);
                let own = word & bit != 0;
                let (fired, lr) = decide(net, &mut agents[k - range.start], k, tick, own);
                info += lr;
                delta += fired as i64 - own as i64;
                word = if fired { word | bit } else { word & !bit };
            }
            emit(w, word, mask);
        }
        return (delta, info);
    }
    let mut words = WordWriter::new(range.start, emit);
    for (i, agent) in agents.iter_mut().enumerate() {
        let k = range.start + i;
        let own = frame[k / 64] >> (k % 64) & 1 == 1;
        let acts = net.alive[k]
            && match net.update {
                UpdateScheme::RandomPartial { q } => q >= 1.0 || agent.rng().random::<f64>() < q,
                _ => true,
            };
        let fired = if acts {
            let (fired, lr) = decide(net, agent, k, tick, own);
            info += lr;
            fired
        } else {
            own && net.alive[k]
        };
        delta += fired as i64 - own as i64;
        words.put(k, fired);
    }
    words.finish();
    (delta, info)
}

/// The bits `from .. from + len` of a word.
#[inline]
pub(crate) fn word_mask(from: usize, len: usize) -> u64 {
    if len == 64 {
        u64::MAX
    } else {
        ((1u64 << len) - 1) << from
    }
}

/// Collects a shard's new bits word by word and hands each word on.
struct WordWriter<'e> {
    word: usize,
    bits: u64,
    mask: u64,
    emit: &'e mut dyn FnMut(usize, u64, u64),
}

impl<'e> WordWriter<'e> {
    fn new(first: usize, emit: &'e mut dyn FnMut(usize, u64, u64)) -> Self {
        WordWriter {
            word: first / 64,
            bits: 0,
            mask: 0,
            emit,
        }
    }

    #[inline]
    fn put(&mut self, k: usize, fired: bool) {
        if k / 64 != self.word {
            (self.emit)(self.word, self.bits, self.mask);
            self.word = k / 64;
            self.bits = 0;
            self.mask = 0;
        }
        let bit = 1u64 << (k % 64);
        if fired {
            self.bits |= bit;
        }
        self.mask |= bit;
    }

    fn finish(self) {
        (self.emit)(self.word, self.bits, self.mask);
    }
}

/// Agent k acts: it catches up with the broadcast (when learning),
/// observes, the runtime draws its action from the agent's own stream,
/// the agent learns from it, and it reports log(π(a|o)/p(a)) in fixed point.
#[inline]
fn decide<A: Agent>(net: &RuntimeNetwork, agent: &mut A, k: usize, tick: &Tick, own: bool) -> (bool, i64) {
    tick.acting.set(k);
    let obs = net.observation(k, tick.t, tick.x, tick.frame, own);
    let broadcast = tick.broadcast;
    if let Some(b) = broadcast {
        agent.catch_up(b);
    }
    let p = agent.fire_probability(&obs);
    let fired = agent.rng().random::<f64>() < p;
    let lr = log_ratio(p, agent.prior(), fired);
    if let Some(b) = broadcast {
        agent.learn(&obs, fired, p, lr, b);
    }
    (fired, to_fixed(lr))
}

/// `log(π(a)/p(a))` of an action drawn with firing probability `p` against
/// the prior `p(1) = prior`, nats.
#[inline]
pub(crate) fn log_ratio(p: f64, prior: f64, fired: bool) -> f64 {
    if fired {
        (p / prior).ln()
    } else {
        ((1.0 - p) / (1.0 - prior)).ln()
    }
}

/// The index drawn from the distribution `probs` by the uniform number `u`
/// (inverse CDF); if rounding leaves `u` above the total, the last index with
/// positive probability.
fn sample(probs: &[f64], u: f64) -> usize {
    let mut acc = 0.0;
    for (i, p) in probs.iter().enumerate() {
        acc += p;
        if u < acc {
            return i;
        }
    }
    probs.iter().rposition(|&p| p > 0.0).unwrap_or(probs.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::sample;

    #[test]
    fn sample_inverts_the_cdf_and_survives_rounding() {
        let p = [0.2, 0.3, 0.5];
        assert_eq!(sample(&p, 0.1), 0);
        assert_eq!(sample(&p, 0.25), 1);
        assert_eq!(sample(&p, 0.99), 2);
        // u at or above the (rounded) total: the last index with mass.
        assert_eq!(sample(&p, 1.0), 2);
        assert_eq!(sample(&[0.5, 0.5, 0.0], 1.0), 1);
    }
}
