//! R "ranks" as threads of one test process, exchanging through shared
//! memory: the distributed code path without an MPI library (tests/mpi.rs
//! runs the real thing under mpirun).

use marlin::runtime::transport::Collectives;

/// One rank.
pub struct ThreadRanks {
    rank: usize,
    size: usize,
    shared: std::sync::Arc<Shared>,
}

struct Shared {
    barrier: std::sync::Barrier,
    words: std::sync::Mutex<Vec<u64>>,
    sums: std::sync::Mutex<Vec<[i64; 2]>>,
}

impl Collectives for ThreadRanks {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn all_gather_words(&self, mine: &[u64], all: &mut [u64], counts: &[usize]) {
        let at: usize = counts[..self.rank].iter().sum();
        {
            let mut w = self.shared.words.lock().unwrap();
            w.resize(all.len(), 0);
            w[at..at + mine.len()].copy_from_slice(mine);
        }
        self.shared.barrier.wait();
        all.copy_from_slice(&self.shared.words.lock().unwrap());
        self.shared.barrier.wait();
    }
    fn all_sum(&self, v: [i64; 2]) -> [i64; 2] {
        self.shared.sums.lock().unwrap()[self.rank] = v;
        self.shared.barrier.wait();
        let s = self
            .shared
            .sums
            .lock()
            .unwrap()
            .iter()
            .fold([0, 0], |a, b| [a[0] + b[0], a[1] + b[1]]);
        self.shared.barrier.wait();
        s
    }
}

/// Run `f(ranks)` on `size` threads, one per rank; the results in rank order.
pub fn on_ranks<T: Send>(size: usize, f: impl Fn(&ThreadRanks) -> T + Sync) -> Vec<T> {
    let shared = std::sync::Arc::new(Shared {
        barrier: std::sync::Barrier::new(size),
        words: std::sync::Mutex::new(Vec::new()),
        sums: std::sync::Mutex::new(vec![[0, 0]; size]),
    });
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..size)
            .map(|rank| {
                let r = ThreadRanks {
                    rank,
                    size,
                    shared: shared.clone(),
                };
                let f = &f;
                s.spawn(move || f(&r))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}
