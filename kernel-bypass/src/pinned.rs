//! What the kernel actually pinned: io_uring's registered buffers as `/proc/self/fdinfo`
//! lists them, and the process's `VmPin`.
//!
//! An io_uring instance's fdinfo lists its registered buffers as `UserBufs:\t<n>` followed by
//! one `<index>: 0x<address>/<length>` line each (Linux 5.x and 6.x). The kernel prints them
//! only when it can take the ring's lock without waiting, which it can when the thread that
//! owns the ring is the one reading: so [`executor_registration`] runs on the executor whose
//! registration it measures.

use crate::DMA_ALIGNMENT;
use std::io;
use std::path::Path;

/// Most entries of `/proc/self/fd` looked at when searching for io_uring instances.
pub const MAX_FDS_SCANNED: usize = 1 << 16;

/// What `readlink` answers for an io_uring descriptor.
const IO_URING_LINK: &str = "anon_inode:[io_uring]";

/// How a piece of memory is registered with this process's io_uring instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Registration {
    /// io_uring instances that hold the memory inside one of their registered buffers.
    pub rings: u64,
    /// Length of the registered buffer that holds it (glommio registers its whole slab as one
    /// buffer); 0 when no ring holds it.
    pub buffer_bytes: u64,
    /// What the kernel pinned for it: those buffers' lengths summed over the rings (the kernel
    /// charges each ring's registration separately).
    pub pinned_bytes: u64,
}

impl Registration {
    pub fn is_registered(&self) -> bool {
        self.rings > 0
    }
}

/// Measures the registration of the IO memory of the glommio executor this runs on: a page
/// is taken from its slab (empty at start, so the page lands in it) and the process's io_uring
/// instances whose registered buffers hold that page are counted. Must run on a glommio
/// executor thread, before the slab is used up (glommio falls back to the heap then).
pub fn executor_registration() -> io::Result<Registration> {
    let probe = glommio::allocate_dma_buffer(DMA_ALIGNMENT);
    registration_holding(probe.as_ptr().addr() as u64)
}

/// How the byte at `address` is registered with this process's io_uring instances (those
/// whose fdinfo this thread can read; see the module docs).
pub fn registration_holding(address: u64) -> io::Result<Registration> {
    let mut registration = Registration::default();
    for entry in std::fs::read_dir("/proc/self/fd")?
        .take(MAX_FDS_SCANNED)
        .flatten()
    {
        // Descriptors come and go while we look: one that vanished is not ours.
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if target.as_os_str() != IO_URING_LINK {
            continue;
        }
        let Ok(info) =
            std::fs::read_to_string(Path::new("/proc/self/fdinfo").join(entry.file_name()))
        else {
            continue;
        };
        if let Some((_, length)) = registered_buffers(&info)
            .into_iter()
            .find(|(start, length)| (*start..start.saturating_add(*length)).contains(&address))
        {
            registration.rings += 1;
            registration.buffer_bytes = registration.buffer_bytes.max(length);
            registration.pinned_bytes += length;
        }
    }
    Ok(registration)
}

/// `VmPin` of this process in bytes: every page pinned for it, io_uring registrations
/// included (each ring's registration counts separately).
pub fn vm_pin_bytes() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status_kib(&status, "VmPin:")
        .map(|kib| kib * 1024)
        .ok_or_else(|| io::Error::other("/proc/self/status has no VmPin line"))
}

/// The registered buffers an io_uring fdinfo lists, as `(address, length)`.
fn registered_buffers(fdinfo: &str) -> Vec<(u64, u64)> {
    let mut lines = fdinfo.lines();
    if !lines.any(|line| line.starts_with("UserBufs:")) {
        return Vec::new();
    }
    lines
        .map_while(|line| {
            let (index, buffer) = line.trim_start().split_once(": ")?;
            index.parse::<u64>().ok()?;
            let (address, length) = buffer.trim().split_once('/')?;
            let address = u64::from_str_radix(address.strip_prefix("0x")?, 16).ok()?;
            Some((address, length.parse::<u64>().ok()?))
        })
        .collect()
}

/// The value of a `Name:   N kB` line of `/proc/self/status`.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(name))?;
    line[name.len()..]
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::REGISTRATIONS_PER_EXECUTOR;
    use glommio::LocalExecutorBuilder;

    #[test]
    fn fdinfo_buffers_are_parsed() {
        let fdinfo = "pos:\t0\nflags:\t02000002\nSqMask:\t0x7f\nUserFiles:\t0\n\
                      UserBufs:\t2\n    0: 0x7fa4af065000/1048576\n    1: 0x1000/4096\n\
                      PollList:\n";
        assert_eq!(
            registered_buffers(fdinfo),
            vec![(0x7fa4_af06_5000, 1_048_576), (0x1000, 4096)]
        );
        assert!(registered_buffers("UserFiles:\t0\nUserBufs:\t0\nPollList:\n").is_empty());
        assert!(registered_buffers("pos:\t0\n").is_empty());
    }

    #[test]
    fn status_lines_are_parsed() {
        let status = "Name:\tx\nVmLck:\t       0 kB\nVmPin:\t    3072 kB\nVmHWM:\t1 kB\n";
        assert_eq!(status_kib(status, "VmPin:"), Some(3072));
        assert_eq!(status_kib(status, "VmLck:"), Some(0));
        assert_eq!(status_kib(status, "VmSwap:"), None);
        assert!(vm_pin_bytes().is_ok(), "Linux reports VmPin");
    }

    /// Runs `executor_registration` on a fresh executor with a slab of `io_memory` bytes,
    /// spawned from the calling thread (so with its capabilities), and reads `VmPin` while the
    /// executor is still up.
    fn measure(io_memory: usize) -> (Registration, u64) {
        LocalExecutorBuilder::default()
            .io_memory(io_memory)
            .spawn(|| async {
                let registration = executor_registration().expect("fdinfo readable");
                (registration, vm_pin_bytes().expect("VmPin readable"))
            })
            .expect("executor starts")
            .join()
            .expect("executor finishes")
    }

    #[test]
    fn an_executor_slab_is_measured_on_every_ring() {
        let (registration, vm_pin) = measure(1 << 20);
        // 3 MiB charged fits any limit glommio starts under... unless the user's other locked
        // memory leaves less; either way the answer is all rings or none.
        if registration.is_registered() {
            assert_eq!(
                registration,
                Registration {
                    rings: REGISTRATIONS_PER_EXECUTOR,
                    buffer_bytes: 1 << 20,
                    pinned_bytes: 3 << 20,
                }
            );
            assert!(vm_pin >= registration.pinned_bytes, "VmPin {vm_pin}");
        } else {
            assert_eq!(registration, Registration::default());
        }
    }

    #[test]
    fn a_slab_over_a_charged_limit_is_measured_unregistered() {
        use rustix::thread::{CapabilitySet, capabilities, set_capabilities};
        let Some(limit) = rustix::process::getrlimit(rustix::process::Resource::Memlock).current
        else {
            return; // unlimited: nothing is refused for want of memlock
        };
        if limit > 256 << 20 {
            return; // a slab over the limit would be too large to allocate in a test
        }
        // Charged from here on: this test's thread (and the executor it spawns) gives up
        // CAP_IPC_LOCK, if it had it.
        let mut sets = capabilities(None).expect("capabilities");
        sets.effective.remove(CapabilitySet::IPC_LOCK);
        set_capabilities(None, sets).expect("dropping a capability is always allowed");
        let over = crate::align_up(usize::try_from(limit).expect("fits") + 1);
        let (registration, _) = measure(over);
        assert_eq!(registration, Registration::default(), "limit {limit}");
        // The same thread still registers a slab that fits.
        let (registration, _) = measure(64 * 1024);
        assert_eq!(registration.rings, REGISTRATIONS_PER_EXECUTOR);
        assert_eq!(registration.buffer_bytes, 64 * 1024);
    }
}
