//! The one place where zerog's data plane touches memory and descriptors with `unsafe`.
//!
//! Key decision: everything that O_DIRECT and io_uring need from raw memory is wrapped here
//! behind safe types, so that `dataplane` can `#![forbid(unsafe_code)]`:
//!
//! - [`AlignedBuf`] / [`AlignedBufPool`]: 4096-aligned buffers whose length is a multiple of
//!   4096 (what O_DIRECT demands of memory, offset and length), and a bounded, per-shard pool of
//!   them with a named maximum and a clear error when it is exhausted.
//! - [`MemlockBudget`]: io_uring charges registered (pinned) buffers against `RLIMIT_MEMLOCK`.
//!   The limit is probed once and [`MemlockBudget::plan`] decides, before any executor starts,
//!   whether each shard registers buffers and how many bytes, so that registration never fails
//!   half-way and the node can log which mode it runs in.
//! - [`glommio_unix_stream`]: glommio 0.9 adopts a foreign descriptor only through the unsafe
//!   `FromRawFd`; the data plane's wake-up socket goes through this one audited conversion.
#![allow(unsafe_code)]

mod aligned;
mod memlock;
mod socket;

pub use aligned::{AlignedBuf, AlignedBufPool, MAX_ALIGNED_BUF_BYTES, MAX_POOL_BUFFERS, PooledBuf};
pub use memlock::{
    BufferMode, GLOMMIO_MIN_IO_MEMORY_BYTES, GLOMMIO_MIN_MEMLOCK_BYTES, MEMLOCK_HEADROOM_DIVISOR,
    MemlockBudget, REGISTRATIONS_PER_EXECUTOR,
};
pub use socket::glommio_unix_stream;

/// Alignment of memory, file offsets and lengths for O_DIRECT on the devices zerog targets
/// (4 KiB logical blocks on NVMe; virtio accepts it too).
pub const DMA_ALIGNMENT: usize = 4096;

const _: () = assert!(DMA_ALIGNMENT.is_power_of_two());

/// Rounds `len_bytes` up to a multiple of [`DMA_ALIGNMENT`].
pub const fn align_up(len_bytes: usize) -> usize {
    len_bytes.div_ceil(DMA_ALIGNMENT) * DMA_ALIGNMENT
}

/// Why a buffer or pool could not be made or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelBypassError {
    #[error("buffer length {len_bytes} is not a positive multiple of {alignment} bytes")]
    UnalignedLength { len_bytes: usize, alignment: usize },
    #[error("buffer length {len_bytes} exceeds the maximum of {max_bytes} bytes")]
    BufferTooLarge { len_bytes: usize, max_bytes: usize },
    #[error("allocating {len_bytes} bytes aligned to {alignment} failed")]
    AllocationFailed { len_bytes: usize, alignment: usize },
    #[error("pool {pool} must hold between 1 and {max_allowed} buffers, asked for {max_buffers}")]
    PoolSize {
        pool: &'static str,
        max_buffers: usize,
        max_allowed: usize,
    },
    #[error("pool {pool} exhausted: all {max_buffers} buffers of {buffer_bytes} bytes are in use")]
    PoolExhausted {
        pool: &'static str,
        max_buffers: usize,
        buffer_bytes: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn align_up_rounds_to_blocks() {
        assert_eq!(align_up(0), 0);
        assert_eq!(align_up(1), 4096);
        assert_eq!(align_up(4096), 4096);
        assert_eq!(align_up(4097), 8192);
        assert_eq!(align_up(types::SEGMENT_BYTES), types::SEGMENT_BYTES);
    }
}
