//! The first size of registered IO memory worth trying, from the memlock limit and
//! `CAP_IPC_LOCK`, and the ladder of smaller sizes to fall back on.
//!
//! Registering a buffer with io_uring pins its pages. For a thread without `CAP_IPC_LOCK` the
//! kernel also charges them against the user's `RLIMIT_MEMLOCK`, once per ring: glommio 0.9
//! registers its whole `io_memory` slab with each of an executor's three rings (main, poll,
//! latency). With `CAP_IPC_LOCK` nothing is charged against the limit and far more succeeds.
//! A plan is only a first guess: what the kernel granted is measured afterwards
//! (`executor_registration`), and a refused size falls back down [`next_smaller_io_memory`].

use crate::{DMA_ALIGNMENT, align_up};
use rustix::process::{Resource, getrlimit};
use rustix::thread::{CapabilitySet, capabilities};

/// io_uring registrations of the `io_memory` slab per glommio 0.9 executor (one per ring).
pub const REGISTRATIONS_PER_EXECUTOR: u64 = 3;
/// The smallest slab glommio 0.9 allocates (and tries to register) whatever it is asked for.
pub const GLOMMIO_MIN_IO_MEMORY_BYTES: usize = 64 * 1024;
/// glommio 0.9 refuses to create an executor below this memlock limit, even for a thread
/// that holds `CAP_IPC_LOCK`.
pub const GLOMMIO_MIN_MEMLOCK_BYTES: u64 = 512 * 1024;
/// When the limit is charged, a quarter of it is left for everything else that locks memory
/// for this user: the rings themselves (Linux 6.18 charges about 40 KiB per glommio executor),
/// other io_uring instances, mlock'd pages.
pub const MEMLOCK_HEADROOM_DIVISOR: u64 = 4;

/// The memlock limit in force and whether the kernel will charge registrations against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemlockBudget {
    /// The soft `RLIMIT_MEMLOCK` (the one the kernel checks); `None` when unlimited.
    pub limit_bytes: Option<u64>,
    /// Whether the calling thread holds `CAP_IPC_LOCK` in its effective set: io_uring then
    /// charges nothing against the limit. Threads it spawns (executors) inherit it.
    pub ipc_lock: bool,
}

impl MemlockBudget {
    /// Reads `RLIMIT_MEMLOCK` of this process and the capabilities of the calling thread. A
    /// capability set that cannot be read counts as "no `CAP_IPC_LOCK`" (the cautious plan).
    pub fn probe() -> MemlockBudget {
        let ipc_lock =
            capabilities(None).is_ok_and(|sets| sets.effective.contains(CapabilitySet::IPC_LOCK));
        MemlockBudget {
            limit_bytes: getrlimit(Resource::Memlock).current,
            ipc_lock,
        }
    }

    /// A budget with the given limit, for a thread without `CAP_IPC_LOCK`.
    pub fn with_limit(limit_bytes: Option<u64>) -> MemlockBudget {
        MemlockBudget {
            limit_bytes,
            ipc_lock: false,
        }
    }

    /// Whether glommio can create executors at all under this limit.
    pub fn allows_glommio(&self) -> bool {
        self.limit_bytes
            .is_none_or(|limit| limit >= GLOMMIO_MIN_MEMLOCK_BYTES)
    }

    /// Whether registrations are charged against a finite limit.
    pub fn is_charged(&self) -> bool {
        !self.ipc_lock && self.limit_bytes.is_some()
    }

    /// The slab size each of `shards` executors should try first, given that each would like
    /// `desired_bytes_per_shard`: the desired size (page-aligned, at least glommio's minimum)
    /// when registrations are not charged against a limit, otherwise the largest page multiple
    /// whose registrations, all shards and rings together, fit under the limit with headroom,
    /// never less than glommio's minimum slab (which then may or may not register: measure).
    pub fn plan(&self, shards: usize, desired_bytes_per_shard: usize) -> usize {
        // glommio rounds the slab up to whole pages and to its minimum; plan with what it will
        // really allocate.
        let desired = align_up(desired_bytes_per_shard).max(GLOMMIO_MIN_IO_MEMORY_BYTES);
        let Some(limit) = self.limit_bytes.filter(|_| !self.ipc_lock) else {
            return desired;
        };
        let usable = limit - limit / MEMLOCK_HEADROOM_DIVISOR;
        let charges_per_shard_byte = shards.max(1) as u64 * REGISTRATIONS_PER_EXECUTOR;
        let fitting = usize::try_from(usable / charges_per_shard_byte).unwrap_or(usize::MAX);
        let fitting = fitting - fitting % DMA_ALIGNMENT;
        fitting.clamp(GLOMMIO_MIN_IO_MEMORY_BYTES, desired)
    }
}

impl std::fmt::Display for MemlockBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.limit_bytes {
            Some(limit) => write!(f, "memlock limit {limit} bytes")?,
            None => write!(f, "memlock unlimited")?,
        }
        if self.ipc_lock {
            write!(f, ", CAP_IPC_LOCK (not charged)")?;
        }
        Ok(())
    }
}

/// The next slab size to try after the kernel refused to register `bytes`: half of it,
/// page-aligned, down to glommio's minimum; `None` once the minimum itself was refused.
pub fn next_smaller_io_memory(bytes: usize) -> Option<usize> {
    if bytes <= GLOMMIO_MIN_IO_MEMORY_BYTES {
        return None;
    }
    let half = bytes / 2;
    Some((half - half % DMA_ALIGNMENT).max(GLOMMIO_MIN_IO_MEMORY_BYTES))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn unlimited_or_uncharged_plans_what_is_asked() {
        let unlimited = MemlockBudget::with_limit(None);
        assert_eq!(unlimited.plan(2, 16 << 20), 16 << 20);
        // Rounded to pages and up to glommio's minimum slab.
        assert_eq!(unlimited.plan(1, 1), 64 * 1024);
        assert!(unlimited.allows_glommio());
        assert!(!unlimited.is_charged());

        // The machine this was written on: ulimit -l = 8 MiB, but CAP_IPC_LOCK.
        let capable = MemlockBudget {
            limit_bytes: Some(8 * MIB),
            ipc_lock: true,
        };
        assert!(!capable.is_charged());
        assert_eq!(capable.plan(2, 16 << 20), 16 << 20);
        assert_eq!(capable.plan(2, (16 << 20) + 1), (16 << 20) + 4096);
    }

    #[test]
    fn a_charged_limit_is_shared_by_all_rings_with_headroom() {
        let budget = MemlockBudget::with_limit(Some(8 * MIB));
        assert!(budget.is_charged());
        // 6 MiB usable / (2 shards x 3 rings) = 1 MiB per shard.
        let planned = budget.plan(2, 16 << 20);
        assert_eq!(planned, 1 << 20);
        let charged = planned as u64 * 2 * REGISTRATIONS_PER_EXECUTOR;
        assert!(charged <= 8 * MIB - 8 * MIB / MEMLOCK_HEADROOM_DIVISOR);
        // Small requests fit whole.
        assert_eq!(budget.plan(2, 256 * 1024), 256 * 1024);
    }

    #[test]
    fn planned_bytes_are_page_multiples_within_the_limit() {
        let budget = MemlockBudget::with_limit(Some(8 * MIB + 12345));
        for shards in 1..=16 {
            let planned = budget.plan(shards, 64 << 20);
            assert_eq!(planned % DMA_ALIGNMENT, 0);
            let charged = planned as u64 * shards as u64 * REGISTRATIONS_PER_EXECUTOR;
            assert!(
                charged <= 8 * MIB + 12345 || planned == GLOMMIO_MIN_IO_MEMORY_BYTES,
                "{shards} shards: {planned}"
            );
        }
    }

    #[test]
    fn tiny_limits_plan_glommios_minimum() {
        let budget = MemlockBudget::with_limit(Some(MIB));
        assert_eq!(budget.plan(8, 8 << 20), GLOMMIO_MIN_IO_MEMORY_BYTES);
        assert!(!MemlockBudget::with_limit(Some(64 * 1024)).allows_glommio());
        assert_eq!(
            MemlockBudget::with_limit(Some(0)).plan(1, 4096),
            GLOMMIO_MIN_IO_MEMORY_BYTES
        );
        assert_eq!(budget.plan(0, 4096), GLOMMIO_MIN_IO_MEMORY_BYTES);
    }

    #[test]
    fn the_fallback_ladder_halves_to_glommios_minimum() {
        let mut ladder = vec![16 << 20];
        while let Some(next) = next_smaller_io_memory(*ladder.last().expect("not empty")) {
            ladder.push(next);
        }
        assert_eq!(ladder.len(), 9, "{ladder:?}");
        assert_eq!(ladder[1], 8 << 20);
        assert_eq!(
            *ladder.last().expect("not empty"),
            GLOMMIO_MIN_IO_MEMORY_BYTES
        );
        // Odd sizes stay page multiples.
        assert_eq!(next_smaller_io_memory(3 * 4096 + 65536), Some(65536));
        assert_eq!(next_smaller_io_memory(200 * 4096), Some(100 * 4096));
        assert_eq!(next_smaller_io_memory(GLOMMIO_MIN_IO_MEMORY_BYTES), None);
    }

    #[test]
    fn probe_reads_this_thread() {
        let budget = MemlockBudget::probe();
        let planned = budget.plan(2, 1 << 20);
        if budget.is_charged() {
            let limit = budget.limit_bytes.expect("charged means limited");
            assert!(
                planned as u64 * 2 * REGISTRATIONS_PER_EXECUTOR <= limit
                    || planned == GLOMMIO_MIN_IO_MEMORY_BYTES
            );
        } else {
            assert_eq!(planned, 1 << 20);
        }
    }
}
