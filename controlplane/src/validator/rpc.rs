//! A validator's JSON-RPC: the Ethereum facade over its executed finalized chain. Reads answer
//! from the chain the ledger executes into (so `latest`, `safe` and `finalized` are all the
//! executed finalized head, and a receipt exists once its block is final); transactions go to
//! the consensus mempool, and the pending nonce counts what the mempool holds.

use super::ledger::{ChannelLedger, ValidatorChain};
use crate::api::eth::{self, EthChain, EthNode};
use crate::api::{self, Reply};
use crate::metrics::Metrics;
use crate::rpc::{Params, RpcError};
use chain_lite::{Address, Chain};
use consensus::{FinalityProof, Handles, MempoolError};
use serde_json::{Value, json};
use std::cell::{Ref, RefCell};
use std::rc::Rc;
use types::H256;

impl EthChain for ValidatorChain {
    fn state(&self) -> &Chain {
        ValidatorChain::state(self)
    }

    fn head_number(&self) -> u64 {
        self.state().head().number()
    }

    /// Every executed block is final: consensus finalized it before it was executed.
    fn finalized_number(&self) -> u64 {
        self.state().head().number()
    }
}

pub struct ValidatorRpc {
    pub chain: Rc<RefCell<ValidatorChain>>,
    pub handles: Handles<ChannelLedger>,
    pub metrics: Metrics,
}

fn refused(error: MempoolError) -> RpcError {
    RpcError::new(
        eth::TRANSACTION_REFUSED,
        "transaction_refused",
        error.to_string(),
    )
}

impl EthNode for ValidatorRpc {
    type Chain = ValidatorChain;

    fn eth_chain(&self) -> Result<Ref<'_, ValidatorChain>, RpcError> {
        Ok(self.chain.borrow())
    }

    async fn send_raw_transaction(&self, raw: Vec<u8>) -> Result<H256, RpcError> {
        self.handles.mempool.submit(raw).await.map_err(refused)
    }

    async fn pending_nonce(&self, address: Address) -> Result<Option<u64>, RpcError> {
        self.handles
            .mempool
            .pending_nonce(address)
            .await
            .map(Some)
            .map_err(refused)
    }
}

/// A validator's own metrics beside the RPC timings: name, type, help (docs/metrics.md lists
/// them; counters are exported with `_total`).
pub const VALIDATOR_METRICS: [(&str, &str, &str); 5] = [
    (
        "zerog_validator_executed_height",
        "gauge",
        "Height of the executed finalized head",
    ),
    (
        "zerog_validator_mempool_transactions",
        "gauge",
        "Transactions waiting in the mempool",
    ),
    (
        "zerog_validator_mempool_bytes",
        "gauge",
        "Bytes of the transactions waiting in the mempool",
    ),
    (
        "zerog_validator_transactions_executed",
        "counter",
        "Transactions executed since the process started",
    ),
    (
        "zerog_validator_transactions_dropped",
        "counter",
        "Transactions of finalized blocks that execution dropped (nonce, funds) since start",
    ),
];

/// Heights `zerog_getFinality` looks through for one whose block and certificate this
/// validator holds (a height finalized through a descendant's certificate has none).
const FINALITY_SEARCH: u64 = 64;
/// EIP-1474's "resource not found".
const RESOURCE_NOT_FOUND: i64 = -32001;
/// Most blocks one `zerog_getBlocks` answer carries, and the encoded size after which it
/// stops adding more (it always carries at least one).
pub const MAX_BLOCKS_PER_REQUEST: u64 = 64;
const MAX_BLOCKS_RESPONSE_BYTES: usize = 8 << 20;

impl ValidatorRpc {
    /// `zerog_getFinality`: a finalized ordered block and its certificate, hex-encoded, the
    /// proof a follower checks against the genesis validators; with `at_least`, of the lowest
    /// height from there that has one, else of the highest. The executed header the block
    /// claims is shown too, for reading; the follower takes it from the block it verified.
    async fn finality(&self, at_least: Option<u64>) -> Result<Value, RpcError> {
        let head = self.chain.borrow().head().height;
        let heights: Vec<u64> = match at_least {
            Some(low) if low <= head => (low..=head).take(FINALITY_SEARCH as usize).collect(),
            _ => (head.saturating_sub(FINALITY_SEARCH)..=head)
                .rev()
                .collect(),
        };
        for height in heights.into_iter().filter(|height| *height > 0) {
            let (Some(finalization), Some(block)) = (
                self.handles.finalization(height).await,
                self.handles.block(height).await,
            ) else {
                continue;
            };
            let Some(claim) = block.exec() else {
                continue;
            };
            let (block, finalization) = FinalityProof {
                block,
                finalization,
            }
            .encode();
            return Ok(json!({
                "height": height,
                "block": format!("0x{}", hex::encode(block)),
                "finalization": format!("0x{}", hex::encode(finalization)),
                "executed": { "number": claim.height, "hash": claim.header_hash },
            }));
        }
        Err(RpcError::new(
            RESOURCE_NOT_FOUND,
            "no_finality_proof",
            format!(
                "no finalized block with a certificate near height {} (executed head {head})",
                at_least.unwrap_or(head)
            ),
        ))
    }

    /// `zerog_getBlocks`: executed blocks `from..` (at most `count`, [`MAX_BLOCKS_PER_REQUEST`])
    /// in chain-lite's own form, whose headers hash and commit to their bodies; fewer past the
    /// head or past the response size.
    fn blocks(&self, from: u64, count: u64) -> Result<Reply, RpcError> {
        if count == 0 || count > MAX_BLOCKS_PER_REQUEST {
            return Err(RpcError::invalid_params(
                "invalid_params",
                format!(
                    "zerog_getBlocks: count must be 1 to {MAX_BLOCKS_PER_REQUEST}, got {count}"
                ),
            ));
        }
        let chain = self.chain.borrow();
        let mut answer = String::from("[");
        for height in from..from.saturating_add(count) {
            let Some(block) = chain.state().block(height) else {
                break;
            };
            if answer.len() > 1 {
                answer.push(',');
            }
            let encoded = serde_json::to_string(block)
                .map_err(|error| RpcError::internal(format!("encoding block {height}: {error}")))?;
            answer.push_str(&encoded);
            if answer.len() >= MAX_BLOCKS_RESPONSE_BYTES {
                break;
            }
        }
        answer.push(']');
        Ok(Reply::Raw(answer))
    }
}

impl crate::server::Service for ValidatorRpc {
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    async fn render_metrics(&self) -> String {
        let mut text = self.metrics.render();
        let (included, dropped) = self.chain.borrow().executed_totals();
        let values = [
            self.chain.borrow().head().height,
            self.handles.mempool.len() as u64,
            self.handles.mempool.bytes() as u64,
            included,
            dropped,
        ];
        for ((name, kind, help), value) in VALIDATOR_METRICS.iter().zip(values) {
            text.push_str(&format!(
                "# HELP {name} {help}.\n# TYPE {name} {kind}\n{name}{} {value}\n",
                if *kind == "counter" { "_total" } else { "" }
            ));
        }
        text
    }

    async fn dispatch(&self, method: &str, params: Value) -> Result<Reply, RpcError> {
        let mut params = Params::new(method, params)?;
        match method {
            "zerog_getFinality" => {
                params.at_most(1)?;
                let at_least = params.optional::<u64>(0, "minimum height")?;
                self.finality(at_least).await.map(Reply::Value)
            }
            "zerog_getBlocks" => {
                params.at_most(2)?;
                let from = params.required::<u64>(0, "first height")?;
                let count = params.required::<u64>(1, "count")?;
                self.blocks(from, count)
            }
            _ if method.starts_with("eth_") || method == "net_version" => {
                eth::dispatch(self, method, params).await.map(Reply::Value)
            }
            _ => Err(RpcError::method_not_found(method)),
        }
    }

    fn methods(&self) -> &'static [&'static str] {
        api::METHODS
    }
}
