//! The data plane: one glommio executor per core ("shard"), each owning the flow segments
//! `k ≡ shard (mod N)`, their bytes in append-only extents and their index.
//!
//! Key decision: a shard is share-nothing and talks to the control plane only through a pair
//! of SPSC rings with eventfd-style wake-ups ([`ShardClient`]), never a mutex or an async
//! channel, and a write is answered only when it is durable. A shard pops up to `max_batch`
//! requests, verifies each segment against its file root (leaf hashing on the shard that owns
//! the bytes), writes all records of the batch concurrently with O_DIRECT through io_uring,
//! issues one `fdatasync` per touched extent, commits one redb transaction with all index
//! entries (on glommio's blocking thread), and only then pushes the answers. By default
//! (`DataPlaneConfig::pipelined`) a batch's writes, sync and commit overlap the hashing of the
//! next batch, one batch settling at a time; `shard.rs` says how that keeps every guarantee.
//! Restart reads the write cursor from the index (the committed end of each extent) and never
//! scans extents: bytes that crashed batches left past the cursor are simply overwritten.
//!
//! DA-node storage rides the same rings and write path (`da_store.rs`): `DaEncode` codes a
//! payload with an encoder the shard keeps per parameter set; `DaPut` verifies a coded shard's
//! proof against its commitment (BLAKE3, on the shard that stores the bytes) and stores shard
//! and proof as one record, durable before the answer; `DaGet` reads it back CRC-checked;
//! `DaPrune` drops expired entries from the index in one commit. DA shards are routed by
//! [`da_shard_for`]: the blob's hashed offset plus the shard index, mod the shard count.
//!
//! On-disk layout, per shard: `data_dir/shard-{k}/extent-{n}.dat` (fallocated to
//! `extent_bytes`, 4 KiB-aligned records: a segment's bytes, or a DA shard's bytes followed by
//! its proof's sibling hashes), `index.redb` (format version 2: segments keyed by
//! `(tx_seq, segment)` with extent, offset, length, segment root and CRC32C; DA shards keyed by
//! `(blob id, shard index)` with extent, offset, shard length, proof length, CRC32C of the
//! record and expiry in unix seconds, plus the same keys by expiry for pruning; committed end
//! per extent; format version, shard layout and totals, DA live and dead bytes included), and
//! `probe.dat` (4 KiB read by every executor before any other file, so glommio's IOPOLL probe
//! sees a non-empty file on virtio disks). A version 1 index (before DA) opens as version 2
//! with empty DA tables. Extents are never compacted: a pruned DA record is
//! dead space until a compaction exists, and `ShardStats` reports how much there is.
//!
//! Storage is a seam ([`storage`]): a shard allocates, writes, reads and syncs extents, takes
//! its IO buffers and runs its redb index through a [`storage::Storage`], generic (never
//! `dyn`). [`DataPlane::start`] uses the production [`storage::DmaDisk`] (the layout above);
//! [`DataPlane::start_with`] takes any [`storage::StorageProvider`], such as the simulated
//! disk of [`sim`], on which tests crash the whole write path.
//!
//! IO memory is sized by what the kernel grants, not by a prediction: each shard's glommio
//! executor asks for two batches of full records, which glommio registers with its io_uring
//! rings; the registration is measured on the executor as it starts (`buffers.rs`), a refused
//! size is retried at half, and [`DataPlane::buffer_report`] says what each shard got.
#![forbid(unsafe_code)]

mod buffers;
mod da_store;
mod extent;
mod index;
mod ring;
mod shard;
pub mod sim;
pub mod storage;

use da::blob::DaParams;
use da::commit::{BlobId, ShardIndex, ShardProof};
use glommio::{CpuSet, LocalExecutorBuilder, Placement};
use kernel_bypass::{MemlockBudget, next_smaller_io_memory};
use std::path::PathBuf;
use std::sync::mpsc;
use storage::{DmaDisk, StorageProvider};
use types::{FlowSegmentIndex, H256, SEGMENT_BYTES, SegmentIndex, TxSeq};

pub use buffers::{
    BufferMode, BufferReport, MAX_IO_MEMORY_BYTES_PER_SHARD, ShardBuffers, default_io_memory_bytes,
};
pub use da_store::{
    DaEncoded, DaPruned, DaPutShard, DaRejection, MAX_DA_ENCODERS, MAX_DA_PRUNE_ENTRIES,
    MAX_DA_RECORD_BYTES, da_shard_for,
};
pub use merkle::file::{Proof, ProofError};
pub use ring::{RingFull, ShardClient};

/// Largest segment record: one full segment. Client data longer than this is never written.
/// DA records have their own limit, [`MAX_DA_RECORD_BYTES`], and never exceed one extent.
pub const MAX_RECORD_BYTES: usize = SEGMENT_BYTES;
/// Upper bound on `DataPlaneConfig::max_batch`.
pub const MAX_BATCH: usize = 256;
/// Default requests per batch: 32 segments = 8 MiB of data per `fdatasync` and commit.
pub const DEFAULT_MAX_BATCH: usize = 32;
/// Upper bound on `DataPlaneConfig::ring_capacity` (unanswered requests per shard).
pub const MAX_RING_CAPACITY: usize = 1 << 16;
/// Default unanswered requests per shard.
pub const DEFAULT_RING_CAPACITY: usize = 1024;
/// Upper bound on shards per data plane.
pub const MAX_SHARDS: usize = 256;
/// Default extent size: 1 GiB.
pub const DEFAULT_EXTENT_BYTES: u64 = 1 << 30;
/// Largest extent: 1 TiB.
pub const MAX_EXTENT_BYTES: u64 = 1 << 40;
/// Smallest extent: one full record.
pub const MIN_EXTENT_BYTES: u64 = MAX_RECORD_BYTES as u64;
/// Alignment of records in extents (O_DIRECT on 4 KiB-block devices).
pub const RECORD_ALIGNMENT: u64 = kernel_bypass::DMA_ALIGNMENT as u64;

const _: () = assert!((MAX_RECORD_BYTES as u64).is_multiple_of(RECORD_ALIGNMENT));
const _: () = assert!(DEFAULT_EXTENT_BYTES.is_multiple_of(RECORD_ALIGNMENT));
const _: () = assert!(DEFAULT_MAX_BATCH <= MAX_BATCH);
const _: () = assert!(DEFAULT_RING_CAPACITY <= MAX_RING_CAPACITY);

/// How the data plane is laid out and bounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataPlaneConfig {
    /// Root of all shard directories.
    pub data_dir: PathBuf,
    /// Number of shards (executors); the node's flow segment k goes to
    /// [`shard_for`]`(k, position, shards)`.
    pub shards: usize,
    /// The flow segments this node stores (0G's shard position; every segment by default).
    /// A node that stores part of the flow also keeps each segment's proof.
    pub position: types::ShardConfig,
    /// Size of each pre-allocated extent file: a multiple of 4096, at least one record.
    pub extent_bytes: u64,
    /// Limit on extent bytes for the whole data plane, split evenly between shards; `None`
    /// means until the file system is full.
    pub max_disk_bytes: Option<u64>,
    /// Most unanswered requests per shard.
    pub ring_capacity: usize,
    /// Most requests a shard takes into one batch (one `fdatasync`, one index commit).
    pub max_batch: usize,
    /// Settle each write batch (wait for its writes, `fdatasync`, index commit) while the next
    /// batch is verified and issued; `false` settles every batch before taking the next. Both
    /// answer a write only once it is synced and indexed (see `shard.rs`).
    pub pipelined: bool,
    /// IO memory each shard's executor asks for (glommio's `io_memory` slab, registered with
    /// io_uring when the kernel grants it; see [`BufferReport`]); `None` for
    /// [`default_io_memory_bytes`] of `max_batch`. At most [`MAX_IO_MEMORY_BYTES_PER_SHARD`];
    /// glommio rounds it up to whole pages and to at least 64 KiB.
    pub io_memory_bytes_per_shard: Option<usize>,
}

impl DataPlaneConfig {
    /// Defaults: one shard per available core, 1 GiB extents, no disk limit.
    pub fn new(data_dir: impl Into<PathBuf>) -> DataPlaneConfig {
        let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
        DataPlaneConfig {
            data_dir: data_dir.into(),
            shards: cores.min(MAX_SHARDS),
            position: types::ShardConfig::ALL,
            extent_bytes: DEFAULT_EXTENT_BYTES,
            max_disk_bytes: None,
            ring_capacity: DEFAULT_RING_CAPACITY,
            max_batch: DEFAULT_MAX_BATCH,
            pipelined: true,
            io_memory_bytes_per_shard: None,
        }
    }

    fn validate(&self) -> Result<(), DataPlaneError> {
        let invalid =
            |field: &'static str, reason: String| Err(DataPlaneError::Config { field, reason });
        if self.shards == 0 || self.shards > MAX_SHARDS {
            return invalid(
                "shards",
                format!("{} is not in 1..={MAX_SHARDS}", self.shards),
            );
        }
        if !self.extent_bytes.is_multiple_of(RECORD_ALIGNMENT)
            || !(MIN_EXTENT_BYTES..=MAX_EXTENT_BYTES).contains(&self.extent_bytes)
        {
            return invalid(
                "extent_bytes",
                format!(
                    "{} is not a multiple of {RECORD_ALIGNMENT} in {MIN_EXTENT_BYTES}..={MAX_EXTENT_BYTES}",
                    self.extent_bytes
                ),
            );
        }
        if self.ring_capacity == 0 || self.ring_capacity > MAX_RING_CAPACITY {
            return invalid(
                "ring_capacity",
                format!("{} is not in 1..={MAX_RING_CAPACITY}", self.ring_capacity),
            );
        }
        if self.max_batch == 0 || self.max_batch > MAX_BATCH {
            return invalid(
                "max_batch",
                format!("{} is not in 1..={MAX_BATCH}", self.max_batch),
            );
        }
        if let Some(bytes) = self.io_memory_bytes_per_shard
            && bytes > MAX_IO_MEMORY_BYTES_PER_SHARD
        {
            return invalid(
                "io_memory_bytes_per_shard",
                format!("{bytes} is more than {MAX_IO_MEMORY_BYTES_PER_SHARD}"),
            );
        }
        Ok(())
    }

    /// The IO memory each shard asks for.
    fn desired_io_memory_bytes(&self) -> usize {
        self.io_memory_bytes_per_shard
            .unwrap_or_else(|| default_io_memory_bytes(self.max_batch))
    }

    /// Extents one shard may allocate under `max_disk_bytes`.
    fn max_extents_per_shard(&self) -> Option<u64> {
        self.max_disk_bytes
            .map(|bytes| bytes / self.shards as u64 / self.extent_bytes)
    }
}

/// One segment to store, with the client's proof that it belongs to `file_root`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteSegment {
    pub tx_seq: TxSeq,
    pub file_root: H256,
    pub file_size: u64,
    pub segment: SegmentIndex,
    pub flow_segment: FlowSegmentIndex,
    pub data: Vec<u8>,
    pub proof: Proof,
}

/// What the control plane asks of a shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Write(WriteSegment),
    Read {
        tx_seq: TxSeq,
        segment: SegmentIndex,
        flow_segment: FlowSegmentIndex,
    },
    /// Which segments of this tx the shard holds, with their segment roots (recovery of
    /// unfinalized files without a full rescan).
    Stored {
        tx_seq: TxSeq,
    },
    /// The proof kept with a stored segment (a node that holds part of the flow keeps them).
    Proof {
        tx_seq: TxSeq,
        segment: SegmentIndex,
    },
    Stats,
    /// Re-read a stored segment and check it: its CRC, its segment root against the one
    /// indexed at write time, and the kept proof (where the shard keeps one) against
    /// `file_root`. A segment that fails is dropped, as a read that fails its CRC drops it.
    Scrub {
        tx_seq: TxSeq,
        segment: SegmentIndex,
        flow_segment: FlowSegmentIndex,
        file_root: H256,
        file_size: u64,
    },
    /// Code `payload` into committed shards under `params`; any shard may be asked.
    DaEncode {
        params: DaParams,
        payload: Vec<u8>,
    },
    /// Verify one coded shard against its commitment and store it until its expiry; send it
    /// to `da_shard_for(blob, index, shards)`.
    DaPut(DaPutShard),
    /// A stored coded shard with its proof; send it to `da_shard_for(blob, index, shards)`.
    DaGet {
        blob: BlobId,
        index: ShardIndex,
    },
    /// Drop every DA shard with `expires_at_unix_s <= now_unix_s` from the index (at most
    /// [`MAX_DA_PRUNE_ENTRIES`] per call); each shard prunes its own.
    DaPrune {
        now_unix_s: u64,
    },
}

/// A shard's answer to one [`Request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Durable: data synced and indexed.
    Written {
        segment_root: H256,
    },
    /// Already durable from an earlier write; nothing was written.
    AlreadyStored {
        segment_root: H256,
    },
    /// Bad client input: nothing written.
    Rejected(ProofError),
    Data(Vec<u8>),
    NotFound,
    /// A stored segment failed its check on a read or a scrub: it was never served, and the
    /// shard has dropped it from its index durably (the reason says what failed), so a fresh
    /// copy can be written in its place.
    Damaged(String),
    /// A scrubbed segment passed every check; `bytes` were read.
    Scrubbed {
        bytes: u64,
    },
    Stored(Vec<(SegmentIndex, H256)>),
    /// The kept proof, or `None` when the segment or its proof is not here.
    Proof(Option<Box<Proof>>),
    Stats(ShardStats),
    /// IO failure: nothing acknowledged.
    Failed(String),
    /// No room for the record (the disk, or the `max_disk_bytes` cap): nothing written, and
    /// reads and other writes that fit go on. The message says what did not fit.
    StorageFull(String),
    /// The coded blob, owned, for dispersal.
    DaEncoded(Box<DaEncoded>),
    /// Durable: record synced and indexed.
    DaStored,
    /// Already durable from an earlier put, kept until the expiry of that put; nothing was
    /// written.
    DaAlreadyStored {
        expires_at_unix_s: u64,
    },
    /// A stored shard, CRC-checked, with its proof against the blob's commitment. An expired
    /// shard is served until a prune removes it; its expiry says so.
    DaShard {
        data: Vec<u8>,
        proof: ShardProof,
        expires_at_unix_s: u64,
    },
    DaPruned(DaPruned),
    /// Bad DA input (payload, shard, proof or size): nothing written.
    DaRejected(DaRejection),
}

/// Counters of one shard. "Stored" and "used" figures come from the index and survive
/// restarts; "written", "batches", "rejected" and "failed" count since start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardStats {
    pub shard: usize,
    /// Segments in the index.
    pub segments_stored: u64,
    /// Data bytes of the segments in the index.
    pub payload_bytes_stored: u64,
    /// Extent bytes up to the committed end of each extent, summed: records (segments and DA
    /// shards, live or pruned) are 4 KiB-aligned, and the unused tail of an extent left behind
    /// by a rollover is not counted.
    pub record_bytes_used: u64,
    /// Extent files known to the shard.
    pub extents: u64,
    /// `extents * extent_bytes`: what the shard holds on disk besides its index.
    pub disk_bytes_allocated: u64,
    pub segments_written: u64,
    pub payload_bytes_written: u64,
    /// Write batches committed (one `fdatasync` round and one index transaction each).
    pub batches: u64,
    pub writes_rejected: u64,
    pub writes_failed: u64,
    /// DA shards in the index, their shard bytes, and the extent bytes their records take
    /// (4 KiB-aligned, proofs included). Persisted.
    pub da_shards_stored: u64,
    pub da_payload_bytes_stored: u64,
    pub da_record_bytes_live: u64,
    /// Extent bytes of pruned DA records: dead space, never reused (no compaction yet), and
    /// still counted in `record_bytes_used`. Persisted, as is the count of pruned shards.
    pub da_record_bytes_dead: u64,
    pub da_shards_pruned: u64,
    /// Damaged segments dropped from the index, ever, and the extent bytes their records
    /// leave dead (never reused, still counted in `record_bytes_used`). Persisted.
    pub segments_dropped: u64,
    pub segment_record_bytes_dead: u64,
    /// Since start: segments scrubbed and their bytes.
    pub segments_scrubbed: u64,
    pub scrubbed_bytes: u64,
    /// Since start: DA shards written, puts rejected (bad input), puts failed (IO), blobs
    /// encoded.
    pub da_shards_written: u64,
    pub da_puts_rejected: u64,
    pub da_puts_failed: u64,
    pub da_blobs_encoded: u64,
    /// Nanoseconds, summed over batches, per phase of the write path. `verify_ns` (Keccak
    /// against the file root) and `place_ns` (index lookup, placement, copy into DMA buffers,
    /// starting the writes) are CPU on the shard's thread. `write_ns` (waiting for the writes
    /// from the start of the settle stage), `sync_ns` (one `fdatasync` per touched extent) and
    /// `commit_ns` (the index transaction) are the settle stage, which overlaps the next
    /// batch's CPU work when `pipelined`. `settle_wait_ns` is the part the shard spent waiting
    /// for a batch to settle: the durability time not hidden behind other work.
    pub verify_ns: u64,
    pub place_ns: u64,
    pub write_ns: u64,
    pub sync_ns: u64,
    pub commit_ns: u64,
    pub settle_wait_ns: u64,
    /// Whether batches settle while the next one is issued (`DataPlaneConfig::pipelined`).
    pub pipelined: bool,
    /// This shard's IO memory registration, as measured when its executor started.
    pub buffer_mode: BufferMode,
}

/// Why the data plane could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum DataPlaneError {
    #[error("invalid data plane config: {field}: {reason}")]
    Config { field: &'static str, reason: String },
    #[error("{operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("index {operation} {path}: {source}")]
    Index {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: Box<redb::Error>,
    },
    #[error("index {path} is corrupt: {reason}")]
    IndexCorrupt { path: PathBuf, reason: String },
    #[error(
        "index {path} belongs to shard {stored_shard} of {stored_shards}, not shard {shard} of {shards}: flow segments would be routed to the wrong shard"
    )]
    ShardLayout {
        path: PathBuf,
        stored_shard: u64,
        stored_shards: u64,
        shard: u64,
        shards: u64,
    },
    #[error("memlock limit of {limit_bytes} bytes is below glommio's minimum of {required_bytes}")]
    MemlockTooLow {
        limit_bytes: u64,
        required_bytes: u64,
    },
    #[error("shard {shard}: starting its executor failed: {message}")]
    ExecutorStart { shard: usize, message: String },
    #[error("shard {shard} stopped abnormally: {message}")]
    ShardStopped { shard: usize, message: String },
    #[error("creating the rings of shard {shard}: {source}")]
    Rings {
        shard: usize,
        #[source]
        source: std::io::Error,
    },
}

/// The data-plane shard (core) that stores `flow_segment` on a node at `position` with
/// `shards` cores: the node's own segments are numbered `k >> log2(num_shard)` (0, 1, 2, … in
/// flow order) and dealt round robin, so every core gets its share whatever the position. A
/// node that stores everything (`0/1`) routes `k mod shards`, as it always has.
pub fn shard_for(
    flow_segment: FlowSegmentIndex,
    position: types::ShardConfig,
    shards: usize,
) -> usize {
    assert!(shards > 0, "a data plane has at least one shard");
    let own_number = flow_segment.0 >> position.num_shard.trailing_zeros();
    (own_number % shards as u64) as usize
}

struct ShardThread {
    shutdown: ring::ShutdownHandle,
    join: Option<glommio::ExecutorJoinHandle<Result<(), DataPlaneError>>>,
}

/// The running shards. Dropping it shuts them down too; [`DataPlane::shutdown`] also reports
/// how they stopped.
pub struct DataPlane {
    shards: Vec<ShardThread>,
    position: types::ShardConfig,
    buffers: BufferReport,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane")
            .field("shards", &self.shards.len())
            .field("buffer_mode", &self.buffers.mode)
            .finish()
    }
}

/// One shard's executor while start-up tries IO memory sizes.
struct ShardStart {
    thread: ShardThread,
    client: ShardClient,
    ready: mpsc::Receiver<Result<(), DataPlaneError>>,
    buffers: ShardBuffers,
}

impl DataPlane {
    /// Starts one executor per shard on the production storage ([`DmaDisk`]: O_DIRECT extents
    /// and redb files under `config.data_dir`) and returns the clients, in shard order.
    /// Returns once every shard has opened its index and is ready for requests.
    pub fn start(config: DataPlaneConfig) -> Result<(DataPlane, Vec<ShardClient>), DataPlaneError> {
        DataPlane::start_with(config, DmaDisk)
    }

    /// [`DataPlane::start`] on the storage `provider` gives each shard (opened on the shard's
    /// executor, under `config.data_dir/shard-{k}`): the simulated disk of `sim`, or another
    /// device.
    pub fn start_with<P: StorageProvider>(
        config: DataPlaneConfig,
        provider: P,
    ) -> Result<(DataPlane, Vec<ShardClient>), DataPlaneError> {
        config.validate()?;
        let budget = MemlockBudget::probe();
        if !budget.allows_glommio() {
            return Err(DataPlaneError::MemlockTooLow {
                limit_bytes: budget.limit_bytes.unwrap_or(u64::MAX),
                required_bytes: kernel_bypass::GLOMMIO_MIN_MEMLOCK_BYTES,
            });
        }
        let desired = config.desired_io_memory_bytes();
        let planned = budget.plan(config.shards, desired);
        let pinned_before = kernel_bypass::vm_pin_bytes().ok();
        let cpus = pinned_cpus(config.shards);

        let mut data_plane = DataPlane {
            shards: Vec::new(),
            position: config.position,
            buffers: BufferReport::new(desired, planned, budget, Vec::new(), None, None),
        };
        let mut clients = Vec::with_capacity(config.shards);
        let mut readiness = Vec::with_capacity(config.shards);
        let mut shard_buffers = Vec::with_capacity(config.shards);
        // Shards start one after the other, each at the size the one before it was granted:
        // what the kernel grants shrinks as shards pin memory, never grows.
        let mut io_memory = planned;
        for shard in 0..config.shards {
            let placement = match &cpus {
                Some(cpus) => Placement::Fixed(cpus[shard]),
                None => Placement::Unbound,
            };
            let started = start_shard(
                &config,
                &provider,
                shard,
                placement,
                io_memory,
                budget.is_charged(),
            )?;
            io_memory = started.buffers.io_memory_bytes;
            data_plane.shards.push(started.thread);
            clients.push(started.client);
            readiness.push(started.ready);
            shard_buffers.push(started.buffers);
        }
        for (shard, ready) in readiness.into_iter().enumerate() {
            match ready.recv() {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(error),
                Err(_) => {
                    // The shard dropped its sender without a word: it panicked or its executor
                    // failed; joining it tells which.
                    let message = data_plane.join_shard(shard).err().map_or_else(
                        || "exited before it was ready".to_string(),
                        |error| error.to_string(),
                    );
                    return Err(DataPlaneError::ExecutorStart { shard, message });
                }
            }
        }
        data_plane.buffers = BufferReport::new(
            desired,
            planned,
            budget,
            shard_buffers,
            pinned_before,
            kernel_bypass::vm_pin_bytes().ok(),
        );
        let report = &data_plane.buffers;
        tracing::info!(
            shards = config.shards,
            mode = %report.mode,
            desired_bytes_per_shard = report.desired_bytes_per_shard,
            planned_bytes_per_shard = report.planned_bytes_per_shard,
            registered_bytes = report.registered_bytes(),
            pinned_bytes = report.pinned_bytes,
            process_pinned_bytes_before = ?report.process_pinned_bytes_before,
            process_pinned_bytes_after = ?report.process_pinned_bytes_after,
            memlock = %budget,
            "data plane io buffers (measured)"
        );
        Ok((data_plane, clients))
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard that owns `flow_segment` on this node: see [`shard_for`].
    pub fn shard_for(&self, flow_segment: FlowSegmentIndex) -> usize {
        shard_for(flow_segment, self.position, self.shards.len())
    }

    /// The shard that stores coded shard `index` of `blob`: see [`da_shard_for`].
    pub fn da_shard_for(&self, blob: &BlobId, index: ShardIndex) -> usize {
        da_shard_for(blob, index, self.shards.len())
    }

    /// Whether shards registered their IO memory with io_uring, as measured at start.
    pub fn buffer_mode(&self) -> &BufferMode {
        &self.buffers.mode
    }

    /// The shards' IO memory: desired, planned and registered sizes, pinned bytes (per shard
    /// and in all, and the process's `VmPin`), and the mode, all as measured at start.
    pub fn buffer_report(&self) -> &BufferReport {
        &self.buffers
    }

    /// Asks every shard to answer what is already queued and stop, then joins them. Requests
    /// sent after this are not answered (`ShardClient::is_closed` turns true).
    pub fn shutdown(mut self) -> Result<(), DataPlaneError> {
        self.stop_all()
    }

    fn stop_all(&mut self) -> Result<(), DataPlaneError> {
        for thread in &self.shards {
            thread.shutdown.request_shutdown();
        }
        let mut first_error = None;
        for shard in 0..self.shards.len() {
            if let Err(error) = self.join_shard(shard) {
                tracing::error!(shard, %error, "shard stopped abnormally");
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn join_shard(&mut self, shard: usize) -> Result<(), DataPlaneError> {
        let Some(join) = self.shards[shard].join.take() else {
            return Ok(());
        };
        match join.join() {
            Ok(result) => result,
            Err(error) => Err(DataPlaneError::ShardStopped {
                shard,
                message: error.to_string(),
            }),
        }
    }
}

impl Drop for DataPlane {
    fn drop(&mut self) {
        // Already logged inside; a drop has nobody to report to.
        let _ = self.stop_all();
    }
}

/// Tries of an executor that fails to start while the memlock limit is charged (see
/// [`start_shard`]), and the wait before each: half a second in all.
const MAX_CHARGED_START_RETRIES: u32 = 50;
const CHARGED_START_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(10);

/// Starts the executor of shard `shard` with `io_memory` bytes of IO memory, and with half as
/// much each time the kernel refuses to register it, down to glommio's minimum (see
/// `buffers.rs`). The kept executor goes on to open the shard and later reports readiness.
/// Under a `charged` memlock limit an executor that dies before measuring is tried again a
/// few times.
fn start_shard<P: StorageProvider>(
    config: &DataPlaneConfig,
    provider: &P,
    shard: usize,
    placement: Placement,
    mut io_memory: usize,
    charged: bool,
) -> Result<ShardStart, DataPlaneError> {
    let mut sizes_refused = 0;
    let mut start_retries = 0;
    loop {
        let (client, rings, wake_socket, shutdown) =
            ring::ring_pair(shard, config.ring_capacity)
                .map_err(|source| DataPlaneError::Rings { shard, source })?;
        let settings = shard::ShardSettings {
            shard,
            shards: config.shards,
            position: config.position,
            dir: config.data_dir.join(format!("shard-{shard}")),
            extent_bytes: config.extent_bytes,
            max_extents: config.max_extents_per_shard(),
            max_batch: config.max_batch,
            pipelined: config.pipelined,
        };
        let provider = provider.clone();
        let (measured_tx, measured_rx) = mpsc::sync_channel(1);
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let spawned = LocalExecutorBuilder::new(placement.clone())
            .name(&format!("zerog-shard-{shard}"))
            .io_memory(io_memory)
            .spawn(move || async move {
                // First, before the slab serves any IO: what did the kernel register?
                let verdict = buffers::judge(
                    shard,
                    io_memory,
                    sizes_refused,
                    kernel_bypass::executor_registration(),
                );
                let buffers = match verdict {
                    buffers::Verdict::Keep(buffers) => buffers,
                    buffers::Verdict::Smaller => {
                        let _ = measured_tx.send(None);
                        return Ok(());
                    }
                };
                let _ = measured_tx.send(Some(buffers.clone()));
                shard::run(
                    settings,
                    provider,
                    buffers.mode,
                    rings,
                    wake_socket,
                    ready_tx,
                )
                .await
            });
        let mut thread = match spawned {
            Ok(join) => ShardThread {
                shutdown,
                join: Some(join),
            },
            Err(error) => {
                return Err(DataPlaneError::ExecutorStart {
                    shard,
                    message: error.to_string(),
                });
            }
        };
        match measured_rx.recv() {
            Ok(Some(buffers)) => {
                return Ok(ShardStart {
                    thread,
                    client,
                    ready: ready_rx,
                    buffers,
                });
            }
            Ok(None) => {
                // The executor ended on its own; a smaller slab is tried on a fresh one.
                if let Some(join) = thread.join.take() {
                    let _ = join.join();
                }
                sizes_refused += 1;
                io_memory = next_smaller_io_memory(io_memory)
                    .expect("a smaller size exists: the verdict was to try one");
            }
            Err(_) => {
                let message = match thread.join.take().map(|join| join.join()) {
                    Some(Ok(Err(error))) => error.to_string(),
                    Some(Err(error)) => error.to_string(),
                    _ => "exited before measuring its IO memory".to_string(),
                };
                // Without CAP_IPC_LOCK the kernel charges an executor's rings to the memlock
                // limit too, and releases those of executors just given up (a refused size, an
                // earlier data plane) in the background: a new executor may find the limit
                // still taken for a moment.
                if charged && start_retries < MAX_CHARGED_START_RETRIES {
                    start_retries += 1;
                    tracing::warn!(shard, io_memory, %message, "executor did not start under a charged memlock limit; retrying");
                    std::thread::sleep(CHARGED_START_RETRY_DELAY);
                    continue;
                }
                return Err(DataPlaneError::ExecutorStart { shard, message });
            }
        }
    }
}

/// CPU ids to pin shard k to, or `None` (unpinned) when there are more shards than cores.
fn pinned_cpus(shards: usize) -> Option<Vec<usize>> {
    let cpus: Vec<usize> = match CpuSet::online() {
        Ok(set) => set.into_iter().map(|location| location.cpu).collect(),
        Err(error) => {
            tracing::warn!(%error, "cannot list online CPUs; shards run unpinned");
            return None;
        }
    };
    (shards <= cpus.len()).then(|| cpus.into_iter().take(shards).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_is_modulo_shards() {
        let all = types::ShardConfig::ALL;
        assert_eq!(shard_for(FlowSegmentIndex(0), all, 2), 0);
        assert_eq!(shard_for(FlowSegmentIndex(7), all, 2), 1);
        assert_eq!(shard_for(FlowSegmentIndex(7), all, 4), 3);
        assert_eq!(shard_for(FlowSegmentIndex(u64::MAX), all, 1), 0);
        // A node of shard 1/4 owns segments 1, 5, 9, 13, …: its two cores take turns, where
        // `k mod 2` would put every one on core 1.
        let quarter = types::ShardConfig::new(4, 1).expect("valid");
        let cores: Vec<usize> = [1u64, 5, 9, 13]
            .iter()
            .map(|&k| shard_for(FlowSegmentIndex(k), quarter, 2))
            .collect();
        assert_eq!(cores, [0, 1, 0, 1]);
    }

    #[test]
    fn config_is_validated() {
        let good = DataPlaneConfig {
            shards: 2,
            ..DataPlaneConfig::new("/nonexistent")
        };
        assert!(good.validate().is_ok());
        assert_eq!(
            good.desired_io_memory_bytes(),
            default_io_memory_bytes(DEFAULT_MAX_BATCH)
        );
        let cases = [
            DataPlaneConfig {
                shards: 0,
                ..good.clone()
            },
            DataPlaneConfig {
                extent_bytes: 4096,
                ..good.clone()
            },
            DataPlaneConfig {
                extent_bytes: MIN_EXTENT_BYTES + 1,
                ..good.clone()
            },
            DataPlaneConfig {
                ring_capacity: 0,
                ..good.clone()
            },
            DataPlaneConfig {
                max_batch: MAX_BATCH + 1,
                ..good.clone()
            },
            DataPlaneConfig {
                io_memory_bytes_per_shard: Some(MAX_IO_MEMORY_BYTES_PER_SHARD + 1),
                ..good.clone()
            },
        ];
        for config in cases {
            assert!(
                matches!(config.validate(), Err(DataPlaneError::Config { .. })),
                "{config:?}"
            );
        }
    }

    #[test]
    fn disk_budget_is_split_between_shards() {
        let config = DataPlaneConfig {
            shards: 2,
            extent_bytes: 1 << 20,
            max_disk_bytes: Some(5 << 20),
            ..DataPlaneConfig::new("/nonexistent")
        };
        assert_eq!(config.max_extents_per_shard(), Some(2));
        assert_eq!(
            DataPlaneConfig {
                max_disk_bytes: None,
                ..config
            }
            .max_extents_per_shard(),
            None
        );
    }
}
