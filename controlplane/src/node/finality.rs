//! Following validators without trusting the one polled: every block the log sync reads is
//! proven final by the validator set of the network's genesis.
//!
//! A round asks the validator for a finality proof (`zerog_getFinality`: a finalized ordered
//! block and its certificate), checks the certificate against the genesis validators, and
//! takes from the block the executed header it claims, height `c` with hash `h`. It then reads
//! the executed blocks from the sync's next height up to `c` (`zerog_getBlocks`), checks each
//! body against its header and each header's parent link, and requires block `c` to hash to
//! `h`: hashes chain, so every block of the range is the one the validators executed. The
//! files announced come from the verified receipts' logs. A validator that lies (a forged
//! block, a log changed or left out, a certificate of other keys) makes the round fail with the
//! reason and nothing is recorded.

use super::Node;
use super::sync::{apply, set_remote_finalized};
use crate::chain::file_from_submit_log;
use crate::index::FileRecord;
use alloy_sol_types::SolEvent as _;
use anyhow::{Context as _, anyhow, bail};
use chain_lite::abi::flow::Submit;
use consensus::{ExecClaim, FinalityProof, Genesis};
use serde_json::json;
use types::H256;

/// Most blocks one round reads before it records what they announce: a far-behind node takes
/// a finality proof near the end of each window, so it never holds more than a window's files.
const WINDOW: u64 = 1024;
/// Blocks asked for per `zerog_getBlocks` call (the validators serve at most 64).
const BLOCKS_PER_CALL: u64 = 64;

/// Asks for a finality proof (of the lowest certified height from `at_least`, or the highest)
/// and verifies it; the executed header it proves.
async fn proven_head(
    rpc: &client::Client,
    genesis: &Genesis,
    at_least: Option<u64>,
) -> anyhow::Result<ExecClaim> {
    let params = match at_least {
        Some(height) => json!([height]),
        None => json!([]),
    };
    let proof = rpc.call("zerog_getFinality", params).await?;
    let field = |name: &str| -> anyhow::Result<Vec<u8>> {
        let text = proof[name]
            .as_str()
            .ok_or_else(|| anyhow!("zerog_getFinality answered without `{name}`"))?;
        hex::decode(text.trim_start_matches("0x"))
            .with_context(|| format!("zerog_getFinality's `{name}` is not hex"))
    };
    FinalityProof::verify(genesis, &field("block")?, &field("finalization")?)
        .context("the validator's finality proof does not verify against the genesis validators")
}

/// Reads blocks `from..=to`, checks them against each other and against `to_hash`, the hash
/// a finality proof gave block `to`, and returns the files their receipts announce.
async fn verified_files(
    rpc: &client::Client,
    flow_address: [u8; 20],
    from: u64,
    to: u64,
    to_hash: H256,
) -> anyhow::Result<Vec<FileRecord>> {
    let mut records = Vec::new();
    let mut previous: Option<H256> = None;
    let mut next = from;
    while next <= to {
        let count = BLOCKS_PER_CALL.min(to - next + 1);
        let answer = rpc.call("zerog_getBlocks", json!([next, count])).await?;
        let blocks: Vec<chain_lite::Block> =
            serde_json::from_value(answer).context("zerog_getBlocks answered something else")?;
        if blocks.is_empty() {
            bail!("the validator has no block {next}, below the final height {to} it proved");
        }
        for block in blocks.into_iter().take((to - next + 1) as usize) {
            if block.number() != next {
                bail!(
                    "asked for block {next}, the validator answered block {}",
                    block.number()
                );
            }
            block.check_body()?;
            if let Some(previous) = previous
                && block.parent_hash() != previous
            {
                bail!("block {next} does not link to the block before it");
            }
            previous = Some(block.hash());
            records.extend(submitted_files(&block, flow_address)?);
            next += 1;
        }
    }
    if previous != Some(to_hash) {
        bail!(
            "block {to} is not the one the validators finalized (proof: {to_hash}); the validator serves another history"
        );
    }
    records.sort_by_key(|record| record.tx_seq);
    Ok(records)
}

/// The files the Flow contract's `Submit` logs of a checked block announce.
fn submitted_files(
    block: &chain_lite::Block,
    flow_address: [u8; 20],
) -> anyhow::Result<Vec<FileRecord>> {
    let mut records = Vec::new();
    for receipt in block.receipts.iter().filter(|receipt| receipt.status) {
        for log in &receipt.logs {
            if log.address == flow_address
                && log.topics.first() == Some(&H256(Submit::SIGNATURE_HASH.0))
            {
                records.push(file_from_submit_log(
                    &log.topics,
                    &log.data,
                    block.number(),
                )?);
            }
        }
    }
    Ok(records)
}

/// One verified round: records the files of every block proven final that the node has not
/// synced, a window at a time.
pub async fn round(node: &Node, rpc: &client::Client, genesis: &Genesis) -> anyhow::Result<()> {
    let flow_address = node.chain.borrow().flow_address();
    let head = proven_head(rpc, genesis, None).await?;
    set_remote_finalized(node, head.height, head.header_hash);
    loop {
        let from = node.sync.next_block();
        if from > head.height {
            return Ok(());
        }
        // Far behind: a proof near the window's end, where the validator has one (heights
        // finalized through a descendant's certificate have none); else the head's.
        let target = if head.height - from >= WINDOW {
            match proven_head(rpc, genesis, Some(from + WINDOW - 1)).await {
                Ok(nearer) if (from..head.height).contains(&nearer.height) => nearer,
                _ => head,
            }
        } else {
            head
        };
        let records =
            verified_files(rpc, flow_address, from, target.height, target.header_hash).await?;
        apply(node, records, target.height + 1)
            .with_context(|| format!("landing the files of blocks {from}..={}", target.height))?;
    }
}
