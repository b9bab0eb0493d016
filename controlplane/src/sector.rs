//! Flow-level views: sector proofs against the flow root, and shard disk statistics.

use crate::metrics::{ShardLabel, ShardPhaseLabel};
use crate::node::Node;
use crate::rpc::{RpcError, to_value};
use dataplane::{Request, Response};
use merkle::flow::PieceKind;
use serde_json::Value;
use types::{H256, SEGMENT_CHUNKS, SectorIndex, SegmentIndex};

/// Asks every shard for its statistics and publishes disk use, batches and time per write
/// phase; a busy shard is skipped.
pub async fn refresh_shard_gauges(node: &Node) {
    for shard in 0..node.shards.count() {
        let Ok(future) = node.shards.call(shard, Request::Stats) else {
            continue;
        };
        if let Response::Stats(stats) = future.await {
            let label = ShardLabel {
                shard: shard.to_string(),
            };
            node.metrics
                .shard_disk_used_bytes
                .get_or_create(&label)
                .set(stats.record_bytes_used as i64);
            node.metrics
                .shard_batches
                .get_or_create(&label)
                .set(stats.batches as i64);
            for (phase, nanoseconds) in [
                ("verify", stats.verify_ns),
                ("place", stats.place_ns),
                ("write", stats.write_ns),
                ("sync", stats.sync_ns),
                ("commit", stats.commit_ns),
                ("settle_wait", stats.settle_wait_ns),
            ] {
                node.metrics
                    .shard_phase_seconds
                    .get_or_create(&ShardPhaseLabel {
                        shard: shard.to_string(),
                        phase: phase.to_string(),
                    })
                    .set(nanoseconds as f64 / 1e9);
            }
        }
    }
}

/// `zgs_getSectorProof`: the proof of one flow sector against the current flow root. The
/// identifier and padding are known to the flow log; a data sector needs its file finalized
/// here, and the bytes of the segment that holds it are read from the owning shard.
pub async fn sector_proof(
    node: &Node,
    sector: SectorIndex,
    flow_root: Option<H256>,
) -> Result<Value, RpcError> {
    let (current_root, length) = node.chain.borrow().flow_context();
    if let Some(asked) = flow_root
        && asked != current_root
    {
        return Err(RpcError::invalid_params(
            "unknown_flow_root",
            format!(
                "flow root {asked} is not the current flow root {current_root}; proofs are served against the current root"
            ),
        ));
    }
    if sector.0 >= length.0 {
        return Err(RpcError::invalid_params(
            "sector_out_of_range",
            format!("sector {sector} is past the end of the flow ({length} sectors)"),
        ));
    }
    let piece = node.chain.borrow().flow().piece_at(sector);
    let Some(piece) = piece else {
        return Err(RpcError::internal(format!(
            "the flow log has no piece at sector {sector}"
        )));
    };
    if !matches!(piece.kind, PieceKind::Node { .. }) {
        let proof = node
            .chain
            .borrow()
            .flow()
            .known_sector_proof(sector)
            .map_err(|e| RpcError::internal(e.to_string()))?;
        return to_value(proof);
    }
    let tx_seq = node
        .file_at_sector(sector)
        .ok_or_else(|| RpcError::internal(format!("no file covers data sector {sector}")))?;
    let tree = node.tree(tx_seq)?;
    let start = node
        .with_file(tx_seq, |file| file.record.start)
        .expect("the file was just found");
    let segment = SegmentIndex((sector.0 - start.0) / SEGMENT_CHUNKS as u64);
    let data = if segment.0 < tree.layout().data_segments {
        node.read_segment(tx_seq, segment).await?.ok_or_else(|| {
            RpcError::internal(format!(
                "finalized tx {tx_seq} is missing segment {segment}"
            ))
        })?
    } else {
        Vec::new()
    };
    // The read above yielded: if a block was sealed meanwhile, the flow grew past the root the
    // caller asked for.
    if node.chain.borrow().flow_context().0 != current_root {
        return Err(RpcError::new(
            crate::rpc::BUSY,
            "busy",
            "the flow grew while the proof was being built; retry",
        ));
    }
    let proof = merkle::flow::sector_proof(node.chain.borrow().flow(), &tree, start, &data, sector)
        .map_err(|error| RpcError::internal(format!("sector {sector}: {error}")))?;
    to_value(proof)
}
