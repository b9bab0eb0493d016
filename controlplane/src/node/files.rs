//! The file table: every file the chain announced, which of its segments this node stores, and
//! finalization. It owns the in-memory view (by tx seq, by root, by flow position) and keeps it
//! true to the index: a file is final in memory only after its record and segment roots are
//! committed, and a restart rebuilds the table from the index (finalized files) and from the
//! shards' own indexes (progress of unfinalized files, one range query per file and shard), so
//! nothing scans extents.

use crate::index::{FileRecord, Index};
use crate::rpc::RpcError;
use crate::shards::Shards;
use dataplane::{Request, Response};
use merkle::file::{FileLayout, FileTree};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use types::{
    FlowSegmentIndex, H256, SEGMENT_CHUNKS, SectorIndex, SegmentIndex, ShardConfig, TxSeq,
};

/// What the node knows about one file.
pub struct FileState {
    pub record: FileRecord,
    pub layout: FileLayout,
    /// Data segments of the file this node stores (all of them at position `0/1`).
    pub owned_segments: u64,
    /// Segment roots of stored data segments, by file segment. Sparse: an announced file costs
    /// nothing until its segments arrive.
    stored: BTreeMap<u64, H256>,
    /// Owned segments of a finalized file found damaged (and dropped by their shard) or
    /// missing since: repair pulls them again. Memory only: after a restart, reads and the
    /// scrub find them again as segments the shard no longer holds.
    lost: BTreeSet<u64>,
    /// Built once the file is finalized, for download proofs.
    tree: Option<Rc<FileTree>>,
    /// When this node learned of the file (this run): repair leaves a new file to its
    /// uploader for a grace period.
    pub seen_at: std::time::Instant,
}

impl FileState {
    fn new(record: FileRecord, position: ShardConfig) -> FileState {
        let layout =
            FileLayout::new(record.size_bytes).expect("the chain accepts only non-empty files");
        let first = SectorIndex(record.start.0).flow_segment();
        FileState {
            owned_segments: owned_in(position, first, layout.data_segments),
            record,
            layout,
            stored: BTreeMap::new(),
            lost: BTreeSet::new(),
            tree: None,
            seen_at: std::time::Instant::now(),
        }
    }

    /// The data segments this node owns and does not hold, at most `limit`.
    pub fn missing(&self, position: ShardConfig, limit: usize) -> Vec<SegmentIndex> {
        if self.record.finalized {
            return self
                .lost
                .iter()
                .take(limit)
                .copied()
                .map(SegmentIndex)
                .collect();
        }
        (0..self.layout.data_segments)
            .map(SegmentIndex)
            .filter(|&segment| {
                position.owns(self.flow_segment(segment)) && !self.stored.contains_key(&segment.0)
            })
            .take(limit)
            .collect()
    }

    /// Segments stored here: every one this node owns but the lost ones, once the file is
    /// finalized.
    pub fn uploaded_segments(&self) -> u64 {
        if self.record.finalized {
            self.owned_segments - self.lost.len() as u64
        } else {
            self.stored.len() as u64
        }
    }

    /// Finalized here and every owned segment still held: what the node tells clients and
    /// peers when they ask whether it can serve the file.
    pub fn complete(&self) -> bool {
        self.record.finalized && self.lost.is_empty()
    }

    /// Flow segment that holds file segment `segment`.
    pub fn flow_segment(&self, segment: SegmentIndex) -> FlowSegmentIndex {
        SectorIndex(self.record.start.0 + segment.0 * SEGMENT_CHUNKS as u64).flow_segment()
    }

    fn tree_from_stored(&self) -> anyhow::Result<FileTree> {
        let roots = (0..self.layout.data_segments)
            .map(|segment| {
                self.stored
                    .get(&segment)
                    .copied()
                    .ok_or_else(|| anyhow::anyhow!("segment {segment} is not stored"))
            })
            .collect::<anyhow::Result<Vec<H256>>>()?;
        Ok(FileTree::from_segment_roots(self.layout.size_bytes, roots)?)
    }
}

/// How many of the `count` flow segments from `first` on a node at `position` owns.
fn owned_in(position: ShardConfig, first: FlowSegmentIndex, count: u64) -> u64 {
    let (num, id) = (position.num_shard, position.shard_id);
    // Flow segments below `end` with k mod num == id: ceil((end - id) / num) when end > id.
    let below = |end: u64| end.saturating_sub(id).div_ceil(num);
    below(first.0 + count) - below(first.0)
}

/// The files this node knows, on the control-plane thread.
pub struct FileTable {
    /// The part of the flow this node stores.
    position: ShardConfig,
    files: RefCell<HashMap<TxSeq, FileState>>,
    by_root: RefCell<HashMap<H256, Vec<TxSeq>>>,
    /// Files by first flow sector, to find the file a sector belongs to.
    by_start: RefCell<BTreeMap<u64, TxSeq>>,
}

impl FileTable {
    pub fn new(records: Vec<FileRecord>, position: ShardConfig) -> FileTable {
        let table = FileTable {
            position,
            files: RefCell::default(),
            by_root: RefCell::default(),
            by_start: RefCell::default(),
        };
        for record in records {
            table.insert(record);
        }
        table
    }

    pub fn insert(&self, record: FileRecord) {
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
            .insert(record.tx_seq, FileState::new(record, self.position));
    }

    pub fn contains(&self, tx_seq: TxSeq) -> bool {
        self.files.borrow().contains_key(&tx_seq)
    }

    /// Files known and files finalized.
    pub fn counts(&self) -> (usize, usize) {
        let files = self.files.borrow();
        let finalized = files.values().filter(|f| f.record.finalized).count();
        (files.len(), finalized)
    }

    pub fn next_tx_seq(&self) -> u64 {
        self.files
            .borrow()
            .keys()
            .map(|tx| tx.0 + 1)
            .max()
            .unwrap_or(0)
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

    /// Files with owned segments to pull (oldest first, at most `limit`): unfinalized files
    /// this node learned of at least `grace` ago, and finalized files that lost a segment.
    pub fn needing_repair(&self, grace: std::time::Duration, limit: usize) -> Vec<TxSeq> {
        let files = self.files.borrow();
        let mut found: Vec<TxSeq> = files
            .values()
            .filter(|file| {
                if file.record.finalized {
                    !file.lost.is_empty()
                } else {
                    file.seen_at.elapsed() >= grace
                }
            })
            .map(|file| file.record.tx_seq)
            .collect();
        found.sort_unstable();
        found.truncate(limit);
        found
    }

    /// Owned segments not stored, over every file.
    pub fn missing_count(&self) -> u64 {
        self.files
            .borrow()
            .values()
            .map(|file| {
                if file.record.finalized {
                    file.lost.len() as u64
                } else {
                    file.owned_segments.saturating_sub(file.stored.len() as u64)
                }
            })
            .sum()
    }

    /// Finalized files in tx order from `from` on, at most `limit`: what the scrub walks.
    pub fn finalized_from(&self, from: TxSeq, limit: usize) -> Vec<TxSeq> {
        let files = self.files.borrow();
        let mut found: Vec<TxSeq> = files
            .values()
            .filter(|file| file.record.finalized && file.record.tx_seq >= from)
            .map(|file| file.record.tx_seq)
            .collect();
        found.sort_unstable();
        found.truncate(limit);
        found
    }

    pub fn with_file<T>(&self, tx_seq: TxSeq, f: impl FnOnce(&FileState) -> T) -> Option<T> {
        self.files.borrow().get(&tx_seq).map(f)
    }

    /// The file's record and layout, or the error a client gets for an unknown tx seq.
    pub fn get(&self, tx_seq: TxSeq) -> Result<(FileRecord, FileLayout), RpcError> {
        self.with_file(tx_seq, |file| (file.record.clone(), file.layout))
            .ok_or_else(|| {
                RpcError::invalid_params("unknown_file", format!("no file with tx seq {tx_seq}"))
            })
    }

    pub fn is_stored(&self, tx_seq: TxSeq, segment: SegmentIndex) -> bool {
        self.with_file(tx_seq, |file| file.stored.contains_key(&segment.0))
            .unwrap_or(false)
    }

    /// Whether a segment of a finalized file is lost here (and may be uploaded again).
    pub fn is_lost(&self, tx_seq: TxSeq, segment: SegmentIndex) -> bool {
        self.with_file(tx_seq, |file| file.lost.contains(&segment.0))
            .unwrap_or(false)
    }

    pub fn mark_stored(&self, tx_seq: TxSeq, segment: SegmentIndex, root: H256) {
        let mut files = self.files.borrow_mut();
        let Some(file) = files.get_mut(&tx_seq) else {
            return;
        };
        if segment.0 < file.layout.data_segments {
            file.stored.entry(segment.0).or_insert(root);
            if file.lost.remove(&segment.0) {
                tracing::info!(%tx_seq, %segment, "lost segment stored again");
            }
        }
    }

    /// Records that an owned segment is no longer held (its shard dropped it as damaged, or
    /// does not have it): an unfinalized file waits for it again, a finalized one lists it as
    /// lost until repair (or a client) stores it again. Whether this is news.
    pub fn mark_lost(&self, tx_seq: TxSeq, segment: SegmentIndex) -> bool {
        let mut files = self.files.borrow_mut();
        let Some(file) = files.get_mut(&tx_seq) else {
            return false;
        };
        if segment.0 >= file.layout.data_segments {
            return false;
        }
        let was_stored = file.stored.remove(&segment.0).is_some();
        if file.record.finalized {
            file.lost.insert(segment.0)
        } else {
            was_stored
        }
    }

    /// Finalizes the file once every data segment this node owns is stored, committing the
    /// record before memory says so. A node of the whole flow builds the file's tree from the
    /// segment roots and checks it against the chain's root (its proofs come from that tree); a
    /// node of a shard has checked each segment's proof against the root as it was written,
    /// and keeps those proofs. Whether it was finalized now.
    pub fn finalize_if_complete(&self, tx_seq: TxSeq, index: &Index) -> anyhow::Result<bool> {
        let mut files = self.files.borrow_mut();
        let Some(file) = files.get_mut(&tx_seq) else {
            return Ok(false);
        };
        if file.record.finalized || (file.stored.len() as u64) < file.owned_segments {
            return Ok(false);
        }
        let tree = if self.position.is_all() {
            let tree = file.tree_from_stored()?;
            anyhow::ensure!(
                tree.root() == file.record.root,
                "tx {tx_seq}: stored segments give root {} but the chain says {}; refusing to finalize",
                tree.root(),
                file.record.root
            );
            Some(tree)
        } else {
            None
        };
        // On disk first: memory never claims a file final that a restart would not.
        let finalized = FileRecord {
            finalized: true,
            ..file.record.clone()
        };
        let roots = tree.as_ref().map_or(&[][..], |tree| tree.segment_roots());
        index.put_finalized(&finalized, roots)?;
        file.record.finalized = true;
        tracing::info!(%tx_seq, root = %file.record.root, "file finalized");
        file.tree = tree.map(Rc::new);
        Ok(true)
    }

    /// The file holding flow sector `sector`, if any starts at or before it.
    pub fn file_at_sector(&self, sector: SectorIndex) -> Option<TxSeq> {
        self.by_start
            .borrow()
            .range(..=sector.0)
            .next_back()
            .map(|(_, tx_seq)| *tx_seq)
    }

    /// The file's tree for proofs: cached, else rebuilt from the segment roots in the index. Only
    /// a node of the whole flow has it; a node of a shard serves the proofs it kept.
    pub fn tree(&self, tx_seq: TxSeq, index: &Index) -> Result<Rc<FileTree>, RpcError> {
        if !self.position.is_all() {
            return Err(RpcError::invalid_params(
                "no_file_tree",
                format!(
                    "this node stores shard {} of the flow and has no whole file tree; ask a node of shard 0/1",
                    self.position
                ),
            ));
        }
        if let Some(tree) = self.with_file(tx_seq, |f| f.tree.clone()).flatten() {
            return Ok(tree);
        }
        let (record, _) = self.get(tx_seq)?;
        if !record.finalized {
            return Err(RpcError::invalid_params(
                "not_finalized",
                format!(
                    "tx {tx_seq} is not finalized yet: proofs are served once every segment is stored"
                ),
            ));
        }
        let roots = index
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

    /// Restores upload progress of unfinalized files from the shards, and finalizes files whose
    /// data was all acknowledged before a crash that came before their finalization record.
    pub async fn recover(&self, shards: &Shards, index: &Index) -> anyhow::Result<()> {
        let unfinalized: Vec<TxSeq> = self
            .files
            .borrow()
            .values()
            .filter(|f| !f.record.finalized)
            .map(|f| f.record.tx_seq)
            .collect();
        for tx_seq in unfinalized {
            for shard in 0..shards.count() {
                let response = shards
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
            self.finalize_if_complete(tx_seq, index)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use merkle::file::SubmissionNode;

    fn record(tx_seq: u64, root: H256, start: u64, size_bytes: u64) -> FileRecord {
        FileRecord {
            tx_seq: TxSeq(tx_seq),
            root,
            size_bytes,
            start: SectorIndex(start),
            nodes: vec![SubmissionNode { height: 0, root }],
            block_number: 1,
            finalized: false,
        }
    }

    #[test]
    fn roots_resolve_to_the_unfinalized_file_for_uploads_and_the_final_one_for_reads() {
        let root = H256([7; 32]);
        let table = FileTable::new(
            vec![record(0, root, 1, 100), record(1, root, 1024, 100)],
            ShardConfig::ALL,
        );
        assert_eq!(table.tx_for_root(&root), Some(TxSeq(0)));
        // Nothing is finalized: reads fall back to the first.
        assert_eq!(table.readable_tx_for_root(&root), Some(TxSeq(0)));
        table
            .files
            .borrow_mut()
            .get_mut(&TxSeq(1))
            .expect("known")
            .record
            .finalized = true;
        assert_eq!(table.readable_tx_for_root(&root), Some(TxSeq(1)));
        assert_eq!(table.tx_for_root(&root), Some(TxSeq(0)));
        assert_eq!(table.counts(), (2, 1));
        assert_eq!(table.next_tx_seq(), 2);
        assert!(table.get(TxSeq(9)).is_err());
    }

    #[test]
    fn a_node_owns_the_segments_of_its_shard_in_a_file() {
        let half = ShardConfig::new(2, 1).expect("valid");
        let quarter = ShardConfig::new(4, 2).expect("valid");
        // Flow segments 10..18: 11, 13, 15, 17 are odd; 10 and 14 are 2 mod 4.
        assert_eq!(owned_in(half, FlowSegmentIndex(10), 8), 4);
        assert_eq!(owned_in(quarter, FlowSegmentIndex(10), 8), 2);
        assert_eq!(owned_in(quarter, FlowSegmentIndex(11), 1), 0);
        assert_eq!(owned_in(ShardConfig::ALL, FlowSegmentIndex(3), 5), 5);
        for first in 0..9 {
            for count in 0..9 {
                let brute = (first..first + count).filter(|k| k % 4 == 2).count() as u64;
                assert_eq!(owned_in(quarter, FlowSegmentIndex(first), count), brute);
            }
        }
    }

    #[test]
    fn sectors_map_to_the_file_that_starts_at_or_before_them() {
        let table = FileTable::new(
            vec![
                record(0, H256([1; 32]), 1, 10),
                record(1, H256([2; 32]), 1024, 10),
            ],
            ShardConfig::ALL,
        );
        assert_eq!(table.file_at_sector(SectorIndex(0)), None);
        assert_eq!(table.file_at_sector(SectorIndex(1)), Some(TxSeq(0)));
        assert_eq!(table.file_at_sector(SectorIndex(1023)), Some(TxSeq(0)));
        assert_eq!(table.file_at_sector(SectorIndex(5000)), Some(TxSeq(1)));
    }

    #[test]
    fn stored_segments_count_once_and_only_within_the_file() {
        let table = FileTable::new(
            vec![record(0, H256([1; 32]), 1, 300 * 1024)],
            ShardConfig::ALL,
        );
        table.mark_stored(TxSeq(0), SegmentIndex(0), H256([3; 32]));
        table.mark_stored(TxSeq(0), SegmentIndex(0), H256([4; 32]));
        table.mark_stored(TxSeq(0), SegmentIndex(9), H256([5; 32]));
        assert!(table.is_stored(TxSeq(0), SegmentIndex(0)));
        assert!(!table.is_stored(TxSeq(0), SegmentIndex(1)));
        assert_eq!(
            table.with_file(TxSeq(0), FileState::uploaded_segments),
            Some(1)
        );
    }
}
