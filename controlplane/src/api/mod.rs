//! The node's JSON-RPC methods, one module per namespace: `zgs` (0G storage, with 0G's names
//! and shapes), `eth` (the Ethereum facade over the embedded chain), `indexer` (the SDK's
//! indexer, answered by the node itself), `da` (dispersal and the DA-node role). To add a
//! method: handle it in its namespace's `dispatch` and list it in [`METHODS`].

pub mod da;
pub mod eth;
pub mod indexer;
pub mod sector;
pub mod zgs;

use crate::node::{Node, producer};
use crate::rpc::{Params, RpcError};
use serde_json::Value;

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
    "zerog_nodeStatus",
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

/// Runs one call. Every call but a transaction first seals the pending block, so a client
/// reads its own writes.
pub async fn dispatch(node: &Node, method: &str, params: Value) -> Result<Reply, RpcError> {
    if method != "eth_sendRawTransaction" {
        producer::seal_pending(node);
    }
    let params = Params::new(method, params)?;
    let value = match method {
        _ if method.starts_with("zgs_") || method.starts_with("zerog_") => {
            return zgs::dispatch(node, method, params).await;
        }
        _ if method.starts_with("indexer_") => indexer::dispatch(node, method, params).await,
        _ if method.starts_with("da_") => da::dispatch(node, method, params).await,
        _ if method.starts_with("eth_") || method == "net_version" => {
            eth::dispatch(node, method, params).await
        }
        _ => Err(RpcError::method_not_found(method)),
    };
    value.map(Reply::Value)
}

#[cfg(test)]
mod tests {
    use super::METHODS;

    /// Each listed method is one the dispatch knows, and the list has no duplicates.
    #[test]
    fn the_method_list_matches_the_dispatch() {
        let sources = [
            include_str!("zgs.rs"),
            include_str!("eth/mod.rs"),
            include_str!("indexer.rs"),
            include_str!("da.rs"),
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
