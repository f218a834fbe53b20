//! How much memory a run may take: what this process can still allocate
//! (the system's available memory, within `ulimit -v`), and the budget
//! every size check compares its estimate with before allocating.
//!
//! Architecture invariant: a leaf module; it reads only the operating
//! system's own figures (/proc, getrlimit), never user files.

/// Memory this process may still allocate: the system's `MemAvailable`
/// (8 GiB where the system does not say), and no more than what its
/// address-space limit (`ulimit -v`) leaves beside what it already maps.
pub fn available_memory() -> u64 {
    let system = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kib| kib * 1024)
        .unwrap_or(8 << 30);
    system.min(address_space_left().unwrap_or(u64::MAX))
}

/// What the address-space limit leaves: the limit less the process's
/// current virtual size (None without a limit, or off Linux).
#[cfg(target_os = "linux")]
fn address_space_left() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    let used = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmSize:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kib| kib * 1024)
        .unwrap_or(0);
    Some((limit.rlim_cur as u64).saturating_sub(used))
}

#[cfg(not(target_os = "linux"))]
fn address_space_left() -> Option<u64> {
    None
}

/// The most a run may allocate for one size-dependent table (a reward or
/// policy table, a topology, an array read from a file): 80 % of
/// [`available_memory`]. Every size check compares its estimate with this
/// and names both in its refusal ([`MemoryBudget::describe`]).
#[derive(Clone, Copy, Debug)]
pub struct MemoryBudget {
    /// Bytes available to this process now (memory and address-space limit).
    pub available: u64,
}

impl MemoryBudget {
    pub fn now() -> Self {
        Self {
            available: available_memory(),
        }
    }

    /// Bytes allowed: 80 % of what is available.
    pub fn allowed(&self) -> u64 {
        self.available / 10 * 8
    }

    pub fn fits(&self, need: u64) -> bool {
        need <= self.allowed()
    }

    /// "this machine has N MiB available (allowed: at most 80 % of it)".
    pub fn describe(&self) -> String {
        format!(
            "this machine has {} MiB available (allowed: at most 80 % of it)",
            self.available >> 20
        )
    }
}

/// The most one array read from a file may take ([`MemoryBudget::allowed`]).
pub fn array_budget() -> u64 {
    MemoryBudget::now().allowed()
}
