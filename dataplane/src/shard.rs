//! One shard: a glommio task that turns batches of requests into durable records and answers.

use crate::extent::{Cursor, ExtentLayout, Placement};
use crate::index::{IndexTotals, RecordEntry, SegmentKey, ShardIndex, cursor_from_ends};
use crate::ring::ShardRings;
use crate::{
    BufferMode, DataPlaneError, MAX_RECORD_BYTES, RECORD_ALIGNMENT, Request, Response, ShardStats,
    WriteSegment,
};
use futures_lite::AsyncReadExt;
use glommio::io::{DmaBuffer, DmaFile, OpenOptions};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc::SyncSender;
use types::{FlowSegmentIndex, H256};

/// Size of the probe file every executor reads before touching any other file.
const PROBE_BYTES: usize = 4096;
/// Extent files a shard keeps open at once (the current one always among them).
const MAX_OPEN_EXTENTS: usize = 1024;
/// Wake-up bytes consumed per read of the wake socket.
const WAKE_READ_BYTES: usize = 64;

pub(crate) struct ShardSettings {
    pub(crate) shard: usize,
    pub(crate) shards: usize,
    pub(crate) dir: PathBuf,
    pub(crate) extent_bytes: u64,
    pub(crate) max_extents: Option<u64>,
    pub(crate) max_batch: usize,
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

/// One write of a batch that passed verification and got a place.
struct PlannedWrite {
    answer: usize,
    key: SegmentKey,
    entry: RecordEntry,
    record_bytes: u64,
    file: Rc<DmaFile>,
    buffer: Option<DmaBuffer>,
}

#[derive(Default)]
struct Counters {
    segments_written: u64,
    payload_bytes_written: u64,
    batches: u64,
    writes_rejected: u64,
    writes_failed: u64,
}

struct Shard {
    id: usize,
    shards: usize,
    dir: PathBuf,
    layout: ExtentLayout,
    max_batch: usize,
    buffer_mode: BufferMode,
    index: ShardIndex,
    /// Committed end of every extent holding records, as in the index.
    committed_ends: BTreeMap<u64, u64>,
    totals: IndexTotals,
    /// Extent ids below this have a file (allocated to `extent_bytes`).
    known_extents: u64,
    extents: HashMap<u64, Rc<DmaFile>>,
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
        let mut shard = Shard {
            id: settings.shard,
            shards: settings.shards,
            dir: settings.dir,
            layout: ExtentLayout {
                extent_bytes: settings.extent_bytes,
                max_extents: settings.max_extents,
            },
            max_batch: settings.max_batch,
            buffer_mode: settings.buffer_mode,
            index,
            known_extents: committed_ends
                .last_key_value()
                .map_or(0, |(extent, _)| extent + 1),
            committed_ends,
            totals,
            extents: HashMap::new(),
            counters: Counters::default(),
        };
        // A crashed batch may have allocated one extent past the committed ones (a rollover
        // allocates at most one ahead of the cursor); count its disk space.
        if shard.extent_path(shard.known_extents).exists() {
            shard.known_extents += 1;
        }
        let cursor = cursor_from_ends(&shard.committed_ends);
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
                let answers = self.process(&mut batch).await;
                rings.respond(answers);
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
        debug_assert!(outcome.is_err() || rings.is_empty());
        drop(rings);
        tracing::info!(shard = self.id, "shard stopped");
        outcome
    }

    /// Answers one batch: writes first (one sync and one commit for all of them), then reads and
    /// queries, which therefore see the batch's writes.
    async fn process(&mut self, batch: &mut Vec<(u64, Request)>) -> Vec<(u64, Response)> {
        let mut request_ids = Vec::with_capacity(batch.len());
        let mut answers: Vec<Option<Response>> = Vec::with_capacity(batch.len());
        let mut writes = Vec::new();
        let mut reads = Vec::new();
        let mut queries = Vec::new();
        for (position, (request_id, request)) in batch.drain(..).enumerate() {
            request_ids.push(request_id);
            answers.push(None);
            match request {
                Request::Write(write) => writes.push((position, write)),
                Request::Read {
                    tx_seq,
                    segment,
                    flow_segment,
                } => {
                    reads.push((position, (tx_seq, segment), flow_segment));
                }
                query => queries.push((position, query)),
            }
        }
        if !writes.is_empty() {
            self.write_batch(writes, &mut answers).await;
        }
        if !reads.is_empty() {
            self.read_batch(reads, &mut answers).await;
        }
        for (position, query) in queries {
            answers[position] = Some(match query {
                Request::Stored { tx_seq } => match self.index.stored(tx_seq) {
                    Ok(stored) => Response::Stored(stored),
                    Err(error) => self.failed(error.to_string()),
                },
                Request::Stats => Response::Stats(self.stats()),
                Request::Write(_) | Request::Read { .. } => {
                    unreachable!("writes and reads were sorted out above")
                }
            });
        }
        request_ids
            .into_iter()
            .zip(answers)
            .map(|(request_id, answer)| (request_id, answer.expect("every request is answered")))
            .collect()
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

    async fn write_batch(
        &mut self,
        writes: Vec<(usize, WriteSegment)>,
        answers: &mut [Option<Response>],
    ) {
        // 1. Verify every segment against its file root (this hashes the leaves).
        let mut verified: Vec<(usize, WriteSegment, H256)> = Vec::with_capacity(writes.len());
        for (position, write) in writes {
            self.assert_owned(write.flow_segment);
            match merkle::file::verify_segment(
                &write.file_root,
                write.file_size,
                write.segment,
                &write.data,
                &write.proof,
            ) {
                Ok(segment_root) => verified.push((position, write, segment_root)),
                Err(error) => {
                    self.counters.writes_rejected += 1;
                    answers[position] = Some(Response::Rejected(error));
                }
            }
        }

        // 2. Drop what is already stored, in the index or earlier in this batch.
        let keys: Vec<SegmentKey> = verified
            .iter()
            .map(|(_, write, _)| (write.tx_seq, write.segment))
            .collect();
        let existing = match self.index.lookup_many(&keys) {
            Ok(existing) => existing,
            Err(error) => {
                let message = error.to_string();
                for (position, _, _) in verified {
                    answers[position] = Some(self.write_failed(message.clone()));
                }
                return;
            }
        };
        let mut first_in_batch: HashMap<SegmentKey, usize> = HashMap::new();
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        let mut fresh = Vec::with_capacity(verified.len());
        for ((position, write, segment_root), existing) in verified.into_iter().zip(existing) {
            if let Some(entry) = existing {
                answers[position] = Some(Response::AlreadyStored {
                    segment_root: entry.segment_root,
                });
                continue;
            }
            match first_in_batch.entry((write.tx_seq, write.segment)) {
                Entry::Occupied(first) => repeats.push((position, *first.get())),
                Entry::Vacant(slot) => {
                    slot.insert(position);
                    fresh.push((position, write, segment_root));
                }
            }
        }

        // 3. Place each record and copy it into a DMA buffer.
        let planned = self.plan_writes(fresh, answers).await;

        // 4. Write all records concurrently, 5. sync each touched extent once, 6. index them.
        let written = self.write_and_sync(planned, answers).await;
        if !written.is_empty() {
            self.commit(written, answers);
        }

        // A repeat in the same batch shares the fate of its first copy.
        for (position, first) in repeats {
            answers[position] = Some(match &answers[first] {
                Some(Response::Written { segment_root }) => Response::AlreadyStored {
                    segment_root: *segment_root,
                },
                Some(other) => other.clone(),
                None => unreachable!("the first copy of a segment is answered before its repeats"),
            });
        }
    }

    async fn plan_writes(
        &mut self,
        fresh: Vec<(usize, WriteSegment, H256)>,
        answers: &mut [Option<Response>],
    ) -> Vec<PlannedWrite> {
        let mut cursor = self.cursor();
        let mut planned = Vec::with_capacity(fresh.len());
        // An extent that could not be allocated is not retried within the batch.
        let mut unavailable: HashMap<u64, String> = HashMap::new();
        for (position, write, segment_root) in fresh {
            let length = write.data.len();
            if length == 0 || length > MAX_RECORD_BYTES {
                // verify_segment admits at most one segment of data; this guards the limit.
                answers[position] = Some(self.write_failed(format!(
                    "segment of {length} bytes is outside 1..={MAX_RECORD_BYTES}"
                )));
                continue;
            }
            let record_bytes = (length as u64).div_ceil(RECORD_ALIGNMENT) * RECORD_ALIGNMENT;
            let (at, next) = match self.layout.place(cursor, record_bytes) {
                Placement::At { at, next } => (at, next),
                Placement::DiskFull { reason } => {
                    answers[position] = Some(self.write_failed(reason));
                    continue;
                }
            };
            if let Some(reason) = unavailable.get(&at.extent) {
                answers[position] = Some(self.write_failed(reason.clone()));
                continue;
            }
            let file = match self.extent_file(at.extent, true).await {
                Ok(file) => file,
                Err(reason) => {
                    unavailable.insert(at.extent, reason.clone());
                    answers[position] = Some(self.write_failed(reason));
                    continue;
                }
            };
            let mut buffer = file.alloc_dma_buffer(record_bytes as usize);
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
            planned.push(PlannedWrite {
                answer: position,
                key: (write.tx_seq, write.segment),
                entry,
                record_bytes,
                file,
                buffer: Some(buffer),
            });
            cursor = next;
        }
        planned
    }

    /// Issues every planned write at once, then one `fdatasync` per touched extent. Returns the
    /// writes that are durable on disk (not yet indexed).
    async fn write_and_sync(
        &mut self,
        mut planned: Vec<PlannedWrite>,
        answers: &mut [Option<Response>],
    ) -> Vec<PlannedWrite> {
        let tasks: Vec<_> = planned
            .iter_mut()
            .map(|write| {
                let file = Rc::clone(&write.file);
                let buffer = write.buffer.take().expect("each buffer is written once");
                let offset = write.entry.offset;
                glommio::spawn_local(async move { file.write_at(buffer, offset).await })
            })
            .collect();
        let mut written = Vec::with_capacity(planned.len());
        for (write, task) in planned.into_iter().zip(tasks) {
            let path = self.extent_path(write.entry.extent);
            match task.await {
                Ok(bytes) if bytes as u64 == write.record_bytes => written.push(write),
                Ok(bytes) => {
                    answers[write.answer] = Some(self.write_failed(format!(
                        "short write to {}: {bytes} of {} bytes at offset {}",
                        path.display(),
                        write.record_bytes,
                        write.entry.offset
                    )));
                }
                Err(error) => {
                    let error = io::Error::from(error);
                    let prefix = if is_disk_full(error.kind()) {
                        "disk full: "
                    } else {
                        ""
                    };
                    answers[write.answer] = Some(
                        self.write_failed(format!("{prefix}write {}: {error}", path.display())),
                    );
                }
            }
        }

        let touched: BTreeMap<u64, Rc<DmaFile>> = written
            .iter()
            .map(|write| (write.entry.extent, Rc::clone(&write.file)))
            .collect();
        let syncs: Vec<_> = touched
            .iter()
            .map(|(extent, file)| {
                let file = Rc::clone(file);
                (
                    *extent,
                    glommio::spawn_local(async move { file.fdatasync().await }),
                )
            })
            .collect();
        let mut sync_failure = None;
        for (extent, task) in syncs {
            if let Err(error) = task.await {
                let error = io::Error::from(error);
                sync_failure.get_or_insert(format!(
                    "fdatasync {}: {error}",
                    self.extent_path(extent).display()
                ));
            }
        }
        if let Some(message) = sync_failure {
            // After a failed sync the page state of the file is unknown: acknowledge nothing
            // that depends on it. The records are not indexed, so their space is reused.
            for write in written.drain(..) {
                answers[write.answer] = Some(self.write_failed(message.clone()));
            }
        }
        written
    }

    /// Indexes durable records in one transaction and answers them.
    fn commit(&mut self, written: Vec<PlannedWrite>, answers: &mut [Option<Response>]) {
        let mut new_ends: BTreeMap<u64, u64> = BTreeMap::new();
        let mut totals = self.totals.clone();
        for write in &written {
            let committed = self
                .committed_ends
                .get(&write.entry.extent)
                .copied()
                .unwrap_or(0);
            let end = new_ends.entry(write.entry.extent).or_insert(committed);
            *end = (*end).max(write.entry.offset + write.record_bytes);
            totals.segments += 1;
            totals.payload_bytes += u64::from(write.entry.length);
        }
        let entries: Vec<(SegmentKey, RecordEntry)> = written
            .iter()
            .map(|write| (write.key, write.entry))
            .collect();
        match self.index.commit(&entries, &new_ends, &totals) {
            Ok(()) => {
                self.committed_ends.extend(new_ends);
                self.totals = totals;
                self.counters.batches += 1;
                for write in written {
                    self.counters.segments_written += 1;
                    self.counters.payload_bytes_written += u64::from(write.entry.length);
                    answers[write.answer] = Some(Response::Written {
                        segment_root: write.entry.segment_root,
                    });
                }
            }
            Err(error) => {
                let message = error.to_string();
                for write in written {
                    answers[write.answer] = Some(self.write_failed(message.clone()));
                }
            }
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
        reads: Vec<(usize, SegmentKey, FlowSegmentIndex)>,
        answers: &mut [Option<Response>],
    ) {
        for (_, _, flow_segment) in &reads {
            self.assert_owned(*flow_segment);
        }
        let keys: Vec<SegmentKey> = reads.iter().map(|(_, key, _)| *key).collect();
        let entries = match self.index.lookup_many(&keys) {
            Ok(entries) => entries,
            Err(error) => {
                let message = error.to_string();
                for (position, _, _) in reads {
                    answers[position] = Some(self.failed(message.clone()));
                }
                return;
            }
        };
        let mut tasks = Vec::new();
        for ((position, key, flow_segment), entry) in reads.into_iter().zip(entries) {
            let Some(entry) = entry else {
                answers[position] = Some(Response::NotFound);
                continue;
            };
            if entry.flow_segment != flow_segment {
                answers[position] = Some(self.failed(format!(
                    "tx {} segment {} is stored as flow segment {}, asked for {flow_segment}",
                    key.0, key.1, entry.flow_segment
                )));
                continue;
            }
            let file = match self.extent_file(entry.extent, false).await {
                Ok(file) => file,
                Err(message) => {
                    answers[position] = Some(self.failed(message));
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
            answers[position] = Some(match task.await {
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
            });
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
            buffer_mode: self.buffer_mode.clone(),
        }
    }
}
