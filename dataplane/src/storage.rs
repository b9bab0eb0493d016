//! The storage seam: what a shard needs from the device beneath it, and the production
//! implementation on glommio's O_DIRECT `DmaFile`s.
//!
//! A shard names no device type. It asks its [`Storage`] for extents (allocate one of a given
//! size, open one, write a buffer at an aligned offset, read at an aligned offset, sync), for
//! IO buffers of the storage's own type, and for the redb backend its index runs on. The
//! traits are used as generics, never as `dyn`: each storage gets its own monomorphized shard,
//! so the seam costs the hot path nothing (see `docs/benchmarks.md`).
//!
//! Every future an [`Extent`] returns is `'static` and owns what it needs (the extent handle
//! is cheap to clone), because the shard spawns writes and reads as local tasks and lets the
//! settle stage of a batch outlive the call that issued it. Nothing here is `Send`: a storage
//! lives on its shard's executor. The index backend is the exception, since redb commits run
//! on glommio's blocking thread.
//!
//! Implementations: [`DmaDisk`] (production: files under the shard directory, extents through
//! io_uring with O_DIRECT, the index through redb's file backend) and `crate::sim::SimDisk`
//! (in memory, deterministic faults and crashes, for tests).

use crate::DataPlaneError;
use glommio::io::{DmaBuffer, DmaFile, OpenOptions, ReadResult};
use std::future::Future;
use std::io;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// The name of the shard's index inside its directory.
pub const INDEX_FILE: &str = "index.redb";
/// The name of the probe file [`DmaDisk`] reads before any other file of a shard.
pub const PROBE_FILE: &str = "probe.dat";
/// Size of the probe file.
const PROBE_BYTES: usize = 4096;

/// The path of extent `id` of the shard whose directory is `dir`.
pub fn extent_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("extent-{id}.dat"))
}

/// Memory a storage writes from: filled by the shard, then handed to [`Extent::write_at`].
pub trait IoBuffer: 'static {
    /// The whole buffer, writable: the shard copies a record in and zeroes the padding.
    fn as_bytes_mut(&mut self) -> &mut [u8];
    /// Bytes in the buffer (what a write of it writes).
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One open extent: a file of records at 4 KiB-aligned offsets. A handle, cheap to clone;
/// every clone refers to the same extent.
pub trait Extent: Clone + 'static {
    type Buffer: IoBuffer;
    /// What a read returns: the bytes read, at most the length asked for (fewer at the end of
    /// the extent).
    type Read: Deref<Target = [u8]> + 'static;

    /// Reserves `bytes` for the extent, which become its size (`fallocate`). Not durable until
    /// [`Extent::sync`], and its name not until [`Storage::sync_dir`].
    fn allocate(&self, bytes: u64) -> impl Future<Output = io::Result<()>> + 'static;
    /// Writes the whole of `buffer` at `offset` (both multiples of 4 KiB); answers how many
    /// bytes were written (fewer than the buffer is a short write). Not durable until synced.
    fn write_at(
        &self,
        buffer: Rc<Self::Buffer>,
        offset: u64,
    ) -> impl Future<Output = io::Result<usize>> + 'static;
    /// Reads `length` bytes at `offset` (both multiples of 4 KiB).
    fn read_at(
        &self,
        offset: u64,
        length: usize,
    ) -> impl Future<Output = io::Result<Self::Read>> + 'static;
    /// Makes every completed write and the extent's size durable (`fdatasync`).
    fn sync(&self) -> impl Future<Output = io::Result<()>> + 'static;
    /// Closes the extent if this is its last handle.
    fn close(self) -> impl Future<Output = io::Result<()>> + 'static;
}

/// One shard's storage: its extents, its IO buffers and its index's backing store.
pub trait Storage: 'static {
    type Extent: Extent;
    /// Where the shard's redb index lives.
    type IndexBackend: redb::StorageBackend;

    /// A buffer of `length` bytes (a multiple of 4 KiB) to write from.
    fn buffer(&self, length: usize) -> <Self::Extent as Extent>::Buffer;
    /// Opens extent `id`; with `create`, creates it (empty) when it does not exist.
    fn open_extent(&self, id: u64, create: bool) -> impl Future<Output = io::Result<Self::Extent>>;
    /// Whether extent `id` exists (a metadata check: start counts the extents that crashed
    /// batches allocated past the committed ones).
    fn extent_exists(&self, id: u64) -> bool;
    /// Removes extent `id`, whose allocation failed and which no index entry points into.
    fn remove_extent(&self, id: u64) -> io::Result<()>;
    /// Makes the creation of extents and of the index durable (their directory entries).
    fn sync_dir(&self) -> io::Result<()>;
    /// Opens (or creates, empty) the backing store of the shard's index.
    fn index_backend(&self) -> io::Result<Self::IndexBackend>;
}

/// Makes the storage of each shard; cloned into every shard's executor, where it opens that
/// shard's [`Storage`] (which then never leaves the executor).
pub trait StorageProvider: Clone + Send + 'static {
    type Storage: Storage;

    /// Opens the storage of the shard whose files live in `dir` (created if missing), on the
    /// executor that will run the shard.
    fn open(&self, dir: &Path) -> impl Future<Output = Result<Self::Storage, DataPlaneError>>;
}

/// The production storage: files in the shard's directory; extents are glommio `DmaFile`s
/// (O_DIRECT through io_uring, writes from glommio's `DmaBuffer`s, registered with the rings
/// when the kernel granted it); the index is a file through redb's own file backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct DmaDisk;

/// [`DmaDisk`]'s storage of one shard.
#[derive(Debug)]
pub struct DmaStorage {
    dir: PathBuf,
}

/// An extent file opened with O_DIRECT.
#[derive(Clone)]
pub struct DmaExtent(Rc<DmaFile>);

impl IoBuffer for DmaBuffer {
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        DmaBuffer::as_bytes_mut(self)
    }

    fn len(&self) -> usize {
        DmaBuffer::len(self)
    }
}

impl Extent for DmaExtent {
    type Buffer = DmaBuffer;
    type Read = ReadResult;

    fn allocate(&self, bytes: u64) -> impl Future<Output = io::Result<()>> + 'static {
        let file = Rc::clone(&self.0);
        async move { Ok(file.pre_allocate(bytes, false).await?) }
    }

    fn write_at(
        &self,
        buffer: Rc<DmaBuffer>,
        offset: u64,
    ) -> impl Future<Output = io::Result<usize>> + 'static {
        let file = Rc::clone(&self.0);
        async move { Ok(file.write_rc_at(buffer, offset).await?) }
    }

    fn read_at(
        &self,
        offset: u64,
        length: usize,
    ) -> impl Future<Output = io::Result<ReadResult>> + 'static {
        let file = Rc::clone(&self.0);
        async move { Ok(file.read_at_aligned(offset, length).await?) }
    }

    fn sync(&self) -> impl Future<Output = io::Result<()>> + 'static {
        let file = Rc::clone(&self.0);
        async move { Ok(file.fdatasync().await?) }
    }

    async fn close(self) -> io::Result<()> {
        match Rc::try_unwrap(self.0) {
            Ok(file) => Ok(file.close().await?),
            // Other handles keep it open; the last one to go closes it.
            Err(_) => Ok(()),
        }
    }
}

impl Storage for DmaStorage {
    type Extent = DmaExtent;
    type IndexBackend = redb::backends::FileBackend;

    fn buffer(&self, length: usize) -> DmaBuffer {
        // From the executor's io_memory slab while it has room (registered with io_uring when
        // the kernel granted it), from the heap after that.
        glommio::allocate_dma_buffer(length)
    }

    async fn open_extent(&self, id: u64, create: bool) -> io::Result<DmaExtent> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .dma_open(extent_path(&self.dir, id))
            .await?;
        Ok(DmaExtent(Rc::new(file)))
    }

    fn extent_exists(&self, id: u64) -> bool {
        extent_path(&self.dir, id).exists()
    }

    fn remove_extent(&self, id: u64) -> io::Result<()> {
        std::fs::remove_file(extent_path(&self.dir, id))
    }

    fn sync_dir(&self) -> io::Result<()> {
        std::fs::File::open(&self.dir)?.sync_all()
    }

    fn index_backend(&self) -> io::Result<redb::backends::FileBackend> {
        // Exactly what redb's `Builder::create(path)` opens.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.dir.join(INDEX_FILE))?;
        redb::backends::FileBackend::new(file).map_err(io::Error::other)
    }
}

impl StorageProvider for DmaDisk {
    type Storage = DmaStorage;

    async fn open(&self, dir: &Path) -> Result<DmaStorage, DataPlaneError> {
        std::fs::create_dir_all(dir).map_err(|source| DataPlaneError::Io {
            operation: "create shard directory",
            path: dir.to_path_buf(),
            source,
        })?;
        // Before any other file: see `probe_device`.
        probe_device(dir).await?;
        Ok(DmaStorage {
            dir: dir.to_path_buf(),
        })
    }
}

fn io_error(operation: &'static str, path: &Path, source: io::Error) -> DataPlaneError {
    DataPlaneError::Io {
        operation,
        path: path.to_path_buf(),
        source,
    }
}

/// Makes glommio see a non-empty file on the data device first, so that its IOPOLL probe
/// (a read at offset 0 of the first file it opens on a device, remembered per executor) gets
/// the device's real answer; on virtio an empty file makes it wrongly conclude IOPOLL works and
/// every later read fails with EOPNOTSUPP.
async fn probe_device(dir: &Path) -> Result<(), DataPlaneError> {
    let path = dir.join(PROBE_FILE);
    let present = std::fs::metadata(&path).is_ok_and(|meta| meta.len() >= PROBE_BYTES as u64);
    if !present {
        std::fs::write(&path, [0x5a; PROBE_BYTES])
            .map_err(|source| io_error("write probe file", &path, source))?;
    }
    let file = DmaFile::open(&path)
        .await
        .map_err(|error| io_error("open probe file", &path, error.into()))?;
    let read = file
        .read_at_aligned(0, PROBE_BYTES)
        .await
        .map_err(|error| io_error("read probe file", &path, error.into()))?;
    if read.len() != PROBE_BYTES {
        let short = io::Error::other(format!("read {} of {PROBE_BYTES} bytes", read.len()));
        return Err(io_error("read probe file", &path, short));
    }
    drop(read);
    file.close()
        .await
        .map_err(|error| io_error("close probe file", &path, error.into()))
}
