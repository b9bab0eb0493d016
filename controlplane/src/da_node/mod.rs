//! DA in the node, one module per job:
//!
//! - `chain`: the chain as DA reads and pays it (registry quorums, entrance records), always
//!   over Ethereum JSON-RPC — the node's own facade when it embeds the chain, `--chain-rpc`
//!   when it follows one — so every fact DA acts on is read from the chain, never assumed;
//! - `role`: the DA-node role (`--da`): registration, `da_storeShards`, `da_getShards`;
//! - `disperse`: `da_putBlob` (encode, deliver, aggregate, certify);
//! - `prune`: dropping expired shards;
//! - `setup`: turning the command line into the above once the RPC server listens.
//!
//! [`DaHandles`] is what the node holds of all this: the chain connection, the role, and the
//! round robin of encoding shards.

pub mod chain;
pub mod disperse;
pub mod prune;
pub mod role;
pub mod setup;

use crate::node::Node;
use crate::rpc::{BUSY, METHOD_NOT_FOUND, RpcError};
use crate::shards::ResponseFuture;
use chain::DaChain;
use dataplane::{Request, Response};
use role::DaRole;
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

/// Data-plane requests one DA call keeps in flight (the rings hold 1024 per shard).
const IN_FLIGHT: usize = 256;
/// How long a DA call waits for the node to reach its chain after start.
const CHAIN_READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The node's DA state, set once the chain is reachable.
#[derive(Default)]
pub struct DaHandles {
    chain: OnceCell<Rc<DaChain>>,
    /// Wakes the calls that arrived before the chain was reached.
    chain_ready: tokio::sync::Notify,
    role: OnceCell<Rc<DaRole>>,
    /// A dev node without `--da`: how it becomes its chain's signer when a blob is dispersed
    /// and nobody else is registered (taken on first use).
    dev_signer: RefCell<Option<setup::RoleSetup>>,
    /// Serialises that registration, so concurrent first dispersals register once.
    dev_registration: tokio::sync::Mutex<()>,
    /// Round robin over data-plane shards for DA encoding.
    next_encoder: Cell<usize>,
    /// From the flags: whether `da_putBlob` is served, and whether there is an account to pay.
    disperses: Cell<bool>,
    has_payer: Cell<bool>,
}

impl DaHandles {
    /// Records what the flags decide, before the chain is reached.
    pub fn configure(&self, disperses: bool, has_payer: bool) {
        self.disperses.set(disperses);
        self.has_payer.set(has_payer);
    }

    pub fn disperses(&self) -> bool {
        self.disperses.get()
    }

    pub fn has_payer(&self) -> bool {
        self.has_payer.get()
    }

    pub fn set(&self, chain: Rc<DaChain>, role: Option<Rc<DaRole>>) {
        if let Some(role) = role {
            let _ = self.role.set(role);
        }
        let _ = self.chain.set(chain);
        self.chain_ready.notify_waiters();
    }

    /// The chain connection; a call that comes while the node is still reaching its chain (just
    /// after start) waits for it, up to [`CHAIN_READY_TIMEOUT`].
    pub async fn chain(&self) -> Result<Rc<DaChain>, RpcError> {
        let ready = self.chain_ready.notified();
        if let Some(chain) = self.chain.get() {
            return Ok(chain.clone());
        }
        let _ = tokio::time::timeout(CHAIN_READY_TIMEOUT, ready).await;
        self.chain.get().cloned().ok_or_else(|| {
            RpcError::new(
                BUSY,
                "da_not_ready",
                format!(
                    "DA has not reached its chain within {} s of asking; retry (the node's log says why)",
                    CHAIN_READY_TIMEOUT.as_secs()
                ),
            )
        })
    }

    pub fn role(&self) -> Result<Rc<DaRole>, RpcError> {
        self.role.get().cloned().ok_or_else(|| {
            RpcError::new(
                METHOD_NOT_FOUND,
                "not_a_da_node",
                "this node does not hold DA shards: start it with --da",
            )
        })
    }

    /// The shard the next blob is encoded on.
    pub fn next_encoding_shard(&self, shards: usize) -> usize {
        let shard = self.next_encoder.get() % shards;
        self.next_encoder.set(shard + 1);
        shard
    }
}

fn da_error(kind: &'static str, error: impl std::fmt::Display) -> RpcError {
    RpcError::invalid_params(kind, error.to_string())
}

fn chain_error(error: anyhow::Error) -> RpcError {
    RpcError::internal(format!("chain: {error:#}"))
}

fn hex_data(bytes: &[u8]) -> String {
    client::wire::hex_data(bytes)
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// Sends `requests` to the data plane with at most [`IN_FLIGHT`] unanswered, in order; the
/// answers in the same order.
async fn through_data_plane(
    node: &Node,
    requests: impl IntoIterator<Item = (usize, Request)>,
) -> Result<Vec<Response>, RpcError> {
    let mut pending: VecDeque<ResponseFuture> = VecDeque::new();
    let mut answers = Vec::new();
    for (shard, request) in requests {
        if pending.len() >= IN_FLIGHT {
            let future = pending.pop_front().expect("the window is not empty");
            answers.push(future.await);
        }
        let future = node
            .shards
            .call(shard, request)
            .map_err(|_| RpcError::new(BUSY, "busy", "data plane queue full; retry"))?;
        pending.push_back(future);
    }
    for future in pending {
        answers.push(future.await);
    }
    Ok(answers)
}
