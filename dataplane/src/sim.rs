//! A simulated disk: the data plane's storage in memory, with faults and crashes decided by a
//! seed, so that tests can run the whole write path against failures a real disk produces
//! rarely and never on demand.
//!
//! Key decision: the simulation models the three places a byte can be, and nothing else.
//! A write lands in the *current* image (what reads see: the page cache), a sync copies the
//! file's written blocks and its size to the *durable* image, and a directory sync makes the
//! names of new files durable. [`SimDisk::crash`] is a power loss: every block written since
//! its file's last sync is, by the seed, lost, kept, or torn (a prefix of its 512-byte
//! sectors kept); files whose names were never made durable vanish; the disk then refuses
//! every operation, as a dead process would issue none, until [`SimDisk::restart`], after
//! which every file reads as its durable image. Faults ([`SimFaults`]) fail a write (nothing
//! written), tear it (a prefix written, reported short), fail a sync (its blocks' fate is
//! decided as at a crash and the kernel forgets them, as Linux does after a failed
//! `fdatasync`), or refuse an allocation (ENOSPC). Each decision is a pure function of the
//! seed, the file's name and how many operations that file has seen, so a file sees the same
//! faults on every run whatever the threads' interleaving. A crash scheduled with
//! [`SimDisk::crash_after`] counts operations across files, which the commits on glommio's
//! blocking thread may reorder by a few.
//!
//! The disk enforces what O_DIRECT would: extent offsets and lengths are multiples of 4 KiB.
//! The index file is served through [`redb::StorageBackend`], so the shard's redb runs on the
//! same simulated disk as its extents. Glommio's executor still runs the shard: the
//! simulation is just another [`StorageProvider`].

use crate::DataPlaneError;
use crate::storage::{Extent, INDEX_FILE, IoBuffer, Storage, StorageProvider, extent_path};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};

/// Unit of the simulated images: one 4 KiB block.
const BLOCK_BYTES: usize = 4096;
/// Unit of a torn write: one 512-byte sector.
const SECTOR_BYTES: usize = 512;
const SECTORS_PER_BLOCK: usize = BLOCK_BYTES / SECTOR_BYTES;
/// Alignment the disk demands of extent IO, as O_DIRECT does.
const DIRECT_ALIGNMENT: u64 = 4096;
/// Default limit on the bytes the simulated disk holds (current image, all files).
pub const DEFAULT_SIM_CAPACITY_BYTES: u64 = 1 << 30;

/// How often each kind of fault strikes: the fraction (0.0 to 1.0) of operations of that kind
/// that fail.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SimFaults {
    /// Extent writes that fail with EIO having written nothing.
    pub extent_write_error: f64,
    /// Extent writes that tear: a prefix of whole sectors (possibly none) reaches the file and
    /// the write reports that many bytes.
    pub extent_torn_write: f64,
    /// Extent syncs that fail with EIO.
    pub extent_sync_error: f64,
    /// Extent allocations refused with ENOSPC.
    pub extent_allocate_error: f64,
    /// Index writes that fail with EIO after a prefix of whole sectors reached the file.
    pub index_write_error: f64,
    /// Index syncs that fail with EIO.
    pub index_sync_error: f64,
}

impl SimFaults {
    /// No faults.
    pub const NONE: SimFaults = SimFaults {
        extent_write_error: 0.0,
        extent_torn_write: 0.0,
        extent_sync_error: 0.0,
        extent_allocate_error: 0.0,
        index_write_error: 0.0,
        index_sync_error: 0.0,
    };

    fn rates(&self) -> [(&'static str, f64); 6] {
        [
            ("extent_write_error", self.extent_write_error),
            ("extent_torn_write", self.extent_torn_write),
            ("extent_sync_error", self.extent_sync_error),
            ("extent_allocate_error", self.extent_allocate_error),
            ("index_write_error", self.index_write_error),
            ("index_sync_error", self.index_sync_error),
        ]
    }
}

/// A fault rate outside 0.0..=1.0.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("simulated fault rate {field} = {rate} is not in 0.0..=1.0")]
pub struct SimFaultRateError {
    pub field: &'static str,
    pub rate: f64,
}

/// What the simulated disk did, since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    pub writes: u64,
    pub write_errors: u64,
    pub torn_writes: u64,
    pub syncs: u64,
    pub sync_errors: u64,
    pub allocate_errors: u64,
    pub crashes: u64,
    /// Blocks written but not synced when their fate was decided (a crash or a failed sync),
    /// by outcome.
    pub unsynced_blocks_lost: u64,
    pub unsynced_blocks_kept: u64,
    pub unsynced_blocks_torn: u64,
}

/// A simulated disk shared by every shard of a data plane (and by the test that drives it):
/// a handle, cheap to clone, `Send` and `Sync`. As a [`StorageProvider`] it gives each shard a
/// [`SimStorage`] over the files under the shard's directory.
#[derive(Clone, Debug)]
pub struct SimDisk {
    state: Arc<Mutex<DiskState>>,
}

#[derive(Debug)]
struct DiskState {
    seed: u64,
    faults: SimFaults,
    capacity_bytes: u64,
    files: BTreeMap<PathBuf, SimFile>,
    /// Files whose names are durable (their directory was synced after they were created).
    durable_names: BTreeSet<PathBuf>,
    /// Powered off by a crash: every operation fails until a restart.
    down: bool,
    /// Mutating operations attempted (writes, allocations, syncs), across files.
    ops: u64,
    crash_at_op: Option<u64>,
    stats: SimStats,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    Extent,
    Index,
}

#[derive(Debug)]
struct SimFile {
    kind: FileKind,
    /// Stable per-file input to the fault decisions.
    name_hash: u64,
    /// Operations this file has seen: the other input.
    ops: u64,
    len: u64,
    blocks: HashMap<u64, Box<[u8]>>,
    durable_len: u64,
    durable: HashMap<u64, Box<[u8]>>,
    /// Blocks written since their last sync, in order (the fate of each is drawn in turn).
    dirty: BTreeSet<u64>,
}

/// What becomes of an unsynced block at a crash or a failed sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Lost,
    Kept,
    /// Its first `n` sectors (1..SECTORS_PER_BLOCK) reached the medium.
    Torn(usize),
}

/// splitmix64: the disk's only source of randomness.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// FNV-1a: a hash of a file's name that does not change between runs or releases.
fn name_hash(path: &Path) -> u64 {
    path.as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// Why the disk refuses everything after a crash.
fn down_error() -> io::Error {
    io::Error::other("simulated disk is down: it crashed and has not been restarted")
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("simulated {what} failure (EIO)"))
}

fn unaligned(what: &str, offset: u64, length: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{what} of {length} bytes at offset {offset}: O_DIRECT needs multiples of {DIRECT_ALIGNMENT}"
        ),
    )
}

impl SimFile {
    fn new(kind: FileKind, path: &Path) -> SimFile {
        SimFile {
            kind,
            name_hash: name_hash(path),
            ops: 0,
            len: 0,
            blocks: HashMap::new(),
            durable_len: 0,
            durable: HashMap::new(),
            dirty: BTreeSet::new(),
        }
    }

    /// A draw for this file's next operation: uniform in 0..1, and a second raw word.
    fn draw(&mut self, seed: u64, salt: u64) -> (f64, u64) {
        self.ops += 1;
        let word = mix(seed ^ mix(self.name_hash ^ mix(self.ops ^ salt.rotate_left(32))));
        ((word >> 11) as f64 / (1u64 << 53) as f64, mix(word))
    }

    fn read(&self, offset: u64, out: &mut [u8]) {
        let mut done = 0;
        while done < out.len() {
            let at = offset + done as u64;
            let block = at / BLOCK_BYTES as u64;
            let within = (at % BLOCK_BYTES as u64) as usize;
            let take = (BLOCK_BYTES - within).min(out.len() - done);
            match self.blocks.get(&block) {
                Some(bytes) => {
                    out[done..done + take].copy_from_slice(&bytes[within..within + take])
                }
                None => out[done..done + take].fill(0),
            }
            done += take;
        }
    }

    /// Writes into the current image.
    fn write(&mut self, offset: u64, data: &[u8]) {
        let mut done = 0;
        while done < data.len() {
            let at = offset + done as u64;
            let block = at / BLOCK_BYTES as u64;
            let within = (at % BLOCK_BYTES as u64) as usize;
            let take = (BLOCK_BYTES - within).min(data.len() - done);
            let bytes = self
                .blocks
                .entry(block)
                .or_insert_with(|| vec![0; BLOCK_BYTES].into_boxed_slice());
            bytes[within..within + take].copy_from_slice(&data[done..done + take]);
            self.dirty.insert(block);
            done += take;
        }
        self.len = self.len.max(offset + data.len() as u64);
    }

    fn set_len(&mut self, len: u64) {
        if len < self.len {
            let first_gone = len.div_ceil(BLOCK_BYTES as u64);
            self.blocks.retain(|block, _| *block < first_gone);
            let within = (len % BLOCK_BYTES as u64) as usize;
            if within != 0
                && let Some(bytes) = self.blocks.get_mut(&(len / BLOCK_BYTES as u64))
            {
                bytes[within..].fill(0);
                self.dirty.insert(len / BLOCK_BYTES as u64);
            }
        }
        self.len = len;
    }

    fn sync(&mut self) {
        for block in std::mem::take(&mut self.dirty) {
            match self.blocks.get(&block) {
                Some(bytes) => self.durable.insert(block, bytes.clone()),
                None => self.durable.remove(&block),
            };
        }
        self.durable
            .retain(|block, _| *block < self.len.div_ceil(BLOCK_BYTES as u64));
        self.durable_len = self.len;
    }

    /// Decides, by the seed, what of the unsynced blocks and size reached the medium; the
    /// kernel forgets them afterwards (they are no longer dirty).
    fn settle_unsynced(&mut self, seed: u64, stats: &mut SimStats) {
        for block in std::mem::take(&mut self.dirty) {
            let (_, word) = self.draw(seed, 0xfa7e);
            let fate = match word % 3 {
                0 => Fate::Lost,
                1 => Fate::Kept,
                _ => Fate::Torn(1 + (word >> 8) as usize % (SECTORS_PER_BLOCK - 1)),
            };
            let Some(current) = self.blocks.get(&block) else {
                continue;
            };
            match fate {
                Fate::Lost => stats.unsynced_blocks_lost += 1,
                Fate::Kept => {
                    stats.unsynced_blocks_kept += 1;
                    self.durable.insert(block, current.clone());
                }
                Fate::Torn(sectors) => {
                    stats.unsynced_blocks_torn += 1;
                    let old = self
                        .durable
                        .entry(block)
                        .or_insert_with(|| vec![0; BLOCK_BYTES].into_boxed_slice());
                    let kept = sectors * SECTOR_BYTES;
                    old[..kept].copy_from_slice(&current[..kept]);
                }
            }
        }
        if self.len != self.durable_len {
            let (_, word) = self.draw(seed, 0x1e4);
            if word.is_multiple_of(2) {
                self.durable_len = self.len;
            }
        }
        self.durable
            .retain(|block, _| *block < self.durable_len.div_ceil(BLOCK_BYTES as u64));
    }

    /// After a power loss: the file is its durable image.
    fn revert_to_durable(&mut self) {
        self.blocks = self.durable.clone();
        self.len = self.durable_len;
        self.dirty.clear();
    }

    fn held_bytes(&self) -> u64 {
        self.blocks.len() as u64 * BLOCK_BYTES as u64
    }
}

impl DiskState {
    /// Counts a mutating operation; crashes the disk first when a scheduled crash is due.
    /// Fails once the disk is down.
    fn begin_op(&mut self) -> io::Result<()> {
        if self.down {
            return Err(down_error());
        }
        self.ops += 1;
        if self.crash_at_op.is_some_and(|at| self.ops >= at) {
            self.crash_now();
            return Err(down_error());
        }
        Ok(())
    }

    fn check_up(&self) -> io::Result<()> {
        if self.down { Err(down_error()) } else { Ok(()) }
    }

    fn crash_now(&mut self) {
        let seed = self.seed;
        let durable_names = &self.durable_names;
        self.files.retain(|path, _| durable_names.contains(path));
        for file in self.files.values_mut() {
            file.settle_unsynced(seed, &mut self.stats);
            file.revert_to_durable();
        }
        self.crash_at_op = None;
        self.down = true;
        self.stats.crashes += 1;
    }

    fn held_bytes(&self) -> u64 {
        self.files.values().map(SimFile::held_bytes).sum()
    }

    fn file(&mut self, path: &Path) -> io::Result<&mut SimFile> {
        self.files.get_mut(path).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("simulated file {} does not exist", path.display()),
            )
        })
    }

    fn extent_write(&mut self, path: &Path, data: &[u8], offset: u64) -> io::Result<usize> {
        self.begin_op()?;
        if !offset.is_multiple_of(DIRECT_ALIGNMENT)
            || !(data.len() as u64).is_multiple_of(DIRECT_ALIGNMENT)
        {
            return Err(unaligned("write", offset, data.len()));
        }
        let (seed, faults, capacity) = (self.seed, self.faults, self.capacity_bytes);
        let held = self.held_bytes();
        self.stats.writes += 1;
        let file = self.file(path)?;
        let (roll, word) = file.draw(seed, 0x3717e);
        if roll < faults.extent_write_error {
            self.stats.write_errors += 1;
            return Err(eio("write"));
        }
        let written = if roll < faults.extent_write_error + faults.extent_torn_write {
            self.stats.torn_writes += 1;
            let sectors = data.len() / SECTOR_BYTES;
            (word % sectors as u64) as usize * SECTOR_BYTES
        } else {
            data.len()
        };
        if held + written as u64 > capacity {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!("simulated disk of {capacity} bytes is full"),
            ));
        }
        let file = self.file(path)?;
        file.write(offset, &data[..written]);
        Ok(written)
    }

    fn sync(&mut self, path: &Path) -> io::Result<()> {
        self.begin_op()?;
        let (seed, faults) = (self.seed, self.faults);
        self.stats.syncs += 1;
        let file = self.file(path)?;
        let rate = match file.kind {
            FileKind::Extent => faults.extent_sync_error,
            FileKind::Index => faults.index_sync_error,
        };
        let (roll, _) = file.draw(seed, 0x5e7c);
        if roll < rate {
            let mut stats = self.stats;
            self.file(path)?.settle_unsynced(seed, &mut stats);
            self.stats = stats;
            self.stats.sync_errors += 1;
            return Err(eio("fdatasync"));
        }
        self.file(path)?.sync();
        Ok(())
    }
}

impl SimDisk {
    /// An empty disk whose faults and crash outcomes are drawn from `seed`; no faults until
    /// [`SimDisk::set_faults`].
    pub fn new(seed: u64) -> SimDisk {
        SimDisk {
            state: Arc::new(Mutex::new(DiskState {
                seed,
                faults: SimFaults::NONE,
                capacity_bytes: DEFAULT_SIM_CAPACITY_BYTES,
                files: BTreeMap::new(),
                durable_names: BTreeSet::new(),
                down: false,
                ops: 0,
                crash_at_op: None,
                stats: SimStats::default(),
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, DiskState> {
        // A panic while holding the lock (a test's assertion elsewhere cannot hold it) leaves
        // the state consistent: every mutation completes before any check that may panic.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets the fault rates from now on.
    pub fn set_faults(&self, faults: SimFaults) -> Result<(), SimFaultRateError> {
        for (field, rate) in faults.rates() {
            if !(0.0..=1.0).contains(&rate) {
                return Err(SimFaultRateError { field, rate });
            }
        }
        self.state().faults = faults;
        Ok(())
    }

    /// Limits the bytes the disk holds; writes past it fail with `StorageFull`.
    pub fn set_capacity(&self, bytes: u64) {
        self.state().capacity_bytes = bytes;
    }

    /// Schedules a crash: the disk crashes when `ops` more writes, allocations or syncs have
    /// been attempted (the last of them fails).
    pub fn crash_after(&self, ops: u64) {
        let mut state = self.state();
        state.crash_at_op = Some(state.ops + ops.max(1));
    }

    /// A power loss now (see the module docs); a disk already down stays as it is.
    pub fn crash(&self) {
        let mut state = self.state();
        if !state.down {
            state.crash_now();
        }
    }

    /// Whether the disk crashed and has not been restarted.
    pub fn is_down(&self) -> bool {
        self.state().down
    }

    /// Powers the disk back on after a crash: every file reads as its durable image.
    pub fn restart(&self) {
        self.state().down = false;
    }

    pub fn stats(&self) -> SimStats {
        self.state().stats
    }

    /// Paths of the files on the disk.
    pub fn files(&self) -> Vec<PathBuf> {
        self.state().files.keys().cloned().collect()
    }

    /// `length` bytes of the current image of `path` at `offset` (zeros where never written),
    /// for tests that look at what a crash left.
    pub fn peek(&self, path: &Path, offset: u64, length: usize) -> Option<Vec<u8>> {
        let state = self.state();
        let file = state.files.get(path)?;
        let mut out = vec![0; length];
        file.read(offset, &mut out);
        Some(out)
    }
}

/// A shard's storage on a [`SimDisk`]: its files are the disk's files under its directory,
/// named as on a real disk.
#[derive(Debug)]
pub struct SimStorage {
    disk: SimDisk,
    dir: PathBuf,
}

/// An extent on a [`SimDisk`].
#[derive(Clone, Debug)]
pub struct SimExtent {
    disk: SimDisk,
    path: Rc<Path>,
}

/// A write buffer of a [`SimStorage`]: plain heap memory.
#[derive(Debug)]
pub struct SimBuffer(Vec<u8>);

/// The index file on a [`SimDisk`], as redb's backend.
#[derive(Debug)]
pub struct SimIndexFile {
    disk: SimDisk,
    path: PathBuf,
}

impl IoBuffer for SimBuffer {
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Lets other tasks run once, so that a simulated IO completes after the task that started it
/// has moved on, as a device's would.
async fn later() {
    futures_lite::future::yield_now().await;
}

impl Extent for SimExtent {
    type Buffer = SimBuffer;
    type Read = Vec<u8>;

    fn allocate(&self, bytes: u64) -> impl Future<Output = io::Result<()>> + 'static {
        let (disk, path) = (self.disk.clone(), Rc::clone(&self.path));
        async move {
            later().await;
            let mut state = disk.state();
            state.begin_op()?;
            let (seed, faults) = (state.seed, state.faults);
            let file = state.file(&path)?;
            let (roll, _) = file.draw(seed, 0xa110c);
            if roll < faults.extent_allocate_error {
                state.stats.allocate_errors += 1;
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "simulated allocation failure (ENOSPC)",
                ));
            }
            let file = state.file(&path)?;
            file.len = file.len.max(bytes);
            Ok(())
        }
    }

    fn write_at(
        &self,
        buffer: Rc<SimBuffer>,
        offset: u64,
    ) -> impl Future<Output = io::Result<usize>> + 'static {
        let (disk, path) = (self.disk.clone(), Rc::clone(&self.path));
        async move {
            later().await;
            disk.state().extent_write(&path, &buffer.0, offset)
        }
    }

    fn read_at(
        &self,
        offset: u64,
        length: usize,
    ) -> impl Future<Output = io::Result<Vec<u8>>> + 'static {
        let (disk, path) = (self.disk.clone(), Rc::clone(&self.path));
        async move {
            later().await;
            if !offset.is_multiple_of(DIRECT_ALIGNMENT)
                || !(length as u64).is_multiple_of(DIRECT_ALIGNMENT)
            {
                return Err(unaligned("read", offset, length));
            }
            let mut state = disk.state();
            state.check_up()?;
            let file = state.file(&path)?;
            let available = file.len.saturating_sub(offset).min(length as u64) as usize;
            let mut out = vec![0; available];
            file.read(offset, &mut out);
            Ok(out)
        }
    }

    fn sync(&self) -> impl Future<Output = io::Result<()>> + 'static {
        let (disk, path) = (self.disk.clone(), Rc::clone(&self.path));
        async move {
            later().await;
            disk.state().sync(&path)
        }
    }

    async fn close(self) -> io::Result<()> {
        Ok(())
    }
}

impl Storage for SimStorage {
    type Extent = SimExtent;
    type IndexBackend = SimIndexFile;

    fn buffer(&self, length: usize) -> SimBuffer {
        SimBuffer(vec![0; length])
    }

    async fn open_extent(&self, id: u64, create: bool) -> io::Result<SimExtent> {
        later().await;
        let path = extent_path(&self.dir, id);
        let mut state = self.disk.state();
        state.check_up()?;
        if !state.files.contains_key(&path) {
            if !create {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("simulated extent {} does not exist", path.display()),
                ));
            }
            state.begin_op()?;
            let file = SimFile::new(FileKind::Extent, &path);
            state.files.insert(path.clone(), file);
        }
        Ok(SimExtent {
            disk: self.disk.clone(),
            path: path.into(),
        })
    }

    fn extent_exists(&self, id: u64) -> bool {
        self.disk
            .state()
            .files
            .contains_key(&extent_path(&self.dir, id))
    }

    /// Removal is durable at once (the simulation does not bring removed files back).
    fn remove_extent(&self, id: u64) -> io::Result<()> {
        let mut state = self.disk.state();
        state.begin_op()?;
        let path = extent_path(&self.dir, id);
        state.durable_names.remove(&path);
        state.file(&path)?;
        state.files.remove(&path);
        Ok(())
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut state = self.disk.state();
        state.begin_op()?;
        let DiskState {
            files,
            durable_names,
            ..
        } = &mut *state;
        for path in files.keys() {
            if path.parent() == Some(self.dir.as_path()) {
                durable_names.insert(path.clone());
            }
        }
        Ok(())
    }

    fn index_backend(&self) -> io::Result<SimIndexFile> {
        let path = self.dir.join(INDEX_FILE);
        let mut state = self.disk.state();
        state.check_up()?;
        if !state.files.contains_key(&path) {
            state.begin_op()?;
            let file = SimFile::new(FileKind::Index, &path);
            state.files.insert(path.clone(), file);
        }
        Ok(SimIndexFile {
            disk: self.disk.clone(),
            path,
        })
    }
}

impl StorageProvider for SimDisk {
    type Storage = SimStorage;

    async fn open(&self, dir: &Path) -> Result<SimStorage, DataPlaneError> {
        self.state()
            .check_up()
            .map_err(|source| DataPlaneError::Io {
                operation: "open simulated shard storage",
                path: dir.to_path_buf(),
                source,
            })?;
        Ok(SimStorage {
            disk: self.clone(),
            dir: dir.to_path_buf(),
        })
    }
}

impl redb::StorageBackend for SimIndexFile {
    fn len(&self) -> io::Result<u64> {
        let mut state = self.disk.state();
        state.check_up()?;
        Ok(state.file(&self.path)?.len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let mut state = self.disk.state();
        state.check_up()?;
        let file = state.file(&self.path)?;
        if offset + out.len() as u64 > file.len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "read of {} bytes at {offset} past the end ({}) of simulated {}",
                    out.len(),
                    file.len,
                    self.path.display()
                ),
            ));
        }
        file.read(offset, out);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.disk.state();
        state.begin_op()?;
        let grows_by = len.saturating_sub(state.file(&self.path)?.len);
        if state.held_bytes() + grows_by > state.capacity_bytes {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "simulated disk is full",
            ));
        }
        state.file(&self.path)?.set_len(len);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.disk.state().sync(&self.path)
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.disk.state();
        state.begin_op()?;
        let (seed, faults) = (state.seed, state.faults);
        state.stats.writes += 1;
        let file = state.file(&self.path)?;
        let (roll, word) = file.draw(seed, 0x1de3);
        if roll < faults.index_write_error {
            let sectors = data.len() / SECTOR_BYTES;
            let kept = (word % (sectors as u64 + 1)) as usize * SECTOR_BYTES;
            file.write(offset, &data[..kept]);
            state.stats.write_errors += 1;
            return Err(eio("index write"));
        }
        file.write(offset, data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::StorageBackend;

    fn storage(disk: &SimDisk) -> SimStorage {
        SimStorage {
            disk: disk.clone(),
            dir: PathBuf::from("/sim/shard-0"),
        }
    }

    use futures_lite::future::block_on;

    fn block(byte: u8) -> Rc<SimBuffer> {
        Rc::new(SimBuffer(vec![byte; BLOCK_BYTES]))
    }

    #[test]
    fn synced_data_survives_a_crash_and_unsynced_data_does_not_all_survive() {
        let disk = SimDisk::new(7);
        let (path, stats) = block_on(async {
            let storage = storage(&disk);
            let extent = storage.open_extent(0, true).await.expect("create");
            extent.allocate(64 * 4096).await.expect("allocate");
            extent.write_at(block(1), 0).await.expect("write");
            extent.sync().await.expect("sync");
            storage.sync_dir().expect("dir");
            for at in 1..64 {
                extent.write_at(block(2), at * 4096).await.expect("write");
            }
            disk.crash();
            assert!(extent.write_at(block(3), 0).await.is_err(), "down");
            assert!(extent.read_at(0, 4096).await.is_err(), "down");
            disk.restart();
            let read = extent.read_at(0, 64 * 4096).await.expect("read");
            assert_eq!(&read[..4096], &[1; 4096][..], "synced block kept");
            (extent_path(&storage.dir, 0), disk.stats())
        });
        assert_eq!(stats.crashes, 1);
        assert_eq!(
            stats.unsynced_blocks_lost + stats.unsynced_blocks_kept + stats.unsynced_blocks_torn,
            63
        );
        assert!(stats.unsynced_blocks_lost > 0 && stats.unsynced_blocks_kept > 0);
        assert!(stats.unsynced_blocks_torn > 0);
        let after = disk.peek(&path, 4096, 63 * 4096).expect("file");
        // Every sector is old (zero) or new (2): a torn block mixes them at a sector boundary.
        for sector in after.chunks(SECTOR_BYTES) {
            assert!(sector.iter().all(|b| *b == 0) || sector.iter().all(|b| *b == 2));
        }
    }

    #[test]
    fn files_whose_directory_was_not_synced_vanish_at_a_crash() {
        let disk = SimDisk::new(1);
        let storage = storage(&disk);
        let index = storage.index_backend().expect("index");
        index.write(0, b"header").expect("write");
        index.sync_data().expect("sync");
        disk.crash();
        disk.restart();
        assert!(disk.files().is_empty(), "{:?}", disk.files());

        let index = storage.index_backend().expect("index");
        index.write(0, b"header").expect("write");
        index.sync_data().expect("sync");
        storage.sync_dir().expect("dir");
        disk.crash();
        disk.restart();
        let mut out = [0u8; 6];
        index.read(0, &mut out).expect("read");
        assert_eq!(&out, b"header");
    }

    /// The faults a file sees depend on the seed and its own operations only.
    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let outcomes = |seed: u64| {
            let disk = SimDisk::new(seed);
            disk.set_faults(SimFaults {
                index_write_error: 0.3,
                index_sync_error: 0.3,
                ..SimFaults::NONE
            })
            .expect("rates");
            let index = storage(&disk).index_backend().expect("index");
            let results: Vec<bool> = (0..64)
                .map(|i| {
                    if i % 4 == 3 {
                        index.sync_data().is_ok()
                    } else {
                        index.write(i * 512, &[i as u8; 512]).is_ok()
                    }
                })
                .collect();
            (results, disk.stats())
        };
        assert_eq!(outcomes(42), outcomes(42));
        assert_ne!(outcomes(42).0, outcomes(43).0);
        let (results, stats) = outcomes(42);
        assert!(results.iter().any(|ok| !ok) && results.iter().any(|ok| *ok));
        assert_eq!(
            stats.write_errors + stats.sync_errors,
            results.iter().filter(|ok| !**ok).count() as u64
        );
    }

    #[test]
    fn extent_io_must_be_aligned_and_faults_are_validated() {
        let disk = SimDisk::new(3);
        assert!(
            disk.set_faults(SimFaults {
                extent_sync_error: 1.5,
                ..SimFaults::NONE
            })
            .is_err()
        );
        let misaligned = block_on(async {
            let extent = storage(&disk).open_extent(0, true).await.expect("create");
            let unaligned = Rc::new(SimBuffer(vec![0; 100]));
            (
                extent.write_at(unaligned, 0).await.map_err(|e| e.kind()),
                extent.write_at(block(1), 512).await.map_err(|e| e.kind()),
                extent
                    .read_at(0, 100)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.kind()),
            )
        });
        assert_eq!(
            misaligned,
            (
                Err(io::ErrorKind::InvalidInput),
                Err(io::ErrorKind::InvalidInput),
                Err(io::ErrorKind::InvalidInput)
            )
        );
    }

    #[test]
    fn a_scheduled_crash_fails_the_operation_it_strikes() {
        let disk = SimDisk::new(5);
        let index = storage(&disk).index_backend().expect("index");
        disk.crash_after(3);
        assert!(index.write(0, &[1; 512]).is_ok());
        assert!(index.write(512, &[1; 512]).is_ok());
        assert!(index.sync_data().is_err(), "the third operation crashes");
        assert!(disk.is_down());
        assert!(index.len().is_err());
    }
}
