//! 0G's `zgs_*` methods: uploads and downloads of segments, file info, status, with 0G's names
//! and JSON shapes (the official SDK's `StorageNode` client depends on both).

use super::Reply;
use crate::node::files::FileState;
use crate::node::ingest::SegmentUpload;
use crate::node::{Node, ingest, merkle_nodes, producer, reads};
use crate::rpc::{Params, RpcError, to_value};
use merkle::file::Proof;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use types::{H256, TxSeq};

/// Most segments in one `zgs_uploadSegments*` call.
pub const MAX_SEGMENTS_PER_CALL: usize = 64;

/// 0G's `SegmentWithProof` as it travels in JSON.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SegmentWithProofJson {
    pub root: H256,
    pub data: String,
    pub index: u64,
    pub proof: Proof,
    pub file_size: u64,
}

pub fn decode_segment(segment: SegmentWithProofJson) -> Result<SegmentUpload, RpcError> {
    let max_encoded = types::SEGMENT_BYTES.div_ceil(3) * 4;
    if segment.data.len() > max_encoded {
        return Err(RpcError::invalid_params(
            "data_length",
            format!(
                "segment {} data is {} base64 characters, more than one segment",
                segment.index,
                segment.data.len()
            ),
        ));
    }
    let data = base64_simd::STANDARD
        .decode_to_vec(segment.data.as_bytes())
        .map_err(|error| {
            RpcError::invalid_params(
                "bad_base64",
                format!("segment {} data is not base64: {error}", segment.index),
            )
        })?;
    Ok(SegmentUpload {
        root: segment.root,
        data,
        index: segment.index,
        proof: segment.proof,
        file_size: segment.file_size,
    })
}

/// `zgs_checkFileFinalized` takes either a tx seq or a root.
#[derive(Deserialize)]
#[serde(untagged)]
enum TxSeqOrRoot {
    TxSeq(u64),
    Root(H256),
}

/// The `zgs_*` methods (and the `zerog_submit` dev shortcut).
pub async fn dispatch(node: &Node, method: &str, mut params: Params) -> Result<Reply, RpcError> {
    let raw = match method {
        "zgs_downloadSegment" => {
            params.at_most(3)?;
            let root: H256 = params.required(0, "root")?;
            let Some(tx_seq) = node.files.readable_tx_for_root(&root) else {
                return Ok(Reply::Value(Value::Null));
            };
            let (start, end) = (
                params.required(1, "startIndex")?,
                params.required(2, "endIndex")?,
            );
            download_range(node, tx_seq, start, end).await?
        }
        "zgs_downloadSegmentByTxSeq" => {
            params.at_most(3)?;
            let tx_seq = TxSeq(params.required(0, "txSeq")?);
            let (start, end) = (
                params.required(1, "startIndex")?,
                params.required(2, "endIndex")?,
            );
            download_range(node, tx_seq, start, end).await?
        }
        "zgs_downloadSegmentWithProof" => {
            params.at_most(2)?;
            let root: H256 = params.required(0, "root")?;
            let Some(tx_seq) = node.files.readable_tx_for_root(&root) else {
                return Ok(Reply::Value(Value::Null));
            };
            download_with_proof(node, tx_seq, params.required(1, "index")?).await?
        }
        "zgs_downloadSegmentWithProofByTxSeq" => {
            params.at_most(2)?;
            let tx_seq = TxSeq(params.required(0, "txSeq")?);
            download_with_proof(node, tx_seq, params.required(1, "index")?).await?
        }
        _ => return dispatch_value(node, method, params).await.map(Reply::Value),
    };
    Ok(raw.map(Reply::Raw).unwrap_or(Reply::Value(Value::Null)))
}

async fn dispatch_value(node: &Node, method: &str, mut params: Params) -> Result<Value, RpcError> {
    match method {
        "zgs_getStatus" => status(node),
        "zerog_nodeStatus" => {
            params.at_most(0)?;
            Ok(node_status(node))
        }
        "zgs_getShardConfig" => to_value(node.position),
        "zgs_uploadSegment" => {
            params.at_most(1)?;
            let segment: SegmentWithProofJson = params.required(0, "segment")?;
            let tx_seq = tx_for_upload(node, &segment.root)?;
            ingest::upload(node, tx_seq, vec![decode_segment(segment)?]).await?;
            Ok(Value::Null)
        }
        "zgs_uploadSegments" => {
            params.at_most(1)?;
            let segments: Vec<SegmentWithProofJson> = params.required(0, "segments")?;
            let first = segments
                .first()
                .ok_or_else(|| RpcError::invalid_params("invalid_params", "no segments"))?;
            let tx_seq = tx_for_upload(node, &first.root)?;
            upload_many(node, tx_seq, segments).await
        }
        "zgs_uploadSegmentByTxSeq" => {
            params.at_most(2)?;
            let segment: SegmentWithProofJson = params.required(0, "segment")?;
            let tx_seq = TxSeq(params.required(1, "txSeq")?);
            ingest::upload(node, tx_seq, vec![decode_segment(segment)?]).await?;
            Ok(Value::Null)
        }
        "zgs_uploadSegmentsByTxSeq" => {
            params.at_most(2)?;
            let segments: Vec<SegmentWithProofJson> = params.required(0, "segments")?;
            let tx_seq = TxSeq(params.required(1, "txSeq")?);
            upload_many(node, tx_seq, segments).await
        }
        "zgs_getFileInfo" => {
            params.at_most(2)?;
            let root: H256 = params.required(0, "root")?;
            let _need_available: Option<bool> = params.optional(1, "needAvailable")?;
            Ok(node
                .files
                .readable_tx_for_root(&root)
                .map(|tx_seq| file_info(node, tx_seq))
                .unwrap_or(Value::Null))
        }
        "zgs_getFileInfoByTxSeq" => {
            params.at_most(1)?;
            let tx_seq = TxSeq(params.required(0, "txSeq")?);
            Ok(file_info(node, tx_seq))
        }
        "zgs_checkFileFinalized" => {
            params.at_most(1)?;
            let tx_seq = match params.required::<TxSeqOrRoot>(0, "txSeqOrRoot")? {
                TxSeqOrRoot::TxSeq(tx_seq) => Some(TxSeq(tx_seq)),
                TxSeqOrRoot::Root(root) => node.files.readable_tx_for_root(&root),
            };
            Ok(tx_seq
                .and_then(|tx_seq| node.files.with_file(tx_seq, FileState::complete))
                .map(Value::Bool)
                .unwrap_or(Value::Null))
        }
        "zgs_getFlowContext" => {
            params.at_most(0)?;
            let (root, length) = node.chain.borrow().flow_context();
            Ok(json!([root, length]))
        }
        "zgs_getSectorProof" => {
            params.at_most(2)?;
            let sector: u64 = params.required(0, "sectorIndex")?;
            let flow_root: Option<H256> = params.optional(1, "flowRoot")?;
            super::sector::sector_proof(node, types::SectorIndex(sector), flow_root).await
        }
        "zerog_submit" => {
            params.at_most(1)?;
            let submission: chain_lite::Submission = params.required(0, "submission")?;
            let (tx_seq, start, block) = producer::submit(node, submission)?;
            Ok(json!({ "txSeq": tx_seq, "startPos": start, "blockNumber": block }))
        }
        _ => Err(RpcError::method_not_found(method)),
    }
}

fn tx_for_upload(node: &Node, root: &H256) -> Result<TxSeq, RpcError> {
    node.files.tx_for_root(root).ok_or_else(|| {
        RpcError::invalid_params(
            "unknown_file",
            format!("no file with root {root} has been submitted"),
        )
    })
}

async fn upload_many(
    node: &Node,
    tx_seq: TxSeq,
    segments: Vec<SegmentWithProofJson>,
) -> Result<Value, RpcError> {
    if segments.is_empty() {
        return Err(RpcError::invalid_params("invalid_params", "no segments"));
    }
    if segments.len() > MAX_SEGMENTS_PER_CALL {
        return Err(RpcError::invalid_params(
            "too_many_segments",
            format!(
                "{} segments in one call, the limit is {MAX_SEGMENTS_PER_CALL}",
                segments.len()
            ),
        ));
    }
    let decoded = segments
        .into_iter()
        .map(decode_segment)
        .collect::<Result<Vec<_>, _>>()?;
    ingest::upload(node, tx_seq, decoded).await?;
    Ok(Value::Null)
}

async fn download_range(
    node: &Node,
    tx_seq: TxSeq,
    start: u64,
    end: u64,
) -> Result<Option<String>, RpcError> {
    Ok(reads::chunk_range(node, tx_seq, start, end)
        .await?
        .map(|data| json_string_of_base64(&data)))
}

/// `"<base64>"`: a JSON string written without escaping, which base64 never needs.
fn json_string_of_base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4 + 2);
    out.push('"');
    out.push_str(&base64_simd::STANDARD.encode_to_string(data));
    out.push('"');
    out
}

async fn download_with_proof(
    node: &Node,
    tx_seq: TxSeq,
    index: u64,
) -> Result<Option<String>, RpcError> {
    let Some((record, data, proof)) = reads::segment_with_proof(node, tx_seq, index).await? else {
        return Ok(None);
    };
    let proof =
        serde_json::to_string(&proof).map_err(|error| RpcError::internal(error.to_string()))?;
    Ok(Some(format!(
        r#"{{"root":"{}","data":{},"index":{index},"proof":{proof},"fileSize":{}}}"#,
        record.root,
        json_string_of_base64(&data),
        record.size_bytes
    )))
}

fn file_info(node: &Node, tx_seq: TxSeq) -> Value {
    node.files
        .with_file(tx_seq, |file| {
            json!({
                "tx": {
                    "streamIds": [],
                    "data": [],
                    "dataMerkleRoot": file.record.root,
                    "merkleNodes": merkle_nodes(&file.record.nodes),
                    "startEntryIndex": file.record.start,
                    "size": file.record.size_bytes,
                    "seq": file.record.tx_seq,
                },
                "finalized": file.complete(),
                "isCached": false,
                "uploadedSegNum": file.uploaded_segments(),
                "pruned": false,
            })
        })
        .unwrap_or(Value::Null)
}

fn status(node: &Node) -> Result<Value, RpcError> {
    let chain = node.chain.borrow();
    let synced = node.sync.next_block().saturating_sub(1);
    let block_hash = chain.block_hash(synced).unwrap_or(H256::ZERO);
    let (chain_id, flow_address) = (chain.chain_id(), chain.flow_address());
    let now = std::time::Instant::now();
    let connected = node
        .peers
        .list()
        .iter()
        .filter(|peer| peer.usable(now))
        .count();
    Ok(json!({
        "connectedPeers": connected,
        "logSyncHeight": synced,
        "logSyncBlock": block_hash,
        "nextTxSeq": node.files.next_tx_seq(),
        "networkIdentity": {
            "chainId": chain_id,
            "flowAddress": format!("0x{}", hex::encode(flow_address)),
            "p2pProtocolVersion": { "major": 0, "minor": 1, "build": 0 },
        },
    }))
}

/// What a storage provider watches: the node's shard, its files, repair and scrub progress, and
/// each peer as this node sees it (`zerog status` prints it).
fn node_status(node: &Node) -> Value {
    let now = std::time::Instant::now();
    let unix_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let (known, finalized) = node.files.counts();
    let metrics = &node.metrics;
    let peers: Vec<Value> = node
        .peers
        .list()
        .iter()
        .map(|peer| {
            json!({
                "url": peer.url,
                "shard": peer.shard.to_string(),
                "healthy": peer.healthy,
                "usable": peer.usable(now),
                "quarantinedSecs": peer
                    .quarantined_until
                    .map_or(0, |until| until.saturating_duration_since(now).as_secs()),
                "latencyMs": peer.latency_ms,
                "lastSeenSecsAgo": (peer.last_seen_unix > 0).then(|| {
                    unix_now.saturating_sub(u64::try_from(peer.last_seen_unix).unwrap_or(0))
                }),
                "errors": peer.errors,
            })
        })
        .collect();
    json!({
        "shard": node.position.to_string(),
        "storesSegments": node.stores_segments,
        "files": { "known": known, "finalized": finalized },
        "repair": {
            "missingSegments": node.files.missing_count(),
            "pulledSegments": metrics.repair_pulled_segments.get(),
            "pulledBytes": metrics.repair_pulled_bytes.get(),
        },
        "scrub": {
            "scrubbedSegments": metrics.scrubbed_segments.get(),
            "scrubbedBytes": metrics.scrubbed_bytes.get(),
            "damagedSegments": metrics.segments_damaged.get(),
        },
        "peers": peers,
    })
}
