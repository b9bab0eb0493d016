//! What zerog's data plane needs from the kernel beneath its IO library, in the data plane's
//! one crate allowed `unsafe` (used once, in `socket.rs`).
//!
//! Key decision: registered (pinned) IO memory is measured, not predicted. io_uring pins a
//! registered buffer and, for a thread without `CAP_IPC_LOCK`, charges it against
//! `RLIMIT_MEMLOCK`; glommio 0.9 registers each executor's `io_memory` slab with the
//! executor's three rings and only logs (through `log`) when that fails. So:
//!
//! - [`MemlockBudget`] reads the memlock limit and whether the calling thread holds
//!   `CAP_IPC_LOCK`, and [`MemlockBudget::plan`] picks the first slab size worth trying:
//!   what is desired when the kernel will not charge the limit, what fits under it (with
//!   headroom) when it will. [`next_smaller_io_memory`] is the fallback ladder.
//! - [`executor_registration`], run on a glommio executor, reads from `/proc/self/fdinfo`
//!   which of the process's io_uring instances hold that executor's slab as a registered
//!   buffer and how long it is: what the kernel actually granted. [`vm_pin_bytes`] reads the
//!   process's pinned total (`VmPin`).
//! - [`glommio_unix_stream`]: glommio 0.9 adopts a foreign descriptor only through the unsafe
//!   `FromRawFd`; the data plane's wake-up socket goes through this one audited conversion.
//!
//! Nothing here allocates or writes IO buffers: glommio 0.9 writes only its own `DmaBuffer`s.
#![allow(unsafe_code)]

mod memlock;
mod pinned;
mod socket;

pub use memlock::{
    GLOMMIO_MIN_IO_MEMORY_BYTES, GLOMMIO_MIN_MEMLOCK_BYTES, MEMLOCK_HEADROOM_DIVISOR,
    MemlockBudget, REGISTRATIONS_PER_EXECUTOR, next_smaller_io_memory,
};
pub use pinned::{
    MAX_FDS_SCANNED, Registration, executor_registration, registration_holding, vm_pin_bytes,
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
