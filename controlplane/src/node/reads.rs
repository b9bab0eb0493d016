//! The download path: a stored segment read back from the shard that owns it, with its proof
//! against the file root when asked, or a range of chunks cut from one or two segments. The
//! shard checks each record's CRC32C before it answers.

use super::Node;
use crate::index::FileRecord;
use crate::rpc::{BUSY, INTERNAL_ERROR, RpcError};
use dataplane::{Request, Response};
use merkle::file::Proof;
use std::time::Instant;
use types::{CHUNK_BYTES, SEGMENT_CHUNKS, SegmentIndex, TxSeq};

/// Reads one stored data segment of a file; `None` when this node does not hold it.
pub async fn read_segment(
    node: &Node,
    tx_seq: TxSeq,
    segment: SegmentIndex,
) -> Result<Option<Vec<u8>>, RpcError> {
    let flow_segment = node
        .files
        .with_file(tx_seq, |f| f.flow_segment(segment))
        .ok_or_else(|| {
            RpcError::invalid_params("unknown_file", format!("no file with tx seq {tx_seq}"))
        })?;
    if !node.stores_segments || !node.position.owns(flow_segment) {
        return Ok(None);
    }
    let shard = node.core_for(flow_segment);
    let started = Instant::now();
    let request = Request::Read {
        tx_seq,
        segment,
        flow_segment,
    };
    let future = node.shards.call(shard, request).map_err(|busy| {
        RpcError::new(
            BUSY,
            "busy",
            format!("shard {} queue is full, retry", busy.shard),
        )
    })?;
    let response = future.await;
    node.metrics
        .segment_read_duration
        .observe(started.elapsed().as_secs_f64());
    match response {
        Response::Data(data) => {
            node.metrics.download_bytes.inc_by(data.len() as u64);
            node.metrics.download_segments.inc();
            Ok(Some(data))
        }
        Response::NotFound => {
            // An owned segment of a final file that the shard does not hold was lost (dropped
            // as damaged before a restart): repair fetches it again.
            if node.files.with_file(tx_seq, |f| f.record.finalized) == Some(true)
                && node.files.mark_lost(tx_seq, segment)
            {
                tracing::warn!(%tx_seq, %segment, "a segment of a finalized file is missing here; repair fetches it again");
                node.metrics.segments_damaged.inc();
            }
            Ok(None)
        }
        Response::Damaged(reason) => {
            lost(node, tx_seq, segment, &reason);
            Ok(None)
        }
        Response::Failed(reason) => Err(RpcError::new(
            INTERNAL_ERROR,
            "storage_failed",
            format!("reading segment {segment} of tx {tx_seq}: {reason}"),
        )),
        other => Err(RpcError::internal(format!(
            "unexpected shard answer to a read: {other:?}"
        ))),
    }
}

/// A stored segment failed its check and its shard dropped it: never served, counted, and
/// pulled again by repair.
pub fn lost(node: &Node, tx_seq: TxSeq, segment: SegmentIndex, reason: &str) {
    tracing::error!(%tx_seq, %segment, %reason, "stored segment damaged and dropped; repair fetches it again");
    node.files.mark_lost(tx_seq, segment);
    node.metrics.segments_damaged.inc();
}

/// One segment with its proof against the file root, once the file is finalized here: from the
/// file's tree on a node of the whole flow, from the proof kept with the segment on a node of a
/// shard; `None` when this node does not hold the segment.
pub async fn segment_with_proof(
    node: &Node,
    tx_seq: TxSeq,
    index: u64,
) -> Result<Option<(FileRecord, Vec<u8>, Proof)>, RpcError> {
    let (record, layout) = node.files.get(tx_seq)?;
    if index >= layout.data_segments {
        return Err(RpcError::invalid_params(
            "segment_out_of_range",
            format!(
                "segment index {index} out of range: tx {tx_seq} has {} data segments",
                layout.data_segments
            ),
        ));
    }
    let segment = SegmentIndex(index);
    let proof = if node.position.is_all() {
        let tree = node.files.tree(tx_seq, &node.index)?;
        tree.proof(segment)
            .map_err(|error| RpcError::internal(error.to_string()))?
    } else {
        if !record.finalized {
            return Err(not_finalized(tx_seq));
        }
        match kept_proof(node, tx_seq, segment).await? {
            Some(proof) => proof,
            None => return Ok(None),
        }
    };
    let Some(data) = read_segment(node, tx_seq, segment).await? else {
        return Ok(None);
    };
    Ok(Some((record, data, proof)))
}

/// The proof a node of a shard kept with a segment it holds.
async fn kept_proof(
    node: &Node,
    tx_seq: TxSeq,
    segment: SegmentIndex,
) -> Result<Option<Proof>, RpcError> {
    let flow_segment = node
        .files
        .with_file(tx_seq, |f| f.flow_segment(segment))
        .ok_or_else(|| {
            RpcError::invalid_params("unknown_file", format!("no file with tx seq {tx_seq}"))
        })?;
    if !node.position.owns(flow_segment) {
        return Ok(None);
    }
    let request = Request::Proof { tx_seq, segment };
    let future = node
        .shards
        .call(node.core_for(flow_segment), request)
        .map_err(|busy| {
            RpcError::new(
                BUSY,
                "busy",
                format!("shard {} queue is full, retry", busy.shard),
            )
        })?;
    match future.await {
        Response::Proof(proof) => Ok(proof.map(|proof| *proof)),
        Response::Failed(reason) => Err(RpcError::new(
            INTERNAL_ERROR,
            "storage_failed",
            format!("reading the proof of segment {segment} of tx {tx_seq}: {reason}"),
        )),
        other => Err(RpcError::internal(format!(
            "unexpected shard answer to a proof query: {other:?}"
        ))),
    }
}

fn not_finalized(tx_seq: TxSeq) -> RpcError {
    RpcError::invalid_params(
        "not_finalized",
        format!("tx {tx_seq} is not finalized yet: proofs are served once every segment is stored"),
    )
}

/// Chunks `[start, end)` of a file, at most one segment's worth.
pub async fn chunk_range(
    node: &Node,
    tx_seq: TxSeq,
    start: u64,
    end: u64,
) -> Result<Option<Vec<u8>>, RpcError> {
    let (_, layout) = node.files.get(tx_seq)?;
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
        let Some(data) = read_segment(node, tx_seq, SegmentIndex(segment)).await? else {
            return Ok(None);
        };
        let segment_start = segment * SEGMENT_CHUNKS as u64;
        let from = (start.max(segment_start) - segment_start) as usize * CHUNK_BYTES;
        let to =
            (end.min(segment_start + SEGMENT_CHUNKS as u64) - segment_start) as usize * CHUNK_BYTES;
        let Some(piece) = data.get(from..to) else {
            return Err(RpcError::internal(format!(
                "segment {segment} of tx {tx_seq} is shorter than its chunks"
            )));
        };
        out.extend_from_slice(piece);
    }
    Ok(Some(out))
}
