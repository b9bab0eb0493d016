//! Whether io_uring registered buffers fit under `RLIMIT_MEMLOCK`.
//!
//! Registering a buffer with io_uring pins its pages and, for a process without
//! `CAP_IPC_LOCK`, charges them against the memlock limit of the user. glommio 0.9 registers
//! its whole `io_memory` slab with each of the executor's three rings (main, poll, latency),
//! and the kernel charges each registration separately. When a registration fails glommio only
//! logs a warning through `log` and carries on unregistered, so the node would not know its own
//! mode: hence the decision is made here, up front, with headroom.

use crate::{DMA_ALIGNMENT, align_up};
use rustix::process::{Resource, getrlimit};

/// io_uring registrations of the `io_memory` slab per glommio 0.9 executor (one per ring).
pub const REGISTRATIONS_PER_EXECUTOR: u64 = 3;
/// The smallest slab glommio 0.9 allocates (and tries to register) whatever it is asked for.
pub const GLOMMIO_MIN_IO_MEMORY_BYTES: usize = 64 * 1024;
/// glommio 0.9 refuses to create an executor below this memlock limit.
pub const GLOMMIO_MIN_MEMLOCK_BYTES: u64 = 512 * 1024;
/// A quarter of the limit is left for everything else that locks memory in this process and
/// for this user (other io_uring instances, mlock'd pages).
pub const MEMLOCK_HEADROOM_DIVISOR: u64 = 4;

/// The memlock limit in force (the soft limit: the one the kernel checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemlockBudget {
    /// `None` when unlimited.
    pub limit_bytes: Option<u64>,
}

/// Whether shards register their IO memory with io_uring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BufferMode {
    /// Each shard's `io_memory` slab of `bytes_per_shard` is registered; IO buffers beyond it
    /// come from the aligned heap.
    Registered { bytes_per_shard: usize },
    /// No buffers are registered on purpose; every IO buffer comes from the aligned heap.
    Unregistered { reason: String },
}

impl BufferMode {
    /// What to pass to glommio's `LocalExecutorBuilder::io_memory`. In unregistered mode this is
    /// glommio's minimum slab: glommio cannot be told not to register, and a registration that
    /// does not fit falls back to plain IO inside glommio.
    pub fn io_memory_bytes(&self) -> usize {
        match self {
            BufferMode::Registered { bytes_per_shard } => *bytes_per_shard,
            BufferMode::Unregistered { .. } => GLOMMIO_MIN_IO_MEMORY_BYTES,
        }
    }

    pub fn is_registered(&self) -> bool {
        matches!(self, BufferMode::Registered { .. })
    }
}

impl std::fmt::Display for BufferMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BufferMode::Registered { bytes_per_shard } => {
                write!(f, "registered ({bytes_per_shard} bytes per shard)")
            }
            BufferMode::Unregistered { reason } => write!(f, "unregistered ({reason})"),
        }
    }
}

impl MemlockBudget {
    /// Reads `RLIMIT_MEMLOCK` of this process.
    pub fn probe() -> MemlockBudget {
        MemlockBudget {
            limit_bytes: getrlimit(Resource::Memlock).current,
        }
    }

    pub fn with_limit(limit_bytes: Option<u64>) -> MemlockBudget {
        MemlockBudget { limit_bytes }
    }

    /// Whether glommio can create executors at all under this limit.
    pub fn allows_glommio(&self) -> bool {
        self.limit_bytes
            .is_none_or(|limit| limit >= GLOMMIO_MIN_MEMLOCK_BYTES)
    }

    /// Decides how many bytes each of `shards` executors may register, given that each would
    /// like `desired_bytes_per_shard`. The answer fits under the limit with headroom (all
    /// registrations of all shards together); it may be less than desired, never less than
    /// glommio's minimum slab.
    pub fn plan(&self, shards: usize, desired_bytes_per_shard: usize) -> BufferMode {
        if shards == 0 {
            return BufferMode::Unregistered {
                reason: "no shards".to_string(),
            };
        }
        if desired_bytes_per_shard == 0 {
            return BufferMode::Unregistered {
                reason: "no registered memory requested".to_string(),
            };
        }
        // glommio rounds the slab up to whole pages and to its minimum; plan with what it will
        // really register.
        let desired = align_up(desired_bytes_per_shard).max(GLOMMIO_MIN_IO_MEMORY_BYTES);
        let Some(limit) = self.limit_bytes else {
            return BufferMode::Registered {
                bytes_per_shard: desired,
            };
        };
        let usable = limit - limit / MEMLOCK_HEADROOM_DIVISOR;
        let charges_per_shard_byte = shards as u64 * REGISTRATIONS_PER_EXECUTOR;
        let fitting = usable / charges_per_shard_byte;
        let fitting = usize::try_from(fitting).unwrap_or(usize::MAX);
        let fitting = fitting - fitting % DMA_ALIGNMENT;
        if fitting >= desired {
            BufferMode::Registered {
                bytes_per_shard: desired,
            }
        } else if fitting >= GLOMMIO_MIN_IO_MEMORY_BYTES {
            BufferMode::Registered {
                bytes_per_shard: fitting,
            }
        } else {
            BufferMode::Unregistered {
                reason: format!(
                    "memlock limit of {limit} bytes leaves {fitting} bytes per shard for \
                     {shards} shards x {REGISTRATIONS_PER_EXECUTOR} rings after 1/{MEMLOCK_HEADROOM_DIVISOR} \
                     headroom, below glommio's minimum slab of {GLOMMIO_MIN_IO_MEMORY_BYTES} bytes"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn unlimited_registers_what_is_asked() {
        let budget = MemlockBudget::with_limit(None);
        assert_eq!(
            budget.plan(2, 8 << 20),
            BufferMode::Registered {
                bytes_per_shard: 8 << 20
            }
        );
        // Rounded to pages and up to glommio's minimum slab.
        assert_eq!(
            budget.plan(1, 1),
            BufferMode::Registered {
                bytes_per_shard: 64 * 1024
            }
        );
        assert!(budget.allows_glommio());
    }

    #[test]
    fn eight_mib_limit_with_two_shards_is_capped_with_headroom() {
        // The machine this was written on: ulimit -l = 8 MiB, 2 cores.
        let budget = MemlockBudget::with_limit(Some(8 * MIB));
        let mode = budget.plan(2, 8 << 20);
        // 6 MiB usable / (2 shards x 3 rings) = 1 MiB per shard.
        assert_eq!(
            mode,
            BufferMode::Registered {
                bytes_per_shard: 1 << 20
            }
        );
        let BufferMode::Registered { bytes_per_shard } = mode else {
            unreachable!()
        };
        let charged = bytes_per_shard as u64 * 2 * REGISTRATIONS_PER_EXECUTOR;
        assert!(charged <= 8 * MIB - 8 * MIB / MEMLOCK_HEADROOM_DIVISOR);
    }

    #[test]
    fn small_requests_fit_whole() {
        let budget = MemlockBudget::with_limit(Some(8 * MIB));
        assert_eq!(
            budget.plan(2, 256 * 1024),
            BufferMode::Registered {
                bytes_per_shard: 256 * 1024
            }
        );
    }

    #[test]
    fn planned_bytes_are_page_multiples() {
        let budget = MemlockBudget::with_limit(Some(8 * MIB + 12345));
        for shards in 1..=16 {
            if let BufferMode::Registered { bytes_per_shard } = budget.plan(shards, 64 << 20) {
                assert_eq!(bytes_per_shard % DMA_ALIGNMENT, 0);
                let charged = bytes_per_shard as u64 * shards as u64 * REGISTRATIONS_PER_EXECUTOR;
                assert!(charged <= budget.limit_bytes.unwrap_or(u64::MAX));
            }
        }
    }

    #[test]
    fn tiny_limits_fall_back_to_unregistered() {
        let budget = MemlockBudget::with_limit(Some(MIB));
        let mode = budget.plan(8, 8 << 20);
        assert!(!mode.is_registered());
        assert_eq!(mode.io_memory_bytes(), GLOMMIO_MIN_IO_MEMORY_BYTES);
        let BufferMode::Unregistered { reason } = mode else {
            unreachable!()
        };
        assert!(
            reason.contains("memlock limit of 1048576 bytes"),
            "{reason}"
        );

        assert!(!MemlockBudget::with_limit(Some(64 * 1024)).allows_glommio());
        assert!(matches!(
            MemlockBudget::with_limit(Some(0)).plan(1, 4096),
            BufferMode::Unregistered { .. }
        ));
    }

    #[test]
    fn degenerate_inputs_are_unregistered() {
        let budget = MemlockBudget::with_limit(None);
        assert!(matches!(
            budget.plan(0, 4096),
            BufferMode::Unregistered { .. }
        ));
        assert!(matches!(budget.plan(2, 0), BufferMode::Unregistered { .. }));
    }

    #[test]
    fn probe_reads_this_process_limit() {
        let budget = MemlockBudget::probe();
        // Whatever the limit is, planning with it must stay within it.
        if let (Some(limit), BufferMode::Registered { bytes_per_shard }) =
            (budget.limit_bytes, budget.plan(2, 1 << 20))
        {
            assert!(bytes_per_shard as u64 * 2 * REGISTRATIONS_PER_EXECUTOR <= limit);
        }
    }
}
