//! One shard: a glommio task that turns batches of requests into durable records and answers.
//!
//! # Write pipeline
//!
//! A write batch goes through two stages:
//!
//! 1. *Issue* (the shard's main task, CPU-bound): verify every segment against its file root
//!    (Keccak), drop duplicates, place each record after the reserved cursor, copy it into an
//!    IO buffer of the shard's storage and start its write (O_DIRECT through io_uring on the
//!    production storage).
//! 2. *Settle* (a separate local task): wait for the writes, `fdatasync` each touched extent
//!    once, commit one redb transaction for the batch on glommio's blocking thread (redb's
//!    commit blocks on its own fsyncs), and hand the outcome back.
//!
//! With `DataPlaneConfig::pipelined`, batch N settles while the main task issues batch N+1:
//! the device writes and syncs batch N while the CPU hashes and copies batch N+1. Only then
//! does the main task wait for N and answer it (at most one batch settles at a time, so
//! commits are strictly in batch order and the committed ends and totals only grow). Without
//! it, every batch settles before the next is taken: the old, strictly sequential behaviour.
//!
//! What keeps the guarantees:
//! - A write is answered `Written` only from a settled batch whose sync and commit succeeded,
//!   so it is on disk and in the index; nothing else answers a write as stored. The extent
//!   records are not a log: the index stays the only source of truth, and nothing is
//!   recovered from extents.
//! - `in_flight` holds every key of an issued, not yet settled batch. A later write of such a
//!   key writes nothing and waits for the first: it is answered with the first's outcome
//!   (`AlreadyStored` once that is durable, its failure otherwise).
//! - `reserved` is the end of the last issued record: a new batch is placed after it while an
//!   earlier one is settling, so no two batches share space. When nothing is settling it falls
//!   back to the committed cursor, which reuses the space of failed writes as before. After a
//!   crash the cursor comes from the committed extent ends only; bytes of unsettled batches past
//!   it are overwritten, and extents they allocated are counted (see `Shard::open`).
//! - Reads of a key that is still settling, and every `Stored` or `Stats` query, wait until
//!   nothing settles, so they see every write sent before them, as in the sequential mode.
//!
//! The main task hands the reactor a turn (`reactor_turn`) after issuing writes and every
//! `REACTOR_TURN_INTERVAL` of hashing or copying while a batch settles: glommio only submits
//! queued IO and reaps completions between task runs, so without these turns the writes of a
//! batch would start only when the CPU work of the next one ends, and nothing would overlap.
//!
//! DA puts go through the same two stages as segment writes, in the same batches: verified
//! against their commitment (BLAKE3) in the issue stage, placed after the same cursor, synced
//! and committed with the batch (their index entries and the segments' in one transaction),
//! and answered only when settled. `in_flight` holds their keys too. `DaPrune` is a query: it
//! waits until nothing settles, so its commit never interleaves with a batch's and the totals
//! each commit writes stay exact. `DaEncode` is CPU work on the shard's thread, done after the
//! batch's other answers are pushed; a large blob holds the shard (and the settling of its
//! batch) for the whole encode.
//!
//! Full-record IO buffers are reused (`pool`): fresh heap buffers page-fault on first touch,
//! which made the copy into them cost about 5 ms per 32-record batch. With the default IO
//! memory (`buffers.rs`) the pool's buffers come from the executor's registered slab.
//!
//! A shard is generic over its [`Storage`] (`storage.rs`): extents, IO buffers and the index's
//! backend come from it, so the same code runs on O_DIRECT files and on the simulated disk.

use crate::da_store::{EncoderCache, record_crc, record_length, split_record};
use crate::extent::{Cursor, ExtentLayout, Placement};
use crate::index::{
    DaEntry, DaKey, IndexTotals, RecordEntry, SegmentKey, ShardIndex, cursor_from_ends,
};
use crate::ring::ShardRings;
use crate::storage::{Extent, INDEX_FILE, IoBuffer, Storage, StorageProvider, extent_path};
use crate::{
    BufferMode, DaPutShard, DaRejection, DataPlaneError, MAX_DA_PRUNE_ENTRIES, MAX_DA_RECORD_BYTES,
    MAX_RECORD_BYTES, RECORD_ALIGNMENT, Request, Response, ShardStats, WriteSegment,
};
use futures_lite::AsyncReadExt;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};
use types::{FlowSegmentIndex, H256};

/// Extent files a shard keeps open at once (the current one always among them).
const MAX_OPEN_EXTENTS: usize = 1024;
/// Wake-up bytes consumed per read of the wake socket.
const WAKE_READ_BYTES: usize = 64;
/// Longest stretch of CPU work before the main task lets the reactor submit and reap IO while
/// a batch settles. A turn costs tens of microseconds; settling needs a few turns (writes done
/// → syncs issued → syncs done → commit started → commit done) in the ~10 ms of a batch's CPU.
const REACTOR_TURN_INTERVAL: Duration = Duration::from_millis(1);
/// Full-record IO buffers kept for reuse: two batches' worth (one settling, one issuing).
/// Fresh buffers beyond glommio's registered slab come from the heap and page-fault on first
/// touch, which made copying a record cost several times the copy itself.
pub(crate) const POOL_BATCHES: usize = 2;

pub(crate) struct ShardSettings {
    pub(crate) shard: usize,
    pub(crate) shards: usize,
    /// The flow segments this node stores; the shard stores those routed to it.
    pub(crate) position: types::ShardConfig,
    pub(crate) dir: PathBuf,
    pub(crate) extent_bytes: u64,
    pub(crate) max_extents: Option<u64>,
    pub(crate) max_batch: usize,
    pub(crate) pipelined: bool,
}

/// Runs shard `settings.shard` until shutdown: opens its storage and files, reports readiness
/// on `ready`, then serves its rings. `buffer_mode` is its executor's measured registration.
pub(crate) async fn run<P: StorageProvider>(
    settings: ShardSettings,
    provider: P,
    buffer_mode: BufferMode,
    rings: ShardRings,
    wake_socket: UnixStream,
    ready: SyncSender<Result<(), DataPlaneError>>,
) -> Result<(), DataPlaneError> {
    let opened = match provider.open(&settings.dir).await {
        Ok(storage) => Shard::open(settings, storage, buffer_mode).await,
        Err(error) => Err(error),
    };
    let shard = match opened {
        Ok(shard) => shard,
        Err(error) => {
            // `start` reports the error; the executor just ends.
            let _ = ready.send(Err(error));
            return Ok(());
        }
    };
    let wake = kernel_bypass::glommio_unix_stream(wake_socket);
    let _ = ready.send(Ok(()));
    shard.serve(rings, wake).await
}

/// Lets the reactor run once: submit the IO that tasks queued and wake the tasks whose IO
/// completed. A yield alone does not do it (glommio polls IO only when its task queues run dry
/// or its preemption timer fires); a short timer makes the main task really wait.
async fn reactor_turn() {
    glommio::timer::sleep(Duration::from_micros(1)).await;
}

/// Where a record lies and its checksum, for a read.
struct RecordAt {
    extent: u64,
    offset: u64,
    length: usize,
    crc32c: u32,
}

/// Why a stored record could not be served.
enum RecordDamage {
    /// Its bytes are not the ones written: it must be dropped and fetched again.
    Damaged(String),
    /// The read itself failed.
    Unreadable(String),
}

impl RecordDamage {
    fn into_message(self) -> String {
        match self {
            RecordDamage::Damaged(message) | RecordDamage::Unreadable(message) => message,
        }
    }
}

/// A blob id in hex, for messages.
fn blob_hex(blob: &da::commit::BlobId) -> String {
    blob.0.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn elapsed_ns(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The IO buffer type of a storage.
type Buffer<S> = <<S as Storage>::Extent as Extent>::Buffer;

/// The write of one record, running; it hands its buffer back for reuse.
type WriteTask<S> = glommio::Task<(io::Result<usize>, Rc<Buffer<S>>)>;

/// What a record in the extents is, for the in-flight bookkeeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum RecordKey {
    Segment(SegmentKey),
    Da(DaKey),
}

/// A record being written, with the index entry it gets once durable.
#[derive(Clone, Copy, Debug)]
enum PendingRecord {
    Segment { key: SegmentKey, entry: RecordEntry },
    Da { key: DaKey, entry: DaEntry },
}

impl PendingRecord {
    fn key(&self) -> RecordKey {
        match self {
            PendingRecord::Segment { key, .. } => RecordKey::Segment(*key),
            PendingRecord::Da { key, .. } => RecordKey::Da(*key),
        }
    }

    fn extent(&self) -> u64 {
        match self {
            PendingRecord::Segment { entry, .. } => entry.extent,
            PendingRecord::Da { entry, .. } => entry.extent,
        }
    }

    fn offset(&self) -> u64 {
        match self {
            PendingRecord::Segment { entry, .. } => entry.offset,
            PendingRecord::Da { entry, .. } => entry.offset,
        }
    }

    /// Client bytes in the record: the segment, or the DA shard without its proof.
    fn payload_length(&self) -> u32 {
        match self {
            PendingRecord::Segment { entry, .. } => entry.length,
            PendingRecord::Da { entry, .. } => entry.data_length,
        }
    }

    /// What the write's request is answered with once durable.
    fn stored(&self) -> Stored {
        match self {
            PendingRecord::Segment { entry, .. } => Stored::Segment {
                segment_root: entry.segment_root,
            },
            PendingRecord::Da { entry, .. } => Stored::Da {
                expires_at_unix_s: entry.expires_at_unix_s,
            },
        }
    }
}

/// A durable, indexed record, as its answers need it.
#[derive(Clone, Copy, Debug)]
enum Stored {
    Segment { segment_root: H256 },
    Da { expires_at_unix_s: u64 },
}

/// One write of a batch that passed verification, got a place, and whose IO is under way.
struct IssuedWrite<S: Storage> {
    request_id: u64,
    record: PendingRecord,
    /// The segment's proof, kept in the index when the node holds only part of the flow.
    proof: Option<Box<[u8]>>,
    record_bytes: u64,
    file: S::Extent,
    io: WriteTask<S>,
}

/// A record whose write [`Shard::start_record`] started.
struct StartedRecord<S: Storage> {
    at: Cursor,
    record_bytes: u64,
    file: S::Extent,
    io: WriteTask<S>,
}

impl<S: Storage> StartedRecord<S> {
    fn issued(self, request_id: u64, record: PendingRecord) -> IssuedWrite<S> {
        IssuedWrite {
            request_id,
            record,
            proof: None,
            record_bytes: self.record_bytes,
            file: self.file,
            io: self.io,
        }
    }
}

/// How one write of a settled batch ended.
struct WriteOutcome {
    request_id: u64,
    key: RecordKey,
    /// Client bytes of the record (see [`PendingRecord::payload_length`]).
    length: u32,
    /// What was stored when the record is durable and indexed; why not otherwise.
    result: Result<Stored, String>,
}

/// The batch in its settle stage, and whether that stage has finished.
type SettlingBatch<S> = (glommio::Task<Settled<S>>, Rc<Cell<bool>>);

/// A batch after its settle stage.
struct Settled<S: Storage> {
    outcomes: Vec<WriteOutcome>,
    /// New committed extent ends and totals, when the batch's commit succeeded.
    committed: Option<(BTreeMap<u64, u64>, IndexTotals)>,
    /// Full-record buffers whose writes are done.
    buffers: Vec<Buffer<S>>,
    write_ns: u64,
    sync_ns: u64,
    commit_ns: u64,
}

#[derive(Default)]
struct Counters {
    segments_written: u64,
    payload_bytes_written: u64,
    batches: u64,
    writes_rejected: u64,
    writes_failed: u64,
    da_shards_written: u64,
    da_puts_rejected: u64,
    da_puts_failed: u64,
    da_blobs_encoded: u64,
    verify_ns: u64,
    place_ns: u64,
    write_ns: u64,
    sync_ns: u64,
    commit_ns: u64,
    settle_wait_ns: u64,
    segments_scrubbed: u64,
    scrubbed_bytes: u64,
}

/// One segment read: for a client, or a scrub that also checks the segment root and the
/// kept proof against the file root and file size it carries.
struct SegmentRead {
    request_id: u64,
    key: SegmentKey,
    flow_segment: FlowSegmentIndex,
    scrub: Option<(H256, u64)>,
}

struct Shard<S: Storage> {
    id: usize,
    shards: usize,
    position: types::ShardConfig,
    /// Where the shard's files are (extents, index), through `storage`.
    dir: PathBuf,
    storage: S,
    layout: ExtentLayout,
    max_batch: usize,
    pipelined: bool,
    buffer_mode: BufferMode,
    /// Shared with the blocking thread that runs commits.
    index: Arc<ShardIndex>,
    /// Committed end of every extent holding records, as in the index.
    committed_ends: BTreeMap<u64, u64>,
    totals: IndexTotals,
    /// Extent ids below this have a file (allocated to `extent_bytes`).
    known_extents: u64,
    extents: HashMap<u64, S::Extent>,
    /// End of the last record issued; meaningful while a batch is settling.
    reserved: Cursor,
    /// Keys of issued, unsettled writes → request ids of later writes of the same key.
    in_flight: HashMap<RecordKey, Vec<u64>>,
    /// The batch in its settle stage (at most one), and whether it has finished (then the
    /// main task needs to give the reactor no more turns for it).
    settling: Option<SettlingBatch<S>>,
    /// Reusable full-record IO buffers.
    pool: Vec<Buffer<S>>,
    /// Largest DA record this shard stores: [`MAX_DA_RECORD_BYTES`], or one extent if smaller.
    max_da_record_bytes: usize,
    encoders: EncoderCache,
    counters: Counters,
}

fn io_error(operation: &'static str, path: &Path, source: io::Error) -> DataPlaneError {
    DataPlaneError::Io {
        operation,
        path: path.to_path_buf(),
        source,
    }
}

fn is_disk_full(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge
    )
}

impl<S: Storage> Shard<S> {
    async fn open(
        settings: ShardSettings,
        storage: S,
        buffer_mode: BufferMode,
    ) -> Result<Shard<S>, DataPlaneError> {
        let index_path = settings.dir.join(INDEX_FILE);
        let backend = storage
            .index_backend()
            .map_err(|source| io_error("open index", &index_path, source))?;
        let (index, committed_ends, totals) =
            ShardIndex::open(backend, &index_path, settings.shard, settings.shards)?;
        // The index file (and the storage's own files) are new directory entries on first
        // start.
        storage
            .sync_dir()
            .map_err(|source| io_error("sync shard directory", &settings.dir, source))?;
        let cursor = cursor_from_ends(&committed_ends);
        let mut shard = Shard {
            id: settings.shard,
            shards: settings.shards,
            position: settings.position,
            dir: settings.dir,
            storage,
            layout: ExtentLayout {
                extent_bytes: settings.extent_bytes,
                max_extents: settings.max_extents,
            },
            max_batch: settings.max_batch,
            pipelined: settings.pipelined,
            buffer_mode,
            index: Arc::new(index),
            known_extents: committed_ends
                .last_key_value()
                .map_or(0, |(extent, _)| extent + 1),
            committed_ends,
            totals,
            extents: HashMap::new(),
            reserved: cursor,
            in_flight: HashMap::new(),
            settling: None,
            pool: Vec::new(),
            max_da_record_bytes: usize::try_from(settings.extent_bytes)
                .unwrap_or(usize::MAX)
                .min(MAX_DA_RECORD_BYTES),
            encoders: EncoderCache::default(),
            counters: Counters::default(),
        };
        // Batches that crashed before their commit may have allocated extents past the
        // committed ones: one per rollover, and with small extents or two batches in flight
        // that can be several. They are allocated in order, so the files past the committed
        // ones are contiguous; count their disk space (a metadata check, not a scan).
        while shard.storage.extent_exists(shard.known_extents) {
            shard.known_extents += 1;
        }
        tracing::info!(
            shard = shard.id,
            dir = %shard.dir.display(),
            buffer_mode = %shard.buffer_mode,
            segments = shard.totals.segments,
            extents = shard.known_extents,
            cursor_extent = cursor.extent,
            cursor_offset = cursor.offset,
            "shard ready"
        );
        Ok(shard)
    }

    fn extent_path(&self, extent: u64) -> PathBuf {
        extent_path(&self.dir, extent)
    }

    fn cursor(&self) -> Cursor {
        cursor_from_ends(&self.committed_ends)
    }

    /// Serves requests until shutdown (or until every sender of wake-ups is gone).
    async fn serve(
        mut self,
        mut rings: ShardRings,
        mut wake: glommio::net::UnixStream,
    ) -> Result<(), DataPlaneError> {
        let mut batch = Vec::with_capacity(self.max_batch);
        let mut wake_bytes = [0u8; WAKE_READ_BYTES];
        let mut senders_gone = false;
        let outcome = loop {
            rings.pop_batch(self.max_batch, &mut batch);
            if !batch.is_empty() {
                self.process(&mut batch, &mut rings).await;
                continue;
            }
            // Nothing new to overlap with: answer the settling batch before sleeping.
            if self.settling.is_some() {
                self.settle(&mut rings).await;
                continue;
            }
            if senders_gone || rings.shutdown_requested() {
                break Ok(());
            }
            if !rings.prepare_to_sleep() {
                continue;
            }
            match wake.read(&mut wake_bytes).await {
                Ok(0) => senders_gone = true,
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(shard = self.id, %error, "reading the wake-up socket");
                    break Err(DataPlaneError::ShardStopped {
                        shard: self.id,
                        message: format!("reading the wake-up socket: {error}"),
                    });
                }
            }
            rings.awake();
        };
        debug_assert!(outcome.is_err() || (rings.is_empty() && self.in_flight.is_empty()));
        drop(rings);
        tracing::info!(shard = self.id, "shard stopped");
        outcome
    }

    /// Takes one batch: issues its writes and DA puts (the previous batch settles meanwhile),
    /// then answers reads and queries, which see every write sent before them, then encodes.
    async fn process(&mut self, batch: &mut Vec<(u64, Request)>, rings: &mut ShardRings) {
        let mut answers: Vec<(u64, Response)> = Vec::with_capacity(batch.len());
        let mut writes = Vec::new();
        let mut da_puts = Vec::new();
        let mut reads = Vec::new();
        let mut da_reads = Vec::new();
        let mut encodes = Vec::new();
        let mut queries = Vec::new();
        for (request_id, request) in batch.drain(..) {
            match request {
                Request::Write(write) => writes.push((request_id, write)),
                Request::DaPut(put) => da_puts.push((request_id, put)),
                Request::Read {
                    tx_seq,
                    segment,
                    flow_segment,
                } => reads.push(SegmentRead {
                    request_id,
                    key: (tx_seq, segment),
                    flow_segment,
                    scrub: None,
                }),
                Request::Scrub {
                    tx_seq,
                    segment,
                    flow_segment,
                    file_root,
                    file_size,
                } => reads.push(SegmentRead {
                    request_id,
                    key: (tx_seq, segment),
                    flow_segment,
                    scrub: Some((file_root, file_size)),
                }),
                Request::DaGet { blob, index } => da_reads.push((request_id, (blob, index))),
                Request::DaEncode { params, payload } => {
                    encodes.push((request_id, params, payload));
                }
                query => queries.push((request_id, query)),
            }
        }
        if !writes.is_empty() || !da_puts.is_empty() {
            let issued = self.issue_writes(writes, da_puts, &mut answers).await;
            // One batch settles at a time: its commit must follow the earlier one's, which
            // keeps commits in batch order, and `settle_batch` takes its base from the state
            // the earlier commit left.
            self.settle(rings).await;
            if !issued.is_empty() {
                let done = Rc::new(Cell::new(false));
                let settle = self.settle_batch(issued, Rc::clone(&done));
                self.settling = Some((glommio::spawn_local(settle), done));
            }
            if !self.pipelined {
                self.settle(rings).await;
            }
        }
        // Reads of a settling key and queries wait, so that they see the writes sent before
        // them (the batch's own writes included).
        if !queries.is_empty()
            || reads
                .iter()
                .any(|read| self.in_flight.contains_key(&RecordKey::Segment(read.key)))
            || da_reads
                .iter()
                .any(|(_, key)| self.in_flight.contains_key(&RecordKey::Da(*key)))
        {
            self.settle(rings).await;
        }
        if !reads.is_empty() {
            let damaged = self.read_batch(reads, &mut answers).await;
            if !damaged.is_empty() {
                // Dropping writes the totals: nothing may settle meanwhile.
                self.settle(rings).await;
                self.drop_damaged(damaged, &mut answers).await;
            }
        }
        if !da_reads.is_empty() {
            self.read_da_batch(da_reads, &mut answers).await;
        }
        for (request_id, query) in queries {
            let answer = match query {
                Request::Stored { tx_seq } => match self.index.stored(tx_seq) {
                    Ok(stored) => Response::Stored(stored),
                    Err(error) => self.failed(error.to_string()),
                },
                Request::Stats => Response::Stats(self.stats()),
                Request::Proof { tx_seq, segment } => match self.index.proof((tx_seq, segment)) {
                    Ok(None) => Response::Proof(None),
                    Ok(Some(bytes)) => match merkle::file::Proof::from_bytes(&bytes) {
                        Some(proof) => Response::Proof(Some(Box::new(proof))),
                        None => self.failed(format!(
                            "the kept proof of segment {segment} of tx {tx_seq} is corrupt"
                        )),
                    },
                    Err(error) => self.failed(error.to_string()),
                },
                Request::DaPrune { now_unix_s } => self.da_prune(now_unix_s).await,
                Request::Write(_)
                | Request::Read { .. }
                | Request::Scrub { .. }
                | Request::DaPut(_)
                | Request::DaGet { .. }
                | Request::DaEncode { .. } => {
                    unreachable!("writes, reads and encodes were sorted out above")
                }
            };
            answers.push((request_id, answer));
        }
        rings.respond(answers);
        for (request_id, params, payload) in encodes {
            let answer = match self.encoders.encode(params, payload) {
                Ok(encoded) => {
                    self.counters.da_blobs_encoded += 1;
                    Response::DaEncoded(Box::new(encoded))
                }
                Err(rejection) => Response::DaRejected(rejection),
            };
            rings.respond([(request_id, answer)]);
        }
    }

    /// Removes expired DA shards from the index in one commit. Runs only while nothing
    /// settles (it is a query), so the totals it writes are the latest.
    async fn da_prune(&mut self, now_unix_s: u64) -> Response {
        debug_assert!(self.settling.is_none());
        let index = Arc::clone(&self.index);
        let totals = self.totals.clone();
        let result = glommio::executor()
            .spawn_blocking(move || index.da_prune(now_unix_s, MAX_DA_PRUNE_ENTRIES, &totals))
            .await;
        match result {
            Ok((pruned, totals)) => {
                if pruned.shards > 0 {
                    tracing::info!(
                        shard = self.id,
                        shards = pruned.shards,
                        record_bytes = pruned.record_bytes,
                        more = pruned.more,
                        "pruned expired DA shards"
                    );
                }
                self.totals = totals;
                Response::DaPruned(pruned)
            }
            Err(error) => self.failed(error.to_string()),
        }
    }

    /// Waits for the settling batch, if any, and answers its writes and every later write of
    /// the same keys.
    async fn settle(&mut self, rings: &mut ShardRings) {
        let Some((settling, _)) = self.settling.take() else {
            return;
        };
        let started = Instant::now();
        let settled = settling.await;
        self.counters.settle_wait_ns += elapsed_ns(started);
        self.counters.write_ns += settled.write_ns;
        self.counters.sync_ns += settled.sync_ns;
        self.counters.commit_ns += settled.commit_ns;
        for buffer in settled.buffers {
            if self.pool.len() < POOL_BATCHES * self.max_batch {
                self.pool.push(buffer);
            }
        }
        if let Some((ends, totals)) = settled.committed {
            self.committed_ends.extend(ends);
            self.totals = totals;
            self.counters.batches += 1;
        }
        let mut answers = Vec::with_capacity(settled.outcomes.len());
        for outcome in settled.outcomes {
            let followers = self.in_flight.remove(&outcome.key).unwrap_or_default();
            match outcome.result {
                Ok(Stored::Segment { segment_root }) => {
                    self.counters.segments_written += 1;
                    self.counters.payload_bytes_written += u64::from(outcome.length);
                    answers.push((outcome.request_id, Response::Written { segment_root }));
                    answers.extend(
                        followers
                            .into_iter()
                            .map(|id| (id, Response::AlreadyStored { segment_root })),
                    );
                }
                Ok(Stored::Da { expires_at_unix_s }) => {
                    self.counters.da_shards_written += 1;
                    answers.push((outcome.request_id, Response::DaStored));
                    answers.extend(
                        followers
                            .into_iter()
                            .map(|id| (id, Response::DaAlreadyStored { expires_at_unix_s })),
                    );
                }
                Err(message) => {
                    // A later copy shares the fate of the first: it wrote nothing either.
                    answers.extend(
                        followers
                            .into_iter()
                            .map(|id| (id, Response::Failed(message.clone()))),
                    );
                    let answer = match outcome.key {
                        RecordKey::Segment(_) => self.write_failed(message),
                        RecordKey::Da(_) => self.da_put_failed(message),
                    };
                    answers.push((outcome.request_id, answer));
                }
            }
        }
        rings.respond(answers);
    }

    /// Stage 1 of a batch: verifies, drops duplicates, places and starts the writes of segments
    /// and DA shards. Writes that end here (rejected, already stored, failed) are answered in
    /// `answers`; later copies of a key that is being written wait in `in_flight`.
    async fn issue_writes(
        &mut self,
        writes: Vec<(u64, WriteSegment)>,
        da_puts: Vec<(u64, DaPutShard)>,
        answers: &mut Vec<(u64, Response)>,
    ) -> Vec<IssuedWrite<S>> {
        // 1. Verify every segment against its file root (this hashes the leaves), and every
        // DA shard against its commitment.
        let started = Instant::now();
        let mut turn = Instant::now();
        let mut verified: Vec<(u64, WriteSegment, H256)> = Vec::with_capacity(writes.len());
        for (request_id, write) in writes {
            self.assert_owned(write.flow_segment);
            match merkle::file::verify_segment(
                &write.file_root,
                write.file_size,
                write.segment,
                &write.data,
                &write.proof,
            ) {
                Ok(segment_root) => verified.push((request_id, write, segment_root)),
                Err(error) => {
                    self.counters.writes_rejected += 1;
                    answers.push((request_id, Response::Rejected(error)));
                }
            }
            if self.needs_turn(turn) {
                reactor_turn().await;
                turn = Instant::now();
            }
        }
        let mut verified_da: Vec<(u64, DaPutShard)> = Vec::with_capacity(da_puts.len());
        for (request_id, put) in da_puts {
            match self.verify_da_put(&put) {
                Ok(()) => verified_da.push((request_id, put)),
                Err(rejection) => {
                    self.counters.da_puts_rejected += 1;
                    answers.push((request_id, Response::DaRejected(rejection)));
                }
            }
            if self.needs_turn(turn) {
                reactor_turn().await;
                turn = Instant::now();
            }
        }
        self.counters.verify_ns += elapsed_ns(started);

        // 2. Drop what is already stored in the index.
        let started = Instant::now();
        let keys: Vec<SegmentKey> = verified
            .iter()
            .map(|(_, write, _)| (write.tx_seq, write.segment))
            .collect();
        let da_keys: Vec<DaKey> = verified_da
            .iter()
            .map(|(_, put)| (put.commitment.blob_id(), put.index))
            .collect();
        let lookups = self
            .index
            .lookup_many(&keys)
            .and_then(|existing| Ok((existing, self.index.da_lookup_many(&da_keys)?)));
        let (existing, existing_da) = match lookups {
            Ok(found) => found,
            Err(error) => {
                let message = error.to_string();
                for (request_id, _, _) in verified {
                    answers.push((request_id, self.write_failed(message.clone())));
                }
                for (request_id, _) in verified_da {
                    answers.push((request_id, self.da_put_failed(message.clone())));
                }
                return Vec::new();
            }
        };

        // 3. Place each new record after every issued one, copy it into a DMA buffer and start
        // its write. A key already being written (earlier in this batch or in the settling
        // one) waits for that write instead.
        let mut cursor = if self.settling.is_some() {
            self.reserved
        } else {
            self.cursor()
        };
        let mut issued = Vec::with_capacity(verified.len() + verified_da.len());
        // An extent that could not be allocated is not retried within the batch.
        let mut unavailable: HashMap<u64, String> = HashMap::new();
        for ((request_id, write, segment_root), existing) in verified.into_iter().zip(existing) {
            if let Some(entry) = existing {
                answers.push((
                    request_id,
                    Response::AlreadyStored {
                        segment_root: entry.segment_root,
                    },
                ));
                continue;
            }
            let key = (write.tx_seq, write.segment);
            if let Some(followers) = self.in_flight.get_mut(&RecordKey::Segment(key)) {
                followers.push(request_id);
                continue;
            }
            let length = write.data.len();
            if length == 0 || length > MAX_RECORD_BYTES {
                // verify_segment admits at most one segment of data; this guards the limit.
                answers.push((
                    request_id,
                    self.write_failed(format!(
                        "segment of {length} bytes is outside 1..={MAX_RECORD_BYTES}"
                    )),
                ));
                continue;
            }
            let started_write = match self
                .start_record(&mut cursor, [&write.data, &[]], &mut unavailable)
                .await
            {
                Ok(started_write) => started_write,
                Err(reason) => {
                    answers.push((request_id, self.write_failed(reason)));
                    continue;
                }
            };
            let entry = RecordEntry {
                extent: started_write.at.extent,
                offset: started_write.at.offset,
                length: u32::try_from(length).expect("length is at most MAX_RECORD_BYTES"),
                crc32c: crc32c::crc32c(&write.data),
                flow_segment: write.flow_segment,
                segment_root,
            };
            self.in_flight.insert(RecordKey::Segment(key), Vec::new());
            let mut issued_write =
                started_write.issued(request_id, PendingRecord::Segment { key, entry });
            if self.keeps_proofs() {
                issued_write.proof = Some(write.proof.to_bytes().into_boxed_slice());
            }
            issued.push(issued_write);
            if self.needs_turn(turn) {
                reactor_turn().await;
                turn = Instant::now();
            }
        }
        for (((request_id, put), key), existing) in
            verified_da.into_iter().zip(da_keys).zip(existing_da)
        {
            if let Some(entry) = existing {
                answers.push((
                    request_id,
                    Response::DaAlreadyStored {
                        expires_at_unix_s: entry.expires_at_unix_s,
                    },
                ));
                continue;
            }
            if let Some(followers) = self.in_flight.get_mut(&RecordKey::Da(key)) {
                followers.push(request_id);
                continue;
            }
            let siblings = put.proof.siblings();
            let started_write = match self
                .start_record(
                    &mut cursor,
                    [&put.data, siblings.as_flattened()],
                    &mut unavailable,
                )
                .await
            {
                Ok(started_write) => started_write,
                Err(reason) => {
                    answers.push((request_id, self.da_put_failed(reason)));
                    continue;
                }
            };
            let entry = DaEntry {
                extent: started_write.at.extent,
                offset: started_write.at.offset,
                data_length: u32::try_from(put.data.len())
                    .expect("a verified shard is within MAX_DA_RECORD_BYTES"),
                proof_siblings: u8::try_from(siblings.len())
                    .expect("a verified proof is at most 16 deep"),
                crc32c: record_crc(&put.data, siblings),
                expires_at_unix_s: put.expires_at_unix_s,
            };
            self.in_flight.insert(RecordKey::Da(key), Vec::new());
            issued.push(started_write.issued(request_id, PendingRecord::Da { key, entry }));
            if self.needs_turn(turn) {
                reactor_turn().await;
                turn = Instant::now();
            }
        }
        self.reserved = cursor;
        self.counters.place_ns += elapsed_ns(started);
        // Get this batch's writes to the device before the next batch's hashing starts (the
        // sequential mode waits for them right away, which submits them too).
        if self.pipelined && !issued.is_empty() {
            reactor_turn().await;
        }
        issued
    }

    /// Checks a DA shard before anything is written: its record fits this shard's limit, and
    /// it verifies against its commitment at its index (width, proof length, BLAKE3 path).
    fn verify_da_put(&self, put: &DaPutShard) -> Result<(), DaRejection> {
        self.assert_owned_da(&(put.commitment.blob_id(), put.index));
        let record_bytes = record_length(put.data.len(), put.proof.siblings().len());
        if record_bytes > self.max_da_record_bytes {
            return Err(DaRejection::RecordTooLarge {
                index: put.index.0,
                record_bytes,
                max_bytes: self.max_da_record_bytes,
            });
        }
        put.commitment
            .verify_shard(put.index, &put.data, &put.proof)
            .map(|_leaf| ())
            .map_err(DaRejection::Shard)
    }

    /// Places a record made of `parts` back to back at `cursor` (moving it past the record),
    /// opens or allocates its extent, copies the record into a DMA buffer with zero padding
    /// and starts its O_DIRECT write. Fails with the reason (disk full, allocation) otherwise.
    async fn start_record(
        &mut self,
        cursor: &mut Cursor,
        parts: [&[u8]; 2],
        unavailable: &mut HashMap<u64, String>,
    ) -> Result<StartedRecord<S>, String> {
        let length: usize = parts.iter().map(|part| part.len()).sum();
        let record_bytes = (length as u64).div_ceil(RECORD_ALIGNMENT) * RECORD_ALIGNMENT;
        let (at, next) = match self.layout.place(*cursor, record_bytes) {
            Placement::At { at, next } => (at, next),
            Placement::DiskFull { reason } => return Err(reason),
        };
        if let Some(reason) = unavailable.get(&at.extent) {
            return Err(reason.clone());
        }
        let file = match self.extent_file(at.extent, true).await {
            Ok(file) => file,
            Err(reason) => {
                unavailable.insert(at.extent, reason.clone());
                return Err(reason);
            }
        };
        let mut buffer = match self.pool.pop() {
            Some(buffer) if record_bytes == MAX_RECORD_BYTES as u64 => buffer,
            spare => {
                if let Some(buffer) = spare {
                    self.pool.push(buffer);
                }
                self.storage.buffer(record_bytes as usize)
            }
        };
        let bytes = buffer.as_bytes_mut();
        let mut filled = 0;
        for part in parts {
            bytes[filled..filled + part.len()].copy_from_slice(part);
            filled += part.len();
        }
        // Never leak stale memory into the padding of a record.
        bytes[filled..].fill(0);
        let buffer = Rc::new(buffer);
        let write = file.write_at(Rc::clone(&buffer), at.offset);
        let io = glommio::spawn_local(async move { (write.await, buffer) });
        *cursor = next;
        Ok(StartedRecord {
            at,
            record_bytes,
            file,
            io,
        })
    }

    /// Whether the CPU work that started at `since` should let the reactor run: only while a
    /// batch is still settling, so that its syncs and commit start without waiting for us.
    fn needs_turn(&self, since: Instant) -> bool {
        self.settling.as_ref().is_some_and(|(_, done)| !done.get())
            && since.elapsed() >= REACTOR_TURN_INTERVAL
    }

    /// Stage 2 of a batch, as a future that owns everything it needs: waits for the writes,
    /// syncs each touched extent once, commits the durable ones in one index transaction.
    fn settle_batch(
        &self,
        issued: Vec<IssuedWrite<S>>,
        done: Rc<Cell<bool>>,
    ) -> impl Future<Output = Settled<S>> + use<S> {
        let index = Arc::clone(&self.index);
        let dir = self.dir.clone();
        // Base for the new ends and totals: the batch before this one has settled already.
        let mut ends: BTreeMap<u64, u64> = BTreeMap::new();
        for write in &issued {
            let extent = write.record.extent();
            let committed = self.committed_ends.get(&extent).copied();
            ends.entry(extent).or_insert(committed.unwrap_or(0));
        }
        let mut totals = self.totals.clone();
        async move {
            let extent_path = |extent: u64| extent_path(&dir, extent);
            let started = Instant::now();
            let mut outcomes = Vec::with_capacity(issued.len());
            let mut buffers = Vec::new();
            let mut written = Vec::with_capacity(issued.len());
            let mut proofs = Vec::new();
            for write in issued {
                let (result, buffer) = write.io.await;
                if let Ok(buffer) = Rc::try_unwrap(buffer)
                    && buffer.len() == MAX_RECORD_BYTES
                {
                    buffers.push(buffer);
                }
                let failure = match result {
                    Ok(bytes) if bytes as u64 == write.record_bytes => {
                        if let (Some(proof), PendingRecord::Segment { key, .. }) =
                            (write.proof, write.record)
                        {
                            proofs.push((key, proof));
                        }
                        written.push((
                            write.request_id,
                            write.record,
                            write.record_bytes,
                            write.file,
                        ));
                        continue;
                    }
                    Ok(bytes) => format!(
                        "short write to {}: {bytes} of {} bytes at offset {}",
                        extent_path(write.record.extent()).display(),
                        write.record_bytes,
                        write.record.offset()
                    ),
                    Err(error) => {
                        let prefix = if is_disk_full(error.kind()) {
                            "disk full: "
                        } else {
                            ""
                        };
                        format!(
                            "{prefix}write {}: {error}",
                            extent_path(write.record.extent()).display()
                        )
                    }
                };
                outcomes.push(WriteOutcome {
                    request_id: write.request_id,
                    key: write.record.key(),
                    length: write.record.payload_length(),
                    result: Err(failure),
                });
            }
            let write_ns = elapsed_ns(started);

            let started = Instant::now();
            let touched: BTreeMap<u64, &S::Extent> = written
                .iter()
                .map(|(_, record, _, file)| (record.extent(), file))
                .collect();
            let syncs: Vec<_> = touched
                .into_iter()
                .map(|(extent, file)| (extent, glommio::spawn_local(file.sync())))
                .collect();
            let mut failure = None;
            for (extent, task) in syncs {
                if let Err(error) = task.await {
                    failure.get_or_insert(format!(
                        "fdatasync {}: {error}",
                        extent_path(extent).display()
                    ));
                }
            }
            let sync_ns = elapsed_ns(started);

            // After a failed sync the page state of the file is unknown: acknowledge nothing
            // that depends on it. The records are not indexed, so their space is reused.
            let started = Instant::now();
            let mut committed = None;
            if failure.is_none() && !written.is_empty() {
                let mut entries = Vec::with_capacity(written.len());
                let mut da_entries = Vec::new();
                for (_, record, record_bytes, _) in &written {
                    let end = ends.entry(record.extent()).or_insert(0);
                    *end = (*end).max(record.offset() + record_bytes);
                    match record {
                        PendingRecord::Segment { key, entry } => {
                            totals.segments += 1;
                            totals.payload_bytes += u64::from(entry.length);
                            entries.push((*key, *entry));
                        }
                        PendingRecord::Da { key, entry } => {
                            totals.da_shards += 1;
                            totals.da_payload_bytes += u64::from(entry.data_length);
                            totals.da_record_bytes += record_bytes;
                            da_entries.push((*key, *entry));
                        }
                    }
                }
                // Extents whose writes all failed keep their committed end.
                ends.retain(|extent, _| {
                    written
                        .iter()
                        .any(|(_, record, _, _)| record.extent() == *extent)
                });
                let commit_ends = ends.clone();
                let commit_totals = totals.clone();
                let result = glommio::executor()
                    .spawn_blocking(move || {
                        index.commit(&entries, &proofs, &da_entries, &commit_ends, &commit_totals)
                    })
                    .await;
                match result {
                    Ok(()) => committed = Some((ends, totals)),
                    Err(error) => failure = Some(error.to_string()),
                }
            }
            let commit_ns = elapsed_ns(started);
            for (request_id, record, _, _) in written {
                outcomes.push(WriteOutcome {
                    request_id,
                    key: record.key(),
                    length: record.payload_length(),
                    result: match &failure {
                        None => Ok(record.stored()),
                        Some(message) => Err(message.clone()),
                    },
                });
            }
            done.set(true);
            Settled {
                outcomes,
                committed,
                buffers,
                write_ns,
                sync_ns,
                commit_ns,
            }
        }
    }

    /// Routing is the control plane's invariant, not client input: a segment that reaches the
    /// wrong shard, or a node that does not own it, means a bug upstream, and writing it here
    /// would hide it forever.
    fn assert_owned(&self, flow_segment: FlowSegmentIndex) {
        assert!(
            self.position.owns(flow_segment),
            "flow segment {flow_segment} reached a node that stores shard {}/{}",
            self.position.shard_id,
            self.position.num_shard
        );
        assert_eq!(
            crate::shard_for(flow_segment, self.position, self.shards),
            self.id,
            "flow segment {flow_segment} was routed to shard {} of {}",
            self.id,
            self.shards
        );
    }

    /// A node that holds only part of the flow keeps each segment's proof: it cannot rebuild
    /// proofs from segment roots it never sees.
    fn keeps_proofs(&self) -> bool {
        self.position.num_shard > 1
    }

    /// DA routing is the control plane's invariant, like segment routing.
    fn assert_owned_da(&self, key: &DaKey) {
        assert_eq!(
            crate::da_shard_for(&key.0, key.1, self.shards),
            self.id,
            "DA shard {} of blob {} was routed to shard {} of {}",
            key.1.0,
            blob_hex(&key.0),
            self.id,
            self.shards
        );
    }

    fn failed(&mut self, message: String) -> Response {
        tracing::error!(shard = self.id, %message, "request failed");
        Response::Failed(message)
    }

    fn write_failed(&mut self, message: String) -> Response {
        self.counters.writes_failed += 1;
        self.io_refused(message)
    }

    fn da_put_failed(&mut self, message: String) -> Response {
        self.counters.da_puts_failed += 1;
        self.io_refused(message)
    }

    /// A write that failed for lack of room is expected in operation (warned); any other
    /// failure is an error.
    fn io_refused(&mut self, message: String) -> Response {
        if message.starts_with("disk full") {
            tracing::warn!(shard = self.id, %message, "write refused");
            Response::StorageFull(message)
        } else {
            self.failed(message)
        }
    }

    /// The extent file `extent`, opened (and, with `create`, allocated) on first use.
    async fn extent_file(&mut self, extent: u64, create: bool) -> Result<S::Extent, String> {
        if let Some(file) = self.extents.get(&extent) {
            return Ok(file.clone());
        }
        let path = self.extent_path(extent);
        let file = self
            .storage
            .open_extent(extent, create)
            .await
            .map_err(|error| format!("open {}: {error}", path.display()))?;
        if create {
            if let Err(error) = self.allocate_extent(&file, &path).await {
                let _ = file.close().await;
                // Give the space back unless records live there (they cannot: new extents are
                // only ever allocated past the committed ones).
                if !self.committed_ends.contains_key(&extent)
                    && let Err(remove_error) = self.storage.remove_extent(extent)
                {
                    tracing::warn!(shard = self.id, path = %path.display(), %remove_error, "removing a failed extent");
                }
                return Err(error);
            }
            self.known_extents = self.known_extents.max(extent + 1);
        }
        if self.extents.len() >= MAX_OPEN_EXTENTS {
            let current = self.cursor().extent;
            if let Some(evict) = self.extents.keys().copied().find(|id| *id < current) {
                self.extents.remove(&evict);
            }
        }
        self.extents.insert(extent, file.clone());
        Ok(file)
    }

    /// Pre-allocates a new extent and makes it durable before any record in it is indexed.
    async fn allocate_extent(&self, file: &S::Extent, path: &Path) -> Result<(), String> {
        if let Err(error) = file.allocate(self.layout.extent_bytes).await {
            let prefix = if is_disk_full(error.kind()) {
                "disk full: "
            } else {
                ""
            };
            return Err(format!(
                "{prefix}fallocate {} to {} bytes: {error}",
                path.display(),
                self.layout.extent_bytes
            ));
        }
        // The size change and the directory entry must be durable before the index points
        // into the file; record syncs later are fdatasync only.
        file.sync()
            .await
            .map_err(|error| format!("fdatasync {}: {error}", path.display()))?;
        self.storage
            .sync_dir()
            .map_err(|error| format!("sync {}: {error}", self.dir.display()))?;
        tracing::info!(shard = self.id, path = %path.display(), bytes = self.layout.extent_bytes, "extent allocated");
        Ok(())
    }

    /// Reads segments, all reads in flight at once; each is CRC-checked, and a scrub also
    /// checks the segment root and kept proof. Returns the damaged ones, unanswered: they are
    /// answered once dropped.
    async fn read_batch(
        &mut self,
        reads: Vec<SegmentRead>,
        answers: &mut Vec<(u64, Response)>,
    ) -> Vec<(u64, SegmentKey, String)> {
        for read in &reads {
            self.assert_owned(read.flow_segment);
        }
        let keys: Vec<SegmentKey> = reads.iter().map(|read| read.key).collect();
        let entries = match self.index.lookup_many(&keys) {
            Ok(entries) => entries,
            Err(error) => {
                let message = error.to_string();
                for read in reads {
                    answers.push((read.request_id, self.failed(message.clone())));
                }
                return Vec::new();
            }
        };
        let mut tasks = Vec::new();
        for (read, entry) in reads.into_iter().zip(entries) {
            let Some(entry) = entry else {
                answers.push((read.request_id, Response::NotFound));
                continue;
            };
            let (tx_seq, segment) = read.key;
            if entry.flow_segment != read.flow_segment {
                let answer = self.failed(format!(
                    "tx {tx_seq} segment {segment} is stored as flow segment {}, asked for {}",
                    entry.flow_segment, read.flow_segment
                ));
                answers.push((read.request_id, answer));
                continue;
            }
            let file = match self.extent_file(entry.extent, false).await {
                Ok(file) => file,
                Err(message) => {
                    answers.push((read.request_id, self.failed(message)));
                    continue;
                }
            };
            let record_bytes =
                u64::from(entry.length).div_ceil(RECORD_ALIGNMENT) * RECORD_ALIGNMENT;
            let task = glommio::spawn_local(file.read_at(entry.offset, record_bytes as usize));
            tasks.push((read, entry, task));
        }
        let mut damaged = Vec::new();
        for (read, entry, task) in tasks {
            let (tx_seq, segment) = read.key;
            let checked = self.checked_record(
                task.await,
                RecordAt {
                    extent: entry.extent,
                    offset: entry.offset,
                    length: entry.length as usize,
                    crc32c: entry.crc32c,
                },
                || format!("tx {tx_seq} segment {segment}"),
            );
            let checked = match (checked, read.scrub) {
                (Ok(data), Some((file_root, file_size))) => self
                    .scrub_check(read.key, &entry, &data, file_root, file_size)
                    .map(|()| Response::Scrubbed {
                        bytes: data.len() as u64,
                    }),
                (Ok(data), None) => Ok(Response::Data(data)),
                (Err(damage), _) => Err(damage),
            };
            match checked {
                Ok(answer) => answers.push((read.request_id, answer)),
                Err(RecordDamage::Damaged(reason)) => {
                    tracing::error!(shard = self.id, %tx_seq, %segment, %reason, "stored segment damaged; dropping it");
                    damaged.push((read.request_id, read.key, reason));
                }
                Err(RecordDamage::Unreadable(message)) => {
                    answers.push((read.request_id, self.failed(message)));
                }
            }
        }
        damaged
    }

    /// A scrub's checks beyond the CRC: the segment root of the bytes is the one indexed at
    /// write time, and the kept proof (if this shard keeps proofs) still proves them against
    /// the file root.
    fn scrub_check(
        &mut self,
        key: SegmentKey,
        entry: &RecordEntry,
        data: &[u8],
        file_root: H256,
        file_size: u64,
    ) -> Result<(), RecordDamage> {
        let (tx_seq, segment) = key;
        let layout = merkle::file::FileLayout::new(file_size).map_err(|error| {
            RecordDamage::Unreadable(format!(
                "scrub of tx {tx_seq}: file size {file_size}: {error}"
            ))
        })?;
        let padded_chunks = usize::try_from(layout.segment_padded_chunks(segment.0))
            .expect("a segment has at most 1024 chunks");
        let root = merkle::file::segment_root(data, padded_chunks);
        if root != entry.segment_root {
            return Err(RecordDamage::Damaged(format!(
                "tx {tx_seq} segment {segment} hashes to {root}, indexed as {}",
                entry.segment_root
            )));
        }
        let kept = self
            .index
            .proof(key)
            .map_err(|error| RecordDamage::Unreadable(error.to_string()))?;
        if let Some(bytes) = kept {
            let proof = merkle::file::Proof::from_bytes(&bytes).ok_or_else(|| {
                RecordDamage::Damaged(format!(
                    "the kept proof of tx {tx_seq} segment {segment} does not decode"
                ))
            })?;
            merkle::file::verify_segment(&file_root, file_size, segment, data, &proof).map_err(
                |error| {
                    RecordDamage::Damaged(format!(
                        "tx {tx_seq} segment {segment} no longer proves against root {file_root}: {error}"
                    ))
                },
            )?;
        }
        self.counters.segments_scrubbed += 1;
        self.counters.scrubbed_bytes += data.len() as u64;
        Ok(())
    }

    /// Drops damaged segments from the index in one commit and answers their requests:
    /// `Damaged` once the drop is durable, `Failed` if it could not be made.
    async fn drop_damaged(
        &mut self,
        damaged: Vec<(u64, SegmentKey, String)>,
        answers: &mut Vec<(u64, Response)>,
    ) {
        debug_assert!(self.settling.is_none());
        let index = Arc::clone(&self.index);
        let totals = self.totals.clone();
        let mut keys: Vec<SegmentKey> = damaged.iter().map(|(_, key, _)| *key).collect();
        keys.sort_unstable();
        keys.dedup();
        let result = glommio::executor()
            .spawn_blocking(move || index.drop_segments(&keys, &totals))
            .await;
        match result {
            Ok(totals) => {
                self.totals = totals;
                for (request_id, _, reason) in damaged {
                    answers.push((request_id, Response::Damaged(reason)));
                }
            }
            Err(error) => {
                let message = format!("dropping damaged segments: {error}");
                for (request_id, _, reason) in damaged {
                    answers.push((request_id, self.failed(format!("{reason}; {message}"))));
                }
            }
        }
    }

    /// The bytes of a finished record read, CRC-checked; `what` names the record in messages.
    /// A record that reads back short or with another checksum is damaged; a failed read is
    /// not (the disk may answer next time).
    fn checked_record(
        &self,
        read: io::Result<<S::Extent as Extent>::Read>,
        record: RecordAt,
        what: impl FnOnce() -> String,
    ) -> Result<Vec<u8>, RecordDamage> {
        let path = self.extent_path(record.extent);
        let length = record.length;
        match read {
            Ok(read) if read.len() >= length => {
                let data = read[..length].to_vec();
                let crc = crc32c::crc32c(&data);
                if crc == record.crc32c {
                    Ok(data)
                } else {
                    Err(RecordDamage::Damaged(format!(
                        "checksum mismatch for {} in {} at offset {}: stored {:#010x}, read {crc:#010x}",
                        what(),
                        path.display(),
                        record.offset,
                        record.crc32c
                    )))
                }
            }
            Ok(read) => Err(RecordDamage::Damaged(format!(
                "short read of {} from {}: {} of {length} bytes at offset {}",
                what(),
                path.display(),
                read.len(),
                record.offset
            ))),
            Err(error) => Err(RecordDamage::Unreadable(format!(
                "read {}: {error}",
                path.display()
            ))),
        }
    }

    /// Reads DA shards, all reads in flight at once; each answer is CRC-checked.
    async fn read_da_batch(
        &mut self,
        reads: Vec<(u64, DaKey)>,
        answers: &mut Vec<(u64, Response)>,
    ) {
        for (_, key) in &reads {
            self.assert_owned_da(key);
        }
        let keys: Vec<DaKey> = reads.iter().map(|(_, key)| *key).collect();
        let entries = match self.index.da_lookup_many(&keys) {
            Ok(entries) => entries,
            Err(error) => {
                let message = error.to_string();
                for (request_id, _) in reads {
                    answers.push((request_id, self.failed(message.clone())));
                }
                return;
            }
        };
        let mut tasks = Vec::new();
        for ((request_id, key), entry) in reads.into_iter().zip(entries) {
            let Some(entry) = entry else {
                answers.push((request_id, Response::NotFound));
                continue;
            };
            let file = match self.extent_file(entry.extent, false).await {
                Ok(file) => file,
                Err(message) => {
                    answers.push((request_id, self.failed(message)));
                    continue;
                }
            };
            let record_bytes = entry.record_bytes() as usize;
            let task = glommio::spawn_local(file.read_at(entry.offset, record_bytes));
            tasks.push((request_id, key, entry, task));
        }
        for (request_id, key, entry, task) in tasks {
            let checked = self.checked_record(
                task.await,
                RecordAt {
                    extent: entry.extent,
                    offset: entry.offset,
                    length: usize::try_from(entry.length()).expect("a DA record fits in memory"),
                    crc32c: entry.crc32c,
                },
                || format!("DA shard {} of blob {}", key.1.0, blob_hex(&key.0)),
            );
            let answer = match checked {
                Ok(record) => {
                    let (data, proof) = split_record(record, entry.data_length as usize, key.1);
                    Response::DaShard {
                        data,
                        proof,
                        expires_at_unix_s: entry.expires_at_unix_s,
                    }
                }
                Err(damage) => self.failed(damage.into_message()),
            };
            answers.push((request_id, answer));
        }
    }

    fn stats(&self) -> ShardStats {
        ShardStats {
            shard: self.id,
            segments_stored: self.totals.segments,
            payload_bytes_stored: self.totals.payload_bytes,
            record_bytes_used: self.committed_ends.values().sum(),
            extents: self.known_extents,
            disk_bytes_allocated: self.known_extents * self.layout.extent_bytes,
            segments_written: self.counters.segments_written,
            payload_bytes_written: self.counters.payload_bytes_written,
            batches: self.counters.batches,
            writes_rejected: self.counters.writes_rejected,
            writes_failed: self.counters.writes_failed,
            da_shards_stored: self.totals.da_shards,
            da_payload_bytes_stored: self.totals.da_payload_bytes,
            da_record_bytes_live: self.totals.da_record_bytes,
            da_record_bytes_dead: self.totals.da_dead_record_bytes,
            da_shards_pruned: self.totals.da_shards_pruned,
            segments_dropped: self.totals.segments_dropped,
            segment_record_bytes_dead: self.totals.segment_dead_record_bytes,
            segments_scrubbed: self.counters.segments_scrubbed,
            scrubbed_bytes: self.counters.scrubbed_bytes,
            da_shards_written: self.counters.da_shards_written,
            da_puts_rejected: self.counters.da_puts_rejected,
            da_puts_failed: self.counters.da_puts_failed,
            da_blobs_encoded: self.counters.da_blobs_encoded,
            verify_ns: self.counters.verify_ns,
            place_ns: self.counters.place_ns,
            write_ns: self.counters.write_ns,
            sync_ns: self.counters.sync_ns,
            commit_ns: self.counters.commit_ns,
            settle_wait_ns: self.counters.settle_wait_ns,
            pipelined: self.pipelined,
            buffer_mode: self.buffer_mode.clone(),
        }
    }
}
