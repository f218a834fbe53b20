//! How shards exchange each tick's spikes and aggregates: the seam between
//! the tick engine and where the shards live. In one process the transport
//! is shared memory — a double-buffered bit frame, per-shard aggregate slots
//! and a spinning barrier ([`SharedMemory`]); across machines (the scale
//! issue) an MPI transport implements the same trait with an all-gather of
//! the frame words and a reduction of the aggregates.
//!
//! Protocol for tick t, per shard: read [`Transport::frame`]`(t)`, write the
//! shard's bits of σ_{t+1} with [`Transport::publish_bits`] and its
//! aggregates with [`Transport::publish_totals`]; then every thread calls
//! [`Transport::exchange`]`(t)` once, which returns when all shards of tick t
//! have published and yields the summed aggregates. Aggregates are integers
//! (spike-count change, fixed-point log-ratios), so the sum does not depend
//! on the order in which shards arrive.

use super::barrier::SpinBarrier;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub trait Transport: Sync {
    /// σ_t as words of 64 neurons (bit k % 64 of word k / 64), valid during tick t.
    fn frame(&self, t: u64) -> &[u64];
    /// Set the bits under `mask` of word `word` of σ_{t+1} to `bits`.
    fn publish_bits(&self, t: u64, word: usize, bits: u64, mask: u64);
    /// A shard's aggregates for tick t: change of the spike count and the
    /// acting agents' log-ratios in fixed point.
    fn publish_totals(&self, t: u64, shard: usize, delta: i64, info: i64);
    /// Wait for every shard of tick t; the summed (delta, info), or None
    /// when the run was [abandoned](Transport::abandon).
    fn exchange(&self, t: u64) -> Option<(i64, i64)>;
    /// A thread failed: release every thread waiting in `exchange` (they
    /// get None) so the run stops instead of hanging.
    fn abandon(&self);
    /// σ after the last tick (`t` = the tick count reached).
    fn final_frame(&self, t: u64) -> Vec<u64>;
}

/// Per-shard, per-tick aggregates, double-buffered by tick parity.
#[repr(align(64))]
#[derive(Default)]
struct Slot {
    delta: AtomicI64,
    info: AtomicI64,
}

/// The in-process transport: threads of one process share the frames.
pub struct SharedMemory {
    frames: [Vec<AtomicU64>; 2],
    slots: Vec<Slot>,
    shards: usize,
    barrier: SpinBarrier,
}

impl SharedMemory {
    /// Frames starting at `frame` (σ at tick `tick`), for `shards` shards on
    /// `threads` threads.
    pub fn new(frame: &[u64], tick: u64, shards: usize, threads: usize) -> Self {
        let words = frame.len();
        let current = frame.iter().map(|&w| AtomicU64::new(w)).collect();
        let other = (0..words).map(|_| AtomicU64::new(0)).collect();
        let frames = if tick.is_multiple_of(2) {
            [current, other]
        } else {
            [other, current]
        };
        SharedMemory {
            frames,
            slots: (0..2 * shards).map(|_| Slot::default()).collect(),
            shards,
            barrier: SpinBarrier::new(threads),
        }
    }
}

impl Transport for SharedMemory {
    #[inline]
    fn frame(&self, t: u64) -> &[u64] {
        let f = &self.frames[(t % 2) as usize];
        // SAFETY: AtomicU64 has u64's layout. Frame t is written only during
        // tick t−1 (writers of tick t target the other buffer) and read
        // during tick t; the barrier of `exchange(t−1)` orders the writes
        // before these reads, and no thread writes it again before every
        // thread has passed `exchange(t)`.
        unsafe { std::slice::from_raw_parts(f.as_ptr() as *const u64, f.len()) }
    }

    /// A plain store when the shard owns the whole word, atomic and/or when
    /// it shares it with another shard.
    #[inline]
    fn publish_bits(&self, t: u64, word: usize, bits: u64, mask: u64) {
        if mask == 0 {
            return;
        }
        let next = &self.frames[((t + 1) % 2) as usize][word];
        if mask == u64::MAX {
            next.store(bits, Ordering::Relaxed);
        } else {
            next.fetch_and(!mask, Ordering::Relaxed);
            next.fetch_or(bits, Ordering::Relaxed);
        }
    }

    #[inline]
    fn publish_totals(&self, t: u64, shard: usize, delta: i64, info: i64) {
        let slot = &self.slots[(t % 2) as usize * self.shards + shard];
        slot.delta.store(delta, Ordering::Relaxed);
        slot.info.store(info, Ordering::Relaxed);
    }

    fn exchange(&self, t: u64) -> Option<(i64, i64)> {
        if !self.barrier.wait() {
            return None;
        }
        let base = (t % 2) as usize * self.shards;
        Some(self.slots[base..base + self.shards].iter().fold((0, 0), |(d, i), s| {
            (d + s.delta.load(Ordering::Relaxed), i + s.info.load(Ordering::Relaxed))
        }))
    }

    fn abandon(&self) {
        self.barrier.poison();
    }

    fn final_frame(&self, t: u64) -> Vec<u64> {
        self.frames[(t % 2) as usize]
            .iter()
            .map(|w| w.load(Ordering::Relaxed))
            .collect()
    }
}

impl SharedMemory {
    /// Wait at the threads' barrier (outside [`Transport::exchange`]);
    /// false when abandoned.
    fn wait(&self) -> bool {
        self.barrier.wait()
    }

    /// Overwrite word `word` of σ_t; only between two barriers, while no
    /// thread reads or writes frame t.
    fn set_word(&self, t: u64, word: usize, bits: u64) {
        self.frames[(t % 2) as usize][word].store(bits, Ordering::Relaxed);
    }
}

/// The collectives a run across processes needs (one process per MPI rank).
/// A transport calls them from one thread per process only — the thread that
/// created it — so an MPI library initialised for funneled threading will do.
pub trait Collectives {
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// Every rank passes its block of words `mine` (rank r's block has
    /// `counts[r]` words); `all` receives all blocks in rank order.
    fn all_gather_words(&self, mine: &[u64], all: &mut [u64], counts: &[usize]);
    /// Element-wise sum over the ranks.
    fn all_sum(&self, v: [i64; 2]) -> [i64; 2];
    /// Ranks on this machine (sharing its cores), this one included.
    fn local_size(&self) -> usize {
        1
    }
}

/// The ranks of a distributed run, as the runtime takes them.
pub type Ranks = dyn Collectives + Sync;

/// The frame words rank `rank` of `size` owns: a contiguous, balanced block,
/// so ranks never share a word and the all-gather needs no merging.
pub fn rank_words(n: usize, rank: usize, size: usize) -> std::ops::Range<usize> {
    let words = n.div_ceil(64);
    (rank * words / size)..((rank + 1) * words / size)
}

/// The neurons rank `rank` of `size` runs (those of its words).
pub fn rank_neurons(n: usize, rank: usize, size: usize) -> std::ops::Range<usize> {
    let w = rank_words(n, rank, size);
    (w.start * 64).min(n)..(w.end * 64).min(n)
}

/// Why `size` ranks cannot share `n` neurons, if they cannot: every rank
/// needs at least one word of 64 neurons.
pub fn check_ranks(n: usize, size: usize) -> Result<(), String> {
    let words = n.div_ceil(64);
    if size > words {
        return Err(format!(
            "{} fill {} of 64; allowed: at most {} (got {size})",
            crate::text::count(n as u64, "neuron"),
            crate::text::count(words as u64, "word"),
            crate::text::count(words as u64, "MPI rank")
        ));
    }
    Ok(())
}

/// The transport of one rank of a distributed run: the rank's threads share
/// memory as in [`SharedMemory`]; after the threads' barrier of each tick,
/// the thread that created the transport all-gathers the ranks' words of
/// σ_{t+1} and sums the aggregates over ranks, then releases its threads.
pub struct ClusterTransport<'a> {
    local: SharedMemory,
    ranks: &'a Ranks,
    leader: std::thread::ThreadId,
    words: std::ops::Range<usize>,
    counts: Vec<usize>,
    totals: [AtomicI64; 2],
    /// Send and receive buffers of the all-gather (the leader's only).
    buffers: Mutex<(Vec<u64>, Vec<u64>)>,
}

impl<'a> ClusterTransport<'a> {
    pub(crate) fn new(frame: &[u64], tick: u64, shards: usize, threads: usize, ranks: &'a Ranks) -> Self {
        let n = frame.len() * 64;
        let words = rank_words(n, ranks.rank(), ranks.size());
        let counts = (0..ranks.size())
            .map(|r| rank_words(n, r, ranks.size()).len())
            .collect();
        ClusterTransport {
            local: SharedMemory::new(frame, tick, shards, threads),
            ranks,
            leader: std::thread::current().id(),
            buffers: Mutex::new((vec![0; words.len()], vec![0; frame.len()])),
            words,
            counts,
            totals: [AtomicI64::new(0), AtomicI64::new(0)],
        }
    }
}

impl Transport for ClusterTransport<'_> {
    #[inline]
    fn frame(&self, t: u64) -> &[u64] {
        self.local.frame(t)
    }

    #[inline]
    fn publish_bits(&self, t: u64, word: usize, bits: u64, mask: u64) {
        self.local.publish_bits(t, word, bits, mask);
    }

    #[inline]
    fn publish_totals(&self, t: u64, shard: usize, delta: i64, info: i64) {
        self.local.publish_totals(t, shard, delta, info);
    }

    fn exchange(&self, t: u64) -> Option<(i64, i64)> {
        // A failed thread of this rank releases the others here; the rank
        // then exits with the error and the MPI launcher ends the job (the
        // other ranks, blocked in a collective, cannot be released otherwise).
        let (delta, info) = self.local.exchange(t)?;
        if std::thread::current().id() == self.leader {
            let mut guard = self.buffers.lock().expect("the leader's buffers");
            let (mine, all) = &mut *guard;
            mine.copy_from_slice(&self.local.frame(t + 1)[self.words.clone()]);
            self.ranks.all_gather_words(mine, all, &self.counts);
            for (w, &bits) in all.iter().enumerate() {
                if !self.words.contains(&w) {
                    self.local.set_word(t + 1, w, bits);
                }
            }
            let sum = self.ranks.all_sum([delta, info]);
            self.totals[0].store(sum[0], Ordering::Relaxed);
            self.totals[1].store(sum[1], Ordering::Relaxed);
        }
        // Nobody reads frame t+1 or the totals before the leader is done.
        if !self.local.wait() {
            return None;
        }
        Some((
            self.totals[0].load(Ordering::Relaxed),
            self.totals[1].load(Ordering::Relaxed),
        ))
    }

    fn abandon(&self) {
        self.local.abandon();
    }

    fn final_frame(&self, t: u64) -> Vec<u64> {
        self.local.final_frame(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_land_in_the_next_frame_and_totals_sum_over_shards() {
        let tr = SharedMemory::new(&[0b1111, 0], 0, 2, 1);
        assert_eq!(tr.frame(0), &[0b1111, 0]);
        tr.publish_bits(0, 0, 0b0101, 0b0111); // shard 0 owns bits 0–2 of word 0
        tr.publish_bits(0, 0, 0b1000, 0b1000); // shard 1 owns bit 3
        tr.publish_bits(0, 1, 7, u64::MAX);
        tr.publish_totals(0, 0, -1, 5);
        tr.publish_totals(0, 1, 0, 7);
        assert_eq!(tr.exchange(0), Some((-1, 12)));
        assert_eq!(tr.frame(1), &[0b1101, 7]);
        assert_eq!(tr.final_frame(1), vec![0b1101, 7]);
        // Odd starting ticks put the start frame in the odd buffer.
        let tr = SharedMemory::new(&[3], 5, 1, 1);
        assert_eq!(tr.frame(5), &[3]);
    }

    #[test]
    fn rank_blocks_are_whole_words_that_tile_the_network() {
        for (n, size) in [(64, 1), (65, 2), (1000, 3), (640, 10), (10_000, 7)] {
            assert!(check_ranks(n, size).is_ok());
            let mut next = 0;
            for r in 0..size {
                let b = rank_neurons(n, r, size);
                assert_eq!(b.start, next, "contiguous");
                assert!(
                    !b.is_empty() && b.start.is_multiple_of(64),
                    "{n}/{size}: rank {r} owns {b:?}"
                );
                next = b.end;
            }
            assert_eq!(next, n);
        }
        assert!(check_ranks(100, 3).unwrap_err().contains("at most 2 MPI ranks"));
    }
}
