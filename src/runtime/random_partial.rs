//! The random-partial schedule of the sparse engine.
//!
//! Under random-partial updates (theory §1: each neuron acts with
//! probability q per tick) every neuron draws its coin from its own stream
//! every tick — what keeps a run independent of the layout and equal, bit
//! for bit, to the agent engine's. Scanning all N streams each tick to
//! find the ≈ qN neurons that act makes the coins the cost: every
//! neuron's 32-byte stream state passes through memory every tick.
//!
//! Here each neuron instead **walks its own coins ahead**, in registers,
//! to the next tick at which one falls below q, and a calendar lists each
//! tick's actors. A neuron's stream sees exactly the draws it would see
//! tick by tick — a coin per tick, then the action on the tick it acts —
//! so the run is the same bit for bit, while a stream is loaded once per
//! action instead of once per tick. A walk stops after a span of coins
//! without success (about eight expected gaps, at most 4 096) and resumes
//! on that tick, so a short run with a tiny q never walks far past its end;
//! and since the streams now run ahead of the schedule's tick, each walk
//! keeps the stream it started from, and [`Schedule::settle`] rebuilds the
//! streams as they stand at that tick (what a checkpoint saves, and where a
//! run from another tick starts).
//!
//! The actors' streams are then read out of order (the scan reads them in
//! order), so the sparse engine keeps a calendar only at q ≤ 0.02, where
//! it measured faster.

use crate::rng::Stream;
use rand::Rng;

/// A calendar entry flag: the neuron's walk resumes on this tick (no coin
/// succeeded within a span), rather than the neuron acting.
const WALK: u32 = 1 << 31;

/// One shard's calendar of random-partial updates.
pub(super) struct Schedule {
    q: f64,
    /// The tick the schedule stands at: the next tick to step (`u64::MAX`:
    /// not yet built).
    at: u64,
    /// The most coins a walk draws before it pauses.
    span: u64,
    /// Per neuron of the shard: the stream as it stood when its walk began,
    /// and the tick it began at (`u64::MAX`: a dead neuron, never walked).
    snap: Vec<Stream>,
    from: Vec<u64>,
    /// Entries (shard-local neuron, maybe [`WALK`]) by tick modulo the
    /// length, which exceeds the span: every entry lies within a span of
    /// the schedule's tick.
    ring: Vec<Vec<u32>>,
    /// The new frame words of the shard, assembled per tick.
    pub words: Vec<u64>,
}

impl Schedule {
    /// An empty schedule for the neurons whose streams are `rngs`,
    /// updating with probability `q` (built on the first tick it steps).
    pub fn new(q: f64, rngs: &[Stream]) -> Self {
        let len = rngs.len();
        assert!(len < WALK as usize, "a shard holds fewer than 2³¹ neurons");
        let span = Self::span(q);
        Schedule {
            q,
            at: u64::MAX,
            span,
            snap: rngs.to_vec(),
            from: vec![u64::MAX; len],
            ring: (0..2 * span).map(|_| Vec::new()).collect(),
            words: Vec::with_capacity(len / 64 + 2),
        }
    }

    /// The most coins a walk draws at q: about eight expected gaps, a
    /// power of two from 64 to 4096.
    fn span(q: f64) -> u64 {
        ((8.0 / q).ceil() as u64).clamp(64, 4096).next_power_of_two()
    }

    /// Bytes held per neuron (the walk's stream and tick; the calendar's
    /// lists hold about 4 B more as they fill).
    pub const BYTES_PER_NEURON: u64 = (std::mem::size_of::<Stream>() + 8) as u64;

    /// Bytes of a shard's calendar at q (its empty lists), beside those
    /// per neuron.
    pub fn calendar_bytes(q: f64) -> u64 {
        2 * Self::span(q) * std::mem::size_of::<Vec<u32>>() as u64
    }

    /// Bytes held (the lists' contents aside).
    pub fn bytes(&self) -> u64 {
        self.from.len() as u64 * Self::BYTES_PER_NEURON + Self::calendar_bytes(self.q)
    }

    /// Make the schedule stand at tick `t`: kept when it does already;
    /// otherwise the streams are first brought to the schedule's tick, and
    /// every living neuron (`alive`, shard-local) walks from `t`.
    pub fn start(&mut self, t: u64, rngs: &mut [Stream], alive: &[bool]) {
        if self.at == t {
            return;
        }
        self.settle(rngs);
        for slot in &mut self.ring {
            slot.clear();
        }
        self.at = t;
        for (i, rng) in rngs.iter_mut().enumerate() {
            self.from[i] = u64::MAX;
            if alive[i] && self.walk(i, t, rng) {
                self.push(t, i as u32);
            }
        }
    }

    /// The entries due at tick `t` (the schedule's tick), leaving the slot
    /// empty; hand the list back with [`Schedule::done`].
    pub fn take(&mut self, t: u64) -> Vec<u32> {
        debug_assert_eq!(t, self.at);
        let slot = self.slot(t);
        let mut due = std::mem::take(&mut self.ring[slot]);
        // In neuron order, so that streams, sums and bits are read in
        // order (the order of actors within a tick changes no result).
        due.sort_unstable();
        due
    }

    /// Tick `t` is stepped: the schedule stands at t + 1; `due` (emptied)
    /// keeps its capacity for a later tick.
    pub fn done(&mut self, t: u64, mut due: Vec<u32>) {
        due.clear();
        let slot = self.slot(t);
        if self.ring[slot].is_empty() {
            self.ring[slot] = due;
        }
        self.at = t + 1;
    }

    /// Split an entry into its neuron and whether its walk resumes.
    #[inline]
    pub fn entry(e: u32) -> (usize, bool) {
        ((e & !WALK) as usize, e & WALK != 0)
    }

    /// Walk neuron i's coins from tick f: true when it acts at f itself;
    /// else it is entered at the tick it acts, or at f + span to walk on.
    #[inline]
    pub fn walk(&mut self, i: usize, f: u64, rng: &mut Stream) -> bool {
        self.snap[i].clone_from(rng);
        self.from[i] = f;
        let q = self.q;
        for n in f..f + self.span {
            if rng.random::<f64>() < q {
                if n == f {
                    return true;
                }
                self.push(n, i as u32);
                return false;
            }
        }
        self.push(f + self.span, i as u32 | WALK);
        false
    }

    /// Ask the cache for what neuron i's walk writes (a hint).
    #[inline]
    pub fn prefetch(&self, i: usize) {
        super::sparse::prefetch(&self.snap[i]);
        super::sparse::prefetch(&self.from[i]);
    }

    /// Neuron i acted at tick t: walk its coins from t + 1.
    #[inline]
    pub fn walk_after(&mut self, i: usize, t: u64, rng: &mut Stream) {
        if self.walk(i, t + 1, rng) {
            self.push(t + 1, i as u32);
        }
    }

    /// Forget the walks (the streams were replaced): the next step builds
    /// afresh from the streams as they are.
    pub fn reset(&mut self) {
        self.at = u64::MAX;
        self.from.fill(u64::MAX);
    }

    #[inline]
    fn push(&mut self, t: u64, e: u32) {
        let slot = self.slot(t);
        self.ring[slot].push(e);
    }

    #[inline]
    fn slot(&self, t: u64) -> usize {
        (t & (self.ring.len() as u64 - 1)) as usize
    }

    /// The streams as they stand at the schedule's tick (each walk's start
    /// advanced by the coins of the ticks since, all of which failed), in
    /// `rngs`; neurons never walked keep theirs.
    pub fn settle(&self, rngs: &mut [Stream]) {
        if self.at == u64::MAX {
            return;
        }
        for (i, rng) in rngs.iter_mut().enumerate() {
            if self.from[i] == u64::MAX {
                continue;
            }
            rng.clone_from(&self.snap[i]);
            for _ in self.from[i]..self.at {
                let _: f64 = rng.random();
            }
        }
    }
}
