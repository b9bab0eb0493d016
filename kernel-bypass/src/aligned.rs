//! 4096-aligned heap buffers for O_DIRECT and a bounded pool of them.

use crate::{DMA_ALIGNMENT, KernelBypassError};
use std::alloc::Layout;
use std::cell::{Cell, RefCell};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::rc::Rc;

/// Largest single aligned buffer: far above a 256 KiB segment record, low enough that a
/// corrupted length cannot ask the allocator for the whole machine.
pub const MAX_ALIGNED_BUF_BYTES: usize = 64 << 20;
/// Largest number of buffers one pool may hand out at once.
pub const MAX_POOL_BUFFERS: usize = 4096;

/// A zero-initialised heap buffer whose address is [`DMA_ALIGNMENT`]-aligned and whose length
/// is a positive multiple of it, as O_DIRECT requires.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len_bytes: usize,
}

// SAFETY: `AlignedBuf` owns its allocation exclusively (like `Vec<u8>`); moving it to another
// thread moves that ownership, and the bytes themselves have no thread affinity.
unsafe impl Send for AlignedBuf {}
// SAFETY: a shared `&AlignedBuf` only exposes `&[u8]`, which is safe to read from many threads.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// Allocates `len_bytes` zeroed bytes aligned to [`DMA_ALIGNMENT`].
    pub fn zeroed(len_bytes: usize) -> Result<AlignedBuf, KernelBypassError> {
        if len_bytes == 0 || !len_bytes.is_multiple_of(DMA_ALIGNMENT) {
            return Err(KernelBypassError::UnalignedLength {
                len_bytes,
                alignment: DMA_ALIGNMENT,
            });
        }
        if len_bytes > MAX_ALIGNED_BUF_BYTES {
            return Err(KernelBypassError::BufferTooLarge {
                len_bytes,
                max_bytes: MAX_ALIGNED_BUF_BYTES,
            });
        }
        let layout = Self::layout(len_bytes)?;
        // SAFETY: `layout` has a non-zero size (checked above) and a valid power-of-two
        // alignment, which is all `alloc_zeroed` requires.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or(KernelBypassError::AllocationFailed {
            len_bytes,
            alignment: DMA_ALIGNMENT,
        })?;
        Ok(AlignedBuf { ptr, len_bytes })
    }

    fn layout(len_bytes: usize) -> Result<Layout, KernelBypassError> {
        Layout::from_size_align(len_bytes, DMA_ALIGNMENT).map_err(|_| {
            KernelBypassError::AllocationFailed {
                len_bytes,
                alignment: DMA_ALIGNMENT,
            }
        })
    }

    /// Length in bytes: always a positive multiple of [`DMA_ALIGNMENT`].
    pub fn len_bytes(&self) -> usize {
        self.len_bytes
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` points to `len_bytes` initialised (zeroed at allocation) bytes that this
        // value owns; the shared borrow of `self` prevents concurrent mutation.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len_bytes) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and the exclusive borrow of `self` makes this the only
        // reference to the bytes.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len_bytes) }
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.len_bytes, DMA_ALIGNMENT)
            .expect("the same layout was valid when the buffer was allocated");
        // SAFETY: `ptr` was returned by `alloc_zeroed` with exactly this layout and is freed
        // only here, once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout) }
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len_bytes", &self.len_bytes)
            .finish()
    }
}

struct PoolInner {
    name: &'static str,
    buffer_bytes: usize,
    max_buffers: usize,
    free: RefCell<Vec<AlignedBuf>>,
    leased: Cell<usize>,
}

/// A bounded pool of equally sized [`AlignedBuf`]s for one shard (single-threaded: shards share
/// nothing, so the pool needs no lock). Buffers are allocated lazily, up to `max_buffers` at a
/// time, and return to the pool when their [`PooledBuf`] is dropped.
#[derive(Clone)]
pub struct AlignedBufPool {
    inner: Rc<PoolInner>,
}

impl AlignedBufPool {
    /// A pool named `name` (for error messages) of at most `max_buffers` buffers of
    /// `buffer_bytes` each.
    pub fn new(
        name: &'static str,
        buffer_bytes: usize,
        max_buffers: usize,
    ) -> Result<AlignedBufPool, KernelBypassError> {
        if max_buffers == 0 || max_buffers > MAX_POOL_BUFFERS {
            return Err(KernelBypassError::PoolSize {
                pool: name,
                max_buffers,
                max_allowed: MAX_POOL_BUFFERS,
            });
        }
        // Validate the size once, up front, so `take` can only fail for exhaustion or memory.
        drop(AlignedBuf::zeroed(buffer_bytes)?);
        Ok(AlignedBufPool {
            inner: Rc::new(PoolInner {
                name,
                buffer_bytes,
                max_buffers,
                free: RefCell::new(Vec::new()),
                leased: Cell::new(0),
            }),
        })
    }

    /// Takes a buffer. A recycled buffer still holds the bytes of its previous use: callers that
    /// write less than the whole buffer must clear the rest (or use [`Self::take_zeroed`]).
    pub fn take(&self) -> Result<PooledBuf, KernelBypassError> {
        let inner = &self.inner;
        if inner.leased.get() >= inner.max_buffers {
            return Err(KernelBypassError::PoolExhausted {
                pool: inner.name,
                max_buffers: inner.max_buffers,
                buffer_bytes: inner.buffer_bytes,
            });
        }
        let recycled = inner.free.borrow_mut().pop();
        let buf = match recycled {
            Some(buf) => buf,
            None => AlignedBuf::zeroed(inner.buffer_bytes)?,
        };
        inner.leased.set(inner.leased.get() + 1);
        Ok(PooledBuf {
            buf: Some(buf),
            pool: Rc::clone(inner),
        })
    }

    /// Takes a buffer whose every byte is zero.
    pub fn take_zeroed(&self) -> Result<PooledBuf, KernelBypassError> {
        let mut buf = self.take()?;
        buf.fill(0);
        Ok(buf)
    }

    /// Buffers currently handed out.
    pub fn leased(&self) -> usize {
        self.inner.leased.get()
    }

    pub fn max_buffers(&self) -> usize {
        self.inner.max_buffers
    }

    pub fn buffer_bytes(&self) -> usize {
        self.inner.buffer_bytes
    }
}

/// A buffer on loan from an [`AlignedBufPool`]; dropping it gives it back.
pub struct PooledBuf {
    buf: Option<AlignedBuf>,
    pool: Rc<PoolInner>,
}

impl PooledBuf {
    fn buf(&self) -> &AlignedBuf {
        self.buf
            .as_ref()
            .expect("the buffer is only taken out in drop")
    }

    fn buf_mut(&mut self) -> &mut AlignedBuf {
        self.buf
            .as_mut()
            .expect("the buffer is only taken out in drop")
    }
}

impl Deref for PooledBuf {
    type Target = AlignedBuf;
    fn deref(&self) -> &AlignedBuf {
        self.buf()
    }
}

impl DerefMut for PooledBuf {
    fn deref_mut(&mut self) -> &mut AlignedBuf {
        self.buf_mut()
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.pool.free.borrow_mut().push(buf);
            let leased = self.pool.leased.get();
            assert!(
                leased > 0,
                "pool {}: more buffers returned than leased",
                self.pool.name
            );
            self.pool.leased.set(leased - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_and_zeroed() {
        for len_bytes in [4096, 8192, 256 * 1024] {
            let buf = AlignedBuf::zeroed(len_bytes).expect("valid length");
            assert_eq!(buf.as_ptr() as usize % DMA_ALIGNMENT, 0);
            assert_eq!(buf.len_bytes(), len_bytes);
            assert!(buf.iter().all(|byte| *byte == 0));
        }
    }

    #[test]
    fn unaligned_or_huge_lengths_are_refused() {
        for len_bytes in [0, 1, 4095, 4097] {
            assert_eq!(
                AlignedBuf::zeroed(len_bytes).err(),
                Some(KernelBypassError::UnalignedLength {
                    len_bytes,
                    alignment: DMA_ALIGNMENT
                })
            );
        }
        let huge = MAX_ALIGNED_BUF_BYTES + DMA_ALIGNMENT;
        assert!(matches!(
            AlignedBuf::zeroed(huge),
            Err(KernelBypassError::BufferTooLarge { .. })
        ));
    }

    #[test]
    fn writes_are_visible_through_both_views() {
        let mut buf = AlignedBuf::zeroed(4096).expect("valid length");
        buf[..3].copy_from_slice(b"abc");
        assert_eq!(&buf.as_slice()[..3], b"abc");
    }

    #[test]
    fn pool_is_bounded_and_recycles() {
        let pool = AlignedBufPool::new("test", 8192, 2).expect("valid pool");
        let mut first = pool.take().expect("first");
        first[0] = 7;
        let first_addr = first.as_ptr() as usize;
        let _second = pool.take().expect("second");
        assert_eq!(pool.leased(), 2);
        assert_eq!(
            pool.take().err(),
            Some(KernelBypassError::PoolExhausted {
                pool: "test",
                max_buffers: 2,
                buffer_bytes: 8192
            })
        );
        drop(first);
        assert_eq!(pool.leased(), 1);
        let again = pool.take_zeroed().expect("a buffer came back");
        assert_eq!(
            again.as_ptr() as usize,
            first_addr,
            "the freed buffer is reused"
        );
        assert_eq!(again[0], 0, "take_zeroed clears the previous contents");
    }

    #[test]
    fn pool_sizes_are_validated() {
        assert!(matches!(
            AlignedBufPool::new("empty", 4096, 0),
            Err(KernelBypassError::PoolSize { .. })
        ));
        assert!(matches!(
            AlignedBufPool::new("odd", 1000, 1),
            Err(KernelBypassError::UnalignedLength { .. })
        ));
    }
}
