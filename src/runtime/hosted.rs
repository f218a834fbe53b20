//! The barrier engine hosted by actix: one **shard-host actor per thread**
//! (an actix actor on its own arbiter, one per core by default) owns a
//! contiguous run of shards — blocks of agents, down to one agent per shard —
//! delivers each tick's frame to its agents by direct calls, and exchanges
//! spikes with the other hosts through the [`Transport`](super::transport)
//! (shared double-buffered frames and a barrier). The observer travels with
//! the host that owns the first shard and comes back at the end.
//!
//! Each host runs the very same tick loop as [`super::run`] (the threads of
//! `run` are scoped threads instead of arbiters), so results are identical bit
//! for bit. What the actor hosting adds: agents live inside actors between
//! runs' spans, and the runtime is driven by messages (`Span`), like the
//! rest of the control plane.

use super::transport::SharedMemory;
use super::{AgentHost, Ctx, Fault, Layout, NoObserver, Observer, Plan, RunError, RunState, RunTotals, RuntimeNetwork};
use crate::agents::Agent;
use actix::prelude::*;
use std::sync::Arc;

struct HostActor<A: Agent> {
    net: Arc<RuntimeNetwork>,
    alive_list: Arc<Vec<usize>>,
    agents: Vec<A>,
    shards: std::ops::Range<usize>,
    first: usize,
    plan: Arc<Plan>,
}

impl<A: Agent + Unpin + 'static> Actor for HostActor<A> {
    type Context = Context<Self>;
}

/// Run this host's shards from `state` to tick `end`, meeting the other
/// hosts at the transport's barrier every tick.
struct Span<O> {
    transport: Arc<SharedMemory>,
    state: RunState,
    start_count: u64,
    end: u64,
    observer: Option<O>,
}

impl<O: Observer + 'static> Message for Span<O> {
    type Result = (Result<(RunState, RunTotals), Fault>, Option<O>);
}

impl<A: Agent + Unpin + 'static, O: Observer + 'static> Handler<Span<O>> for HostActor<A> {
    type Result = MessageResult<Span<O>>;

    fn handle(&mut self, m: Span<O>, _: &mut Context<Self>) -> Self::Result {
        let ctx = Ctx {
            net: &self.net,
            transport: &*m.transport,
            plan: &self.plan,
            alive_list: &self.alive_list,
        };
        let mut observer = m.observer;
        let mut host = AgentHost::new(&mut self.agents, self.first);
        let shards = self.shards.clone();
        let ran = match observer.as_mut() {
            Some(o) => ctx.team_loop(&mut host, shards, m.state, m.start_count, m.end, o, true),
            None => ctx.team_loop(&mut host, shards, m.state, m.start_count, m.end, &mut NoObserver, false),
        };
        MessageResult((ran, observer))
    }
}

/// Hand the host's agents back.
struct Release<A>(std::marker::PhantomData<A>);

impl<A: 'static> Message for Release<A> {
    type Result = Vec<A>;
}

impl<A: Agent + Unpin + 'static> Handler<Release<A>> for HostActor<A> {
    type Result = MessageResult<Release<A>>;

    fn handle(&mut self, _: Release<A>, _: &mut Context<Self>) -> Self::Result {
        MessageResult(std::mem::take(&mut self.agents))
    }
}

/// What a hosted run gives back: the agents, the state after the last tick,
/// the totals and the observer.
pub type HostedRun<A, O> = (Vec<A>, RunState, RunTotals, O);

/// [`super::run`] with its threads as shard-host actors, inside a running
/// actix system (`Engine::Hosted(..).run` starts one).
pub async fn run_hosted<A, O>(
    net: &RuntimeNetwork,
    mut agents: Vec<A>,
    layout: Layout,
    state: RunState,
    ticks: u64,
    observer: O,
) -> Result<HostedRun<A, O>, RunError>
where
    A: Agent + Unpin + 'static,
    O: Observer + Unpin + 'static,
{
    assert_eq!(agents.len(), net.n, "one agent per neuron");
    let plan = Arc::new(Plan::new(net.n, layout));
    let net = Arc::new(net.clone());
    let alive_list = Arc::new(net.alive_list());
    let transport = Arc::new(SharedMemory::new(&state.frame, state.tick, plan.shards, plan.threads));
    let start_count: u64 = state.frame.iter().map(|w| w.count_ones() as u64).sum();
    let end = state.tick + ticks;
    // One arbiter (thread) per host: every host blocks in the barrier while
    // it runs its span, so two hosts must never share a thread.
    let arbiters: Vec<Arbiter> = (0..plan.threads).map(|_| Arbiter::new()).collect();
    let mut hosts = Vec::with_capacity(plan.threads);
    for (j, arbiter) in arbiters.iter().enumerate() {
        let rest = agents.split_off(plan.thread_agents(j).len());
        let block = std::mem::replace(&mut agents, rest);
        let host = HostActor {
            net: net.clone(),
            alive_list: alive_list.clone(),
            agents: block,
            shards: plan.thread_shards[j].clone(),
            first: plan.thread_agents(j).start,
            plan: plan.clone(),
        };
        hosts.push(HostActor::start_in_arbiter(&arbiter.handle(), move |_| host));
    }
    // Queue every span before awaiting any: the hosts run concurrently.
    let mut observer = Some(observer);
    let spans: Vec<_> = hosts
        .iter()
        .enumerate()
        .map(|(j, h)| {
            h.send(Span {
                transport: transport.clone(),
                state: state.clone(),
                start_count,
                end,
                observer: if j == 0 { observer.take() } else { None },
            })
        })
        .collect();
    // A host whose agent panicked releases the others (the transport is
    // abandoned); every span answers, and the first panic is the error.
    let mut results = Vec::with_capacity(spans.len());
    for span in spans {
        results.push(span.await?);
    }
    let all: Vec<_> = results.iter().map(|(ran, _)| ran).collect();
    if let Some(fault) = super::first_fault(&all) {
        for a in &arbiters {
            a.stop();
        }
        return Err(fault.into());
    }
    let mut agents = Vec::with_capacity(net.n);
    for h in &hosts {
        agents.extend(h.send(Release(std::marker::PhantomData)).await?);
    }
    for a in &arbiters {
        a.stop();
    }
    let (ran, observer) = results.swap_remove(0);
    let (state, totals) = ran.expect("no fault");
    Ok((agents, state, totals, observer.expect("host 0 hands the observer back")))
}
