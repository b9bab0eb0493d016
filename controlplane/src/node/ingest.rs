//! The upload path: how a segment a client sends becomes durable. Everything that needs no
//! hashing (file known, root, size, index range, exact length, not stored yet, no repeats) is
//! checked here for every segment of a call before any is written; the owning shard then hashes
//! the leaves, checks the proof against the file root (`merkle::file::verify_segment`, with the
//! rear-padding rule), writes and syncs, and answers only once the segment is durable.

use super::Node;
use crate::metrics::ShardLabel;
use crate::rpc::{BUSY, INTERNAL_ERROR, RpcError, STORAGE_FULL};
use crate::shards::ResponseFuture;
use dataplane::{Request, Response, WriteSegment};
use merkle::file::Proof;
use std::collections::HashSet;
use std::time::Instant;
use types::{H256, SegmentIndex, TxSeq};

/// A segment as clients upload it (0G's `SegmentWithProof`), already decoded.
pub struct SegmentUpload {
    pub root: H256,
    pub data: Vec<u8>,
    pub index: u64,
    pub proof: Proof,
    pub file_size: u64,
}

/// Uploads segments of one file. Everything checkable without hashing is checked for all
/// segments before any is written; proofs are checked by the shards, and a segment with a bad
/// proof is never written (others in the same call may be, as each stands on its own).
pub async fn upload(
    node: &Node,
    tx_seq: TxSeq,
    segments: Vec<SegmentUpload>,
) -> Result<(), RpcError> {
    if !node.stores_segments {
        return Err(RpcError::invalid_params(
            "no_storage",
            "this node serves the chain only and stores no segments: upload to the storage nodes its indexer lists",
        ));
    }
    let mut seen = HashSet::new();
    for segment in &segments {
        check(node, tx_seq, segment)?;
        if !seen.insert(segment.index) {
            return Err(RpcError::invalid_params(
                "duplicate_segment",
                format!("segment {} appears twice in one request", segment.index),
            ));
        }
    }
    let (pending, busy) = send_writes(node, tx_seq, segments)?;
    let mut first_error = busy;
    for (index, bytes, started, future) in pending {
        let response = future.await;
        node.metrics
            .segment_write_duration
            .observe(started.elapsed().as_secs_f64());
        if let Err(error) = settle(node, tx_seq, index, bytes, response) {
            first_error.get_or_insert(error);
        }
    }
    if node
        .files
        .finalize_if_complete(tx_seq, &node.index)
        .map_err(|error| RpcError::internal(error.to_string()))?
    {
        node.refresh_gauges();
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// A write on its way: file segment, bytes, when it was sent, its answer.
type PendingWrite = (u64, u64, Instant, ResponseFuture);

/// Puts each segment's write on its shard's ring. A full ring refuses the rest of the call
/// with "busy" (0G's "too many data writing", which the SDK retries); writes already on the
/// rings are still awaited by the caller, so what they store is accounted for.
fn send_writes(
    node: &Node,
    tx_seq: TxSeq,
    segments: Vec<SegmentUpload>,
) -> Result<(Vec<PendingWrite>, Option<RpcError>), RpcError> {
    let (record, _) = node.files.get(tx_seq)?;
    let mut pending = Vec::with_capacity(segments.len());
    for segment in segments {
        let index = segment.index;
        let flow_segment = node
            .files
            .with_file(tx_seq, |f| f.flow_segment(SegmentIndex(index)))
            .expect("the file was checked above");
        let shard = node.core_for(flow_segment);
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
        match node.shards.call(shard, request) {
            Ok(future) => {
                observe_queue(node, shard);
                pending.push((index, bytes, started, future));
            }
            Err(busy) => {
                let error = RpcError::new(
                    BUSY,
                    "busy",
                    format!(
                        "too many data writing: shard {} queue is full, retry",
                        busy.shard
                    ),
                );
                return Ok((pending, Some(error)));
            }
        }
    }
    Ok((pending, None))
}

/// What one shard answered to a write, as the client hears it.
fn settle(
    node: &Node,
    tx_seq: TxSeq,
    index: u64,
    bytes: u64,
    response: Response,
) -> Result<(), RpcError> {
    match response {
        Response::Written { segment_root } => {
            node.metrics.ingest_bytes.inc_by(bytes);
            node.metrics.ingest_segments.inc();
            node.files
                .mark_stored(tx_seq, SegmentIndex(index), segment_root);
            Ok(())
        }
        Response::AlreadyStored { segment_root } => {
            node.files
                .mark_stored(tx_seq, SegmentIndex(index), segment_root);
            Err(duplicate(tx_seq, index))
        }
        Response::Rejected(error) => Err(RpcError::invalid_params(
            "bad_proof",
            format!("segment {index} of tx {tx_seq} rejected: {error}"),
        )),
        Response::Failed(reason) => Err(RpcError::new(
            INTERNAL_ERROR,
            "storage_failed",
            format!("segment {index}: {reason}"),
        )),
        Response::StorageFull(reason) => Err(RpcError::new(
            STORAGE_FULL,
            "storage_full",
            format!(
                "storage full: segment {index} of tx {tx_seq} was not stored ({reason}); reads go on, retry once space is freed"
            ),
        )),
        other => Err(RpcError::internal(format!(
            "unexpected shard answer to a write: {other:?}"
        ))),
    }
}

/// Validates everything about an upload that does not need the data hashed.
fn check(node: &Node, tx_seq: TxSeq, segment: &SegmentUpload) -> Result<(), RpcError> {
    let (record, layout) = node.files.get(tx_seq)?;
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
    // A finalized file takes only the segments this node lost (repair, or a client healing it).
    if record.finalized && !node.files.is_lost(tx_seq, SegmentIndex(segment.index)) {
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
    let flow_segment = node
        .files
        .with_file(tx_seq, |file| {
            file.flow_segment(SegmentIndex(segment.index))
        })
        .expect("the file was found above");
    if !node.position.owns(flow_segment) {
        let position = node.position;
        return Err(RpcError::invalid_params(
            "not_in_shard",
            format!(
                "segment {} of tx {tx_seq} is flow segment {flow_segment}, which belongs to shard {}/{}: \
                 this node stores shard {position} (flow segments k with k mod {} = {})",
                segment.index,
                flow_segment.0 % position.num_shard,
                position.num_shard,
                position.num_shard,
                position.shard_id
            ),
        ));
    }
    if node.files.is_stored(tx_seq, SegmentIndex(segment.index)) {
        return Err(duplicate(tx_seq, segment.index));
    }
    Ok(())
}

fn observe_queue(node: &Node, shard: usize) {
    node.metrics
        .shard_queue_depth
        .get_or_create(&ShardLabel {
            shard: shard.to_string(),
        })
        .set(node.shards.queue_depth(shard) as i64);
}

fn duplicate(tx_seq: TxSeq, index: u64) -> RpcError {
    RpcError::invalid_params(
        "duplicate_segment",
        format!("segment {index} of tx {tx_seq} is already stored"),
    )
}
