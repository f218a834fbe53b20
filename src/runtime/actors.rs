//! The actor engine: the tick of [`super::run`] executed by actix actors
//! exchanging messages — shard actors (down to one agent each: one actor per
//! neuron) on a set of arbiters, and the control plane as actors too: the
//! **clock** (drives the ticks, draws the acting neuron, gathers the shards'
//! spikes), the **environment** (input chain, reward), the **critic** (the
//! learning teacher: ř, ĝ, V̂, the broadcast) and the **observer** (records).
//!
//! Every tick costs one message round trip per shard plus three control
//! messages, so this engine is for clarity, for agents that must be actors,
//! and for measuring what messages cost (docs/measurements.md: 230–640 ns each):
//! the barrier engine ([`super::run`]) is the fast path. Both engines draw
//! the same numbers from the same streams in the same order, so they produce
//! **bit-identical** trajectories, totals and learned parameters (tested).

use super::{
    FIXED, Observer, RunState, RunTotals, RuntimeNetwork, Tick, TickRecord, draw_actor, next_input, step_shard,
};
use crate::agents::{Agent, Broadcast};
use crate::learn::Teacher;
use crate::learn::decoder::OnlineDecoder;
use crate::rng::Stream;
use actix::prelude::*;
use std::sync::Arc;

/// How the actor engine lays agents out.
#[derive(Clone, Copy, Debug)]
pub struct ActorLayout {
    /// Agents per shard actor (1: one actor per neuron).
    pub agents_per_shard: usize,
    /// Arbiters (threads) the shard actors are spread over, round robin.
    pub arbiters: usize,
}

// ---------------------------------------------------------------------------
// Shards

/// One tick for a shard: the state σ_t and what the control plane decided.
#[derive(Clone)]
struct Step {
    t: u64,
    x: usize,
    frame: Arc<Vec<u64>>,
    actor: i64,
    broadcast: Option<Broadcast>,
}

/// The shard's new bits: (word index, bits, mask) for the words it owns
/// part of, the change of its spike count and its log-ratios (fixed point).
struct StepDone {
    words: Vec<(usize, u64, u64)>,
    delta: i64,
    info: i64,
}

impl Message for Step {
    type Result = StepDone;
}

/// Hand the shard's agents back (at the end of a run).
struct TakeAgents<A>(std::marker::PhantomData<A>);

impl<A: 'static> Message for TakeAgents<A> {
    type Result = Vec<A>;
}

struct ShardActor<A: Agent> {
    net: Arc<RuntimeNetwork>,
    range: std::ops::Range<usize>,
    agents: Vec<A>,
}

impl<A: Agent + Unpin + 'static> Actor for ShardActor<A> {
    type Context = Context<Self>;
}

impl<A: Agent + Unpin + 'static> Handler<Step> for ShardActor<A> {
    type Result = MessageResult<Step>;

    fn handle(&mut self, m: Step, _: &mut Context<Self>) -> Self::Result {
        let mut words = Vec::new();
        let acting = std::cell::Cell::new(usize::MAX);
        let tick = Tick {
            t: m.t,
            x: m.x,
            frame: &m.frame,
            actor: m.actor,
            broadcast: m.broadcast.as_ref(),
            acting: &acting,
        };
        let (delta, info) = step_shard(
            &self.net,
            &mut self.agents,
            self.range.clone(),
            &tick,
            &mut |w, bits, mask| words.push((w, bits, mask)),
        );
        MessageResult(StepDone { words, delta, info })
    }
}

impl<A: Agent + Unpin + 'static> Handler<TakeAgents<A>> for ShardActor<A> {
    type Result = MessageResult<TakeAgents<A>>;

    fn handle(&mut self, _: TakeAgents<A>, _: &mut Context<Self>) -> Self::Result {
        MessageResult(std::mem::take(&mut self.agents))
    }
}

// ---------------------------------------------------------------------------
// Control plane

/// The environment: given s_t, the reward r(s_t) ([`Reward`]); given x_t
/// and the neurons' new state σ_{t+1}, the next input x_{t+1} ([`Move`]:
/// a network may move its input).
struct EnvironmentActor {
    net: Arc<RuntimeNetwork>,
    stream: Stream,
    /// The online decoder whose log-posterior is the reward, if any.
    decoder: Option<OnlineDecoder>,
}

struct Reward {
    x: usize,
    frame: Arc<Vec<u64>>,
    count: usize,
}

impl Message for Reward {
    type Result = f64;
}

struct Move {
    x: usize,
    next: Arc<Vec<u64>>,
}

impl Message for Move {
    type Result = usize;
}

impl Actor for EnvironmentActor {
    type Context = Context<Self>;
}

impl Handler<Reward> for EnvironmentActor {
    type Result = f64;

    fn handle(&mut self, m: Reward, _: &mut Context<Self>) -> f64 {
        super::reward_at(&self.net, &mut self.decoder, m.x, &m.frame, m.count)
    }
}

impl Handler<Move> for EnvironmentActor {
    type Result = usize;

    fn handle(&mut self, m: Move, _: &mut Context<Self>) -> usize {
        next_input(&self.net, m.x, &m.next, &mut self.stream)
    }
}

/// Hand back the environment's stream and decoder at the end of a run.
struct GiveEnvironment;

impl Message for GiveEnvironment {
    type Result = (Stream, Option<OnlineDecoder>);
}

impl Handler<GiveEnvironment> for EnvironmentActor {
    type Result = MessageResult<GiveEnvironment>;

    fn handle(&mut self, _: GiveEnvironment, _: &mut Context<Self>) -> Self::Result {
        MessageResult((self.stream.clone(), self.decoder.take()))
    }
}

/// The critic: the learning teacher (ř, ĝ, V̂) as an actor.
struct CriticActor {
    teacher: Teacher,
}

impl Actor for CriticActor {
    type Context = Context<Self>;
}

/// Locate the start state; answers the first tick's broadcast.
struct Begin {
    t: u64,
    x: usize,
    frame: Arc<Vec<u64>>,
    count: usize,
}

impl Message for Begin {
    type Result = Broadcast;
}

impl Handler<Begin> for CriticActor {
    type Result = MessageResult<Begin>;

    fn handle(&mut self, m: Begin, _: &mut Context<Self>) -> Self::Result {
        self.teacher.start(m.x, &m.frame, m.count);
        MessageResult(self.teacher.broadcast(m.t))
    }
}

/// The end of tick t; answers tick t+1's broadcast.
struct Learn {
    t: u64,
    reward: f64,
    info: f64,
    x: usize,
    frame: Arc<Vec<u64>>,
    count: usize,
}

impl Message for Learn {
    type Result = Broadcast;
}

impl Handler<Learn> for CriticActor {
    type Result = MessageResult<Learn>;

    fn handle(&mut self, m: Learn, _: &mut Context<Self>) -> Self::Result {
        self.teacher.step(m.t, m.reward, m.info, m.x, &m.frame, m.count);
        MessageResult(self.teacher.broadcast(m.t + 1))
    }
}

struct GiveTeacher;

impl Message for GiveTeacher {
    type Result = Teacher;
}

impl Handler<GiveTeacher> for CriticActor {
    type Result = MessageResult<GiveTeacher>;

    fn handle(&mut self, _: GiveTeacher, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.teacher.clone())
    }
}

/// The observer: receives every tick, in order, and hands its `Observer` back.
struct ObserverActor<O: Observer> {
    observer: Option<O>,
}

impl<O: Observer + Unpin + 'static> Actor for ObserverActor<O> {
    type Context = Context<Self>;
}

struct Record {
    t: u64,
    x: usize,
    frame: Arc<Vec<u64>>,
    actor: i64,
    reward: f64,
}

impl Message for Record {
    type Result = ();
}

impl<O: Observer + Unpin + 'static> Handler<Record> for ObserverActor<O> {
    type Result = ();

    fn handle(&mut self, m: Record, _: &mut Context<Self>) {
        if let Some(o) = self.observer.as_mut() {
            o.record(&TickRecord {
                t: m.t,
                x: m.x,
                frame: &m.frame,
                actor: m.actor,
                reward: m.reward,
            });
        }
    }
}

struct GiveObserver<O>(std::marker::PhantomData<O>);

impl<O: Observer + 'static> Message for GiveObserver<O> {
    type Result = O;
}

impl<O: Observer + Unpin + 'static> Handler<GiveObserver<O>> for ObserverActor<O> {
    type Result = MessageResult<GiveObserver<O>>;

    fn handle(&mut self, _: GiveObserver<O>, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.observer.take().expect("the observer is handed back once"))
    }
}

/// The clock: drives `ticks` ticks from a state; answers with the clock's
/// stream, the tick, x, the frame and the totals.
struct ClockActor<A: Agent + Unpin + 'static> {
    shards: Vec<Addr<ShardActor<A>>>,
    environment: Addr<EnvironmentActor>,
    critic: Option<Addr<CriticActor>>,
    observer: Recipient<Record>,
    net: Arc<RuntimeNetwork>,
    alive_list: Vec<usize>,
}

impl<A: Agent + Unpin + 'static> Actor for ClockActor<A> {
    type Context = Context<Self>;
}

struct Drive {
    clock: Stream,
    tick: u64,
    x: usize,
    frame: Vec<u64>,
    ticks: u64,
}

struct Driven {
    clock: Stream,
    tick: u64,
    x: usize,
    frame: Vec<u64>,
    totals: RunTotals,
}

impl Message for Drive {
    type Result = Result<Driven, MailboxError>;
}

impl<A: Agent + Unpin + 'static> Handler<Drive> for ClockActor<A> {
    type Result = ResponseFuture<Result<Driven, MailboxError>>;

    fn handle(&mut self, m: Drive, _: &mut Context<Self>) -> Self::Result {
        let shards = self.shards.clone();
        let environment = self.environment.clone();
        let critic = self.critic.clone();
        let observer = self.observer.clone();
        let net = self.net.clone();
        let alive_list = self.alive_list.clone();
        Box::pin(async move {
            let Drive {
                mut clock,
                mut tick,
                mut x,
                frame,
                ticks,
            } = m;
            let mut frame = Arc::new(frame);
            let mut count = frame.iter().map(|w| w.count_ones() as usize).sum::<usize>();
            let mut totals = RunTotals::default();
            let mut broadcast = match &critic {
                Some(c) => Some(
                    c.send(Begin {
                        t: tick,
                        x,
                        frame: frame.clone(),
                        count,
                    })
                    .await?,
                ),
                None => None,
            };
            let end = tick + ticks;
            while tick < end {
                let actor = draw_actor(&net, &alive_list, &mut clock);
                let reward = environment
                    .send(Reward {
                        x,
                        frame: frame.clone(),
                        count,
                    })
                    .await?;
                observer.do_send(Record {
                    t: tick,
                    x,
                    frame: frame.clone(),
                    actor,
                    reward,
                });
                totals.reward += reward;
                totals.spikes += count as u64;
                let step = Step {
                    t: tick,
                    x,
                    frame: frame.clone(),
                    actor,
                    broadcast,
                };
                // Every shard's message is queued before any answer is
                // awaited, so shards on different arbiters work in parallel.
                let requests: Vec<_> = shards.iter().map(|s| s.send(step.clone())).collect();
                let mut next = vec![0u64; frame.len()];
                let (mut delta, mut info) = (0i64, 0i64);
                for r in requests {
                    let done = r.await?;
                    for (w, bits, mask) in done.words {
                        next[w] = (next[w] & !mask) | bits;
                    }
                    delta += done.delta;
                    info += done.info;
                }
                count = (count as i64 + delta) as usize;
                let info = info as f64 / FIXED;
                totals.info += info;
                frame = Arc::new(next);
                let x_next = environment.send(Move { x, next: frame.clone() }).await?;
                if let Some(c) = &critic {
                    broadcast = Some(
                        c.send(Learn {
                            t: tick,
                            reward,
                            info,
                            x: x_next,
                            frame: frame.clone(),
                            count,
                        })
                        .await?,
                    );
                }
                x = x_next;
                tick += 1;
            }
            totals.ticks = tick;
            Ok(Driven {
                clock,
                tick,
                x,
                frame: Arc::try_unwrap(frame).unwrap_or_else(|a| (*a).clone()),
                totals,
            })
        })
    }
}

/// What a run of the actor engine gives back: the agents, the state after
/// the last tick, the totals and the observer.
pub type ActorRun<A, O> = (Vec<A>, RunState, RunTotals, O);

/// Run `ticks` ticks on the actor engine inside a running actix system
/// (`Engine::Actors(..).run` starts one). Same contract as [`super::run`]
/// (agents in, the state after the last tick and the totals out; the
/// observer is handed back), and the same results bit for bit.
pub async fn run_actors<A, O>(
    net: &RuntimeNetwork,
    agents: Vec<A>,
    layout: ActorLayout,
    state: RunState,
    ticks: u64,
    observer: O,
) -> Result<ActorRun<A, O>, MailboxError>
where
    A: Agent + Unpin + 'static,
    O: Observer + Unpin + 'static,
{
    assert_eq!(agents.len(), net.n, "one agent per neuron");
    let per_shard = layout.agents_per_shard.clamp(1, net.n);
    let net = Arc::new(net.clone());
    {
        let arbiters: Vec<Arbiter> = (0..layout.arbiters.max(1)).map(|_| Arbiter::new()).collect();
        let mut shards = Vec::new();
        let mut rest = agents;
        let mut start = 0;
        while !rest.is_empty() {
            let tail = rest.split_off(per_shard.min(rest.len()));
            let block = std::mem::replace(&mut rest, tail);
            let range = start..start + block.len();
            start = range.end;
            let actor = ShardActor {
                net: net.clone(),
                range,
                agents: block,
            };
            let arbiter = &arbiters[shards.len() % arbiters.len()];
            shards.push(ShardActor::start_in_arbiter(&arbiter.handle(), move |_| actor));
        }
        let RunState {
            tick,
            x,
            frame,
            clock,
            environment,
            teacher,
            decoder,
        } = state;
        let environment = EnvironmentActor {
            net: net.clone(),
            stream: environment,
            decoder,
        }
        .start();
        let critic = teacher.map(|teacher| CriticActor { teacher }.start());
        let observer = ObserverActor {
            observer: Some(observer),
        }
        .start();
        let clock_actor = ClockActor {
            shards: shards.clone(),
            environment: environment.clone(),
            critic: critic.clone(),
            observer: observer.clone().recipient(),
            net: net.clone(),
            alive_list: (0..net.n).filter(|&k| net.alive[k]).collect(),
        }
        .start();
        let driven = clock_actor
            .send(Drive {
                clock,
                tick,
                x,
                frame,
                ticks,
            })
            .await??;
        let mut agents = Vec::with_capacity(net.n);
        for s in &shards {
            agents.extend(s.send(TakeAgents(std::marker::PhantomData)).await?);
        }
        let teacher = match &critic {
            Some(c) => Some(c.send(GiveTeacher).await?),
            None => None,
        };
        let (environment, decoder) = environment.send(GiveEnvironment).await?;
        let observer = observer.send(GiveObserver(std::marker::PhantomData)).await?;
        for a in &arbiters {
            a.stop();
        }
        let state = RunState {
            tick: driven.tick,
            x: driven.x,
            frame: driven.frame,
            clock: driven.clock,
            environment,
            teacher,
            decoder,
        };
        Ok((agents, state, driven.totals, observer))
    }
}
