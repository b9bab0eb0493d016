//! The log sync: how the node learns of files. It reads the Flow contract's `Submit` events of
//! final blocks as Ethereum logs and decodes them with the contract's ABI (`chain.rs`), from the
//! embedded chain in process or from a remote chain over `eth_getLogs`, and lands them in one
//! index commit with the sync progress, so a restart resumes where it stopped.
//!
//! A remote chain's finality is its `finalized` block tag. Providers limit `eth_getLogs` in
//! different ways (block span, result count, response size), so the query span adapts: it
//! halves on a refused query and grows back after successes.

use super::Node;
use crate::chain::{ChainSource, file_from_submit_log};
use crate::index::FileRecord;
use crate::rpc::RpcError;
use alloy_sol_types::SolEvent;
use anyhow::{Context, anyhow, bail};
use chain_lite::abi::flow::Submit;
use client::wire;
use consensus::Genesis;
use serde_json::{Value, json};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use types::H256;

/// Most log events the sync reads per round, so one round never stalls the RPC thread long.
pub const MAX_LOGS_PER_SYNC_ROUND: usize = 10_000;
/// Widest block span one remote `eth_getLogs` query asks for.
const MAX_QUERY_BLOCKS: u64 = 1000;

/// Where the sync stands: the next block whose logs it reads.
pub struct LogSync {
    next_block: Cell<u64>,
}

impl LogSync {
    pub fn new(next_block: u64) -> LogSync {
        LogSync {
            next_block: Cell::new(next_block),
        }
    }

    pub fn next_block(&self) -> u64 {
        self.next_block.get()
    }
}

/// Reads new Submit events from the embedded chain, from the persisted height on, and records
/// the files they announce. A node that follows a remote chain has nothing to read here.
pub fn sync_embedded(node: &Node) -> Result<(), RpcError> {
    loop {
        let from = node.sync.next_block();
        let Ok(chain) = node.embedded() else {
            return Ok(());
        };
        if from > chain.finalized_number() {
            break;
        }
        let (events, next_block) = chain
            .submissions_since(from, MAX_LOGS_PER_SYNC_ROUND)
            .map_err(|error| RpcError::internal(format!("log sync: {error}")))?;
        drop(chain);
        apply(node, events, next_block)
            .map_err(|error| RpcError::internal(format!("log sync: {error}")))?;
        if next_block == from {
            break;
        }
    }
    node.refresh_gauges();
    Ok(())
}

/// Records files announced by final blocks before `next_block` and the new sync progress. On a
/// remote chain each new file is first appended to the rebuilt flow, which checks that it lands
/// where the chain placed it.
pub fn apply(node: &Node, events: Vec<FileRecord>, next_block: u64) -> anyhow::Result<()> {
    let records: Vec<FileRecord> = events
        .into_iter()
        .filter(|record| !node.files.contains(record.tx_seq))
        .collect();
    if let ChainSource::Remote(remote) = &mut *node.chain.borrow_mut() {
        for record in &records {
            remote.append(record)?;
        }
    }
    if let Err(error) = node.index.put_synced(&records, next_block) {
        if matches!(&*node.chain.borrow(), ChainSource::Remote(_)) && !records.is_empty() {
            // The rebuilt flow is now ahead of the disk; a retry would append twice.
            tracing::error!(%error, "cannot persist synced files; stopping");
            std::process::exit(70);
        }
        return Err(error.into());
    }
    node.sync.next_block.set(next_block);
    for record in records {
        tracing::info!(tx_seq = %record.tx_seq, root = %record.root, size = record.size_bytes, "file announced");
        let tx_seq = record.tx_seq;
        node.files.insert(record);
        // A node whose shard holds none of the file's segments has all of them: final at once,
        // as 0G's nodes report it, so clients that wait for every node of a covering set do not
        // wait forever.
        node.files.finalize_if_complete(tx_seq, &node.index)?;
    }
    node.refresh_gauges();
    Ok(())
}

/// Follows the remote chain for as long as the node runs: one round per `poll`.
/// With the validators' `genesis`, each round checks what it reads against their finality
/// certificates (`finality.rs`) instead of trusting the `finalized` tag.
pub async fn run_remote(
    node: Rc<Node>,
    chain: client::Chain,
    genesis: Option<Arc<Genesis>>,
    poll: Duration,
) {
    let mut span = MAX_QUERY_BLOCKS;
    loop {
        let result = match &genesis {
            Some(genesis) => super::finality::round(&node, chain.rpc(), genesis).await,
            None => remote_round(&node, &chain, &mut span).await,
        };
        if let Err(error) = result {
            node.metrics.log_sync_errors.inc();
            tracing::warn!(error = %format!("{error:#}"), "log sync round failed; retrying");
        }
        tokio::time::sleep(poll).await;
    }
}

/// Reads every final block not yet synced, in spans the chain accepts.
async fn remote_round(node: &Node, chain: &client::Chain, span: &mut u64) -> anyhow::Result<()> {
    let (finalized, hash) = chain.finalized_block().await?;
    set_remote_finalized(node, finalized, hash);
    let flow_address = node.chain.borrow().flow_address();
    loop {
        let from = node.sync.next_block();
        if from > finalized {
            return Ok(());
        }
        let to = finalized.min(from + *span - 1);
        let records = match submit_logs(chain.rpc(), flow_address, from, to).await {
            Ok(records) => records,
            Err(error)
                if to > from
                    && matches!(
                        error.downcast_ref::<client::Error>(),
                        Some(client::Error::Node(_))
                    ) =>
            {
                // At least two blocks were asked for, so half is at least one.
                let asked = to - from + 1;
                *span = asked / 2;
                tracing::debug!(%error, span = *span, "log query refused; narrowing the span");
                continue;
            }
            Err(error) => return Err(error),
        };
        apply(node, records, to + 1)
            .with_context(|| format!("landing Submit logs of blocks {from}..={to}"))?;
        *span = (*span * 2).min(MAX_QUERY_BLOCKS);
    }
}

/// Records the remote chain's latest final block (a node with an embedded chain ignores it).
pub(super) fn set_remote_finalized(node: &Node, number: u64, hash: H256) {
    if let ChainSource::Remote(remote) = &mut *node.chain.borrow_mut() {
        remote.finalized = Some((number, hash));
    }
    node.refresh_gauges();
}

/// Submit logs of the Flow contract in blocks `[from, to]`.
async fn submit_logs(
    rpc: &client::Client,
    flow_address: [u8; 20],
    from: u64,
    to: u64,
) -> anyhow::Result<Vec<FileRecord>> {
    let filter = json!({
        "fromBlock": format!("0x{from:x}"),
        "toBlock": format!("0x{to:x}"),
        "address": wire::hex_data(&flow_address),
        "topics": [wire::hex_data(&Submit::SIGNATURE_HASH.0)],
    });
    let logs = rpc.call("eth_getLogs", json!([filter])).await?;
    let Value::Array(logs) = logs else {
        bail!("eth_getLogs answered something other than a list");
    };
    let mut records = Vec::with_capacity(logs.len());
    for log in &logs {
        if log.get("removed").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let address = wire::parse_fixed::<20>(&log["address"], "log address")?;
        if address != flow_address {
            bail!(
                "eth_getLogs returned a log of another address: {}",
                wire::hex_data(&address)
            );
        }
        let block_number = wire::read_u64(&log["blockNumber"], "log blockNumber")?;
        if !(from..=to).contains(&block_number) {
            bail!("eth_getLogs returned a log of block {block_number}, outside {from}..={to}");
        }
        let topics = log["topics"]
            .as_array()
            .ok_or_else(|| anyhow!("log without topics"))?
            .iter()
            .map(|topic| wire::parse_hash(topic, "log topic"))
            .collect::<Result<Vec<H256>, _>>()?;
        let data = wire::parse_data(&log["data"], "log data", MAX_LOG_DATA_BYTES)?;
        records.push(file_from_submit_log(&topics, &data, block_number)?);
    }
    records.sort_by_key(|record| record.tx_seq);
    Ok(records)
}

/// Largest data of one Submit log read from a remote chain: the log carries the submission,
/// and no chain takes a transaction this large.
const MAX_LOG_DATA_BYTES: usize = 16 << 20;
