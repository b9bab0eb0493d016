//! The embedded chain's block producer. `eth_sendRawTransaction` executes a signed transaction
//! into chain-lite's pending block and wakes the producer; the producer — and every call that
//! reads chain or file state, before it answers — seals the pending block, persists it in the
//! node index and runs the log sync, so a client always reads its own writes. Transactions that
//! arrive while the producer waits for its turn share a block: a burst costs one block write.

use super::{Node, sync};
use crate::rpc::RpcError;
use std::rc::Rc;
use types::{SectorIndex, TxSeq};

/// Wakes the producer when the pending block has transactions.
#[derive(Default)]
pub struct Producer {
    seal_wanted: tokio::sync::Notify,
}

/// Executes a signed Ethereum transaction into the pending block and asks the producer to seal
/// it. A node that follows a remote chain refuses with a clear error.
pub fn send_raw_transaction(node: &Node, raw: &[u8]) -> Result<chain_lite::Receipt, RpcError> {
    let refused = |error: chain_lite::TxError| {
        RpcError::new(
            crate::api::eth::TRANSACTION_REFUSED,
            "transaction_refused",
            error.to_string(),
        )
    };
    let outcome = node.embedded_mut()?.execute_raw(raw);
    let receipt = match outcome {
        Err(chain_lite::TxError::BlockFull { .. }) => {
            seal_pending(node);
            node.embedded_mut()?.execute_raw(raw).map_err(refused)?
        }
        other => other.map_err(refused)?,
    };
    node.producer.seal_wanted.notify_one();
    Ok(receipt)
}

/// Seals the pending block (if it has transactions), persists it and lets the log sync read
/// it. Called by the producer, and before any call that reads chain or file state.
pub fn seal_pending(node: &Node) {
    let Ok(mut chain) = node.embedded_mut() else {
        return;
    };
    chain.seal_pending(&node.index);
    let finalized = chain.finalized_number();
    drop(chain);
    // Also when nothing was sealed: a sync that failed earlier catches up here.
    let behind = node.sync.next_block() <= finalized;
    if behind && let Err(error) = sync::sync_embedded(node) {
        tracing::error!(%error, "log sync failed; retried at the next call");
    }
}

/// Seals whatever transactions arrived, once every request that was ready alongside them has
/// had its turn; runs for as long as the node does.
pub async fn run(node: Rc<Node>) {
    loop {
        node.producer.seal_wanted.notified().await;
        tokio::task::yield_now().await;
        seal_pending(&node);
    }
}

/// The unsigned dev shortcut (`zerog_submit`): submits a file to the embedded chain, seals the
/// block, persists it and syncs the log.
pub fn submit(
    node: &Node,
    submission: chain_lite::Submission,
) -> Result<(TxSeq, SectorIndex, u64), RpcError> {
    let receipt = node
        .embedded_mut()?
        .submit_and_seal(&node.index, submission)?;
    // The block is durable: answer with its receipt even if the sync must be retried.
    seal_pending(node);
    Ok(receipt)
}
