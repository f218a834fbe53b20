//! MPI ranks (cargo feature `mpi`): the [`Collectives`] of a distributed run
//! over the `mpi` crate (rsmpi). Each rank runs a word-aligned block of
//! neurons; per tick the ranks all-gather their words of the spike frame and
//! sum the aggregates (spike-count change, fixed-point log-ratios), so every
//! rank follows the whole run and results equal a single process's bit for
//! bit. MPI is initialised for funneled threading and called only from the
//! thread that drives the run (never from actix handlers or worker threads).

use super::transport::Collectives;
use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

/// The MPI world of this process; finalises MPI when dropped.
pub struct MpiWorld {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    /// Ranks sharing this machine's memory (MPI_COMM_TYPE_SHARED).
    local: usize,
    // Dropped last: MPI_Finalize.
    _universe: Universe,
}

// SAFETY: the communicator is a handle; the runtime calls it from one thread
// per process only (the one that created the transport, which is the main
// thread: MPI was initialised for funneled threading), so sharing the
// reference across the run's scoped threads never makes concurrent calls.
unsafe impl Sync for MpiWorld {}

impl MpiWorld {
    /// Initialise MPI when this process was started by an MPI launcher
    /// (`mpirun`/`mpiexec`, which set `OMPI_COMM_WORLD_SIZE`, `PMI_SIZE` or
    /// `PMIX_RANK`); `None` for a plain run.
    pub fn from_launcher() -> Result<Option<MpiWorld>, String> {
        let launched = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"]
            .iter()
            .any(|v| std::env::var_os(v).is_some());
        if !launched {
            return Ok(None);
        }
        let (universe, threading) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or("MPI was already initialised in this process")?;
        if threading < mpi::Threading::Funneled {
            return Err(format!(
                "the MPI library offers {threading:?} threading; marlin needs at least Funneled"
            ));
        }
        let world = universe.world();
        let local = world.split_shared(world.rank()).size() as usize;
        Ok(Some(MpiWorld {
            rank: world.rank() as usize,
            size: world.size() as usize,
            local,
            world,
            _universe: universe,
        }))
    }
}

impl MpiWorld {
    /// Whether other ranks run beside this one.
    pub fn distributed(&self) -> bool {
        self.size > 1
    }

    /// End the whole job with `code` (MPI_Abort): the other ranks may be
    /// waiting in a collective for this one and would otherwise hang.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}

impl Collectives for MpiWorld {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn local_size(&self) -> usize {
        self.local
    }

    fn all_gather_words(&self, mine: &[u64], all: &mut [u64], counts: &[usize]) {
        let counts: Vec<mpi::Count> = counts.iter().map(|&c| c as mpi::Count).collect();
        let displs: Vec<mpi::Count> = counts
            .iter()
            .scan(0, |at, &c| {
                let d = *at;
                *at += c;
                Some(d)
            })
            .collect();
        let mut partition = PartitionMut::new(all, counts, displs);
        self.world.all_gather_varcount_into(mine, &mut partition);
    }

    fn all_sum(&self, v: [i64; 2]) -> [i64; 2] {
        let mut out = [0i64; 2];
        self.world.all_reduce_into(&v[..], &mut out[..], SystemOperation::sum());
        out
    }
}
