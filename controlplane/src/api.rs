//! Method dispatch: 0G's `zgs_*` namespace with 0G's names and JSON shapes, plus the dev
//! chain's `zerog_submit` until the Ethereum facade exists.

use crate::node::{Node, SegmentUpload, merkle_nodes};
use crate::rpc::{Params, RpcError, to_value};
use merkle::file::Proof;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use types::{H256, ShardConfig, TxSeq};

/// Chain id of the embedded dev chain (shown in `zgs_getStatus`).
pub const DEV_CHAIN_ID: u64 = 31337;
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

fn decode_segment(segment: SegmentWithProofJson) -> Result<SegmentUpload, RpcError> {
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

/// Every method the node serves: metric labels come from this list only, so a client cannot
/// create label values (a test checks each one dispatches).
pub const METHODS: &[&str] = &[
    "da_getShards",
    "da_putBlob",
    "da_status",
    "da_storeShards",
    "eth_accounts",
    "eth_blockNumber",
    "eth_call",
    "eth_chainId",
    "eth_estimateGas",
    "eth_feeHistory",
    "eth_gasPrice",
    "eth_getBalance",
    "eth_getBlockByHash",
    "eth_getBlockByNumber",
    "eth_getCode",
    "eth_getLogs",
    "eth_getTransactionByHash",
    "eth_getTransactionCount",
    "eth_getTransactionReceipt",
    "eth_maxPriorityFeePerGas",
    "eth_sendRawTransaction",
    "eth_syncing",
    "indexer_getFileLocations",
    "indexer_getNodeLocations",
    "indexer_getShardedNodes",
    "net_version",
    "zerog_submit",
    "zgs_checkFileFinalized",
    "zgs_downloadSegment",
    "zgs_downloadSegmentByTxSeq",
    "zgs_downloadSegmentWithProof",
    "zgs_downloadSegmentWithProofByTxSeq",
    "zgs_getFileInfo",
    "zgs_getFileInfoByTxSeq",
    "zgs_getFlowContext",
    "zgs_getSectorProof",
    "zgs_getShardConfig",
    "zgs_getStatus",
    "zgs_uploadSegment",
    "zgs_uploadSegmentByTxSeq",
    "zgs_uploadSegments",
    "zgs_uploadSegmentsByTxSeq",
];

/// A method's result: a JSON value, or JSON text already serialized (segment data, where
/// serde_json's per-byte escaping of megabytes of base64 would cost more than the rest of the
/// call; base64 never needs escaping).
pub enum Reply {
    Value(Value),
    Raw(String),
}

pub async fn dispatch(node: &Node, method: &str, params: Value) -> Result<Reply, RpcError> {
    if method != "eth_sendRawTransaction" {
        node.seal_pending();
    }
    let mut params = Params::new(method, params)?;
    let raw = match method {
        "zgs_downloadSegment" => {
            params.at_most(3)?;
            let root: H256 = params.required(0, "root")?;
            let Some(tx_seq) = node.readable_tx_for_root(&root) else {
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
            let Some(tx_seq) = node.readable_tx_for_root(&root) else {
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
        "zgs_getShardConfig" => to_value(ShardConfig::ALL),
        "zgs_uploadSegment" => {
            params.at_most(1)?;
            let segment: SegmentWithProofJson = params.required(0, "segment")?;
            let tx_seq = tx_for_upload(node, &segment.root)?;
            node.upload(tx_seq, vec![decode_segment(segment)?]).await?;
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
            node.upload(tx_seq, vec![decode_segment(segment)?]).await?;
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
                TxSeqOrRoot::Root(root) => node.readable_tx_for_root(&root),
            };
            Ok(tx_seq
                .and_then(|tx_seq| node.with_file(tx_seq, |file| file.record.finalized))
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
            crate::sector::sector_proof(node, types::SectorIndex(sector), flow_root).await
        }
        "zerog_submit" => {
            params.at_most(1)?;
            let submission: chain_lite::Submission = params.required(0, "submission")?;
            let (tx_seq, start, block) = node.submit(submission)?;
            Ok(json!({ "txSeq": tx_seq, "startPos": start, "blockNumber": block }))
        }
        _ if method.starts_with("indexer_") => crate::indexer::dispatch(node, method, params),
        _ if method.starts_with("da_") => crate::da_node::dispatch(node, method, params).await,
        _ if method.starts_with("eth_") || method == "net_version" => {
            crate::eth::dispatch(node, method, params)
        }
        _ => Err(RpcError::new(
            crate::rpc::METHOD_NOT_FOUND,
            "method_not_found",
            format!("Method not found: {method}"),
        )),
    }
}

fn tx_for_upload(node: &Node, root: &H256) -> Result<TxSeq, RpcError> {
    node.tx_for_root(root).ok_or_else(|| {
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
    node.upload(tx_seq, decoded).await?;
    Ok(Value::Null)
}

async fn download_range(
    node: &Node,
    tx_seq: TxSeq,
    start: u64,
    end: u64,
) -> Result<Option<String>, RpcError> {
    Ok(node
        .chunk_range(tx_seq, start, end)
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
    let Some((record, data, proof)) = node.segment_with_proof(tx_seq, index).await? else {
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
    node.with_file(tx_seq, |file| {
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
            "finalized": file.record.finalized,
            "isCached": false,
            "uploadedSegNum": file.uploaded_segments(),
            "pruned": false,
        })
    })
    .unwrap_or(Value::Null)
}

fn status(node: &Node) -> Result<Value, RpcError> {
    let chain = node.chain.borrow();
    let synced = node.log_sync_next_block().saturating_sub(1);
    let block_hash = chain.block_hash(synced).unwrap_or(H256::ZERO);
    let (chain_id, flow_address) = (chain.chain_id(), chain.flow_address());
    Ok(json!({
        "connectedPeers": 0,
        "logSyncHeight": synced,
        "logSyncBlock": block_hash,
        "nextTxSeq": node.next_tx_seq(),
        "networkIdentity": {
            "chainId": chain_id,
            "flowAddress": format!("0x{}", hex::encode(flow_address)),
            "p2pProtocolVersion": { "major": 0, "minor": 1, "build": 0 },
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::METHODS;

    /// Each listed method is one the dispatch knows, and the list has no duplicates.
    #[test]
    fn the_method_list_matches_the_dispatch() {
        let sources = [
            include_str!("api.rs"),
            include_str!("eth/mod.rs"),
            include_str!("indexer.rs"),
            include_str!("da_node.rs"),
        ]
        .concat();
        for method in METHODS {
            assert!(
                sources.matches(&format!("\"{method}\" =>")).count() >= 1,
                "{method} is not dispatched"
            );
        }
        let mut sorted = METHODS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), METHODS.len());
    }
}
