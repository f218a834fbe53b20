//! Maze walkers as actors of the runtime (theory §7, many agents): each
//! walker is an agent with its own cell, policy table, running marginal
//! and RNG stream ([`crate::learn::walkers::Walker`]); every tick it
//! observes the cells its sight allows, moves, and publishes its new cell
//! (and the move it chose) to its peers; the reward and the critic's
//! broadcast are the replicated control plane, as for neurons.
//!
//! Walkers run on the same machinery as neurons: shards of walkers on a
//! team of threads that meet at the [`Transport`]'s barrier once per tick,
//! and across MPI ranks through the same all-gather. A walker's frame word
//! holds its cell (low 32 bits) and the move that took it there (high
//! bits, 0 before its first move), so the observer — on the leading thread
//! — records (cells, moves, reward) per tick without asking the walkers.
//! Every walker draws only from its own stream and the per-tick sum of the
//! walkers' log-ratios is in fixed point, so a run equals the plain loop
//! [`WalkerTeam::run`] bit for bit whatever the shards, threads or ranks.

use super::transport::{self, Ranks, SharedMemory, Transport};
use super::{Fault, Layout, Plan, panic_message};
use crate::agents::{FIXED, to_fixed};
use crate::learn::walkers::{Stretch, Walker, WalkerTeacher, WalkerTeam};
use std::cell::Cell;

/// One tick as the observer sees it.
pub struct WalkerTick<'a> {
    pub t: u64,
    /// Every walker's state (cell index among the free cells) at tick t.
    pub cells: &'a [usize],
    /// The move each walker chose at tick t (N, E, S, W, stay).
    pub actions: &'a [usize],
    /// The team reward r(s_t).
    pub reward: f64,
}

/// Receives every tick, on one thread, in order.
pub trait WalkerObserver: Send {
    fn record(&mut self, tick: &WalkerTick);
}

impl<F: FnMut(&WalkerTick) + Send> WalkerObserver for F {
    fn record(&mut self, tick: &WalkerTick) {
        self(tick)
    }
}

const CELL_MASK: u64 = 0xffff_ffff;

fn encode(cell: usize, action: usize) -> u64 {
    cell as u64 | (action as u64 + 1) << 32
}

/// The (cell, move) words of a frame into `cells` and `actions`.
fn decode(frame: &[u64], cells: &mut [usize], actions: &mut [usize]) {
    for (k, &w) in frame.iter().enumerate() {
        cells[k] = (w & CELL_MASK) as usize;
        actions[k] = ((w >> 32) as usize).saturating_sub(1);
    }
}

/// The walkers rank `rank` of `size` runs: one frame word per walker, so
/// the ranks' blocks of words ([`transport::rank_words`]).
pub fn rank_walkers(agents: usize, rank: usize, size: usize) -> std::ops::Range<usize> {
    transport::rank_words(agents * 64, rank, size)
}

/// Why `size` ranks cannot share `agents` walkers, if they cannot.
pub fn check_ranks(agents: usize, size: usize) -> Result<(), String> {
    if size > agents {
        return Err(format!(
            "{}; allowed: at most {} (got {size})",
            crate::text::count(agents as u64, "walker"),
            crate::text::count(agents as u64, "MPI rank")
        ));
    }
    Ok(())
}

/// The default layout for `agents` walkers: one thread below 4096 walkers
/// (a walker's move costs tens of nanoseconds, a barrier about a
/// microsecond), every core above.
pub fn layout_for(agents: usize, threads: Option<usize>, ranks: Option<&Ranks>) -> Layout {
    Layout::for_network(agents, None, threads, ranks)
}

/// Run the team for `ticks` ticks as actors, `layout` within this process
/// and, with `ranks`, this process's block of walkers ([`rank_walkers`]):
/// the others are left as they were, but every rank ends with every
/// walker's cell, the teacher and the statistics. The observer sees every
/// tick (on every rank). Returns the stretch's statistics, as
/// [`WalkerTeam::run`] does, or the fault that stopped the run.
pub fn run(
    team: &mut WalkerTeam,
    layout: Layout,
    ticks: u64,
    observer: &mut dyn WalkerObserver,
    ranks: Option<&Ranks>,
) -> Result<Stretch, Fault> {
    let m = team.spec.agents;
    let block = ranks.map_or(0..m, |r| rank_walkers(m, r.rank(), r.size()));
    assert!(!block.is_empty(), "more ranks than walkers (see walkers::check_ranks)");
    let plan = Plan::within(block.clone(), layout);
    let frame: Vec<u64> = team.cells.iter().map(|&c| c as u64).collect();
    let ctx = Ctx {
        team_view: View {
            maze: team.maze,
            spec: &team.spec,
            sight: &team.sight,
        },
        plan: &plan,
        prior_rate: team.spec.marginal_rate(team.teacher.is_some()),
    };
    let start = Start {
        tick: team.tick,
        cells: team.cells.clone(),
        teacher: team.teacher.clone(),
    };
    let mut parts: Vec<&mut [Walker]> = Vec::with_capacity(plan.threads);
    let mut rest = &mut team.walkers[block];
    for j in 0..plan.threads {
        let (a, b) = rest.split_at_mut(plan.thread_agents(j).len());
        parts.push(a);
        rest = b;
    }
    let end = match ranks {
        None => {
            let tr = SharedMemory::new(&frame, start.tick, plan.shards, plan.threads);
            ctx.drive(&tr, parts, &start, ticks, observer)
        }
        Some(r) => {
            let tr = transport::ClusterTransport::new(&frame, start.tick, plan.shards, plan.threads, r);
            ctx.drive(&tr, parts, &start, ticks, observer)
        }
    }?;
    team.cells = end.cells;
    team.teacher = end.teacher;
    team.tick = end.tick;
    Ok(Stretch::from_sums(ticks, end.reward, end.info, team.spec.lambda))
}

/// What the threads read.
struct View<'a> {
    maze: &'a crate::maze::Maze,
    spec: &'a crate::learn::walkers::WalkerLearning,
    sight: &'a crate::learn::walkers::Sight,
}

struct Ctx<'a> {
    team_view: View<'a>,
    plan: &'a Plan,
    prior_rate: f64,
}

#[derive(Clone)]
struct Start {
    tick: u64,
    cells: Vec<usize>,
    teacher: Option<WalkerTeacher>,
}

struct End {
    tick: u64,
    cells: Vec<usize>,
    teacher: Option<WalkerTeacher>,
    reward: f64,
    info: f64,
}

impl Ctx<'_> {
    fn drive<T: Transport>(
        &self,
        transport: &T,
        mut parts: Vec<&mut [Walker]>,
        start: &Start,
        ticks: u64,
        observer: &mut dyn WalkerObserver,
    ) -> Result<End, Fault> {
        let firsts: Vec<usize> = (0..self.plan.threads)
            .map(|j| self.plan.thread_agents(j).start)
            .collect();
        let (lead, others) = parts.split_first_mut().expect("at least one thread");
        std::thread::scope(|scope| {
            let workers: Vec<_> = others
                .iter_mut()
                .enumerate()
                .map(|(i, part)| {
                    let st = start.clone();
                    let first = firsts[i + 1];
                    scope.spawn(move || self.thread_loop(transport, part, first, i + 1, st, ticks, None))
                })
                .collect();
            let result = self.thread_loop(transport, lead, firsts[0], 0, start.clone(), ticks, Some(observer));
            super::settle(result, workers)
        })
    }

    /// The tick loop of thread `j`, which runs `walkers` (the first is
    /// walker `first`). A panic is caught, the transport abandoned (the
    /// other threads stop at their next exchange) and the walker named.
    #[allow(clippy::too_many_arguments)]
    fn thread_loop<T: Transport>(
        &self,
        transport: &T,
        walkers: &mut [Walker],
        first: usize,
        j: usize,
        st: Start,
        ticks: u64,
        mut observer: Option<&mut dyn WalkerObserver>,
    ) -> Result<End, Fault> {
        let View { maze, spec, sight } = &self.team_view;
        let m = spec.agents;
        let (mut cells, mut next) = (st.cells, vec![0; m]);
        let mut actions = vec![0; m];
        let mut teacher = st.teacher;
        let (mut reward_sum, mut info_sum) = (0.0, 0.0);
        let acting = Cell::new(usize::MAX);
        let shards = self.plan.thread_shards[j].clone();
        let mut t = st.tick;
        while t < st.tick + ticks {
            let ticked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let r = spec.goal.reward(maze, &cells);
                let done = spec.goal.done(maze, &cells);
                for s in shards.clone() {
                    let mut info = 0i64;
                    for k in self.plan.shard(s) {
                        acting.set(k);
                        let w = &mut walkers[k - first];
                        let (a, lr) = w.act(sight.observe(k, &cells), self.prior_rate);
                        info += to_fixed(lr);
                        let cell = w.go(maze, cells[k], a, done);
                        transport.publish_bits(t, k, encode(cell, a), u64::MAX);
                    }
                    acting.set(usize::MAX);
                    transport.publish_totals(t, s, 0, info);
                }
                let (_, info) = transport.exchange(t)?;
                let info = info as f64 / FIXED;
                decode(transport.frame(t + 1), &mut next, &mut actions);
                if let Some(obs) = observer.as_mut() {
                    obs.record(&WalkerTick {
                        t,
                        cells: &cells,
                        actions: &actions,
                        reward: r,
                    });
                }
                reward_sum += r;
                info_sum += info;
                if let Some(teacher) = teacher.as_mut() {
                    let step = teacher.step(maze, t, r, info, &cells, &next);
                    walkers.iter_mut().for_each(|w| w.learn(step));
                }
                Some(())
            }));
            match ticked {
                Ok(Some(())) => {}
                Ok(None) => return Err(Fault::Abandoned),
                Err(payload) => {
                    transport.abandon();
                    return Err(Fault::Panic {
                        tick: t,
                        agent: Some(acting.get()).filter(|&k| k != usize::MAX),
                        message: panic_message(&*payload),
                    });
                }
            }
            std::mem::swap(&mut cells, &mut next);
            t += 1;
        }
        Ok(End {
            tick: t,
            cells,
            teacher,
            reward: reward_sum,
            info: info_sum,
        })
    }
}
