//! One shard: a glommio task that turns batches of requests into durable records and answers.
//!
//! # Write pipeline
//!
//! A write batch goes through two stages:
//!
//! 1. *Issue* (the shard's main task, CPU-bound): verify every segment against its file root
//!    (Keccak), drop duplicates, place each record after the reserved cursor, copy it into a DMA
//!    buffer and start its O_DIRECT write.
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
//! Full-record DMA buffers are reused (`pool`): glommio's registered arena holds only a few
//! records, and fresh heap buffers page-fault on first touch, which made the copy into them
//! cost about 5 ms per 32-record batch.

use crate::extent::{Cursor, ExtentLayout, Placement};
use crate::index::{IndexTotals, RecordEntry, SegmentKey, ShardIndex, cursor_from_ends};
use crate::ring::ShardRings;
use crate::{
    BufferMode, DataPlaneError, MAX_RECORD_BYTES, RECORD_ALIGNMENT, Request, Response, ShardStats,
    WriteSegment,
};
use futures_lite::AsyncReadExt;
use glommio::io::{DmaBuffer, DmaFile, OpenOptions};
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

/// Size of the probe file every executor reads before touching any other file.
const PROBE_BYTES: usize = 4096;
/// Extent files a shard keeps open at once (the current one always among them).
const MAX_OPEN_EXTENTS: usize = 1024;
/// Wake-up bytes consumed per read of the wake socket.
const WAKE_READ_BYTES: usize = 64;
/// Longest stretch of CPU work before the main task lets the reactor submit and reap IO while
/// a batch settles. A turn costs tens of microseconds; settling needs a few turns (writes done
/// → syncs issued → syncs done → commit started → commit done) in the ~10 ms of a batch's CPU.
const REACTOR_TURN_INTERVAL: Duration = Duration::from_millis(1);
/// Full-record DMA buffers kept for reuse: two batches' worth (one settling, one issuing).
/// Fresh buffers beyond glommio's registered arena come from the heap and page-fault on first
/// touch, which made copying a record cost several times the copy itself.
const POOL_BATCHES: usize = 2;

pub(crate) struct ShardSettings {
    pub(crate) shard: usize,
    pub(crate) shards: usize,
    pub(crate) dir: PathBuf,
    pub(crate) extent_bytes: u64,
    pub(crate) max_extents: Option<u64>,
    pub(crate) max_batch: usize,
    pub(crate) pipelined: bool,
    pub(crate) buffer_mode: BufferMode,
}

/// Runs shard `settings.shard` until shutdown: opens its files, reports readiness on `ready`,
/// then serves its rings.
pub(crate) async fn run(
    settings: ShardSettings,
    rings: ShardRings,
    wake_socket: UnixStream,
    ready: SyncSender<Result<(), DataPlaneError>>,
) -> Result<(), DataPlaneError> {
    let shard = match Shard::open(settings).await {
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

fn elapsed_ns(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The O_DIRECT write of one record, running; it hands its buffer back for reuse.
type WriteTask = glommio::Task<(glommio::Result<usize, ()>, Rc<DmaBuffer>)>;

/// One write of a batch that passed verification, got a place, and whose IO is under way.
struct IssuedWrite {
    request_id: u64,
    key: SegmentKey,
    entry: RecordEntry,
    record_bytes: u64,
    file: Rc<DmaFile>,
    io: WriteTask,
}

/// How one write of a settled batch ended.
struct WriteOutcome {
    request_id: u64,
    key: SegmentKey,
    length: u32,
    /// The segment root when the record is durable and indexed; why not otherwise.
    result: Result<H256, String>,
}

/// A batch after its settle stage.
struct Settled {
    outcomes: Vec<WriteOutcome>,
    /// New committed extent ends and totals, when the batch's commit succeeded.
    committed: Option<(BTreeMap<u64, u64>, IndexTotals)>,
    /// Full-record buffers whose writes are done.
    buffers: Vec<DmaBuffer>,
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
    verify_ns: u64,
    place_ns: u64,
    write_ns: u64,
    sync_ns: u64,
    commit_ns: u64,
    settle_wait_ns: u64,
}

struct Shard {
    id: usize,
    shards: usize,
    dir: PathBuf,
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
    extents: HashMap<u64, Rc<DmaFile>>,
    /// End of the last record issued; meaningful while a batch is settling.
    reserved: Cursor,
    /// Keys of issued, unsettled writes → request ids of later writes of the same key.
    in_flight: HashMap<SegmentKey, Vec<u64>>,
    /// The batch in its settle stage (at most one), and whether it has finished (then the
    /// main task needs to give the reactor no more turns for it).
    settling: Option<(glommio::Task<Settled>, Rc<Cell<bool>>)>,
    /// Reusable full-record DMA buffers.
    pool: Vec<DmaBuffer>,
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

/// Makes glommio see a non-empty file on the data device first, so that its IOPOLL probe
/// (a read at offset 0 of the first file it opens on a device, remembered per executor) gets
/// the device's real answer; on virtio an empty file makes it wrongly conclude IOPOLL works and
/// every later read fails with EOPNOTSUPP.
async fn probe_device(dir: &Path) -> Result<(), DataPlaneError> {
    let path = dir.join("probe.dat");
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

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl Shard {
    async fn open(settings: ShardSettings) -> Result<Shard, DataPlaneError> {
        // Before any other file: see `probe_device`.
        probe_device(&settings.dir).await?;
        let index_path = settings.dir.join("index.redb");
        let (index, committed_ends, totals) =
            ShardIndex::open(&index_path, settings.shard, settings.shards)?;
        // The index file and the probe are new directory entries on first start.
        sync_dir(&settings.dir)
            .map_err(|source| io_error("sync shard directory", &settings.dir, source))?;
        let cursor = cursor_from_ends(&committed_ends);
        let mut shard = Shard {
            id: settings.shard,
            shards: settings.shards,
            dir: settings.dir,
            layout: ExtentLayout {
                extent_bytes: settings.extent_bytes,
                max_extents: settings.max_extents,
            },
            max_batch: settings.max_batch,
            pipelined: settings.pipelined,
            buffer_mode: settings.buffer_mode,
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
            counters: Counters::default(),
        };
        // Batches that crashed before their commit may have allocated extents past the
        // committed ones: one per rollover, and with small extents or two batches in flight
        // that can be several. They are allocated in order, so the files past the committed
        // ones are contiguous; count their disk space (a metadata check, not a scan).
        while shard.extent_path(shard.known_extents).exists() {
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
        self.dir.join(format!("extent-{extent}.dat"))
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

    /// Takes one batch: issues its writes (the previous batch settles meanwhile), then answers
    /// reads and queries, which see every write sent before them.
    async fn process(&mut self, batch: &mut Vec<(u64, Request)>, rings: &mut ShardRings) {
        let mut answers: Vec<(u64, Response)> = Vec::with_capacity(batch.len());
        let mut writes = Vec::new();
        let mut reads = Vec::new();
        let mut queries = Vec::new();
        for (request_id, request) in batch.drain(..) {
            match request {
                Request::Write(write) => writes.push((request_id, write)),
                Request::Read {
                    tx_seq,
                    segment,
                    flow_segment,
                } => {
                    reads.push((request_id, (tx_seq, segment), flow_segment));
                }
                query => queries.push((request_id, query)),
            }
        }
        if !writes.is_empty() {
            let issued = self.issue_writes(writes, &mut answers).await;
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
                .any(|(_, key, _)| self.in_flight.contains_key(key))
        {
            self.settle(rings).await;
        }
        if !reads.is_empty() {
            self.read_batch(reads, &mut answers).await;
        }
        for (request_id, query) in queries {
            let answer = match query {
                Request::Stored { tx_seq } => match self.index.stored(tx_seq) {
                    Ok(stored) => Response::Stored(stored),
                    Err(error) => self.failed(error.to_string()),
                },
                Request::Stats => Response::Stats(self.stats()),
                Request::Write(_) | Request::Read { .. } => {
                    unreachable!("writes and reads were sorted out above")
                }
            };
            answers.push((request_id, answer));
        }
        rings.respond(answers);
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
                Ok(segment_root) => {
                    self.counters.segments_written += 1;
                    self.counters.payload_bytes_written += u64::from(outcome.length);
                    answers.push((outcome.request_id, Response::Written { segment_root }));
                    answers.extend(
                        followers
                            .into_iter()
                            .map(|id| (id, Response::AlreadyStored { segment_root })),
                    );
                }
                Err(message) => {
                    // A later copy shares the fate of the first: it wrote nothing either.
                    answers.extend(
                        followers
                            .into_iter()
                            .map(|id| (id, Response::Failed(message.clone()))),
                    );
                    answers.push((outcome.request_id, self.write_failed(message)));
                }
            }
        }
        rings.respond(answers);
    }

    /// Stage 1 of a batch: verifies, drops duplicates, places and starts the writes. Writes
    /// that end here (rejected, already stored, failed) are answered in `answers`; later copies
    /// of a key that is being written wait in `in_flight`.
    async fn issue_writes(
        &mut self,
        writes: Vec<(u64, WriteSegment)>,
        answers: &mut Vec<(u64, Response)>,
    ) -> Vec<IssuedWrite> {
        // 1. Verify every segment against its file root (this hashes the leaves).
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
        self.counters.verify_ns += elapsed_ns(started);

        // 2. Drop what is already stored in the index.
        let started = Instant::now();
        let keys: Vec<SegmentKey> = verified
            .iter()
            .map(|(_, write, _)| (write.tx_seq, write.segment))
            .collect();
        let existing = match self.index.lookup_many(&keys) {
            Ok(existing) => existing,
            Err(error) => {
                let message = error.to_string();
                for (request_id, _, _) in verified {
                    answers.push((request_id, self.write_failed(message.clone())));
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
        let mut issued = Vec::with_capacity(verified.len());
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
            if let Some(followers) = self.in_flight.get_mut(&key) {
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
            let record_bytes = (length as u64).div_ceil(RECORD_ALIGNMENT) * RECORD_ALIGNMENT;
            let (at, next) = match self.layout.place(cursor, record_bytes) {
                Placement::At { at, next } => (at, next),
                Placement::DiskFull { reason } => {
                    answers.push((request_id, self.write_failed(reason)));
                    continue;
                }
            };
            if let Some(reason) = unavailable.get(&at.extent) {
                answers.push((request_id, self.write_failed(reason.clone())));
                continue;
            }
            let file = match self.extent_file(at.extent, true).await {
                Ok(file) => file,
                Err(reason) => {
                    unavailable.insert(at.extent, reason.clone());
                    answers.push((request_id, self.write_failed(reason)));
                    continue;
                }
            };
            let mut buffer = match self.pool.pop() {
                Some(buffer) if record_bytes == MAX_RECORD_BYTES as u64 => buffer,
                spare => {
                    if let Some(buffer) = spare {
                        self.pool.push(buffer);
                    }
                    file.alloc_dma_buffer(record_bytes as usize)
                }
            };
            let bytes = buffer.as_bytes_mut();
            bytes[..length].copy_from_slice(&write.data);
            // Never leak stale memory into the padding of a record.
            bytes[length..].fill(0);
            let entry = RecordEntry {
                extent: at.extent,
                offset: at.offset,
                length: u32::try_from(length).expect("length is at most MAX_RECORD_BYTES"),
                crc32c: crc32c::crc32c(&write.data),
                flow_segment: write.flow_segment,
                segment_root,
            };
            let buffer = Rc::new(buffer);
            let io = {
                let file = Rc::clone(&file);
                let buffer = Rc::clone(&buffer);
                glommio::spawn_local(async move {
                    let result = file.write_rc_at(Rc::clone(&buffer), at.offset).await;
                    (result, buffer)
                })
            };
            drop(buffer);
            self.in_flight.insert(key, Vec::new());
            issued.push(IssuedWrite {
                request_id,
                key,
                entry,
                record_bytes,
                file,
                io,
            });
            cursor = next;
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
        issued: Vec<IssuedWrite>,
        done: Rc<Cell<bool>>,
    ) -> impl Future<Output = Settled> + use<> {
        let index = Arc::clone(&self.index);
        let dir = self.dir.clone();
        // Base for the new ends and totals: the batch before this one has settled already.
        let mut ends: BTreeMap<u64, u64> = BTreeMap::new();
        for write in &issued {
            let committed = self.committed_ends.get(&write.entry.extent).copied();
            ends.entry(write.entry.extent)
                .or_insert(committed.unwrap_or(0));
        }
        let mut totals = self.totals.clone();
        async move {
            let extent_path = |extent: u64| dir.join(format!("extent-{extent}.dat"));
            let started = Instant::now();
            let mut outcomes = Vec::with_capacity(issued.len());
            let mut buffers = Vec::new();
            let mut written = Vec::with_capacity(issued.len());
            for write in issued {
                let (result, buffer) = write.io.await;
                if let Ok(buffer) = Rc::try_unwrap(buffer)
                    && buffer.len() == MAX_RECORD_BYTES
                {
                    buffers.push(buffer);
                }
                let failure = match result {
                    Ok(bytes) if bytes as u64 == write.record_bytes => {
                        written.push((write.request_id, write.key, write.entry, write.file));
                        continue;
                    }
                    Ok(bytes) => format!(
                        "short write to {}: {bytes} of {} bytes at offset {}",
                        extent_path(write.entry.extent).display(),
                        write.record_bytes,
                        write.entry.offset
                    ),
                    Err(error) => {
                        let error = io::Error::from(error);
                        let prefix = if is_disk_full(error.kind()) {
                            "disk full: "
                        } else {
                            ""
                        };
                        format!(
                            "{prefix}write {}: {error}",
                            extent_path(write.entry.extent).display()
                        )
                    }
                };
                outcomes.push(WriteOutcome {
                    request_id: write.request_id,
                    key: write.key,
                    length: write.entry.length,
                    result: Err(failure),
                });
            }
            let write_ns = elapsed_ns(started);

            let started = Instant::now();
            let touched: BTreeMap<u64, Rc<DmaFile>> = written
                .iter()
                .map(|(_, _, entry, file)| (entry.extent, Rc::clone(file)))
                .collect();
            let syncs: Vec<_> = touched
                .into_iter()
                .map(|(extent, file)| {
                    (
                        extent,
                        glommio::spawn_local(async move { file.fdatasync().await }),
                    )
                })
                .collect();
            let mut failure = None;
            for (extent, task) in syncs {
                if let Err(error) = task.await {
                    let error = io::Error::from(error);
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
                for (_, key, entry, _) in &written {
                    let record_bytes =
                        u64::from(entry.length).div_ceil(RECORD_ALIGNMENT) * RECORD_ALIGNMENT;
                    let end = ends.entry(entry.extent).or_insert(0);
                    *end = (*end).max(entry.offset + record_bytes);
                    totals.segments += 1;
                    totals.payload_bytes += u64::from(entry.length);
                    entries.push((*key, *entry));
                }
                // Extents whose writes all failed keep their committed end.
                ends.retain(|extent, _| written.iter().any(|(_, _, e, _)| e.extent == *extent));
                let commit_ends = ends.clone();
                let commit_totals = totals.clone();
                let result = glommio::executor()
                    .spawn_blocking(move || index.commit(&entries, &commit_ends, &commit_totals))
                    .await;
                match result {
                    Ok(()) => committed = Some((ends, totals)),
                    Err(error) => failure = Some(error.to_string()),
                }
            }
            let commit_ns = elapsed_ns(started);
            for (request_id, key, entry, _) in written {
                outcomes.push(WriteOutcome {
                    request_id,
                    key,
                    length: entry.length,
                    result: match &failure {
                        None => Ok(entry.segment_root),
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
    /// wrong shard means a bug upstream, and writing it here would hide it forever.
    fn assert_owned(&self, flow_segment: FlowSegmentIndex) {
        assert_eq!(
            crate::shard_for(flow_segment, self.shards),
            self.id,
            "flow segment {flow_segment} was routed to shard {} of {}",
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
        if message.starts_with("disk full") {
            tracing::warn!(shard = self.id, %message, "write refused");
            Response::Failed(message)
        } else {
            self.failed(message)
        }
    }

    /// The extent file `extent`, opened (and, with `create`, allocated) on first use.
    async fn extent_file(&mut self, extent: u64, create: bool) -> Result<Rc<DmaFile>, String> {
        if let Some(file) = self.extents.get(&extent) {
            return Ok(Rc::clone(file));
        }
        let path = self.extent_path(extent);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .dma_open(&path)
            .await
            .map_err(|error| format!("open {}: {}", path.display(), io::Error::from(error)))?;
        if create {
            if let Err(error) = self.allocate_extent(&file, &path).await {
                let _ = file.close().await;
                // Give the space back unless records live there (they cannot: new extents are
                // only ever allocated past the committed ones).
                if !self.committed_ends.contains_key(&extent)
                    && let Err(remove_error) = std::fs::remove_file(&path)
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
        let file = Rc::new(file);
        self.extents.insert(extent, Rc::clone(&file));
        Ok(file)
    }

    /// Pre-allocates a new extent and makes it durable before any record in it is indexed.
    async fn allocate_extent(&self, file: &DmaFile, path: &Path) -> Result<(), String> {
        if let Err(error) = file.pre_allocate(self.layout.extent_bytes, false).await {
            let error = io::Error::from(error);
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
        file.fdatasync()
            .await
            .map_err(|error| format!("fdatasync {}: {}", path.display(), io::Error::from(error)))?;
        sync_dir(&self.dir).map_err(|error| format!("sync {}: {error}", self.dir.display()))?;
        tracing::info!(shard = self.id, path = %path.display(), bytes = self.layout.extent_bytes, "extent allocated");
        Ok(())
    }

    async fn read_batch(
        &mut self,
        reads: Vec<(u64, SegmentKey, FlowSegmentIndex)>,
        answers: &mut Vec<(u64, Response)>,
    ) {
        for (_, _, flow_segment) in &reads {
            self.assert_owned(*flow_segment);
        }
        let keys: Vec<SegmentKey> = reads.iter().map(|(_, key, _)| *key).collect();
        let entries = match self.index.lookup_many(&keys) {
            Ok(entries) => entries,
            Err(error) => {
                let message = error.to_string();
                for (request_id, _, _) in reads {
                    answers.push((request_id, self.failed(message.clone())));
                }
                return;
            }
        };
        let mut tasks = Vec::new();
        for ((position, key, flow_segment), entry) in reads.into_iter().zip(entries) {
            let Some(entry) = entry else {
                answers.push((position, Response::NotFound));
                continue;
            };
            if entry.flow_segment != flow_segment {
                let answer = self.failed(format!(
                    "tx {} segment {} is stored as flow segment {}, asked for {flow_segment}",
                    key.0, key.1, entry.flow_segment
                ));
                answers.push((position, answer));
                continue;
            }
            let file = match self.extent_file(entry.extent, false).await {
                Ok(file) => file,
                Err(message) => {
                    answers.push((position, self.failed(message)));
                    continue;
                }
            };
            let record_bytes =
                u64::from(entry.length).div_ceil(RECORD_ALIGNMENT) * RECORD_ALIGNMENT;
            let task = glommio::spawn_local(async move {
                file.read_at_aligned(entry.offset, record_bytes as usize)
                    .await
            });
            tasks.push((position, key, entry, task));
        }
        for (position, key, entry, task) in tasks {
            let path = self.extent_path(entry.extent);
            let length = entry.length as usize;
            let answer = match task.await {
                Ok(read) if read.len() >= length => {
                    let data = read[..length].to_vec();
                    let crc = crc32c::crc32c(&data);
                    if crc == entry.crc32c {
                        Response::Data(data)
                    } else {
                        self.failed(format!(
                            "checksum mismatch for tx {} segment {} in {} at offset {}: stored {:#010x}, read {crc:#010x}",
                            key.0,
                            key.1,
                            path.display(),
                            entry.offset,
                            entry.crc32c
                        ))
                    }
                }
                Ok(read) => self.failed(format!(
                    "short read from {}: {} of {length} bytes at offset {}",
                    path.display(),
                    read.len(),
                    entry.offset
                )),
                Err(error) => self.failed(format!(
                    "read {}: {}",
                    path.display(),
                    io::Error::from(error)
                )),
            };
            answers.push((position, answer));
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
