//! Each shard's IO memory: how much is desired, what was planned, and what the kernel granted,
//! measured on the shard's own executor.
//!
//! glommio 0.9 gives every executor one `io_memory` slab, from which the shard's write buffers
//! and read buffers come while it has room (the heap after that), and registers the slab with
//! the executor's three io_uring rings, so that writes from it go out as fixed-buffer IO. A
//! refused registration is only logged by glommio; so `DataPlane::start` measures each
//! executor as it comes up (`kernel_bypass::executor_registration`), and an executor whose
//! slab the kernel refused is replaced by one with half the slab, down to glommio's minimum,
//! after which the shard runs unregistered. Start-up never fails for want of pinned memory.

use crate::shard::POOL_BATCHES;
use crate::{MAX_RECORD_BYTES, RECORD_ALIGNMENT};
use kernel_bypass::{REGISTRATIONS_PER_EXECUTOR, Registration, next_smaller_io_memory};

/// Upper bound on the IO memory one shard asks for (and on
/// `DataPlaneConfig::io_memory_bytes_per_shard`).
pub const MAX_IO_MEMORY_BYTES_PER_SHARD: usize = 64 << 20;

const _: () = assert!((MAX_IO_MEMORY_BYTES_PER_SHARD as u64).is_multiple_of(RECORD_ALIGNMENT));

/// The IO memory a shard asks for by default: a full record buffer for every request of the
/// two batches a shard holds at once (one settling, one being issued; these are the buffers
/// it reuses), and one record more for the slab allocator's bookkeeping, which takes the
/// slab's first page. With the default batch of 32: 65 records, 16.25 MiB.
pub fn default_io_memory_bytes(max_batch: usize) -> usize {
    ((POOL_BATCHES * max_batch + 1) * MAX_RECORD_BYTES).min(MAX_IO_MEMORY_BYTES_PER_SHARD)
}

/// How a shard's IO memory is registered with io_uring, as measured; for the data plane as a
/// whole, see [`BufferReport::mode`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BufferMode {
    /// The slab of `bytes_per_shard` is registered with every ring of the executor (for the
    /// whole data plane: of every shard, `bytes_per_shard` being the smallest).
    Registered { bytes_per_shard: usize },
    /// Data plane only: some shards registered, the others did not.
    Partial {
        registered_shards: usize,
        shards: usize,
    },
    /// The kernel registered no slab, down to glommio's minimum; IO buffers are plain memory.
    Unregistered { reason: String },
    /// The registration could not be measured (`/proc` unreadable); glommio may or may not
    /// have registered the slab.
    Unmeasured { reason: String },
}

impl BufferMode {
    pub fn is_registered(&self) -> bool {
        matches!(self, BufferMode::Registered { .. })
    }

    /// A short name for metrics labels: `registered`, `partial`, `unregistered`, `unmeasured`.
    pub fn label(&self) -> &'static str {
        match self {
            BufferMode::Registered { .. } => "registered",
            BufferMode::Partial { .. } => "partial",
            BufferMode::Unregistered { .. } => "unregistered",
            BufferMode::Unmeasured { .. } => "unmeasured",
        }
    }
}

impl std::fmt::Display for BufferMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BufferMode::Registered { bytes_per_shard } => {
                write!(f, "registered ({bytes_per_shard} bytes per shard)")
            }
            BufferMode::Partial {
                registered_shards,
                shards,
            } => write!(
                f,
                "partly registered ({registered_shards} of {shards} shards)"
            ),
            BufferMode::Unregistered { reason } => write!(f, "unregistered ({reason})"),
            BufferMode::Unmeasured { reason } => write!(f, "unmeasured ({reason})"),
        }
    }
}

/// One shard's IO memory, measured on its executor once it started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardBuffers {
    pub shard: usize,
    /// The slab the shard's executor runs with.
    pub io_memory_bytes: usize,
    /// Larger slabs the kernel refused to register for this shard before this one.
    pub sizes_refused: u32,
    /// io_uring rings that hold the slab registered: 3 (glommio 0.9's main, poll and latency
    /// rings) when registered, 0 when not.
    pub registered_rings: u64,
    /// What the kernel pinned for those registrations: the slab once per ring.
    pub pinned_bytes: u64,
    pub mode: BufferMode,
}

/// The data plane's IO memory: what `DataPlane::buffer_report` answers, fixed at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BufferReport {
    /// What each shard asked for (`DataPlaneConfig::io_memory_bytes_per_shard`, or two
    /// batches of full records).
    pub desired_bytes_per_shard: usize,
    /// The first slab tried: the desired size, or what fits the memlock limit with headroom
    /// when registrations are charged against it (no `CAP_IPC_LOCK`).
    pub planned_bytes_per_shard: usize,
    /// The soft `RLIMIT_MEMLOCK` at start; `None` when unlimited.
    pub memlock_limit_bytes: Option<u64>,
    /// Whether the thread that started the data plane (and so its executors) held
    /// `CAP_IPC_LOCK`, which exempts registrations from the limit.
    pub ipc_lock: bool,
    /// Per shard, in shard order.
    pub shards: Vec<ShardBuffers>,
    /// Pinned by the shards' registrations, summed (measured per ring from fdinfo).
    pub pinned_bytes: u64,
    /// The process's `VmPin` just before the executors started and once they were all ready:
    /// everything pinned in the process, including other data planes and io_uring users.
    pub process_pinned_bytes_before: Option<u64>,
    pub process_pinned_bytes_after: Option<u64>,
    /// The data plane's mode: `Registered` when every shard is (with the smallest slab),
    /// `Partial` when some are, otherwise the first shard's mode.
    pub mode: BufferMode,
}

impl BufferReport {
    pub(crate) fn new(
        desired_bytes_per_shard: usize,
        planned_bytes_per_shard: usize,
        budget: kernel_bypass::MemlockBudget,
        shards: Vec<ShardBuffers>,
        process_pinned_bytes_before: Option<u64>,
        process_pinned_bytes_after: Option<u64>,
    ) -> BufferReport {
        let registered: Vec<usize> = shards
            .iter()
            .filter_map(|shard| match shard.mode {
                BufferMode::Registered { bytes_per_shard } => Some(bytes_per_shard),
                _ => None,
            })
            .collect();
        let mode = if !shards.is_empty() && registered.len() == shards.len() {
            BufferMode::Registered {
                bytes_per_shard: registered.iter().copied().min().unwrap_or(0),
            }
        } else if !registered.is_empty() {
            BufferMode::Partial {
                registered_shards: registered.len(),
                shards: shards.len(),
            }
        } else {
            shards.first().map_or_else(
                || BufferMode::Unregistered {
                    reason: "no shards".to_string(),
                },
                |shard| shard.mode.clone(),
            )
        };
        BufferReport {
            desired_bytes_per_shard,
            planned_bytes_per_shard,
            memlock_limit_bytes: budget.limit_bytes,
            ipc_lock: budget.ipc_lock,
            pinned_bytes: shards.iter().map(|shard| shard.pinned_bytes).sum(),
            shards,
            process_pinned_bytes_before,
            process_pinned_bytes_after,
            mode,
        }
    }

    /// Registered slab bytes summed over shards (0 for a shard that is not registered).
    pub fn registered_bytes(&self) -> u64 {
        self.shards
            .iter()
            .filter(|shard| shard.mode.is_registered())
            .map(|shard| shard.io_memory_bytes as u64)
            .sum()
    }
}

/// What an executor's measurement means for the shard that runs on it.
pub(crate) enum Verdict {
    /// Keep this executor: the shard runs with these buffers.
    Keep(ShardBuffers),
    /// The kernel refused this slab; try a smaller one.
    Smaller,
}

/// Judges the measurement of an executor with a slab of `io_memory_bytes`, the shard's
/// `sizes_refused`-th try.
pub(crate) fn judge(
    shard: usize,
    io_memory_bytes: usize,
    sizes_refused: u32,
    measured: std::io::Result<Registration>,
) -> Verdict {
    let buffers = |registration: Registration, mode| ShardBuffers {
        shard,
        io_memory_bytes,
        sizes_refused,
        registered_rings: registration.rings,
        pinned_bytes: registration.pinned_bytes,
        mode,
    };
    match measured {
        Ok(registration) if registration.is_registered() => {
            if registration.rings != REGISTRATIONS_PER_EXECUTOR {
                tracing::warn!(
                    shard,
                    rings = registration.rings,
                    expected = REGISTRATIONS_PER_EXECUTOR,
                    "the IO memory is registered with an unexpected number of rings"
                );
            }
            let bytes_per_shard =
                usize::try_from(registration.buffer_bytes).unwrap_or(io_memory_bytes);
            Verdict::Keep(buffers(
                registration,
                BufferMode::Registered { bytes_per_shard },
            ))
        }
        Ok(registration) => {
            if next_smaller_io_memory(io_memory_bytes).is_some() {
                tracing::info!(
                    shard,
                    io_memory_bytes,
                    "the kernel refused to register the IO memory; trying half"
                );
                return Verdict::Smaller;
            }
            let reason = format!(
                "the kernel registered no IO memory, down to glommio's minimum of \
                 {io_memory_bytes} bytes, after {sizes_refused} larger sizes"
            );
            Verdict::Keep(buffers(registration, BufferMode::Unregistered { reason }))
        }
        Err(error) => {
            let reason = format!("reading io_uring registrations from /proc: {error}");
            Verdict::Keep(buffers(
                Registration::default(),
                BufferMode::Unmeasured { reason },
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel_bypass::{GLOMMIO_MIN_IO_MEMORY_BYTES, MemlockBudget};

    fn registered(bytes: u64) -> Registration {
        Registration {
            rings: 3,
            buffer_bytes: bytes,
            pinned_bytes: 3 * bytes,
        }
    }

    fn kept(verdict: Verdict) -> ShardBuffers {
        match verdict {
            Verdict::Keep(buffers) => buffers,
            Verdict::Smaller => panic!("expected a kept executor"),
        }
    }

    #[test]
    fn the_default_holds_two_batches_and_is_capped() {
        assert_eq!(default_io_memory_bytes(32), 65 * MAX_RECORD_BYTES);
        assert_eq!(default_io_memory_bytes(1), 3 * MAX_RECORD_BYTES);
        assert_eq!(
            default_io_memory_bytes(crate::MAX_BATCH),
            MAX_IO_MEMORY_BYTES_PER_SHARD
        );
    }

    #[test]
    fn refused_slabs_shrink_until_glommios_minimum_then_run_unregistered() {
        let buffers = kept(judge(0, 1 << 20, 0, Ok(registered(1 << 20))));
        assert_eq!(
            buffers.mode,
            BufferMode::Registered {
                bytes_per_shard: 1 << 20
            }
        );
        assert_eq!(buffers.pinned_bytes, 3 << 20);
        assert!(matches!(
            judge(0, 1 << 20, 0, Ok(Registration::default())),
            Verdict::Smaller
        ));
        let last = kept(judge(
            1,
            GLOMMIO_MIN_IO_MEMORY_BYTES,
            4,
            Ok(Registration::default()),
        ));
        assert!(
            matches!(&last.mode, BufferMode::Unregistered { reason } if reason.contains("after 4 larger sizes")),
            "{:?}",
            last.mode
        );
        assert_eq!(last.pinned_bytes, 0);
        let unmeasured = kept(judge(0, 1 << 20, 0, Err(std::io::Error::other("no /proc"))));
        assert_eq!(unmeasured.mode.label(), "unmeasured");
    }

    #[test]
    fn the_report_sums_shards_and_names_the_weakest_mode() {
        let budget = MemlockBudget::with_limit(Some(8 << 20));
        let shard =
            |shard, bytes: u64| kept(judge(shard, bytes as usize, 0, Ok(registered(bytes))));
        let all = BufferReport::new(
            4 << 20,
            1 << 20,
            budget,
            vec![shard(0, 1 << 20), shard(1, 512 << 10)],
            Some(0),
            Some(4608 << 10),
        );
        assert_eq!(
            all.mode,
            BufferMode::Registered {
                bytes_per_shard: 512 << 10
            }
        );
        assert_eq!(all.pinned_bytes, 3 * ((1 << 20) + (512 << 10)));
        assert_eq!(all.registered_bytes(), (1 << 20) + (512 << 10));
        let unregistered = kept(judge(
            1,
            GLOMMIO_MIN_IO_MEMORY_BYTES,
            8,
            Ok(Registration::default()),
        ));
        let partial = BufferReport::new(
            4 << 20,
            1 << 20,
            budget,
            vec![shard(0, 1 << 20), unregistered.clone()],
            None,
            None,
        );
        assert_eq!(
            partial.mode,
            BufferMode::Partial {
                registered_shards: 1,
                shards: 2
            }
        );
        assert_eq!(partial.mode.label(), "partial");
        let none = BufferReport::new(4 << 20, 1 << 20, budget, vec![unregistered], None, None);
        assert_eq!(none.mode.label(), "unregistered");
        assert_eq!(none.registered_bytes(), 0);
    }
}
