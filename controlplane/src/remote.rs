//! Tailing a remote EVM chain: the node reads the Flow contract's `Submit` events with
//! `eth_getLogs` over HTTP, from final blocks only, and lands them through the same decoding
//! and `Node::apply_synced` as the embedded chain. Progress is persisted with the files, so a
//! restart resumes where it stopped; the flow is rebuilt from the synced files at start.
//!
//! Finality: the chain's `finalized` block tag. Providers limit `eth_getLogs` in different ways
//! (block span, result count, response size), so the query span adapts: it halves on a refused
//! query and grows back after successes.

use crate::chain::file_from_submit_log;
use crate::index::FileRecord;
use crate::node::Node;
use alloy_sol_types::SolEvent;
use anyhow::{Context, anyhow, bail};
use chain_lite::abi::flow::Submit;
use serde_json::{Value, json};
use std::rc::Rc;
use std::time::Duration;
use types::H256;

/// Widest block span one `eth_getLogs` query asks for.
const MAX_QUERY_BLOCKS: u64 = 1000;
/// Time allowed for one JSON-RPC call to the chain.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// JSON-RPC client for the remote chain.
pub struct ChainRpc {
    http: reqwest::Client,
    url: String,
    /// Largest answer read: a peer that streams more is cut off, not buffered.
    max_response_bytes: usize,
}

/// Answers read from a chain are small; 64 MiB covers a full page of logs.
const MAX_CHAIN_RESPONSE_BYTES: usize = 64 << 20;

/// A JSON-RPC error answered by the chain (as opposed to a transport failure).
#[derive(Debug, thiserror::Error)]
#[error("{method}: chain answered error {code}: {message}")]
pub struct ChainRpcError {
    method: &'static str,
    code: i64,
    message: String,
}

impl ChainRpc {
    pub fn new(url: &str) -> anyhow::Result<ChainRpc> {
        ChainRpc::with_timeout(url, CALL_TIMEOUT)
    }

    /// A client whose calls may take up to `timeout` (DA nodes storing megabytes of shards).
    pub fn with_timeout(url: &str, timeout: Duration) -> anyhow::Result<ChainRpc> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .context("building the chain RPC client")?;
        Ok(ChainRpc {
            http,
            url: url.to_string(),
            max_response_bytes: MAX_CHAIN_RESPONSE_BYTES,
        })
    }

    /// The same client, reading at most `bytes` of any answer.
    pub fn with_response_limit(mut self, bytes: usize) -> ChainRpc {
        self.max_response_bytes = bytes;
        self
    }

    pub async fn call(&self, method: &'static str, params: Value) -> anyhow::Result<Value> {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let response = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("{method}: cannot reach the chain at {}", self.url))?;
        let status = response.status();
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .with_context(|| format!("{method}: reading the answer from {}", self.url))?
        {
            if body.len() + chunk.len() > self.max_response_bytes {
                bail!(
                    "{method}: {} answered more than {} bytes; refused",
                    self.url,
                    self.max_response_bytes
                );
            }
            body.extend_from_slice(&chunk);
        }
        let mut reply: Value = serde_json::from_slice(&body).with_context(|| {
            format!("{method}: {} answered HTTP {status} without JSON", self.url)
        })?;
        if let Some(error) = reply.get("error") {
            return Err(ChainRpcError {
                method,
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("(no message)")
                    .to_string(),
            }
            .into());
        }
        match reply.get_mut("result") {
            Some(result) => Ok(result.take()),
            None => bail!("{method}: the chain's answer has neither result nor error"),
        }
    }

    pub async fn chain_id(&self) -> anyhow::Result<u64> {
        parse_quantity(&self.call("eth_chainId", json!([])).await?, "chainId")
    }

    /// The latest final block: number and hash.
    pub async fn finalized_block(&self) -> anyhow::Result<(u64, H256)> {
        let block = self
            .call("eth_getBlockByNumber", json!(["finalized", false]))
            .await?;
        if block.is_null() {
            bail!("the chain has no finalized block yet");
        }
        let number = parse_quantity(&block["number"], "block number")?;
        let hash = parse_hash(&block["hash"], "block hash")?;
        Ok((number, hash))
    }

    /// Submit logs of the Flow contract in blocks `[from, to]`.
    async fn submit_logs(
        &self,
        flow_address: [u8; 20],
        from: u64,
        to: u64,
    ) -> anyhow::Result<Vec<FileRecord>> {
        let filter = json!({
            "fromBlock": format!("0x{from:x}"),
            "toBlock": format!("0x{to:x}"),
            "address": format!("0x{}", hex::encode(flow_address)),
            "topics": [format!("0x{}", hex::encode(Submit::SIGNATURE_HASH.0))],
        });
        let logs = self.call("eth_getLogs", json!([filter])).await?;
        let Value::Array(logs) = logs else {
            bail!("eth_getLogs answered something other than a list");
        };
        let mut records = Vec::with_capacity(logs.len());
        for log in &logs {
            if log.get("removed").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let address = parse_bytes(&log["address"], "log address")?;
            if address != flow_address {
                bail!(
                    "eth_getLogs returned a log of another address: 0x{}",
                    hex::encode(address)
                );
            }
            let block_number = parse_quantity(&log["blockNumber"], "log blockNumber")?;
            if !(from..=to).contains(&block_number) {
                bail!("eth_getLogs returned a log of block {block_number}, outside {from}..={to}");
            }
            let topics = log["topics"]
                .as_array()
                .ok_or_else(|| anyhow!("log without topics"))?
                .iter()
                .map(|topic| parse_hash(topic, "log topic"))
                .collect::<anyhow::Result<Vec<H256>>>()?;
            let data = parse_bytes(&log["data"], "log data")?;
            records.push(file_from_submit_log(&topics, &data, block_number)?);
        }
        records.sort_by_key(|record| record.tx_seq);
        Ok(records)
    }
}

/// Follows the remote chain for as long as the node runs: one round per `poll`.
pub async fn run_log_sync(node: Rc<Node>, rpc: ChainRpc, poll: Duration) {
    let mut span = MAX_QUERY_BLOCKS;
    loop {
        match sync_round(&node, &rpc, &mut span).await {
            Ok(()) => {}
            Err(error) => {
                node.metrics.log_sync_errors.inc();
                tracing::warn!(error = %format!("{error:#}"), "log sync round failed; retrying");
            }
        }
        tokio::time::sleep(poll).await;
    }
}

/// Reads every final block not yet synced, in spans the chain accepts.
pub async fn sync_round(node: &Node, rpc: &ChainRpc, span: &mut u64) -> anyhow::Result<()> {
    let (finalized, hash) = rpc.finalized_block().await?;
    node.set_remote_finalized(finalized, hash);
    let flow_address = node.chain.borrow().flow_address();
    loop {
        let from = node.log_sync_next_block();
        if from > finalized {
            return Ok(());
        }
        let to = finalized.min(from + *span - 1);
        let records = match rpc.submit_logs(flow_address, from, to).await {
            Ok(records) => records,
            Err(error) if error.is::<ChainRpcError>() && to > from => {
                // At least two blocks were asked for, so half is at least one.
                let asked = to - from + 1;
                *span = asked / 2;
                tracing::debug!(%error, span = *span, "log query refused; narrowing the span");
                continue;
            }
            Err(error) => return Err(error),
        };
        node.apply_synced(records, to + 1)
            .with_context(|| format!("landing Submit logs of blocks {from}..={to}"))?;
        *span = (*span * 2).min(MAX_QUERY_BLOCKS);
    }
}

pub fn parse_quantity(value: &Value, what: &str) -> anyhow::Result<u64> {
    let text = value
        .as_str()
        .and_then(|text| text.strip_prefix("0x"))
        .ok_or_else(|| anyhow!("{what}: expected a 0x quantity, got {value}"))?;
    u64::from_str_radix(text, 16).with_context(|| format!("{what}: bad quantity {value}"))
}

pub fn parse_bytes(value: &Value, what: &str) -> anyhow::Result<Vec<u8>> {
    let text = value
        .as_str()
        .and_then(|text| text.strip_prefix("0x"))
        .ok_or_else(|| anyhow!("{what}: expected 0x hex, got {value}"))?;
    hex::decode(text).with_context(|| format!("{what}: bad hex"))
}

fn parse_hash(value: &Value, what: &str) -> anyhow::Result<H256> {
    let bytes = parse_bytes(value, what)?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| anyhow!("{what}: expected 32 bytes"))?;
    Ok(H256(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_and_hashes_parse_strictly() {
        assert_eq!(parse_quantity(&json!("0x1f"), "q").expect("valid"), 31);
        assert!(parse_quantity(&json!("31"), "q").is_err());
        assert!(parse_quantity(&json!(31), "q").is_err());
        assert!(parse_hash(&json!("0x00"), "h").is_err());
        let hash = format!("0x{}", "ab".repeat(32));
        assert_eq!(parse_hash(&json!(hash), "h").expect("valid").0, [0xab; 32]);
    }
}
