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
use consensus::{Handles, MempoolError};
use serde_json::Value;
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

impl crate::server::Service for ValidatorRpc {
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    async fn render_metrics(&self) -> String {
        self.metrics.render()
    }

    async fn dispatch(&self, method: &str, params: Value) -> Result<Reply, RpcError> {
        if !(method.starts_with("eth_") || method == "net_version") {
            return Err(RpcError::method_not_found(method));
        }
        let params = Params::new(method, params)?;
        eth::dispatch(self, method, params).await.map(Reply::Value)
    }

    fn methods(&self) -> &'static [&'static str] {
        api::METHODS
    }
}
