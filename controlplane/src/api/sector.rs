//! `zgs_getSectorProof`: a flow sector's proof against the flow root.

use crate::node::Node;
use crate::rpc::{RpcError, to_value};
use merkle::flow::PieceKind;
use serde_json::Value;
use types::{H256, SEGMENT_CHUNKS, SectorIndex, SegmentIndex};

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
        .files
        .file_at_sector(sector)
        .ok_or_else(|| RpcError::internal(format!("no file covers data sector {sector}")))?;
    let tree = node.files.tree(tx_seq, &node.index)?;
    let start = node
        .files
        .with_file(tx_seq, |file| file.record.start)
        .expect("the file was just found");
    let segment = SegmentIndex((sector.0 - start.0) / SEGMENT_CHUNKS as u64);
    let data = if segment.0 < tree.layout().data_segments {
        crate::node::reads::read_segment(node, tx_seq, segment)
            .await?
            .ok_or_else(|| {
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
