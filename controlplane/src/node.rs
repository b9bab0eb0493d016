//! The node: file table, upload and download logic, finalization, log sync and recovery.
//!
//! Runs on the single control-plane thread. The file table is in memory and rebuilt at start
//! from the index (finalized files) and from the shards' own indexes (progress of unfinalized
//! files, one range query per file), so a restart never scans extents.

use crate::chain::{ChainSource, EmbeddedChain};
use crate::index::{FileRecord, Index};
use crate::metrics::{Metrics, ShardLabel};
use crate::rpc::{BUSY, RpcError};
use crate::shards::Shards;
use dataplane::{Request, Response, WriteSegment};
use merkle::file::{FileLayout, FileTree, Proof, SubmissionNode};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Instant;
use types::{
    CHUNK_BYTES, FlowSegmentIndex, H256, SEGMENT_CHUNKS, SectorIndex, SegmentIndex, TxSeq,
};

/// Most log events the sync reads per round, so one round never stalls the RPC thread long.
pub const MAX_LOGS_PER_SYNC_ROUND: usize = 10_000;

/// What the node knows about one file.
pub struct FileState {
    pub record: FileRecord,
    pub layout: FileLayout,
    /// Segment roots of stored data segments, by file segment. Sparse: an announced file costs
    /// nothing until its segments arrive.
    stored: BTreeMap<u64, H256>,
    /// Built once the file is finalized, for download proofs.
    tree: Option<Rc<FileTree>>,
}

impl FileState {
    fn new(record: FileRecord) -> FileState {
        let layout =
            FileLayout::new(record.size_bytes).expect("the chain accepts only non-empty files");
        FileState {
            record,
            layout,
            stored: BTreeMap::new(),
            tree: None,
        }
    }

    pub fn uploaded_segments(&self) -> u64 {
        if self.record.finalized {
            self.layout.data_segments
        } else {
            self.stored.len() as u64
        }
    }

    /// Flow segment that holds file segment `segment`.
    pub fn flow_segment(&self, segment: SegmentIndex) -> FlowSegmentIndex {
        SectorIndex(self.record.start.0 + segment.0 * SEGMENT_CHUNKS as u64).flow_segment()
    }
}

/// A segment as clients upload it (0G's `SegmentWithProof`), already decoded.
pub struct SegmentUpload {
    pub root: H256,
    pub data: Vec<u8>,
    pub index: u64,
    pub proof: Proof,
    pub file_size: u64,
}

pub struct Node {
    pub index: Index,
    pub chain: RefCell<ChainSource>,
    pub shards: Rc<Shards>,
    pub metrics: Metrics,
    files: RefCell<HashMap<TxSeq, FileState>>,
    by_root: RefCell<HashMap<H256, Vec<TxSeq>>>,
    /// Files by first flow sector, to find the file a sector belongs to.
    by_start: RefCell<BTreeMap<u64, TxSeq>>,
    log_sync_next_block: RefCell<u64>,
    /// Wakes the block producer when the pending block has transactions.
    seal_wanted: tokio::sync::Notify,
    /// The chain as DA reads and pays it (set once the RPC address is known).
    da_chain: std::cell::OnceCell<Rc<crate::da_node::DaChain>>,
    /// The DA-node role (`--da`).
    da_role: std::cell::OnceCell<Rc<crate::da_node::DaRole>>,
    /// Round robin over shards for DA encoding.
    next_encoder: std::cell::Cell<usize>,
    /// Workers for jobs that must not run on this thread (KZG multi-scalar multiplication).
    compute: std::sync::Arc<compute::Pool>,
}

impl Node {
    pub fn new(
        index: Index,
        chain: ChainSource,
        shards: Rc<Shards>,
        files: Vec<FileRecord>,
        next_block: u64,
        compute: std::sync::Arc<compute::Pool>,
    ) -> Node {
        let node = Node {
            index,
            chain: RefCell::new(chain),
            shards,
            metrics: Metrics::new(),
            files: RefCell::new(HashMap::new()),
            by_root: RefCell::new(HashMap::new()),
            by_start: RefCell::new(BTreeMap::new()),
            log_sync_next_block: RefCell::new(next_block),
            seal_wanted: tokio::sync::Notify::new(),
            da_chain: std::cell::OnceCell::new(),
            da_role: std::cell::OnceCell::new(),
            next_encoder: std::cell::Cell::new(0),
            compute,
        };
        for record in files {
            node.insert_file(record);
        }
        node.refresh_gauges();
        node
    }

    fn insert_file(&self, record: FileRecord) {
        self.by_root
            .borrow_mut()
            .entry(record.root)
            .or_default()
            .push(record.tx_seq);
        self.by_start
            .borrow_mut()
            .insert(record.start.0, record.tx_seq);
        self.files
            .borrow_mut()
            .insert(record.tx_seq, FileState::new(record));
    }

    fn refresh_gauges(&self) {
        let files = self.files.borrow();
        self.metrics.files.set(files.len() as i64);
        self.metrics
            .files_finalized
            .set(files.values().filter(|f| f.record.finalized).count() as i64);
        self.metrics
            .log_sync_next_block
            .set(*self.log_sync_next_block.borrow() as i64);
        self.metrics
            .chain_height
            .set(self.chain.borrow().head_number() as i64);
    }

    pub fn next_tx_seq(&self) -> u64 {
        self.files
            .borrow()
            .keys()
            .map(|tx| tx.0 + 1)
            .max()
            .unwrap_or(0)
    }

    pub fn log_sync_next_block(&self) -> u64 {
        *self.log_sync_next_block.borrow()
    }

    /// Restores upload progress of unfinalized files from the shards, and finalizes files whose
    /// data was all acknowledged before a crash that came before their finalization record.
    pub async fn recover(&self) -> anyhow::Result<()> {
        let unfinalized: Vec<TxSeq> = self
            .files
            .borrow()
            .values()
            .filter(|f| !f.record.finalized)
            .map(|f| f.record.tx_seq)
            .collect();
        for tx_seq in unfinalized {
            for shard in 0..self.shards.count() {
                let response = self
                    .shards
                    .call(shard, Request::Stored { tx_seq })
                    .map_err(|_| anyhow::anyhow!("shard {shard} queue full during recovery"))?
                    .await;
                match response {
                    Response::Stored(segments) => {
                        for (segment, root) in segments {
                            self.mark_stored(tx_seq, segment, root);
                        }
                    }
                    other => anyhow::bail!(
                        "shard {shard}: unexpected answer to a recovery query: {other:?}"
                    ),
                }
            }
            self.finalize_if_complete(tx_seq)?;
        }
        self.refresh_gauges();
        Ok(())
    }

    /// The embedded chain, for the Ethereum facade and the dev shortcut; a node that tails a
    /// remote chain refuses with a clear error.
    pub fn embedded(&self) -> Result<std::cell::Ref<'_, EmbeddedChain>, RpcError> {
        std::cell::Ref::filter_map(self.chain.borrow(), |source| match source {
            ChainSource::Embedded(chain) => Some(&**chain),
            ChainSource::Remote(_) => None,
        })
        .map_err(|_| no_embedded_chain())
    }

    fn embedded_mut(&self) -> Result<std::cell::RefMut<'_, EmbeddedChain>, RpcError> {
        std::cell::RefMut::filter_map(self.chain.borrow_mut(), |source| match source {
            ChainSource::Embedded(chain) => Some(&mut **chain),
            ChainSource::Remote(_) => None,
        })
        .map_err(|_| no_embedded_chain())
    }

    pub fn set_da(
        &self,
        chain: Rc<crate::da_node::DaChain>,
        role: Option<Rc<crate::da_node::DaRole>>,
    ) {
        let _ = self.da_chain.set(chain);
        if let Some(role) = role {
            let _ = self.da_role.set(role);
        }
    }

    pub fn da_chain(&self) -> Result<Rc<crate::da_node::DaChain>, RpcError> {
        self.da_chain
            .get()
            .cloned()
            .ok_or_else(|| RpcError::internal("DA is not ready yet"))
    }

    pub fn da_role(&self) -> Result<Rc<crate::da_node::DaRole>, RpcError> {
        self.da_role.get().cloned().ok_or_else(|| {
            RpcError::new(
                crate::rpc::METHOD_NOT_FOUND,
                "not_a_da_node",
                "this node does not hold DA shards: start it with --da",
            )
        })
    }

    pub fn compute(&self) -> std::sync::Arc<compute::Pool> {
        self.compute.clone()
    }

    /// The shard the next blob is encoded on.
    pub fn next_encoding_shard(&self) -> usize {
        let shard = self.next_encoder.get() % self.shards.count();
        self.next_encoder.set(shard + 1);
        shard
    }

    /// Records the remote chain's latest final block (a node with an embedded chain ignores it).
    pub fn set_remote_finalized(&self, number: u64, hash: H256) {
        if let ChainSource::Remote(remote) = &mut *self.chain.borrow_mut() {
            remote.finalized = Some((number, hash));
        }
        self.refresh_gauges();
    }

    /// Reads new Submit events from the embedded chain, from the persisted height on, and
    /// records the files they announce. A remote chain is tailed by `remote::run_log_sync`
    /// instead, which decodes the same logs and lands them through [`Node::apply_synced`].
    pub fn sync_logs(&self) -> Result<(), RpcError> {
        loop {
            let from = *self.log_sync_next_block.borrow();
            let Ok(chain) = self.embedded() else {
                return Ok(());
            };
            let finalized = chain.finalized_number();
            if from > finalized {
                break;
            }
            let (events, next_block) = chain
                .submissions_since(from, MAX_LOGS_PER_SYNC_ROUND)
                .map_err(|error| RpcError::internal(format!("log sync: {error}")))?;
            drop(chain);
            self.apply_synced(events, next_block)
                .map_err(|error| RpcError::internal(format!("log sync: {error}")))?;
            if next_block == from {
                break;
            }
        }
        self.refresh_gauges();
        Ok(())
    }

    /// Records files announced by final blocks before `next_block` and the new sync progress.
    /// On a remote chain each new file is first appended to the rebuilt flow, which checks
    /// that it lands where the chain placed it.
    pub fn apply_synced(&self, events: Vec<FileRecord>, next_block: u64) -> anyhow::Result<()> {
        let records: Vec<FileRecord> = events
            .into_iter()
            .filter(|record| !self.files.borrow().contains_key(&record.tx_seq))
            .collect();
        if let ChainSource::Remote(remote) = &mut *self.chain.borrow_mut() {
            for record in &records {
                remote.append(record)?;
            }
        }
        if let Err(error) = self.index.put_synced(&records, next_block) {
            if matches!(&*self.chain.borrow(), ChainSource::Remote(_)) && !records.is_empty() {
                // The rebuilt flow is now ahead of the disk; a retry would append twice.
                tracing::error!(%error, "cannot persist synced files; stopping");
                std::process::exit(70);
            }
            return Err(error.into());
        }
        for record in records {
            tracing::info!(tx_seq = %record.tx_seq, root = %record.root, size = record.size_bytes, "file announced");
            self.insert_file(record);
        }
        *self.log_sync_next_block.borrow_mut() = next_block;
        self.refresh_gauges();
        Ok(())
    }

    /// The transaction a root refers to for uploads: the first not yet finalized, else the first.
    pub fn tx_for_root(&self, root: &H256) -> Option<TxSeq> {
        self.tx_for_root_preferring(root, false)
    }

    /// The transaction a root refers to for reads: the first finalized, else the first.
    pub fn readable_tx_for_root(&self, root: &H256) -> Option<TxSeq> {
        self.tx_for_root_preferring(root, true)
    }

    fn tx_for_root_preferring(&self, root: &H256, finalized: bool) -> Option<TxSeq> {
        let by_root = self.by_root.borrow();
        let candidates = by_root.get(root)?;
        let files = self.files.borrow();
        candidates
            .iter()
            .copied()
            .find(|tx| {
                files
                    .get(tx)
                    .is_some_and(|f| f.record.finalized == finalized)
            })
            .or_else(|| candidates.first().copied())
    }

    pub fn with_file<T>(&self, tx_seq: TxSeq, f: impl FnOnce(&FileState) -> T) -> Option<T> {
        self.files.borrow().get(&tx_seq).map(f)
    }

    fn file_or_error(&self, tx_seq: TxSeq) -> Result<(FileRecord, FileLayout), RpcError> {
        self.with_file(tx_seq, |file| (file.record.clone(), file.layout))
            .ok_or_else(|| {
                RpcError::invalid_params("unknown_file", format!("no file with tx seq {tx_seq}"))
            })
    }

    /// Validates everything about an upload that does not need the data hashed; the shard then
    /// hashes the leaves and checks the proof.
    fn check_upload(
        &self,
        tx_seq: TxSeq,
        segment: &SegmentUpload,
    ) -> Result<(FileRecord, FileLayout), RpcError> {
        let (record, layout) = self.file_or_error(tx_seq)?;
        if record.root != segment.root {
            return Err(RpcError::invalid_params(
                "root_mismatch",
                format!(
                    "segment root field {} is not the root {} of tx {tx_seq}",
                    segment.root, record.root
                ),
            ));
        }
        if record.size_bytes != segment.file_size {
            return Err(RpcError::invalid_params(
                "file_size_mismatch",
                format!(
                    "fileSize {} does not match {} bytes submitted in tx {tx_seq}",
                    segment.file_size, record.size_bytes
                ),
            ));
        }
        if record.finalized {
            return Err(RpcError::already_finalized());
        }
        if segment.index >= layout.data_segments {
            return Err(RpcError::invalid_params(
                "segment_out_of_range",
                format!(
                    "segment index {} out of range: tx {tx_seq} has {} data segments",
                    segment.index, layout.data_segments
                ),
            ));
        }
        let expected = layout.segment_upload_bytes(segment.index);
        if segment.data.len() as u64 != expected {
            return Err(RpcError::invalid_params(
                "data_length",
                format!(
                    "segment {} must carry {expected} bytes, got {}",
                    segment.index,
                    segment.data.len()
                ),
            ));
        }
        let already = self
            .with_file(tx_seq, |file| file.stored.contains_key(&segment.index))
            .unwrap_or(false);
        if already {
            return Err(duplicate(tx_seq, segment.index));
        }
        Ok((record, layout))
    }

    /// Uploads segments of one file. Everything checkable without hashing is checked for all
    /// segments before any is written; proofs are checked by the shards, and a segment with a bad
    /// proof is never written (others in the same call may be, as each stands on its own).
    pub async fn upload(
        &self,
        tx_seq: TxSeq,
        segments: Vec<SegmentUpload>,
    ) -> Result<(), RpcError> {
        let mut seen = std::collections::HashSet::new();
        for segment in &segments {
            self.check_upload(tx_seq, segment)?;
            if !seen.insert(segment.index) {
                return Err(RpcError::invalid_params(
                    "duplicate_segment",
                    format!("segment {} appears twice in one request", segment.index),
                ));
            }
        }
        let mut pending = Vec::with_capacity(segments.len());
        let mut busy_error = None;
        for segment in segments {
            let index = segment.index;
            let (record, _) = self.file_or_error(tx_seq)?;
            let flow_segment = self
                .with_file(tx_seq, |f| f.flow_segment(SegmentIndex(index)))
                .expect("checked above");
            let shard = flow_segment.0 as usize % self.shards.count();
            let bytes = segment.data.len() as u64;
            let request = Request::Write(WriteSegment {
                tx_seq,
                file_root: record.root,
                file_size: record.size_bytes,
                segment: SegmentIndex(index),
                flow_segment,
                data: segment.data,
                proof: segment.proof,
            });
            let started = Instant::now();
            match self.shards.call(shard, request) {
                Ok(future) => {
                    self.observe_queue(shard);
                    pending.push((index, bytes, started, future));
                }
                Err(busy) => {
                    // Segments already on the rings are still awaited below, so what they
                    // write is accounted for; the rest of the call is refused.
                    busy_error = Some(RpcError::new(
                        BUSY,
                        "busy",
                        format!(
                            "too many data writing: shard {} queue is full, retry",
                            busy.shard
                        ),
                    ));
                    break;
                }
            }
        }
        let mut first_error = busy_error;
        for (index, bytes, started, future) in pending {
            let response = future.await;
            self.metrics
                .segment_write_duration
                .observe(started.elapsed().as_secs_f64());
            let outcome = match response {
                Response::Written { segment_root } => {
                    self.metrics.ingest_bytes.inc_by(bytes);
                    self.metrics.ingest_segments.inc();
                    self.mark_stored(tx_seq, SegmentIndex(index), segment_root);
                    Ok(())
                }
                Response::AlreadyStored { segment_root } => {
                    self.mark_stored(tx_seq, SegmentIndex(index), segment_root);
                    Err(duplicate(tx_seq, index))
                }
                Response::Rejected(error) => Err(RpcError::invalid_params(
                    "bad_proof",
                    format!("segment {index} of tx {tx_seq} rejected: {error}"),
                )),
                Response::Failed(reason) => Err(RpcError::new(
                    crate::rpc::INTERNAL_ERROR,
                    "storage_failed",
                    format!("segment {index}: {reason}"),
                )),
                other => Err(RpcError::internal(format!(
                    "unexpected shard answer to a write: {other:?}"
                ))),
            };
            if let Err(error) = outcome {
                first_error.get_or_insert(error);
            }
        }
        self.finalize_if_complete(tx_seq)
            .map_err(|error| RpcError::internal(error.to_string()))?;
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn observe_queue(&self, shard: usize) {
        self.metrics
            .shard_queue_depth
            .get_or_create(&ShardLabel {
                shard: shard.to_string(),
            })
            .set(self.shards.queue_depth(shard) as i64);
    }

    fn mark_stored(&self, tx_seq: TxSeq, segment: SegmentIndex, root: H256) {
        let mut files = self.files.borrow_mut();
        let Some(file) = files.get_mut(&tx_seq) else {
            return;
        };
        if segment.0 < file.layout.data_segments {
            file.stored.entry(segment.0).or_insert(root);
        }
    }

    fn finalize_if_complete(&self, tx_seq: TxSeq) -> anyhow::Result<()> {
        let mut files = self.files.borrow_mut();
        let Some(file) = files.get_mut(&tx_seq) else {
            return Ok(());
        };
        if file.record.finalized || (file.stored.len() as u64) < file.layout.data_segments {
            return Ok(());
        }
        let tree = tree_from_stored(file)?;
        anyhow::ensure!(
            tree.root() == file.record.root,
            "tx {tx_seq}: stored segments give root {} but the chain says {}; refusing to finalize",
            tree.root(),
            file.record.root
        );
        // On disk first: memory never claims a file final that a restart would not.
        let finalized = FileRecord {
            finalized: true,
            ..file.record.clone()
        };
        self.index.put_finalized(&finalized, tree.segment_roots())?;
        file.record.finalized = true;
        tracing::info!(%tx_seq, root = %file.record.root, "file finalized");
        file.tree = Some(Rc::new(tree));
        drop(files);
        self.refresh_gauges();
        Ok(())
    }

    /// The file holding flow sector `sector`, if any starts at or before it.
    pub fn file_at_sector(&self, sector: SectorIndex) -> Option<TxSeq> {
        self.by_start
            .borrow()
            .range(..=sector.0)
            .next_back()
            .map(|(_, tx_seq)| *tx_seq)
    }

    /// The file's tree for proofs: cached, else rebuilt from the segment roots in the index.
    pub fn tree(&self, tx_seq: TxSeq) -> Result<Rc<FileTree>, RpcError> {
        if let Some(tree) = self.with_file(tx_seq, |f| f.tree.clone()).flatten() {
            return Ok(tree);
        }
        let (record, _) = self.file_or_error(tx_seq)?;
        if !record.finalized {
            return Err(RpcError::invalid_params(
                "not_finalized",
                format!(
                    "tx {tx_seq} is not finalized yet: proofs are served once every segment is stored"
                ),
            ));
        }
        let roots = self
            .index
            .segment_roots(tx_seq)
            .map_err(|error| RpcError::internal(error.to_string()))?
            .ok_or_else(|| {
                RpcError::internal(format!("finalized tx {tx_seq} has no segment roots"))
            })?;
        let tree = Rc::new(
            FileTree::from_segment_roots(record.size_bytes, roots)
                .map_err(|error| RpcError::internal(format!("tx {tx_seq}: {error}")))?,
        );
        if let Some(file) = self.files.borrow_mut().get_mut(&tx_seq) {
            file.tree = Some(tree.clone());
        }
        Ok(tree)
    }

    /// Reads one stored data segment of a file; `None` when this node does not hold it.
    pub async fn read_segment(
        &self,
        tx_seq: TxSeq,
        segment: SegmentIndex,
    ) -> Result<Option<Vec<u8>>, RpcError> {
        let flow_segment = self
            .with_file(tx_seq, |f| f.flow_segment(segment))
            .ok_or_else(|| {
                RpcError::invalid_params("unknown_file", format!("no file with tx seq {tx_seq}"))
            })?;
        let shard = flow_segment.0 as usize % self.shards.count();
        let started = Instant::now();
        let future = self
            .shards
            .call(
                shard,
                Request::Read {
                    tx_seq,
                    segment,
                    flow_segment,
                },
            )
            .map_err(|busy| {
                RpcError::new(
                    BUSY,
                    "busy",
                    format!("shard {} queue is full, retry", busy.shard),
                )
            })?;
        let response = future.await;
        self.metrics
            .segment_read_duration
            .observe(started.elapsed().as_secs_f64());
        match response {
            Response::Data(data) => {
                self.metrics.download_bytes.inc_by(data.len() as u64);
                self.metrics.download_segments.inc();
                Ok(Some(data))
            }
            Response::NotFound => Ok(None),
            Response::Failed(reason) => Err(RpcError::new(
                crate::rpc::INTERNAL_ERROR,
                "storage_failed",
                format!("reading segment {segment} of tx {tx_seq}: {reason}"),
            )),
            other => Err(RpcError::internal(format!(
                "unexpected shard answer to a read: {other:?}"
            ))),
        }
    }

    /// One segment with its proof against the file root.
    pub async fn segment_with_proof(
        &self,
        tx_seq: TxSeq,
        index: u64,
    ) -> Result<Option<(FileRecord, Vec<u8>, Proof)>, RpcError> {
        let (record, layout) = self.file_or_error(tx_seq)?;
        if index >= layout.data_segments {
            return Err(RpcError::invalid_params(
                "segment_out_of_range",
                format!(
                    "segment index {index} out of range: tx {tx_seq} has {} data segments",
                    layout.data_segments
                ),
            ));
        }
        let tree = self.tree(tx_seq)?;
        let proof = tree
            .proof(SegmentIndex(index))
            .map_err(|error| RpcError::internal(error.to_string()))?;
        let Some(data) = self.read_segment(tx_seq, SegmentIndex(index)).await? else {
            return Ok(None);
        };
        Ok(Some((record, data, proof)))
    }

    /// Chunks `[start, end)` of a file, at most one segment's worth.
    pub async fn chunk_range(
        &self,
        tx_seq: TxSeq,
        start: u64,
        end: u64,
    ) -> Result<Option<Vec<u8>>, RpcError> {
        let (_, layout) = self.file_or_error(tx_seq)?;
        if start >= end || end > layout.chunks || end - start > SEGMENT_CHUNKS as u64 {
            return Err(RpcError::invalid_params(
                "chunk_range",
                format!(
                    "chunk range [{start}, {end}) is invalid: need start < end <= {} and at most {SEGMENT_CHUNKS} chunks",
                    layout.chunks
                ),
            ));
        }
        let first = start / SEGMENT_CHUNKS as u64;
        let last = (end - 1) / SEGMENT_CHUNKS as u64;
        let mut out = Vec::with_capacity(((end - start) as usize) * CHUNK_BYTES);
        for segment in first..=last {
            let Some(data) = self.read_segment(tx_seq, SegmentIndex(segment)).await? else {
                return Ok(None);
            };
            let segment_start = segment * SEGMENT_CHUNKS as u64;
            let from = (start.max(segment_start) - segment_start) as usize * CHUNK_BYTES;
            let to = (end.min(segment_start + SEGMENT_CHUNKS as u64) - segment_start) as usize
                * CHUNK_BYTES;
            let Some(piece) = data.get(from..to) else {
                return Err(RpcError::internal(format!(
                    "segment {segment} of tx {tx_seq} is shorter than its chunks"
                )));
            };
            out.extend_from_slice(piece);
        }
        Ok(Some(out))
    }

    /// Executes a signed Ethereum transaction into the pending block and asks the block
    /// producer to seal it. Transactions that arrive while the producer waits for its turn share
    /// a block, so a burst costs one block write, not one per transaction.
    pub fn send_raw_transaction(&self, raw: &[u8]) -> Result<chain_lite::Receipt, RpcError> {
        let refused = |error: chain_lite::TxError| {
            RpcError::new(
                crate::eth::TRANSACTION_REFUSED,
                "transaction_refused",
                error.to_string(),
            )
        };
        let outcome = self.embedded_mut()?.execute_raw(raw);
        let receipt = match outcome {
            Err(chain_lite::TxError::BlockFull { .. }) => {
                self.seal_pending();
                self.embedded_mut()?.execute_raw(raw).map_err(refused)?
            }
            other => other.map_err(refused)?,
        };
        self.seal_wanted.notify_one();
        Ok(receipt)
    }

    /// Seals the pending block (if it has transactions), persists it and lets the log sync
    /// read it. Called by the block producer, and before any call that reads chain or file
    /// state, so a client always reads its own transactions.
    pub fn seal_pending(&self) {
        let Ok(mut chain) = self.embedded_mut() else {
            return;
        };
        chain.seal_pending(&self.index);
        let finalized = chain.finalized_number();
        drop(chain);
        // Also when nothing was sealed: a sync that failed earlier catches up here.
        let behind = *self.log_sync_next_block.borrow() <= finalized;
        if behind && let Err(error) = self.sync_logs() {
            tracing::error!(%error, "log sync failed; retried at the next call");
        }
    }

    /// The block producer: seals whatever transactions arrived, once every request that was
    /// ready alongside them has had its turn.
    pub async fn run_block_producer(self: Rc<Self>) {
        loop {
            self.seal_wanted.notified().await;
            tokio::task::yield_now().await;
            self.seal_pending();
        }
    }

    /// Submits a file to the embedded chain, seals the block, persists it and syncs the log.
    pub fn submit(
        &self,
        submission: chain_lite::Submission,
    ) -> Result<(TxSeq, SectorIndex, u64), RpcError> {
        let receipt = self
            .embedded_mut()?
            .submit_and_seal(&self.index, submission)?;
        // The block is durable: answer with its receipt even if the sync must be retried.
        self.seal_pending();
        Ok(receipt)
    }
}

fn no_embedded_chain() -> RpcError {
    RpcError::new(
        crate::rpc::METHOD_NOT_FOUND,
        "no_embedded_chain",
        "this node follows a remote chain: send chain calls and transactions to that chain's RPC",
    )
}

fn duplicate(tx_seq: TxSeq, index: u64) -> RpcError {
    RpcError::invalid_params(
        "duplicate_segment",
        format!("segment {index} of tx {tx_seq} is already stored"),
    )
}

fn tree_from_stored(file: &FileState) -> anyhow::Result<FileTree> {
    let roots = (0..file.layout.data_segments)
        .map(|segment| {
            file.stored
                .get(&segment)
                .copied()
                .ok_or_else(|| anyhow::anyhow!("segment {segment} is not stored"))
        })
        .collect::<anyhow::Result<Vec<H256>>>()?;
    Ok(FileTree::from_segment_roots(file.layout.size_bytes, roots)?)
}

/// Submission nodes as 0G's `merkleNodes`: `[height, root]` pairs.
pub fn merkle_nodes(nodes: &[SubmissionNode]) -> Vec<(u64, H256)> {
    nodes.iter().map(|node| (node.height, node.root)).collect()
}
